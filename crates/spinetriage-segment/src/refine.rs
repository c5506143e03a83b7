//! Full-resolution body masks grown from the coarse candidates.

use crate::detect::Candidate;
use crate::morph::{box_filter, close, fill_holes_2d, open};
use crate::view::CanonicalView;
use crate::work::CoarseGrid;
use ndarray::{s, Array3, ArrayView3};
use spinetriage_volume::{LpsPoint, Sample};

/// A binary mask on a block of the canonical (full-resolution) grid.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyMask {
    /// Canonical index of the block's first voxel.
    pub origin: [usize; 3],
    /// 1 inside the body (cortex included), `[si, ap, lr]`.
    pub mask: Array3<u8>,
}

impl BodyMask {
    /// Canonical indices of the voxels inside.
    pub fn voxels(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        self.mask
            .indexed_iter()
            .filter(|(_, v)| **v != 0)
            .map(|((a, b, c), _)| [a + self.origin[0], b + self.origin[1], c + self.origin[2]])
    }

    /// The voxels inside as LPS points, mm, on `view`'s canonical grid.
    ///
    /// In the order of [`BodyMask::voxels`]. Planes are converted in parallel, each into its
    /// own part of one vector made at its final size: a sacrum's mask on a 0.5 mm CT is a
    /// million voxels, read while the labels wait, and a growing vector copied and faulted in
    /// its pages again at every doubling.
    pub fn lps_points(&self, view: &crate::CanonicalView) -> Vec<nalgebra::Vector3<f64>> {
        use rayon::prelude::*;
        let o = self.origin;
        let planes: Vec<_> = self.mask.axis_iter(ndarray::Axis(0)).collect();
        let counts: Vec<usize> = planes
            .par_iter()
            .map(|p| p.iter().filter(|v| **v != 0).count())
            .collect();
        let mut out = vec![nalgebra::Vector3::zeros(); counts.iter().sum()];
        let mut parts = Vec::with_capacity(planes.len());
        let mut rest = out.as_mut_slice();
        for n in &counts {
            let (part, tail) = rest.split_at_mut(*n);
            parts.push(part);
            rest = tail;
        }
        parts
            .into_par_iter()
            .zip(planes)
            .enumerate()
            .for_each(|(a, (part, plane))| {
                let inside = plane.indexed_iter().filter(|(_, v)| **v != 0);
                for (slot, ((b, c), _)) in part.iter_mut().zip(inside) {
                    let p = [a + o[0], b + o[1], c + o[2]];
                    *slot = view.to_lps(p.map(|x| x as f64)).0.coords;
                }
            });
        out
    }

    /// Mean canonical index of the voxels inside, and their number.
    pub fn centroid_index(&self) -> ([f64; 3], usize) {
        let (mut sum, mut n) = ([0.0f64; 3], 0usize);
        for p in self.voxels() {
            for k in 0..3 {
                sum[k] += p[k] as f64;
            }
            n += 1;
        }
        (sum.map(|s| s / n.max(1) as f64), n)
    }

    /// The voxels of either mask, on one block covering both.
    pub fn union(&self, other: &BodyMask) -> BodyMask {
        let origin: [usize; 3] = std::array::from_fn(|k| self.origin[k].min(other.origin[k]));
        let end: [usize; 3] = std::array::from_fn(|k| {
            (self.origin[k] + self.mask.shape()[k]).max(other.origin[k] + other.mask.shape()[k])
        });
        let mut mask =
            Array3::<u8>::zeros((end[0] - origin[0], end[1] - origin[1], end[2] - origin[2]));
        for p in self.voxels().chain(other.voxels()) {
            mask[[p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]]] = 1;
        }
        BodyMask { origin, mask }
    }

    /// Whether an LPS point falls in a voxel of this mask (on `view`'s canonical grid).
    pub fn contains_lps(&self, view: &CanonicalView, p: LpsPoint) -> bool {
        let c = view.to_canonical(p);
        c.iter().all(|v| *v >= -0.5) && self.contains(c.map(|v| v.round() as usize))
    }

    /// Number of voxels inside.
    pub fn count(&self) -> usize {
        self.mask.iter().filter(|v| **v != 0).count()
    }

    /// Whether canonical voxel `p` is inside.
    pub fn contains(&self, p: [usize; 3]) -> bool {
        let rel: Option<[usize; 3]> = (|| {
            Some([
                p[0].checked_sub(self.origin[0])?,
                p[1].checked_sub(self.origin[1])?,
                p[2].checked_sub(self.origin[2])?,
            ])
        })();
        rel.and_then(|r| self.mask.get(r).copied()).unwrap_or(0) != 0
    }
}

