//! Vertebral column detection, body segmentation and level labels.
//!
//! [`segment_volume`] takes one [`Volume`] (CT, or sagittal MR of any weighting) and returns a
//! [`Segmentation`]: every vertebral body found, as a full-resolution mask with its centroid in
//! LPS mm, in cranio-caudal order. Nothing depends on the modality's absolute values: intensity
//! bands come from the image's own quantiles and each body's marrow level from its own core.
//!
//! ```no_run
//! use spinetriage_dicom::{Limits, SeriesKind};
//! use spinetriage_segment::segment_volume;
//! use spinetriage_volume::read_nifti;
//! let vol = read_nifti("t2_lumbar.nii.gz".as_ref(), SeriesKind::MrT2, &Limits::default())?;
//! let seg = segment_volume(&vol, None)?;
//! for b in &seg.bodies {
//!     println!("{:?} at {:?}", b.label, b.centroid_lps);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod detect;
pub mod label;
pub mod morph;
pub mod refine;
pub mod view;
pub mod work;

pub use detect::Candidate;
pub use label::{Anchor, LEVELS};
pub use refine::{BodyMask, MarrowStats};
pub use view::CanonicalView;

use spinetriage_volume::{LpsPoint, SeriesKind, Volume};

/// Why a volume could not be segmented.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The volume holds no voxel or is too thin to hold a vertebra.
    #[error(
        "series {series_uid}: volume of {dims:?} voxels is too small to hold a vertebral body"
    )]
    TooSmall {
        /// Series Instance UID (or NIfTI path).
        series_uid: String,
        /// Voxel counts `[i, j, k]`.
        dims: [usize; 3],
    },
    /// No chain of vertebral bodies was found.
    #[error("series {series_uid}: no vertebral column found ({candidates} body-like regions)")]
    NoColumn {
        /// Series Instance UID (or NIfTI path).
        series_uid: String,
        /// Body-like regions seen before chaining.
        candidates: usize,
    },
}

/// A level of the column where no body could be segmented.
#[derive(Debug, Clone)]
pub struct Missing {
    /// Position in the column, counting found and missing levels from the top.
    pub ordinal: usize,
    /// Expected centre, LPS mm (interpolated between the neighbours).
    pub centre_lps: LpsPoint,
    /// Why it is missing.
    pub reason: String,
    /// Level name, when the labelling could tell.
    pub label: Option<String>,
}

/// One vertebral body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Position in the column, counting found and missing levels from the top.
    pub ordinal: usize,
    /// Mask on the canonical grid, cortex included.
    pub mask: BodyMask,
    /// Marrow signal of this body.
    pub marrow: MarrowStats,
    /// Centroid of the mask, LPS mm.
    pub centroid_lps: LpsPoint,
    /// Mask volume, mm³.
    pub volume_mm3: f64,
    /// Level name, when the labelling could tell.
    pub label: Option<String>,
    /// Confidence in the label, 0–1.
    pub label_confidence: f64,
    /// The detection it was grown from.
    pub candidate: Candidate,
}

/// The bodies found in one volume, cranial first.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Series Instance UID (or NIfTI path) of the volume.
    pub series_uid: String,
    /// How the volume was looked at.
    pub view: CanonicalView,
    /// Bodies, cranial first.
    pub bodies: Vec<Body>,
    /// Levels of the column that could not be segmented.
    pub missing: Vec<Missing>,
    /// Body-like regions seen before chaining.
    pub candidates: usize,
    /// How the labels were worked out, and what could not be told (transitional anatomy).
    pub labelling: Vec<String>,
}

/// A grown body and what of its neighbours the field of view cut off beyond its discs.
type Grown = (Body, Vec<refine::CutOff>);

/// Mean of `pts` and the eigen-decomposition of their scatter matrix (principal axes): column
/// `k` of `eigenvectors` is the axis whose spread is `eigenvalues[k]`.
pub fn principal(
    pts: &[nalgebra::Vector3<f64>],
) -> (
    nalgebra::Vector3<f64>,
    nalgebra::SymmetricEigen<f64, nalgebra::U3>,
) {
    let mean = pts.iter().sum::<nalgebra::Vector3<f64>>() / pts.len().max(1) as f64;
    let mut cov = nalgebra::Matrix3::zeros();
    for p in pts {
        let d = p - mean;
        cov += d * d.transpose();
    }
    let mut e = nalgebra::SymmetricEigen::new(cov);
    // nalgebra can return the eigenvectors of a matrix with an exactly zero row (coplanar
    // points, as a flat endplate's) paired with the wrong eigenvalues (dimforge/nalgebra#1109):
    // the vectors are right, their order is not. Each value is read back from its own vector.
    for k in 0..3 {
        let v = e.eigenvectors.column(k).into_owned();
        e.eigenvalues[k] = v.dot(&(cov * v));
    }
    (mean, e)
}

