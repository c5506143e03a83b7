//! A whole study: pick the series that shows shape best, segment, label, measure, derive.

use crate::derive::{derive_checked, Derived};
use crate::morph::{measure_bodies, LevelMeasurement, Status};
use rayon::prelude::*;
use serde::Serialize;
use spinetriage_segment::{segment_volume, Anchor, SegmentError, Segmentation};
use spinetriage_volume::{SeriesKind, Volume};

/// One level, measured and derived.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Position in the column (0 = most cranial slot), shared with the segmentation's bodies.
    pub ordinal: usize,
    /// Level name ("L1"), or `None` when labelling could not tell.
    pub level: Option<String>,
    /// Confidence in the name, 0–1.
    pub label_confidence: f64,
    /// Raw morphometry.
    pub measurement: LevelMeasurement,
    /// Derived quantities.
    pub derived: Derived,
}

/// The morphometry of one study.
#[derive(Debug, Clone, Serialize)]
pub struct StudyMorphometry {
    /// Series used for shape.
    pub shape_series_uid: String,
    /// Its kind.
    pub shape_kind: SeriesKind,
    /// Levels, cranial first.
    pub levels: Vec<Level>,
    /// How labels were worked out.
    pub labelling: Vec<String>,
    /// Body-like regions seen before chaining.
    pub candidates: usize,
    /// The segmentation behind the levels (masks for report images and signal statistics).
    #[serde(skip)]
    pub segmentation: std::sync::Arc<Segmentation>,
}

/// Preference of a series for shape: CT, then T1 (fatty marrow against dark cortex and discs),
/// then T2; STIR suppresses marrow fat and is kept for signal.
fn shape_rank(kind: SeriesKind) -> Option<u8> {
    match kind {
        SeriesKind::Ct => Some(0),
        SeriesKind::MrT1 => Some(1),
        SeriesKind::MrT2 => Some(2),
        SeriesKind::MrOther => Some(3),
        SeriesKind::MrT2FatSat => Some(4),
        SeriesKind::MrStir => Some(5),
        _ => None,
    }
}

/// The volume used for shape, if any.
pub fn shape_volume(vols: &[Volume]) -> Option<&Volume> {
    vols.iter()
        .filter_map(|v| shape_rank(v.kind).map(|r| (r, v)))
        .min_by_key(|(r, v)| (*r, std::cmp::Reverse(v.data.len())))
        .map(|(_, v)| v)
}

/// Segments, labels and measures the spine in the best shape volume of a study.
pub fn analyze_volumes(
    vols: &[Volume],
    anchor: Option<&Anchor>,
) -> Result<Option<StudyMorphometry>, SegmentError> {
    let Some(vol) = shape_volume(vols) else {
        return Ok(None);
    };
    let timing = std::env::var_os("SPINETRIAGE_TIMING").is_some();
    let t_seg = std::time::Instant::now();
    let seg = segment_volume(vol, anchor)?;
    let t_measure = std::time::Instant::now();
    let mut measured = measure_bodies(vol, &seg);
    if timing {
        eprintln!(
            "segmentation: {:?}, morphometry: {:?}",
            t_measure - t_seg,
            t_measure.elapsed()
        );
    }
    let t_canal = std::time::Instant::now();
    let canal_vol = crate::canal::canal_volume(vols, vol);
    let sac_vol = crate::canal::sac_volume(vols, vol);
    if canal_vol.is_some() || sac_vol.is_some() {
        measured.par_iter_mut().zip(&seg.bodies).for_each(|(m, b)| {
            let mid = m.mid_wall_lps_mm();
            let worst = m.retropulsion_point_lps_mm;
            let posterior = m.frame.posterior;
            // The body's cortical level is known on the shape series only; a CT canal series is
            // the shape series whenever there is one.
            let on = |cv: &Volume, at: Option<[f64; 3]>| {
                let cortex =
                    (cv.series_uid == vol.series_uid).then_some(f64::from(b.marrow.cortex_level));
                at.and_then(|w| crate::canal::measure_canal(cv, w, posterior, cortex))
            };
            if let Some(cv) = canal_vol {
                m.canal = on(cv, mid);
                m.canal_residual = on(cv, worst);
            }
            if let Some(sv) = sac_vol {
                // Without CT the canal series is the sac series: measured once.
                m.thecal_sac = if canal_vol.is_some_and(|cv| cv.series_uid == sv.series_uid) {
                    m.canal.clone()
                } else {
                    on(sv, mid)
                };
            }
        });
    }
    let t_arch = std::time::Instant::now();
    segment_arches(vol, &seg, &mut measured);
    if timing {
        eprintln!(
            "canal: {:?}, posterior elements: {:?}",
            t_arch - t_canal,
            t_arch.elapsed()
        );
    }
    // Found and missed levels together, in column order: a missed level keeps its place (and its
    // name) and is reported as not evaluable.
    let mut rows: Vec<(usize, Option<String>, f64, LevelMeasurement)> = seg
        .bodies
        .iter()
        .zip(measured)
        .map(|(b, m)| (b.ordinal, b.label.clone(), b.label_confidence, m))
        .collect();
    for m in &seg.missing {
        let c = m.centre_lps.0;
        rows.push((
            m.ordinal,
            m.label.clone(),
            0.0,
            LevelMeasurement::empty([c.x, c.y, c.z], Status::NotEvaluable(m.reason.clone())),
        ));
    }
    rows.sort_by_key(|r| r.0);
    // The measurements move into the pairs `derive_checked` reads (and may mark not evaluable),
    // and from there into the levels.
    let (places, mut pairs): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .map(|(ordinal, level, confidence, m)| ((ordinal, confidence), (level, m)))
        .unzip();
    let derived = derive_checked(&mut pairs);
    let levels = places
        .into_iter()
        .zip(pairs)
        .zip(derived)
        .map(
            |(((ordinal, label_confidence), (level, measurement)), derived)| Level {
                ordinal,
                level,
                label_confidence,
                measurement,
                derived,
            },
        )
        .collect();
    Ok(Some(StudyMorphometry {
        shape_series_uid: vol.series_uid.clone(),
        shape_kind: vol.kind,
        levels,
        labelling: seg.labelling.clone(),
        candidates: seg.candidates,
        segmentation: std::sync::Arc::new(seg),
    }))
}

