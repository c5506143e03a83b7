//! Posterior elements of each level: left and right pedicle, lamina, spinous process.
//!
//! Bone behind a measured body is grown from its pedicle roots, in the vertebra's own frame, on
//! the shape series (CT or the MR series chosen for shape). What counts as bone comes from the
//! neighbouring bodies' marrow and cortex in the same image, smoothed to about a millimetre as
//! the arch is: on CT the cortex (a quarter of the way from soft tissue to the cortical level),
//! each structure's interior then filled; on MR marrow-like signal and one voxel of cortical
//! shell. The grown bone is turned about the cranial axis to its most symmetric position (axial
//! rotation) and divided by position: in front of the canal's middle the pedicles (left or right
//! of the mid-sagittal plane), behind it the lamina, and the midline bone further back than a
//! fifth of the body's depth behind the canal the spinous process. Method and accuracy:
//! `docs/segmentation.md`, step 9.
//!
//! A structure that is not found where the same structure is found at the neighbouring levels
//! is reported missing with where it is expected (the neighbours' positions carried into this
//! vertebra's frame), so that signal can still be read there: a pedicle replaced by tumour is
//! neither marrow-like on T1 nor bone-dense on CT, and that absence is itself a finding.

use crate::morph::{Frame, LevelMeasurement};
use nalgebra::Vector3;
use ndarray::{Array3, ArrayView3};
use serde::Serialize;
use spinetriage_segment::{Body, BodyMask, CanonicalView};
use spinetriage_volume::{LpsPoint, Sample};

/// A posterior-element structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchPart {
    /// Left pedicle.
    LeftPedicle,
    /// Right pedicle.
    RightPedicle,
    /// Laminae: the arch behind the canal.
    Lamina,
    /// Spinous process.
    Spinous,
}

impl ArchPart {
    /// Every structure, in report order.
    pub const ALL: [ArchPart; 4] = [
        ArchPart::LeftPedicle,
        ArchPart::RightPedicle,
        ArchPart::Lamina,
        ArchPart::Spinous,
    ];

    /// Name in prose ("left pedicle").
    pub fn name(self) -> &'static str {
        match self {
            ArchPart::LeftPedicle => "left pedicle",
            ArchPart::RightPedicle => "right pedicle",
            ArchPart::Lamina => "lamina",
            ArchPart::Spinous => "spinous process",
        }
    }
}

/// One structure of a level's posterior elements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchSegment {
    /// Which structure.
    pub part: ArchPart,
    /// Whether it was segmented; when not, `centroid_lps_mm` is where it is expected.
    pub found: bool,
    /// Whether `centroid_lps_mm` and `core_lps_mm` mean anything: the structure was found, or
    /// it was placed where the neighbouring levels put theirs.
    pub located: bool,
    /// Centroid of the segmented voxels, or the expected position, LPS mm.
    pub centroid_lps_mm: [f64; 3],
    /// Its most interior point (the last voxel left by repeated erosion, nearest the
    /// centroid), or where that is expected, LPS mm: where its own signal is read.
    pub core_lps_mm: [f64; 3],
    /// Segmented volume, mm³ (0 when not found).
    pub volume_mm3: f64,
    /// The voxels, on the shape series' canonical grid.
    #[serde(skip)]
    pub mask: Option<BodyMask>,
    /// Why it is missing, or what is unusual about it.
    pub note: Option<String>,
}

/// Posterior elements of one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PosteriorElements {
    /// Left pedicle, right pedicle, lamina, spinous process (in that order).
    pub parts: Vec<ArchSegment>,
}

impl PosteriorElements {
    /// The segment of one structure.
    pub fn part(&self, part: ArchPart) -> Option<&ArchSegment> {
        self.parts.iter().find(|s| s.part == part)
    }
}

/// Bone of a neural arch reaches at most this far behind the posterior wall, mm (lumbar
/// spinous tips lie 55–65 mm behind the wall; Panjabi 1991/1992).
const REACH_MM: f64 = 65.0;

/// A structure smaller than this share of the same structure's median at the other levels is
/// not counted as found (a few voxels of a pedicle's rim are not a pedicle).
const MIN_SHARE: f64 = 0.25;

/// A structure below this share of its body's volume is not counted as found (pedicles are
/// about 5 % of it, spinous processes 6–9 %, in the phantom and in Panjabi's tables).
const MIN_OF_BODY: f64 = 0.005;

/// What bone looks like at a level, smoothed as [`segment_arch`] smooths: marrow median and
/// robust σ, and the cortex.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoneLevels {
    /// Marrow median.
    pub marrow: f64,
    /// Robust σ of the marrow (1.4826 × MAD).
    pub sigma: f64,
    /// Pure cortex.
    pub cortex: f64,
}