/// Signal statistics of a grown body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarrowStats {
    /// Median marrow value.
    pub median: f32,
    /// Robust spread (1.4826 × MAD).
    pub sigma: f32,
    /// Mean value of the rim just outside the marrow, minus the median: negative when the cortex
    /// and surroundings are darker (MR), positive when brighter (CT).
    pub rim_contrast: f32,
    /// Signal of pure cortex, read from the most extreme rim voxels on the cortex side.
    pub cortex_level: f32,
}

/// Part of the next body up or down, found beyond a disc in a body's core and reaching the top or
/// bottom of the image: a body the field of view cuts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutOff {
    /// Above the body (else below).
    pub above: bool,
    /// How much of it the image holds, cranio-caudally, mm.
    pub extent_mm: f64,
    /// Its centroid, canonical (fine) index.
    pub centroid_index: [f64; 3],
}

/// Largest distance the boundary moves out from the detected core, mm (the core is the body
/// eroded by one working voxel, ~1.4–2 mm, plus partial-volume margin).
const MAX_GROW_MM: f64 = 4.0;

/// Cortical shell added outside the marrow region, mm (vertebral cortex ~1 mm).
const CORTEX_MM: f64 = 1.0;

/// Grows one body at full resolution from its coarse candidate.
///
/// `cortex_sign` is the side of the marrow the cortex lies on when the modality says it (−1 on
/// MR, where cortical bone gives no signal; +1 on CT, where it is the densest tissue); without
/// it, the rim around the marrow decides. A body whose marrow is replaced (dark on T1) among
/// bright neighbours has a bright rim, and would take the neighbours for its cortex.
///
/// Also returns what of the next body up or down was cut off at a disc and reaches the image's
/// edge (CT, see [`CutOff`]).
pub fn grow_body<T: Sample>(
    view: ArrayView3<T>,
    coarse: &CoarseGrid,
    cand: &Candidate,
    spacing_mm: [f64; 3],
    cortex_sign: Option<f32>,
) -> Option<(BodyMask, MarrowStats, Vec<CutOff>)> {
    // Core: each plane's best section, mapped to the fine grid.
    let mut core = Vec::new();
    for sec in &cand.sections {
        for (a, b) in sec.pixels() {
            core.push([a, b, sec.plane]);
        }
    }
    if core.is_empty() {
        return None;
    }
    let dims = view.dim();
    let dims = [dims.0, dims.1, dims.2];
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for p in &core {
        for n in 0..3 {
            lo[n] = lo[n].min(p[n] * coarse.factor[n]);
            hi[n] = hi[n].max((p[n] + 1) * coarse.factor[n]);
        }
    }
    let margin: [usize; 3] = std::array::from_fn(|n| (8.0 / spacing_mm[n]).ceil() as usize + 1);
    let origin: [usize; 3] = std::array::from_fn(|n| lo[n].saturating_sub(margin[n]));
    let end: [usize; 3] = std::array::from_fn(|n| (hi[n] + margin[n]).min(dims[n]));
    let block = spinetriage_volume::to_f32_standard(view.slice(s![
        origin[0]..end[0],
        origin[1]..end[1],
        origin[2]..end[2]
    ]));
    let bd = block.dim();
    let mut seeds = Vec::new();
    let mut vals = Vec::new();
    for p in &core {
        for a in 0..coarse.factor[0] {
            for b in 0..coarse.factor[1] {
                for c in 0..coarse.factor[2] {
                    let q = [
                        p[0] * coarse.factor[0] + a - origin[0],
                        p[1] * coarse.factor[1] + b - origin[1],
                        p[2] * coarse.factor[2] + c - origin[2],
                    ];
                    if q[0] < bd.0 && q[1] < bd.1 && q[2] < bd.2 {
                        seeds.push(q);
                        vals.push(block[q]);
                    }
                }
            }
        }
    }
    // Order statistics, not sorts (the sacrum's core is ~10⁵ voxels).
    let mid = vals.len() / 2;
    let median = *vals.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut dev: Vec<f32> = vals.iter().map(|v| (v - median).abs()).collect();
    let mad = *dev.select_nth_unstable_by(mid, f32::total_cmp).1;
    let sigma = (1.4826 * mad).max(1e-3 * median.abs().max(1.0));
    let k = 2.5;
    let (wlo, whi) = (median - k * sigma, median + k * sigma);
    let mut inside = block.mapv(|v| u8::from(v >= wlo && v <= whi));
    let floor = if cortex_sign == Some(1.0) {
        ct_marrow_floor(&block, &seeds, spacing_mm, wlo)
    } else {
        None
    };
    if let Some(f) = &floor {
        for (i, s) in inside.iter_mut().zip(f.smooth.iter()) {
            if *s < f.lo {
                *i = 0;
            }
        }
    }
    for q in &seeds {
        if floor.as_ref().is_none_or(|f| f.smooth[*q] >= f.lo) {
            inside[*q] = 1;
        }
    }
    // Geodesic growth, a few millimetres at most: the core already has the body's shape, so the
    // boundary only moves out to the marrow's edge and cannot run off along a neighbour of
    // similar signal. (Flat indices: the block can be 1.5 M voxels.)
    let dims3 = [bd.0, bd.1, bd.2];
    let stride = [bd.1 * bd.2, bd.2, 1];
    let flat = |q: &[usize; 3]| q[0] * stride[0] + q[1] * stride[1] + q[2];
    // Across thick slices one step is already several millimetres.
    let axes = if spacing_mm[2] > 2.0 * spacing_mm[0].min(spacing_mm[1]) {
        2
    } else {
        3
    };
    let inside_px = inside.as_slice().expect("a new array is contiguous");
    let mut grown = Array3::<u8>::zeros(bd);
    let grown_px = grown.as_slice_mut().expect("a new array is contiguous");
    let mut front = Vec::new();
    for q in &seeds {
        if grown_px[flat(q)] == 0 {
            grown_px[flat(q)] = 1;
            front.push(*q);
        }
    }
    let steps = (MAX_GROW_MM / spacing_mm[0].min(spacing_mm[1])).round() as usize;
    for _ in 0..steps {
        let mut next = Vec::new();
        for p in &front {
            let at = flat(p);
            for ax in 0..axes {
                for up in [false, true] {
                    let q = if up {
                        if p[ax] + 1 >= dims3[ax] {
                            continue;
                        }
                        at + stride[ax]
                    } else {
                        if p[ax] == 0 {
                            continue;
                        }
                        at - stride[ax]
                    };
                    if grown_px[q] == 0 && inside_px[q] != 0 {
                        grown_px[q] = 1;
                        let mut n = *p;
                        n[ax] = if up { p[ax] + 1 } else { p[ax] - 1 };
                        next.push(n);
                    }
                }
            }
        }
        front = next;
    }
    let r_open: [usize; 3] = std::array::from_fn(|n| (1.6 / spacing_mm[n]).floor() as usize);
    let grown = seeded_components(&open(&grown, r_open), &seeds, floor.is_some());
    if grown.iter().all(|v| *v == 0) {
        return None;
    }
    let (grown, beyond_discs) = match &floor {
        Some(f) => cut_at_discs(grown, &seeds, &block, f, spacing_mm),
        None => (grown, Vec::new()),
    };
    // What lay beyond a disc and reached the image's top or bottom is the next body, cut by the
    // field of view.
    let cut_off: Vec<CutOff> = beyond_discs
        .iter()
        .filter_map(|vox| {
            let (lo, hi) = vox
                .iter()
                .fold((usize::MAX, 0), |(l, h), p| (l.min(p[0]), h.max(p[0])));
            let above = origin[0] + lo == 0;
            let below = origin[0] + hi + 1 == dims[0];
            (above != below).then(|| {
                let n = vox.len() as f64;
                CutOff {
                    above,
                    extent_mm: (hi + 1 - lo) as f64 * spacing_mm[0],
                    centroid_index: std::array::from_fn(|k| {
                        origin[k] as f64 + vox.iter().map(|p| p[k] as f64).sum::<f64>() / n
                    }),
                }
            })
        })
        .collect();
    let r_close: [usize; 3] =
        std::array::from_fn(|n| (2.0 / spacing_mm[n]).round().max(1.0) as usize);
    let mut body = close(&grown, r_close);
    fill_holes_2d(&mut body, 2);
    clip_behind_wall(&mut body, spacing_mm);

    // Rim just outside the marrow: which way the cortex goes.
    let ring = box_filter(&body, [1, 1, usize::from(spacing_mm[2] <= 2.0)], true);
    let mut rim: Vec<f32> = ring
        .iter()
        .zip(body.iter())
        .zip(block.iter())
        .filter(|((r, b), _)| **r != 0 && **b == 0)
        .map(|(_, v)| *v)
        .collect();
    let n = rim.len();
    let rim_contrast = if n > 0 {
        (rim.iter().map(|v| *v as f64).sum::<f64>() / n as f64) as f32 - median
    } else {
        0.0
    };
    rim.sort_by(f32::total_cmp);
    // The cortex's own level: the extreme rim values on the cortex side (a thin cortex is mostly
    // seen mixed with its neighbours; its purest voxels are the extremes).
    let sign = cortex_sign.unwrap_or(rim_contrast.signum());
    let q = if sign < 0.0 { 0.02 } else { 0.98 };
    let cortex_level = rim
        .get(((n.max(1) - 1) as f64 * q) as usize)
        .copied()
        .unwrap_or(median);
    // The marrow region stops at the inner surface of the cortex; the convention (outer endplate
    // surfaces, cortex included) wants the outer one. Cortex is ~1 mm (Silva et al. 1994; Edwards
    // et al. 2001): add that shell where the rim is on the cortex side of the marrow (darker on
    // MR, brighter on CT).
    let r_cortex: [usize; 3] =
        std::array::from_fn(|n| (CORTEX_MM / spacing_mm[n]).round() as usize);
    let shell = box_filter(&body, r_cortex, true);
    for ((s, b), v) in shell.iter().zip(body.iter_mut()).zip(block.iter()) {
        if *s != 0 && *b == 0 && (v - median) * sign > 0.5 * sigma {
            *b = 1;
        }
    }
    Some((
        BodyMask { origin, mask: body },
        MarrowStats {
            median,
            sigma,
            rim_contrast,
            cortex_level,
        },
        cut_off,
    ))
}