/// Posterior elements of every measured body of the mobile spine, on the shape series; each level
/// owns the slab half-way to its neighbouring bodies.
fn segment_arches(vol: &Volume, seg: &Segmentation, measured: &mut [LevelMeasurement]) {
    spinetriage_volume::with_voxels!(&vol.data, |a| segment_arches_in(
        seg.view.view(a),
        seg,
        measured
    ))
}

/// [`segment_arches`] on one voxel storage.
fn segment_arches_in<T: spinetriage_volume::Sample>(
    data: ndarray::ArrayView3<'_, T>,
    seg: &Segmentation,
    measured: &mut [LevelMeasurement],
) {
    let centres: Vec<nalgebra::Vector3<f64>> = measured
        .iter()
        .map(|m| nalgebra::Vector3::from(m.center_lps_mm))
        .collect();
    let sacral: Vec<bool> = seg
        .bodies
        .iter()
        .map(|b| crate::is_sacral(b.label.as_deref()))
        .collect();
    // What bone looks like comes from the mobile spine's bodies: the sacrum's marrow is fattier.
    let bone: Vec<Option<crate::posterior::BoneLevels>> = measured
        .par_iter()
        .zip(&seg.bodies)
        .zip(&sacral)
        .map(|((m, b), &s)| {
            (!s).then(|| crate::posterior::body_bone_levels(data, &seg.view, b, m))
                .flatten()
        })
        .collect();
    // The arch's search box grows with its body: L5's took twice an upper level's time. (The
    // sacrum, largest, returns at once.)
    let results: Vec<Option<crate::posterior::PosteriorElements>> =
        spinetriage_volume::par_map_costliest_first(
            measured,
            |i, _| seg.bodies[i].volume_mm3,
            |i, m| {
                if sacral[i] {
                    return None;
                }
                let up = nalgebra::Vector3::from(m.frame.cranial);
                let own = m.middle.map_or(0.8 * m.depth_mm?, |h| h.height_mm);
                let half_to = |j: Option<usize>, sign: f64| {
                    j.map(|j| {
                        ((centres[j] - centres[i]).dot(&up) * sign / 2.0).clamp(0.3 * own, own)
                    })
                    .unwrap_or(0.75 * own)
                };
                let above = (i > 0).then(|| i - 1);
                let below = (i + 1 < centres.len()).then_some(i + 1);
                let limits = (-half_to(below, -1.0), half_to(above, 1.0));
                // The sac (MR) lies inside the bony canal behind the anterior epidural space.
                let canal_ap = m
                    .canal
                    .as_ref()
                    .map(|c| c.ap_mm + c.anterior_space_mm.unwrap_or(0.0));
                let levels = crate::posterior::robust_bone_levels(&bone, i)?;
                crate::posterior::segment_arch(data, &seg.view, &levels, m, limits, canal_ap)
            },
        );
    let mut rows: Vec<crate::posterior::Row> = results
        .into_iter()
        .zip(measured.iter())
        .map(|(pe, m)| {
            let depth = m.depth_mm.unwrap_or(30.0);
            // Lateral offsets scale with the depth too: the width is the least reliable
            // dimension on sagittal MR (3–4 mm slices across it).
            let size = [m.middle.map_or(0.8 * depth, |h| h.height_mm), depth, depth];
            (pe, m.frame, m.center_lps_mm, size)
        })
        .collect();
    crate::posterior::reconcile(&mut rows);
    for (m, row) in measured.iter_mut().zip(rows) {
        m.posterior_elements = row.0;
    }
}

impl Level {
    /// Whether every height was measured.
    pub fn measured(&self) -> bool {
        self.measurement.status == Status::Measured
    }
}