/// Smoothing half-widths, voxels: about a millimetre along each axis finer than that.
fn smoothing(view: &CanonicalView) -> [usize; 3] {
    std::array::from_fn(|n| (0.75 / view.spacing_mm[n]).floor().max(0.0) as usize)
}

/// The body's own marrow in its core (a ball of a quarter depth inside its mask), smoothed as
/// the arch is; `None` without a depth or with too few voxels.
pub fn body_bone_levels<T: Sample>(
    data: ArrayView3<'_, T>,
    view: &CanonicalView,
    body: &Body,
    m: &LevelMeasurement,
) -> Option<BoneLevels> {
    let depth = m.depth_mm?;
    let c = Vector3::from(m.center_lps_mm);
    let radius = smoothing(view);
    let dims = view.dims;
    let r = 0.25 * depth;
    let mut vals = Vec::new();
    let cc = view.to_canonical(LpsPoint(nalgebra::Point3::from(c)));
    let reach: [isize; 3] = std::array::from_fn(|n| (r / view.spacing_mm[n]).ceil() as isize);
    for a in -reach[0]..=reach[0] {
        for b in -reach[1]..=reach[1] {
            for k in -reach[2]..=reach[2] {
                let q = [
                    cc[0].round() as isize + a,
                    cc[1].round() as isize + b,
                    cc[2].round() as isize + k,
                ];
                if q.iter().zip(dims).any(|(x, d)| *x < 0 || *x >= d as isize) {
                    continue;
                }
                let q = q.map(|x| x as usize);
                let p = view.to_lps(q.map(|x| x as f64)).0.coords;
                if (p - c).norm() <= r && body.mask.contains(q) {
                    vals.push(local_mean(data, q, radius));
                }
            }
        }
    }
    if vals.len() < 8 {
        return None;
    }
    let (marrow, sigma) = median_sigma(vals);
    Some(BoneLevels {
        marrow,
        sigma,
        cortex: f64::from(body.marrow.cortex_level),
    })
}

/// The levels to segment level `i`'s arch with: the median of its own and its nearest
/// neighbours' (two each side), so that a body whose marrow is replaced (lytic, sclerotic) does
/// not redefine what bone looks like behind it.
pub fn robust_bone_levels(all: &[Option<BoneLevels>], i: usize) -> Option<BoneLevels> {
    let near: Vec<BoneLevels> = (i.saturating_sub(2)..(i + 3).min(all.len()))
        .filter_map(|j| all[j])
        .collect();
    if near.is_empty() {
        return None;
    }
    let med = |f: fn(&BoneLevels) -> f64| median_sigma(near.iter().map(f).collect()).0;
    Some(BoneLevels {
        marrow: med(|b| b.marrow),
        sigma: med(|b| b.sigma),
        cortex: med(|b| b.cortex),
    })
}