/// On CT, the least smoothed attenuation of marrow, when the body's own window
/// (median ± 2.5 σ) reaches the tissue around it. An osteoporotic body's trabeculae and fat
/// spread so widely (σ ≈ 125 HU on the real T11–T12 slab, median 163 HU) that the window takes
/// in the discs, the canal and the crura; averaged over ~3 mm the marrow stays above them. The
/// floor lies three tenths of the way from the surrounding tissue's smoothed level to the
/// body's (half-way cut off the low-density marrow under one wall, 4 mm of it). `None` when the
/// window stays clear of the surroundings (every phantom body: window from ~150 HU, tissue ~50)
/// or the body is not clearly brighter than them (a lytic body, or one among other bone).
fn ct_marrow_floor(
    block: &Array3<f32>,
    seeds: &[[usize; 3]],
    spacing_mm: [f64; 3],
    window_lo: f32,
) -> Option<CtFloor> {
    let mut core = Array3::<u8>::zeros(block.dim());
    for q in seeds {
        core[*q] = 1;
    }
    // The surroundings' median from a sparse grid: the block can be 1.5 M voxels, and most
    // bodies stop at the first test.
    let st: [isize; 3] =
        std::array::from_fn(|n| (SURROUND_GRID_MM / spacing_mm[n]).round().max(1.0) as isize);
    let grid = s![..;st[0], ..;st[1], ..;st[2]];
    let core_grid = core.slice(grid);
    let around = |values: &Array3<f32>| {
        let mut v: Vec<f32> = values
            .slice(grid)
            .iter()
            .zip(core_grid.iter())
            .filter(|(_, c)| **c == 0)
            .map(|(v, _)| *v)
            .collect();
        let mid = v.len() / 2;
        (!v.is_empty()).then(|| *v.select_nth_unstable_by(mid, f32::total_cmp).1)
    };
    if window_lo >= around(block)? || seeds.is_empty() {
        return None;
    }
    let radius: [usize; 3] = std::array::from_fn(|n| (1.5 / spacing_mm[n]).floor() as usize);
    let smooth = crate::morph::box_mean(block.view(), radius);
    let tissue = around(&smooth)?;
    let mut at_seeds: Vec<f32> = seeds.iter().map(|q| smooth[*q]).collect();
    let mid = at_seeds.len() / 2;
    let body = *at_seeds.select_nth_unstable_by(mid, f32::total_cmp).1;
    let mut dev: Vec<f32> = at_seeds.iter().map(|v| (v - body).abs()).collect();
    let sigma = 1.4826 * *dev.select_nth_unstable_by(mid, f32::total_cmp).1;
    (window_lo < tissue && body - tissue > 0.5 * sigma).then(|| CtFloor {
        smooth,
        lo: tissue + FLOOR_SHARE * (body - tissue),
        tissue,
        body,
    })
}