/// Working resolution of detection, mm: a body is still 7+ voxels across, and a 512×512×300 CT
/// shrinks ~25-fold.
const COARSE_MM: f64 = 1.4;

/// Finds and segments the vertebral bodies of `vol`.
pub fn segment_volume(vol: &Volume, anchor: Option<&Anchor>) -> Result<Segmentation, SegmentError> {
    let view = CanonicalView::new(&vol.grid);
    if view
        .dims
        .iter()
        .zip(view.spacing_mm)
        .any(|(d, s)| (*d as f64) * s < 10.0)
    {
        return Err(SegmentError::TooSmall {
            series_uid: vol.series_uid.clone(),
            dims: vol.grid.dims,
        });
    }
    let timing = std::env::var_os("SPINETRIAGE_TIMING").is_some();
    let t0 = std::time::Instant::now();
    // Large volumes (a 512×512×300 CT) are detected a little coarser, keeping the working copy
    // near 8 M voxels; a body stays 15+ voxels across.
    let physical_mm3: f64 = (0..3)
        .map(|n| view.dims[n] as f64 * view.spacing_mm[n])
        .product();
    let target_mm = COARSE_MM.max((physical_mm3 / 8.0e6).cbrt()).min(2.5);
    let coarse = spinetriage_volume::with_voxels!(&vol.data, |a| work::Coarse::new(
        view.view(a),
        view.spacing_mm,
        target_mm
    ));
    let t1 = t0.elapsed();
    // From here on only the coarse grid is used. The values (a third of a CT's volume in
    // bytes) would otherwise stay beside the bodies' blocks at the study's peak.
    let grid = coarse.grid();
    let cands = detect::candidates(coarse, vol.kind == SeriesKind::Ct);
    let coarse = grid;
    let t2 = t0.elapsed();
    let chain = detect::chain(&cands, coarse.spacing_mm[2]);
    if timing {
        eprintln!("segment: coarse {t1:?}, candidates {:?}", t2 - t1);
    }
    if chain.is_empty() {
        return Err(SegmentError::NoColumn {
            series_uid: vol.series_uid.clone(),
            candidates: cands.len(),
        });
    }
    let slots = detect::fill_gaps(&chain, &cands, coarse.spacing_mm);
    // Canonical mm (coarse index × coarse spacing) → LPS.
    let mm_to_lps = |at: nalgebra::Vector3<f64>| {
        view.to_lps(coarse.fine_centre(std::array::from_fn(|n| at[n] / coarse.spacing_mm[n])))
    };
    let voxel_mm3: f64 = view.spacing_mm.iter().product();
    // Cortical bone is the densest tissue on CT and gives no signal on MR.
    let cortex_sign = match vol.kind {
        SeriesKind::Ct => Some(1.0),
        SeriesKind::Other => None,
        _ => Some(-1.0),
    };
    // Largest candidates first: the sacrum's block alone can take as long as half the others
    // together.
    let grown: Vec<Result<Grown, (usize, LpsPoint, String)>> =
        spinetriage_volume::par_map_costliest_first(
            &slots,
            |_, slot| match slot {
                detect::Slot::Found(c) => c.volume_mm3,
                detect::Slot::Missed(_) => 0.0,
            },
            |ordinal, slot| {
                let c = match slot {
                    detect::Slot::Found(c) => c,
                    detect::Slot::Missed(at) => {
                        let why = "vertebral body not found between its neighbours";
                        return Err((ordinal, mm_to_lps(*at), why.to_string()));
                    }
                };
                let Some((mask, marrow, cut_off)) = spinetriage_volume::with_voxels!(
                    &vol.data,
                    |a| refine::grow_body(view.view(a), &coarse, c, view.spacing_mm, cortex_sign)
                ) else {
                    let why = "body region could not be grown";
                    return Err((ordinal, mm_to_lps(c.centroid_mm), why.to_string()));
                };
                let (centroid, n) = mask.centroid_index();
                // A body grown from a stand-in seed (no candidate where a level was missed) must
                // stay where the seed was: one that ran off into tissue of the seed's signal (CSF
                // beside a sclerotic body on T1) is not that body.
                if c.stability == 0 {
                    let drift: f64 = (0..3)
                        .map(|k| (centroid[k] * view.spacing_mm[k] - c.centroid_mm[k]).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    if drift > 0.3 * c.height_mm {
                        let why = format!(
                        "vertebral body not found between its neighbours (a region grown from its expected centre ended {drift:.0} mm away)"
                    );
                        return Err((ordinal, mm_to_lps(c.centroid_mm), why));
                    }
                }
                let body = Body {
                    ordinal,
                    label: None,
                    label_confidence: 0.0,
                    centroid_lps: view.to_lps(centroid),
                    volume_mm3: n as f64 * voxel_mm3,
                    mask,
                    marrow,
                    candidate: c.clone(),
                };
                Ok((body, cut_off))
            },
        );
    let mut bodies = Vec::new();
    let mut missing = Vec::new();
    let last = slots.len().saturating_sub(1);
    let mut cut_above = None;
    for g in grown {
        match g {
            Ok((b, cut_off)) => {
                // The column's end bodies may carry a piece of the next body, which the field
                // of view cuts: a level of the column, not evaluable.
                for f in cut_off {
                    let side = if f.above { "above" } else { "below" };
                    let reason = format!(
                        "vertebral body cut by the field of view ({:.0} mm of it in the image, beyond the disc {side})",
                        f.extent_mm
                    );
                    let level = |ordinal| Missing {
                        ordinal,
                        centre_lps: view.to_lps(f.centroid_index),
                        reason: reason.clone(),
                        label: None,
                    };
                    if f.above && b.ordinal == 0 {
                        cut_above = Some(level(0));
                    } else if !f.above && b.ordinal == last {
                        missing.push(level(last + 1));
                    }
                }
                bodies.push(b);
            }
            Err((ordinal, centre_lps, reason)) => missing.push(Missing {
                ordinal,
                centre_lps,
                reason,
                label: None,
            }),
        }
    }
    // A level above the top body moves every other one down.
    if let Some(top) = cut_above {
        bodies.iter_mut().for_each(|b| b.ordinal += 1);
        missing.iter_mut().for_each(|m| m.ordinal += 1);
        missing.insert(0, top);
    }
    let mut seg = Segmentation {
        series_uid: vol.series_uid.clone(),
        view,
        bodies,
        missing,
        candidates: cands.len(),
        labelling: Vec::new(),
    };
    let t3 = t0.elapsed();
    label::drop_discs(&mut seg, vol);
    label::merge_split_bodies(&mut seg);
    label::label(&mut seg, vol, anchor);
    if timing {
        eprintln!(
            "segment: growth {:?}, labels {:?}",
            t3 - t2,
            t0.elapsed() - t3
        );
    }
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::principal;
    use nalgebra::Vector3;

    #[test]
    fn coplanar_points_have_their_plane_normal_as_least_axis() {
        // 24 points of a flat inferior endplate on a 5 × 5 grid (one ray of the grid lost):
        // nalgebra pairs this scatter matrix's eigenvectors with the wrong eigenvalues.
        let mut pts = Vec::new();
        for y in [-12.285, -6.15, -0.015, 6.12, 12.255] {
            for x in [-12.06, -6.03, 0.0, 6.03, 12.06] {
                if !(x == 0.0 && y == 12.255) {
                    pts.push(Vector3::new(x, y, -12.987));
                }
            }
        }
        let (mean, e) = principal(&pts);
        assert!((mean.z + 12.987).abs() < 1e-9);
        let k = (0..3)
            .min_by(|a, b| e.eigenvalues[*a].total_cmp(&e.eigenvalues[*b]))
            .expect("three axes");
        let n = e.eigenvectors.column(k);
        assert!(n.z.abs() > 0.999, "normal {n:?}");
        for k in 0..3 {
            let v = e.eigenvectors.column(k).into_owned();
            let spread: f64 = pts.iter().map(|p| (p - mean).dot(&v).powi(2)).sum();
            assert!((spread - e.eigenvalues[k]).abs() < 1e-6 * (1.0 + spread));
        }
    }
}