/// Segments the posterior elements of one measured body on the shape series.
///
/// `u_limits_mm` are the extents along the cranial axis from the body's centre that belong to
/// this level (half-way to the neighbouring bodies); `canal_ap_mm` is the canal's AP diameter at
/// this level when it was measured.
pub fn segment_arch<T: Sample>(
    data: ArrayView3<'_, T>,
    view: &CanonicalView,
    levels: &BoneLevels,
    m: &LevelMeasurement,
    u_limits_mm: (f64, f64),
    canal_ap_mm: Option<f64>,
) -> Option<PosteriorElements> {
    let frame = &m.frame;
    let (up, post, left) = (
        Vector3::from(frame.cranial),
        Vector3::from(frame.posterior),
        Vector3::from(frame.left),
    );
    let c = Vector3::from(m.center_lps_mm);
    let wall = Vector3::from(m.mid_wall_lps_mm()?);
    let depth = m.depth_mm?;
    let width = m.width_mm.unwrap_or(1.3 * depth);
    // The mid-sagittal plane passes through the wall point (measured between the lateral walls).
    let o = c + left * (wall - c).dot(&left);
    let d_wall = (wall - c).dot(&post);
    let canal_ap = canal_ap_mm.unwrap_or(0.5 * depth);
    let half_w = 0.5 * width + 4.0;
    let (u_lo, u_hi) = u_limits_mm;
    let local = |p: &Vector3<f64>| -> (f64, f64, f64) {
        let d = p - o;
        (d.dot(&up), d.dot(&post) - d_wall, d.dot(&left))
    };
    // Canonical block holding the frame box.
    let corners = [u_lo, u_hi].into_iter().flat_map(|u| {
        [0.0, REACH_MM].into_iter().flat_map(move |v| {
            [-half_w, half_w]
                .into_iter()
                .map(move |w| o + up * u + post * (d_wall + v) + left * w)
        })
    });
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for p in corners {
        let q = view.to_canonical(LpsPoint(nalgebra::Point3::from(p)));
        for n in 0..3 {
            lo[n] = lo[n].min(q[n]);
            hi[n] = hi[n].max(q[n]);
        }
    }
    let dims = view.dims;
    let origin: [usize; 3] = std::array::from_fn(|n| lo[n].floor().max(0.0) as usize);
    let end: [usize; 3] =
        std::array::from_fn(|n| (hi[n].ceil().max(0.0) as usize + 1).min(dims[n]));
    if (0..3).any(|n| end[n] <= origin[n] + 2) {
        return None;
    }
    let shape = [end[0] - origin[0], end[1] - origin[1], end[2] - origin[2]];
    let block = data.slice(ndarray::s![
        origin[0]..end[0],
        origin[1]..end[1],
        origin[2]..end[2]
    ]);
    let radius = smoothing(view);
    let smooth = spinetriage_segment::morph::box_mean(block, radius);
    let to_lps = |idx: [usize; 3]| -> Vector3<f64> {
        view.to_lps([
            (idx[0] + origin[0]) as f64,
            (idx[1] + origin[1]) as f64,
            (idx[2] + origin[2]) as f64,
        ])
        .0
        .coords
    };
    let BoneLevels {
        marrow: m0,
        sigma,
        cortex,
    } = *levels;
    let cortex_bright = cortex > m0 + 2.0 * sigma;
    // Soft tissue: most of what lies behind the wall (paraspinal muscle) — the box's median.
    let soft = {
        let mut v: Vec<f32> = smooth.iter().copied().collect();
        let mid = v.len() / 2;
        f64::from(*v.select_nth_unstable_by(mid, f32::total_cmp).1)
    };
    let k = 3.0 * sigma.max(1e-6);
    // CT: the arch is found by its cortex, a quarter of the way from soft tissue to the body's
    // cortical level, and its interior is filled below; its marrow alone is no guide, since
    // osteoporotic marrow (80 HU) is barely denser than muscle and tumour is not. MR: marrow-like
    // signal within 3σ (fat around the arch, epidural and paraspinal, is as bright as marrow
    // on T1, so no wider band).
    let ct_cut = (m0 - k).max(soft + 0.25 * (cortex - soft));
    let bone_like = |x: f64| -> bool {
        if cortex_bright {
            x >= ct_cut
        } else {
            (x - m0).abs() <= k
        }
    };
    // Candidate voxels: bone-like and inside the frame box; seeds at the pedicle roots.
    let mut cand = Array3::<u8>::zeros(shape);
    let mut seeds = Vec::new();
    // Frame coordinates are affine in the block index: worked out where they are needed rather
    // than stored (12 bytes a voxel, for blocks of a million voxels at 0.5 mm).
    let l0 = local(&to_lps([0, 0, 0]));
    let step: [(f64, f64, f64); 3] = std::array::from_fn(|n| {
        let mut e = [0usize; 3];
        e[n] = 1;
        let l = local(&to_lps(e));
        (l.0 - l0.0, l.1 - l0.1, l.2 - l0.2)
    });
    let frame_at = |(a, b, kk): (usize, usize, usize)| -> (f64, f64, f64) {
        let (i, j, k) = (a as f64, b as f64, kk as f64);
        (
            l0.0 + i * step[0].0 + j * step[1].0 + k * step[2].0,
            l0.1 + i * step[0].1 + j * step[1].1 + k * step[2].1,
            l0.2 + i * step[0].2 + j * step[1].2 + k * step[2].2,
        )
    };
    // As single precision, the form in which the arch is divided.
    let pos = |at: (usize, usize, usize)| -> [f32; 3] {
        let (u, v, w) = frame_at(at);
        [u as f32, v as f32, w as f32]
    };
    for ((a, b, kk), x) in smooth.indexed_iter() {
        let (u, v, w) = frame_at((a, b, kk));
        if u < u_lo || u > u_hi || !(1.0..=REACH_MM).contains(&v) || w.abs() > half_w {
            continue;
        }
        if !bone_like(f64::from(*x)) {
            continue;
        }
        cand[[a, b, kk]] = 1;
        // Seeds lie in the pedicles' roots, lateral to the canal (and to the epidural fat in
        // front of the sac, as bright as marrow on T1): pedicles span about a quarter to
        // nine-twentieths of the body's width from the midline (Panjabi 1991/1992).
        if v <= 4.0
            && w.abs() >= 0.25 * width
            && w.abs() <= 0.42 * width
            && u >= -0.15 * (u_hi - u_lo)
        {
            seeds.push([a, b, kk]);
        }
    }
    if seeds.is_empty() {
        return Some(PosteriorElements {
            parts: ArchPart::ALL
                .iter()
                .map(|p| missing(*p, c, "no bone-like signal behind the posterior wall"))
                .collect(),
        });
    }
    // Grow 6-connected from the seeds.
    let mut grown = Array3::<u8>::zeros(shape);
    let mut stack = seeds;
    for s in &stack {
        grown[*s] = 1;
    }
    while let Some(p) = stack.pop() {
        for (n, delta) in [(0, -1isize), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)] {
            let mut q = p;
            let x = p[n] as isize + delta;
            if x < 0 || x as usize >= shape[n] {
                continue;
            }
            q[n] = x as usize;
            if cand[q] != 0 && grown[q] == 0 {
                grown[q] = 1;
                stack.push(q);
            }
        }
    }
    // Where the cortex is darker than marrow (MR), the marrow grown is inside it: add the
    // cortical shell, one voxel along the axes finer than 1.5 mm (cortex ~1 mm).
    if !cortex_bright {
        let shell: Vec<[usize; 3]> = grown
            .indexed_iter()
            .filter(|(_, g)| **g != 0)
            .flat_map(|((a, b, c), _)| {
                let p = [a, b, c];
                (0..3)
                    .filter(|n| view.spacing_mm[*n] <= 1.5)
                    .flat_map(move |n| {
                        [p[n].checked_sub(1), Some(p[n] + 1)]
                            .into_iter()
                            .flatten()
                            .filter(move |x| *x < shape[n])
                            .map(move |x| {
                                let mut q = p;
                                q[n] = x;
                                q
                            })
                    })
            })
            .filter(|q| {
                let [u, v, w] = pos((q[0], q[1], q[2])).map(f64::from);
                grown[*q] == 0
                    && cand[*q] == 0
                    && f64::from(smooth[*q]) < m0
                    && u >= u_lo
                    && u <= u_hi
                    && v >= 0.5
                    && w.abs() <= half_w
            })
            .collect();
        for q in shell {
            grown[q] = 1;
        }
    }
    // The arch is symmetric about the vertebra's own mid-sagittal plane, which an axially
    // rotated vertebra (scoliosis) turns away from the patient's: find the turn about the body's
    // centre that makes the grown bone most symmetric, and divide in that frame.
    let bone: Vec<((usize, usize, usize), [f32; 3])> = grown
        .indexed_iter()
        .filter(|(_, g)| **g != 0)
        .map(|(idx, _)| (idx, pos(idx)))
        .collect();
    let turn = axial_turn(bone.iter().map(|(_, p)| p), d_wall, 0.35 * width);
    let (sin, cos) = turn.sin_cos();
    let turned = |p: &[f32; 3]| -> [f32; 3] {
        let (v, w) = (f64::from(p[1]) + d_wall, f64::from(p[2]));
        [
            p[0],
            (v * cos + w * sin - d_wall) as f32,
            (-v * sin + w * cos) as f32,
        ]
    };
    // Divide by position: the pedicles end a little behind the canal's centre, where the
    // laminae and articular pillars begin.
    let vc = 0.6 * canal_ap;
    let spinous_from = canal_ap + 0.2 * depth;
    let voxel_mm3: f64 = view.spacing_mm.iter().product();
    let which = |v: f64, w: f64| -> Option<usize> {
        if v <= vc {
            let side = if w >= 0.0 { 0 } else { 1 };
            (w.abs() >= 0.2 * width && w.abs() <= 0.45 * width).then_some(side)
        } else if v > spinous_from && w.abs() <= 0.1 * width {
            Some(3)
        } else {
            (w.abs() <= 0.45 * width).then_some(2)
        }
    };
    let mut members: [Vec<[usize; 3]>; 4] = Default::default();
    for (idx, p) in &bone {
        let [_, v, w] = turned(p).map(f64::from);
        if let Some(k) = which(v, w) {
            members[k].push([idx.0, idx.1, idx.2]);
        }
    }
    let parts = ArchPart::ALL
        .iter()
        .zip(members)
        .map(|(part, voxels)| {
            // Each structure on its own bounding block (one voxel of margin for the filling).
            let lo: [usize; 3] = std::array::from_fn(|n| {
                voxels
                    .iter()
                    .map(|p| p[n])
                    .min()
                    .unwrap_or(0)
                    .saturating_sub(1)
            });
            let hi: [usize; 3] = std::array::from_fn(|n| {
                (voxels.iter().map(|p| p[n]).max().unwrap_or(0) + 2).min(shape[n])
            });
            let mut mask = Array3::<u8>::zeros([hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]]);
            for p in &voxels {
                mask[[p[0] - lo[0], p[1] - lo[1], p[2] - lo[2]]] = 1;
            }
            // Marrow replaced by tumour is neither marrow-like nor bone-dense, and leaves a
            // cortical tube: fill it across the structure's long axis (front to back for the
            // pedicles and the spinous process, side to side for the lamina) so that the
            // structure keeps its interior.
            let across = if *part == ArchPart::Lamina { 2 } else { 1 };
            spinetriage_segment::morph::fill_holes_2d(&mut mask, across);
            let at = |q: [usize; 3]| to_lps([q[0] + lo[0], q[1] + lo[1], q[2] + lo[2]]);
            let (mut sum, mut n) = (Vector3::zeros(), 0usize);
            for (idx, x) in mask.indexed_iter() {
                if *x != 0 {
                    sum += at([idx.0, idx.1, idx.2]);
                    n += 1;
                }
            }
            // A few voxels are not a structure: every one is several per cent of the body.
            if (n as f64) * voxel_mm3 < MIN_OF_BODY * m.volume_mm3 {
                return missing(*part, c, "no bone found there");
            }
            let centroid = sum / n as f64;
            let core = at(innermost(&mask, &centroid, &at));
            ArchSegment {
                part: *part,
                found: true,
                located: true,
                centroid_lps_mm: [centroid.x, centroid.y, centroid.z],
                core_lps_mm: [core.x, core.y, core.z],
                volume_mm3: n as f64 * voxel_mm3,
                mask: Some(BodyMask {
                    origin: [origin[0] + lo[0], origin[1] + lo[1], origin[2] + lo[2]],
                    mask,
                }),
                note: None,
            }
        })
        .collect();
    Some(PosteriorElements { parts })
}