/// Where the marrow floor lies, as a share of the way from the surrounding tissue's smoothed level
/// to the body's. Set on the one real CT there is, and sensitive there: 0.25 and 0.4 gave a
/// false lateral wedge or a level not evaluable (docs/segmentation.md, session 12).
const FLOOR_SHARE: f32 = 0.3;

/// Spacing of the grid the surroundings' level is sampled on, mm.
const SURROUND_GRID_MM: f64 = 2.0;

/// What [`ct_marrow_floor`] found (smoothed values).
struct CtFloor {
    /// The block averaged over ~3 mm.
    smooth: Array3<f32>,
    /// Least value of marrow.
    lo: f32,
    /// Level of the tissue around the body.
    tissue: f32,
    /// The body's own level.
    body: f32,
}

/// Share of a row's interior that must be marrow, relative to the body's typical row, for the
/// row to belong to the body rather than to a disc.
const DISC_ROW_SHARE: f64 = 0.6;

/// Inset of the interior from the body's outline, mm: a degenerated disc keeps a ring of
/// calcified annulus and osteophytes at the body's own attenuation, but its centre is soft tissue.
const DISC_INSET_MM: f64 = 4.0;

/// Cuts a CT body at the discs its core spans. In a slab only a little taller than a body (the
/// real T11–T12 slab is 40 mm), the detected core runs from one slab edge to the other through
/// both discs; the discs' centres are soft tissue, below the marrow floor, while their rims stay
/// in. Rows (cranio-caudal) whose interior is less than [`DISC_ROW_SHARE`] of the typical row's
/// marrow, with soft tissue (not gas: a Kümmell cleft is a gap inside the body) in the rest, split
/// the mask; the run holding most seeds is the body.
fn cut_at_discs(
    grown: Array3<u8>,
    seeds: &[[usize; 3]],
    block: &Array3<f32>,
    floor: &CtFloor,
    spacing_mm: [f64; 3],
) -> (Array3<u8>, Vec<Vec<[usize; 3]>>) {
    let (n0, n1, n2) = grown.dim();
    let mut outline = Array3::<u8>::zeros((1, n1, n2));
    for ((_, b, c), v) in grown.indexed_iter() {
        if *v != 0 {
            outline[[0, b, c]] = 1;
        }
    }
    let inset = [
        0,
        (DISC_INSET_MM / spacing_mm[1]).round() as usize,
        (DISC_INSET_MM / spacing_mm[2]).round() as usize,
    ];
    let interior = box_filter(&outline, inset, false);
    let cells: Vec<(usize, usize)> = interior
        .indexed_iter()
        .filter(|(_, v)| **v != 0)
        .map(|((_, b, c), _)| (b, c))
        .collect();
    if cells.is_empty() {
        return (grown, Vec::new());
    }
    let share: Vec<f64> = (0..n0)
        .map(|a| {
            let k = cells
                .iter()
                .filter(|&&(b, c)| grown[[a, b, c]] != 0)
                .count();
            k as f64 / cells.len() as f64
        })
        .collect();
    let mut present: Vec<f64> = share.iter().copied().filter(|f| *f > 0.0).collect();
    if present.is_empty() {
        return (grown, Vec::new());
    }
    let mid = present.len() / 2;
    let typical = *present.select_nth_unstable_by(mid, f64::total_cmp).1;
    let disc_row = |a: usize| {
        if share[a] >= DISC_ROW_SHARE * typical {
            return false;
        }
        let mut rest: Vec<f32> = cells
            .iter()
            .filter(|&&(b, c)| grown[[a, b, c]] == 0)
            .map(|&(b, c)| block[[a, b, c]])
            .collect();
        let mid = rest.len() / 2;
        // Where the marrow is missing a disc's centre is soft tissue; gas (a Kümmell cleft, a
        // vacuum disc) lies far below it.
        let gas = floor.tissue - 2.0 * (floor.body - floor.tissue);
        !rest.is_empty() && *rest.select_nth_unstable_by(mid, f32::total_cmp).1 > gas
    };
    let cut: Vec<bool> = (0..n0).map(disc_row).collect();
    if !cut.iter().any(|c| *c) {
        return (grown, Vec::new());
    }
    // Runs of body rows between cut rows; the one with most seeds is kept.
    let mut seeds_per_row = vec![0usize; n0];
    for q in seeds {
        if grown[*q] != 0 {
            seeds_per_row[q[0]] += 1;
        }
    }
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < n0 {
        if cut[start] {
            start += 1;
            continue;
        }
        let end = (start..n0).find(|a| cut[*a]).unwrap_or(n0);
        runs.push((start, end, seeds_per_row[start..end].iter().sum()));
        start = end;
    }
    let Some(best) = runs.iter().copied().max_by_key(|r| r.2) else {
        return (grown, Vec::new());
    };
    let others: Vec<Vec<[usize; 3]>> = runs
        .iter()
        .filter(|r| **r != best)
        .map(|r| {
            grown
                .indexed_iter()
                .filter(|((a, _, _), v)| **v != 0 && (r.0..r.1).contains(a))
                .map(|((a, b, c), _)| [a, b, c])
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    let mut grown = grown;
    for a in (0..best.0).chain(best.1..n0) {
        grown.index_axis_mut(ndarray::Axis(0), a).fill(0);
    }
    (grown, others)
}

/// How far behind the mid-sagittal posterior wall a body may reach, mm: the wall is concave
/// (its posterolateral corners stand 2–3 mm behind the midline).
const WALL_SLACK_MM: f64 = 3.0;

/// Cuts the body at its posterior wall. Away from the midline the marrow runs on into the
/// pedicles with the same signal (15–20 mm of pedicle were taken on T2 and CT); at the midline
/// the canal stops it. The wall is the mask's posterior edge in the middle third of its width,
/// row by row, fitted by a line down the body (which may lean), and every plane is cut a little
/// behind it.
fn clip_behind_wall(body: &mut Array3<u8>, spacing_mm: [f64; 3]) {
    let (n0, n1, n2) = body.dim();
    let area: Vec<usize> = (0..n2)
        .map(|c| {
            body.index_axis(ndarray::Axis(2), c)
                .iter()
                .filter(|v| **v != 0)
                .count()
        })
        .collect();
    let big = area.iter().copied().max().unwrap_or(0);
    let Some(first) = area.iter().position(|a| 5 * a >= big && big > 0) else {
        return;
    };
    let last = area.iter().rposition(|a| 5 * a >= big).unwrap_or(first);
    let third = (last - first + 1) / 3;
    let central = first + third..=last - third;
    // (row, posterior edge) pairs, one per central plane and row.
    let mut edge: Vec<(f64, f64)> = Vec::new();
    let rows: Vec<usize> = (0..n0)
        .filter(|a| (0..n1).any(|b| central.clone().any(|c| body[[*a, b, c]] != 0)))
        .collect();
    let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else {
        return;
    };
    // The middle 70 % of the height: the endplates round the corners off.
    let margin = (bottom - top) * 15 / 100;
    for a in top + margin..=bottom - margin {
        for c in central.clone() {
            if let Some(b) = (0..n1).rposition(|b| body[[a, b, c]] != 0) {
                edge.push((a as f64, b as f64));
            }
        }
    }
    if edge.len() < 3 {
        return;
    }
    let n = edge.len() as f64;
    let (ma, mb) = (
        edge.iter().map(|e| e.0).sum::<f64>() / n,
        edge.iter().map(|e| e.1).sum::<f64>() / n,
    );
    let saa: f64 = edge.iter().map(|e| (e.0 - ma).powi(2)).sum();
    let sab: f64 = edge.iter().map(|e| (e.0 - ma) * (e.1 - mb)).sum();
    let slope = if saa > 0.0 { sab / saa } else { 0.0 };
    let slack = WALL_SLACK_MM / spacing_mm[1];
    for a in 0..n0 {
        let wall = mb + slope * (a as f64 - ma) + slack;
        let from = (wall.floor() + 1.0).max(0.0) as usize;
        if from < n1 {
            body.slice_mut(ndarray::s![a, from.., ..]).fill(0);
        }
    }
}

/// The 6-connected components of `mask` that hold a seed; with `only_largest`, just the one
/// holding the most seeds.
fn seeded_components(mask: &Array3<u8>, seeds: &[[usize; 3]], only_largest: bool) -> Array3<u8> {
    let (n0, n1, n2) = mask.dim();
    let mask = mask.as_standard_layout();
    let src = mask.as_slice().expect("standard layout is contiguous");
    let flat = |q: &[usize; 3]| (q[0] * n1 + q[1]) * n2 + q[2];
    if !only_largest {
        let mut kept = vec![0u8; src.len()];
        for q in seeds {
            flood(src, [n0, n1, n2], *q, &mut kept, 1);
        }
        return Array3::from_shape_vec((n0, n1, n2), kept).expect("same number of voxels");
    }
    // Component number of each voxel (from 1), and the seeds each holds.
    let mut id = vec![0u32; src.len()];
    let mut seeds_in: Vec<usize> = Vec::new();
    for q in seeds {
        let at = flat(q);
        if src[at] == 0 {
            continue;
        }
        if id[at] == 0 {
            seeds_in.push(0);
            flood(src, [n0, n1, n2], *q, &mut id, seeds_in.len() as u32);
        }
        seeds_in[id[at] as usize - 1] += 1;
    }
    let best = seeds_in
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .map_or(0, |(k, _)| k as u32 + 1);
    let kept = id
        .into_iter()
        .map(|k| u8::from(k != 0 && k == best))
        .collect();
    Array3::from_shape_vec((n0, n1, n2), kept).expect("same number of voxels")
}

/// Marks with `value` the 6-connected component of `src` (flat, `dims`) holding `start`, where
/// `mark` is still unset.
fn flood<T: Copy + PartialEq + Default>(
    src: &[u8],
    dims: [usize; 3],
    start: [usize; 3],
    mark: &mut [T],
    value: T,
) {
    let [n0, n1, n2] = dims;
    let (s0, s1) = (n1 * n2, n2);
    let at = start[0] * s0 + start[1] * s1 + start[2];
    if src[at] == 0 || mark[at] != T::default() {
        return;
    }
    mark[at] = value;
    let mut stack = vec![start];
    while let Some([a, b, c]) = stack.pop() {
        let mut push = |q: [usize; 3]| {
            let at = q[0] * s0 + q[1] * s1 + q[2];
            if src[at] != 0 && mark[at] == T::default() {
                mark[at] = value;
                stack.push(q);
            }
        };
        if a > 0 {
            push([a - 1, b, c]);
        }
        if a + 1 < n0 {
            push([a + 1, b, c]);
        }
        if b > 0 {
            push([a, b - 1, c]);
        }
        if b + 1 < n1 {
            push([a, b + 1, c]);
        }
        if c > 0 {
            push([a, b, c - 1]);
        }
        if c + 1 < n2 {
            push([a, b, c + 1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 mm grid: rows 0–3 the next body's fragment, 4–7 a disc (a ring of its rim in the
    /// mask, its centre `centre_hu` and out of it), 8–29 the body; 30 × 30 in plane.
    fn slab(centre_hu: f32) -> (Array3<u8>, Array3<f32>, Vec<[usize; 3]>) {
        let mut grown = Array3::<u8>::zeros((30, 30, 30));
        let mut block = Array3::<f32>::from_elem((30, 30, 30), 40.0);
        for ((a, b, c), g) in grown.indexed_iter_mut() {
            let inside = (3..27).contains(&b) && (3..27).contains(&c);
            let rim = inside && !((8..22).contains(&b) && (8..22).contains(&c));
            let disc = (4..8).contains(&a);
            if inside && (!disc || rim) {
                *g = 1;
                block[[a, b, c]] = 160.0;
            } else if inside {
                block[[a, b, c]] = centre_hu;
            }
        }
        let seeds = (0..30)
            .flat_map(|a| (10..20).map(move |b| [a, b, 15]))
            .collect();
        (grown, block, seeds)
    }

    fn floor() -> CtFloor {
        CtFloor {
            smooth: Array3::zeros((1, 1, 1)),
            lo: 100.0,
            tissue: 60.0,
            body: 160.0,
        }
    }

    #[test]
    fn a_ct_core_is_cut_at_the_disc_it_spans_and_the_piece_beyond_is_returned() {
        let (grown, block, seeds) = slab(70.0);
        let (body, beyond) = cut_at_discs(grown, &seeds, &block, &floor(), [1.0; 3]);
        let rows: Vec<usize> = (0..30)
            .filter(|a| {
                body.index_axis(ndarray::Axis(0), *a)
                    .iter()
                    .any(|v| *v != 0)
            })
            .collect();
        assert_eq!(rows.first(), Some(&8), "{rows:?}");
        assert_eq!(rows.last(), Some(&29));
        assert_eq!(beyond.len(), 1);
        assert!(
            beyond[0].iter().all(|p| p[0] < 4),
            "the fragment above the disc"
        );
    }

    #[test]
    fn a_gas_cleft_is_not_a_disc() {
        let (grown, block, seeds) = slab(-900.0);
        let n = grown.iter().filter(|v| **v != 0).count();
        let (body, beyond) = cut_at_discs(grown, &seeds, &block, &floor(), [1.0; 3]);
        assert_eq!(body.iter().filter(|v| **v != 0).count(), n);
        assert!(beyond.is_empty());
    }

    #[test]
    fn only_the_component_with_most_seeds_is_kept_when_asked() {
        let mut m = Array3::<u8>::zeros((3, 10, 10));
        m.slice_mut(s![.., 0..4, ..]).fill(1);
        m.slice_mut(s![.., 6..10, ..]).fill(1);
        let seeds = [[1, 1, 1], [1, 2, 2], [1, 8, 8]];
        let all = seeded_components(&m, &seeds, false);
        let one = seeded_components(&m, &seeds, true);
        assert_eq!(all, m);
        assert_eq!(one.iter().filter(|v| **v != 0).count(), 3 * 4 * 10);
        assert_eq!(one[[1, 1, 1]], 1);
        assert_eq!(one[[1, 8, 8]], 0);
    }
}