fn missing(part: ArchPart, c: Vector3<f64>, why: &str) -> ArchSegment {
    ArchSegment {
        part,
        found: false,
        located: false,
        centroid_lps_mm: [c.x, c.y, c.z],
        core_lps_mm: [c.x, c.y, c.z],
        volume_mm3: 0.0,
        mask: None,
        note: Some(why.to_string()),
    }
}

/// One level as [`reconcile`] sees it.
pub type Row = (Option<PosteriorElements>, Frame, [f64; 3], [f64; 3]);

/// Structures much smaller than the same structure at the other levels are not counted as
/// found, and every missing structure is placed where the nearest levels that have it put it,
/// carried into this level's frame.
///
/// Each row is a level's elements, frame, centre (LPS mm) and the scales of its cranial,
/// posterior and left offsets (mm): offsets are carried in units of the body's size, since
/// arches grow down the column with their bodies.
pub fn reconcile(levels: &mut [Row]) {
    for part in ArchPart::ALL {
        // Compared with the nearest levels (two each side): arches grow down the column.
        let vols: Vec<Option<f64>> = levels
            .iter()
            .map(|l| {
                let s = l.0.as_ref()?.part(part).filter(|s| s.found)?;
                Some(s.volume_mm3)
            })
            .collect();
        for i in 0..levels.len() {
            let near: Vec<f64> = (i.saturating_sub(2)..(i + 3).min(levels.len()))
                .filter(|j| *j != i)
                .filter_map(|j| vols[j])
                .collect();
            if near.len() < 2 {
                continue;
            }
            let (med, _) = median_sigma(near);
            let Some(seg) = levels[i]
                .0
                .as_mut()
                .and_then(|pe| pe.parts.iter_mut().find(|s| s.part == part && s.found))
            else {
                continue;
            };
            if seg.volume_mm3 < MIN_SHARE * med {
                seg.found = false;
                seg.located = false;
                seg.note = Some(format!(
                    "only {:.0} mm³ of bone-like signal where the nearest levels have {:.0} mm³",
                    seg.volume_mm3, med
                ));
                seg.volume_mm3 = 0.0;
                seg.mask = None;
            }
        }
    }
    // Offsets of each found structure's centroid and core in its level's own frame, in mm.
    let offsets: Vec<Vec<Option<[f64; 6]>>> = ArchPart::ALL
        .iter()
        .map(|part| {
            levels
                .iter()
                .map(|l| {
                    let s = l.0.as_ref()?.part(*part).filter(|s| s.found)?;
                    let axes = [l.1.cranial, l.1.posterior, l.1.left].map(Vector3::from);
                    let d = Vector3::from(s.centroid_lps_mm) - Vector3::from(l.2);
                    let e = Vector3::from(s.core_lps_mm) - Vector3::from(l.2);
                    Some(std::array::from_fn(|n| {
                        if n < 3 {
                            d.dot(&axes[n])
                        } else {
                            e.dot(&axes[n - 3])
                        }
                    }))
                })
                .collect()
        })
        .collect();
    for (k, part) in ArchPart::ALL.into_iter().enumerate() {
        for i in 0..levels.len() {
            let needs = levels[i]
                .0
                .as_ref()
                .and_then(|pe| pe.part(part))
                .is_some_and(|s| !s.found);
            if !needs {
                continue;
            }
            // A pedicle whose partner at the same level was found is its mirror image across
            // the body's mid-sagittal plane: nearer than anything carried from other levels,
            // whose bodies may be collapsed or shaped differently.
            let partner = match part {
                ArchPart::LeftPedicle => offsets[1][i],
                ArchPart::RightPedicle => offsets[0][i],
                _ => None,
            };
            let (mean, how) = if let Some(o) = partner {
                let mut m = o;
                m[2] = -m[2];
                m[5] = -m[5];
                (m, "mirror image of the other pedicle at this level")
            } else {
                // Carried in units of the body's size, since arches grow down the column with
                // their bodies.
                let near: Vec<[f64; 6]> = (0..i)
                    .rev()
                    .filter_map(|j| offsets[k][j].map(|o| (j, o)))
                    .take(1)
                    .chain(
                        (i + 1..levels.len())
                            .filter_map(|j| offsets[k][j].map(|o| (j, o)))
                            .take(1),
                    )
                    .map(|(j, o)| {
                        std::array::from_fn(|n| o[n] / levels[j].3[n % 3] * levels[i].3[n % 3])
                    })
                    .collect();
                if near.is_empty() {
                    continue;
                }
                (
                    std::array::from_fn(|n| {
                        near.iter().map(|o| o[n]).sum::<f64>() / near.len() as f64
                    }),
                    "expected position from the neighbouring levels",
                )
            };
            let f = &levels[i].1;
            let place = |k: usize| {
                let at = Vector3::from(levels[i].2)
                    + Vector3::from(f.cranial) * mean[k]
                    + Vector3::from(f.posterior) * mean[k + 1]
                    + Vector3::from(f.left) * mean[k + 2];
                [at.x, at.y, at.z]
            };
            let (centroid, core) = (place(0), place(3));
            if let Some(seg) = levels[i]
                .0
                .as_mut()
                .and_then(|pe| pe.parts.iter_mut().find(|s| s.part == part))
            {
                seg.centroid_lps_mm = centroid;
                seg.core_lps_mm = core;
                seg.located = true;
                let why = seg.note.take().unwrap_or_default();
                seg.note = Some(format!("{why}; {how}"));
            }
        }
    }
}

/// The voxel left last by repeated 6-neighbour erosion of `mask` (of those, the nearest to
/// `centroid`): the structure's thickest part.
fn innermost(
    mask: &Array3<u8>,
    centroid: &Vector3<f64>,
    to_lps: &dyn Fn([usize; 3]) -> Vector3<f64>,
) -> [usize; 3] {
    let mut cur: Vec<[usize; 3]> = mask
        .indexed_iter()
        .filter(|(_, v)| **v != 0)
        .map(|((a, b, c), _)| [a, b, c])
        .collect();
    let mut m = mask.clone();
    let dims = m.dim();
    let dims = [dims.0, dims.1, dims.2];
    loop {
        let keep: Vec<[usize; 3]> = cur
            .iter()
            .copied()
            .filter(|p| {
                (0..3).all(|n| {
                    p[n] > 0 && p[n] + 1 < dims[n] && {
                        let (mut lo, mut hi) = (*p, *p);
                        lo[n] -= 1;
                        hi[n] += 1;
                        m[lo] != 0 && m[hi] != 0
                    }
                })
            })
            .collect();
        if keep.is_empty() {
            break;
        }
        for p in &cur {
            m[*p] = 0;
        }
        for p in &keep {
            m[*p] = 1;
        }
        cur = keep;
    }
    cur.into_iter()
        .min_by(|a, b| {
            (to_lps(*a) - centroid)
                .norm_squared()
                .total_cmp(&(to_lps(*b) - centroid).norm_squared())
        })
        .unwrap_or([0, 0, 0])
}

/// Largest axial rotation looked for, degrees (rotatory scoliosis rarely turns a vertebra more).
const MAX_TURN_DEG: i32 = 20;

/// The rotation about the cranial axis through the body's centre (at `d_wall` in front of the
/// wall) that best superimposes the grown bone on its mirror image across the mid-sagittal
/// plane, radians: the overlap of 1 mm bins of (posterior, left) with their mirrors, over the
/// bone within `half_w` of the plane. `bone` holds each grown voxel's frame coordinates
/// (cranial, posterior of the wall, left; mm).
fn axial_turn<'a>(bone: impl Iterator<Item = &'a [f32; 3]>, d_wall: f64, half_w: f64) -> f64 {
    // Bone near the midline only: the box's lateral edges cut a turned arch unevenly.
    let pts: Vec<(f64, f64)> = bone
        .filter(|p| f64::from(p[2]).abs() <= half_w)
        .map(|p| (f64::from(p[1]) + d_wall, f64::from(p[2])))
        .collect();
    if pts.len() < 20 {
        return 0.0;
    }
    let reach = d_wall.abs() + REACH_MM + 5.0;
    let (nv, nw) = (reach.ceil() as usize * 2 + 1, 2 * reach.ceil() as usize + 1);
    let mut best = (0.0, f64::NEG_INFINITY);
    let mut hist = vec![0u32; nv * nw];
    for deg in -MAX_TURN_DEG..=MAX_TURN_DEG {
        let a = f64::from(deg).to_radians();
        let (sin, cos) = a.sin_cos();
        hist.iter_mut().for_each(|h| *h = 0);
        for (v, w) in &pts {
            let (rv, rw) = (v * cos + w * sin, -v * sin + w * cos);
            // Nearest bin by truncation once non-negative: the standard `round` is a libm
            // call without SSE4.1, and this runs twice per voxel for each of 41 angles.
            let (tv, tw) = (rv + reach + 0.5, rw + reach + 0.5);
            if tv >= 0.0 && tw >= 0.0 && (tv as usize) < nv && (tw as usize) < nw {
                hist[tv as usize * nw + tw as usize] += 1;
            }
        }
        let mut score = 0.0;
        for bv in 0..nv {
            for bw in 0..nw / 2 {
                let (l, r) = (hist[bv * nw + bw], hist[bv * nw + (nw - 1 - bw)]);
                score += f64::from(l.min(r));
            }
        }
        // Ties go to the smaller turn.
        if score > best.1 + 1e-9 || (score == best.1 && a.abs() < f64::abs(best.0)) {
            best = (a, score);
        }
    }
    best.0
}

/// Median and robust σ (1.4826 × MAD).
fn median_sigma(mut v: Vec<f64>) -> (f64, f64) {
    let mid = v.len() / 2;
    v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let med = v[mid];
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    dev.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    (med, 1.4826 * dev[mid])
}

/// Mean of the box of half-widths `radius` around `q` (clipped to the volume).
fn local_mean<T: Sample>(data: ArrayView3<'_, T>, q: [usize; 3], radius: [usize; 3]) -> f64 {
    let d = data.dim();
    let dims = [d.0, d.1, d.2];
    let lo: [usize; 3] = std::array::from_fn(|n| q[n].saturating_sub(radius[n]));
    let hi: [usize; 3] = std::array::from_fn(|n| (q[n] + radius[n] + 1).min(dims[n]));
    let (mut s, mut n) = (0.0, 0usize);
    for a in lo[0]..hi[0] {
        for b in lo[1]..hi[1] {
            for k in lo[2]..hi[2] {
                s += f64::from(data[[a, b, k]].value());
                n += 1;
            }
        }
    }
    s / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points of a symmetric arch (two pedicles, a lamina arc, a spinous process) turned by
    /// `deg` about the body's centre, as `segment_arch` hands them over.
    fn turned_arch(deg: f64, d_wall: f64) -> (Array3<u8>, Array3<[f32; 3]>) {
        let mut pts = Vec::new();
        for v in 0..12 {
            for w in 10..18 {
                pts.push((f64::from(v), f64::from(w)));
                pts.push((f64::from(v), -f64::from(w)));
            }
        }
        for v in 12..40 {
            for w in -3..=3 {
                pts.push((f64::from(v), f64::from(w)));
            }
        }
        let (sin, cos) = deg.to_radians().sin_cos();
        let n = pts.len();
        let grown = Array3::<u8>::from_elem([n, 1, 1], 1);
        let mut pos = Array3::<[f32; 3]>::from_elem([n, 1, 1], [0.0; 3]);
        for (k, (v, w)) in pts.into_iter().enumerate() {
            // Turn about the body's centre, d_wall in front of the wall.
            let (vc, wc) = (v + d_wall, w);
            let (rv, rw) = (vc * cos - wc * sin, vc * sin + wc * cos);
            pos[[k, 0, 0]] = [0.0, (rv - d_wall) as f32, rw as f32];
        }
        (grown, pos)
    }

    #[test]
    fn axial_turn_recovers_a_turned_arch() {
        for deg in [-12.0, -5.0, 0.0, 7.0, 15.0] {
            let (grown, pos) = turned_arch(deg, 17.0);
            let got = axial_turn(
                grown
                    .iter()
                    .zip(&pos)
                    .filter(|(g, _)| **g != 0)
                    .map(|(_, p)| p),
                17.0,
                40.0,
            )
            .to_degrees();
            assert!((got - deg).abs() <= 1.0, "turned {deg}°, found {got}°");
        }
    }

    fn frame() -> Frame {
        Frame {
            cranial: [0.0, 0.0, 1.0],
            posterior: [0.0, 1.0, 0.0],
            left: [1.0, 0.0, 0.0],
        }
    }

    fn left_pedicle(rows: &[Row], i: usize) -> &ArchSegment {
        rows[i]
            .0
            .as_ref()
            .and_then(|pe| pe.part(ArchPart::LeftPedicle))
            .expect("a left pedicle")
    }

    fn found(part: ArchPart, at: [f64; 3], volume_mm3: f64) -> ArchSegment {
        ArchSegment {
            part,
            found: true,
            located: true,
            centroid_lps_mm: at,
            core_lps_mm: at,
            volume_mm3,
            mask: None,
            note: None,
        }
    }

    /// A pedicle missing at the middle level is placed where its neighbours put theirs, scaled
    /// by the middle level's size; a tiny one is demoted to not found.
    #[test]
    fn reconcile_places_a_missing_pedicle_from_its_neighbours() {
        let row = |z: f64, pedicle: Option<ArchSegment>, depth: f64| -> Row {
            let parts = vec![pedicle.unwrap_or_else(|| {
                missing(ArchPart::LeftPedicle, Vector3::new(0.0, 0.0, z), "no bone")
            })];
            (
                Some(PosteriorElements { parts }),
                frame(),
                [0.0, 0.0, z],
                [25.0, depth, depth],
            )
        };
        // Pedicle 20 mm behind and 14 mm left of a 35 mm deep body: 4/7 and 0.4 of the depth.
        let ped = |z: f64| Some(found(ArchPart::LeftPedicle, [14.0, 20.0, z + 5.0], 1000.0));
        let mut rows = vec![
            row(60.0, ped(60.0), 35.0),
            row(30.0, None, 30.0),
            row(0.0, ped(0.0), 35.0),
        ];
        reconcile(&mut rows);
        let mid = left_pedicle(&rows, 1);
        assert!(!mid.found && mid.located, "{mid:?}");
        let want = [12.0, 30.0 * 20.0 / 35.0, 30.0 + 5.0];
        for (got, want) in mid.centroid_lps_mm.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{mid:?}");
        }
        // A pedicle of 100 mm³ among 1000 mm³ neighbours is not a pedicle.
        let mut rows = vec![
            row(60.0, ped(60.0), 35.0),
            row(
                30.0,
                Some(found(ArchPart::LeftPedicle, [14.0, 20.0, 35.0], 100.0)),
                35.0,
            ),
            row(0.0, ped(0.0), 35.0),
            row(-30.0, ped(-30.0), 35.0),
        ];
        reconcile(&mut rows);
        let small = left_pedicle(&rows, 1);
        assert!(!small.found, "{small:?}");
    }

    /// A pedicle missing beside a found partner is the partner's mirror image at its own level,
    /// not where the neighbouring levels (here placed 10 mm higher) would put it.
    #[test]
    fn reconcile_mirrors_the_other_pedicle_of_the_same_level() {
        let row = |z: f64, left: Option<ArchSegment>, right: ArchSegment| -> Row {
            let left = left.unwrap_or_else(|| {
                missing(ArchPart::LeftPedicle, Vector3::new(0.0, 0.0, z), "no bone")
            });
            (
                Some(PosteriorElements {
                    parts: vec![left, right],
                }),
                frame(),
                [1.0, 0.0, z],
                [25.0, 35.0, 35.0],
            )
        };
        let ped = |p: ArchPart, x: f64, z: f64| found(p, [x, 20.0, z], 1000.0);
        let mut rows = vec![
            row(
                60.0,
                Some(ped(ArchPart::LeftPedicle, 15.0, 70.0)),
                ped(ArchPart::RightPedicle, -13.0, 70.0),
            ),
            row(30.0, None, ped(ArchPart::RightPedicle, -12.0, 32.0)),
            row(
                0.0,
                Some(ped(ArchPart::LeftPedicle, 15.0, 10.0)),
                ped(ArchPart::RightPedicle, -13.0, 10.0),
            ),
        ];
        reconcile(&mut rows);
        let mid = left_pedicle(&rows, 1);
        assert!(!mid.found && mid.located, "{mid:?}");
        // 13 mm right of the centre at x = 1 mirrors to 13 mm left of it.
        for (got, want) in mid.centroid_lps_mm.iter().zip([14.0, 20.0, 32.0]) {
            assert!((got - want).abs() < 1e-9, "{mid:?}");
        }
        assert!(mid.note.as_deref().unwrap().contains("mirror"), "{mid:?}");
    }
}
