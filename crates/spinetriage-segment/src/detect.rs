//! Candidate vertebral bodies and the column they form.
//!
//! A vertebral body is a compact, homogeneous block of marrow (about 15–45 mm each way) wrapped in
//! cortex, stacked with its neighbours along a smooth curve at intervals of one body plus one disc.
//! The detector looks for exactly that, without knowing the modality: for many intensity bands
//! (taken from the image's own quantiles) it keeps the voxels inside the band, erodes them once to
//! cut thin bridges, and measures every connected component. Components of body size and shape are
//! candidates; the same body seen in many bands is one candidate with a stability count (the idea
//! of maximally stable extremal regions, Matas et al. 2002). The column is the best chain of
//! candidates, found by dynamic programming over their cranio-caudal order.

use crate::work::{air_level, quantile, sorted_sample, Coarse};
use nalgebra::Vector3;

use ndarray::Array2;
use rayon::prelude::*;

/// A body-like region in one sagittal plane and one intensity band.
#[derive(Debug, Clone)]
pub struct Section {
    /// Band limits (image units).
    pub band: (f32, f32),
    /// Plane index along the coarse left-right axis.
    pub plane: usize,
    /// The eroded region as runs `(si, ap_start, ap_end)` in raster order, coarse indices,
    /// `ap_end` exclusive: a run list is a few dozen entries where a pixel list was hundreds, and
    /// every section of every plane and band is held until the clustering.
    pub runs: Vec<(usize, usize, usize)>,
    /// Centroid `(si, ap)` in mm.
    pub centroid_mm: (f64, f64),
    /// Box-equivalent lengths along the principal axes (major, minor), mm.
    pub lengths_mm: (f64, f64),
    /// Area, mm².
    pub area_mm2: f64,
    /// Whether it holds filled holes (a cortical shell filled; see [`candidates`]).
    pub filled: bool,
}

impl Section {
    /// The region's pixels `(si, ap)`, coarse indices, in raster order.
    pub fn pixels(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        pixels_of(self.runs.iter())
    }
}

/// The pixels `(row, column)` of runs `(row, start, end)`, run by run.
fn pixels_of<'a>(
    runs: impl Iterator<Item = &'a (usize, usize, usize)> + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    runs.flat_map(|&(a, lo, hi)| (lo..hi).map(move |b| (a, b)))
}

/// A candidate body: body-like sections that line up across planes and bands.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The largest section in each plane.
    pub sections: Vec<Section>,
    /// Centroid in canonical mm `(si, ap, lr)`.
    pub centroid_mm: Vector3<f64>,
    /// Median minor length of the sections (about the body height), mm.
    pub height_mm: f64,
    /// Sum of section areas × plane spacing, mm³ (an eroded volume estimate).
    pub volume_mm3: f64,
    /// How many (plane, band) sections support it.
    pub stability: usize,
}

/// An intensity band: the values from `levels[lo]` to `levels[hi]` (or upwards, with no `hi`),
/// both ends included.
#[derive(Debug, Clone, Copy)]
struct Band {
    lo: usize,
    hi: Option<usize>,
    /// The limits in image units.
    value: (f32, f32),
}

/// Levels the bands run between: quantiles of the patient's (non-air) voxels, sorted, distinct.
fn levels(all: &[f32], air: f32) -> Vec<f32> {
    let patient: Vec<f32> = all.iter().copied().filter(|v| *v > air).collect();
    let mut levels: Vec<f32> = (0..=20)
        .map(|q| quantile(&patient, q as f64 / 20.0))
        .collect();
    // Bone is a few per cent of a CT's patient voxels, so quantiles alone would step over it:
    // add evenly spaced levels through the top decile.
    let (top_lo, top_hi) = (quantile(&patient, 0.9), quantile(&patient, 0.999));
    levels.truncate(19);
    levels.extend((0..=12).map(|k| top_lo + (top_hi - top_lo) * k as f32 / 12.0));
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    levels
}

/// Intensity bands to try: pairs of `levels`, and everything above each.
fn bands(levels: &[f32]) -> Vec<Band> {
    let mut out = Vec::new();
    for width in [2usize, 4, 7, 11] {
        for lo in 0..levels.len().saturating_sub(width) {
            let (a, b) = (levels[lo], levels[lo + width]);
            if b > a {
                out.push(Band {
                    lo,
                    hi: Some(lo + width),
                    value: (a, b),
                });
            }
        }
    }
    // Also "everything above" a level: CT bone, T1 fat-rich marrow.
    for (lo, q) in levels.iter().enumerate().skip(4) {
        out.push(Band {
            lo,
            hi: None,
            value: (*q, f32::INFINITY),
        });
    }
    out
}

/// A plane's pixels placed among the band levels once, and each level's two threshold masks
/// made from that, so that each of the ~140 bands is one AND of two precomputed rows of bits
/// (64 pixels to a word) instead of a pass over the pixels. A value `v` lies in [`Band`]
/// `(lo, hi)` exactly when at least `lo + 1` levels are `<=` it and at most `hi` levels are `<`
/// it.
struct CodedPlane {
    n0: usize,
    n1: usize,
    /// Per level index `l`: where more than `l` levels are `<=` the value (`v >= levels[l]`).
    from: Vec<Vec<u64>>,
    /// Per level index `h`: where at most `h` levels are `<` the value (`v <= levels[h]`).
    upto: Vec<Vec<u64>>,
}

impl CodedPlane {
    fn new(img: &ndarray::Array2<f32>, levels: &[f32]) -> CodedPlane {
        // Codes stay below 128 for the byte arithmetic of `threshold` (there are at most 32 levels).
        let levels = &levels[..levels.len().min(127)];
        let (n0, n1) = img.dim();
        // Counting the (sorted) levels below a value is branch-free, where a binary search
        // mispredicts at most of its steps. NaN is `<=` no level and lies in no band.
        let (mut le, mut lt) = (Vec::with_capacity(img.len()), Vec::with_capacity(img.len()));
        for v in img.iter() {
            let (mut a, mut b) = (0u8, 0u8);
            for l in levels {
                a += u8::from(*l <= *v);
                b += u8::from(*l < *v);
            }
            le.push(a);
            lt.push(b);
        }
        // One more than the levels: index `levels.len()` is "none" for `from`, "all" for `upto`.
        let from = (0..=levels.len())
            .map(|l| threshold(&le, n0, n1, l, true))
            .collect();
        let upto = (0..=levels.len())
            .map(|h| threshold(&lt, n0, n1, h, false))
            .collect();
        CodedPlane { n0, n1, from, upto }
    }

    /// Rows of bits (bit `b % 64` of word `b / 64` for pixel `b`; bits past `n1` are 0): 1
    /// where the pixel lies in `band`.
    fn bits(&self, band: &Band) -> Vec<u64> {
        let last = self.from.len() - 1;
        let mut out = self.from[band.lo.min(last)].clone();
        if let Some(h) = band.hi {
            for (o, u) in out.iter_mut().zip(&self.upto[h.min(last)]) {
                *o &= u;
            }
        }
        out
    }
}

/// Rows of bits from `codes` (`n0` rows of `n1` bytes below 128): with `above`, 1 where the code
/// is above `l`; else where it is at most `l`. Bits past `n1` are 0.
fn threshold(codes: &[u8], n0: usize, n1: usize, l: usize, above: bool) -> Vec<u64> {
    // Eight pixels at a time in one word (SWAR): codes are below 128, so adding `127 − l` to a
    // byte sets its high bit exactly when the code is above `l`, and never carries into the
    // next byte.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let add = ONES * (127 - l.min(127) as u64);
    let flip = if above { 0 } else { u64::MAX };
    let words = n1.div_ceil(64);
    let load = |row: &[u8], from: usize| {
        let mut w = [0u8; 8];
        match row.get(from..from + 8) {
            Some(eight) => w.copy_from_slice(eight),
            None => {
                for (o, v) in w.iter_mut().zip(&row[from..]) {
                    *o = *v;
                }
            }
        }
        u64::from_le_bytes(w)
    };
    // The bits of a row's last word past `n1`.
    let tail = match n1 % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    };
    let mut out = vec![0u64; n0 * words];
    for (a, dst) in out.chunks_exact_mut(words).enumerate() {
        let row = &codes[a * n1..(a + 1) * n1];
        for (k, word) in dst.iter_mut().enumerate() {
            let mut acc = 0u64;
            for c in 0..8 {
                let from = 64 * k + 8 * c;
                if from >= n1 {
                    break;
                }
                let f = (load(row, from).wrapping_add(add) ^ flip) & HIGH;
                // Bytes of 0 or 1 to eight bits with one multiplication: byte j lands on bit
                // 56 + j, and no two partial products share a bit (nothing carries).
                let flags = f >> 7;
                acc |= (flags.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * c);
            }
            *word = if k + 1 == words { acc & tail } else { acc };
        }
    }
    out
}

/// Shape limits for a body's sagittal section, C7 to S1, with margin for fractures and for the
/// erosion (Panjabi et al., Spine 1991/1992: heights 14–30 mm, depths 15–40 mm; crush fractures
/// lose up to two thirds of the height).
fn section_like(s: &Section, minor_axis_si: f64) -> bool {
    let (major, minor) = s.lengths_mm;
    (SECTION_MIN_MM2..=SECTION_MAX_MM2).contains(&s.area_mm2)
        && (10.0..=65.0).contains(&major)
        && (5.0..=45.0).contains(&minor)
        && major / minor <= 4.5
        && s.area_mm2 / (major * minor) >= 0.6
        // A body's smallest dimension is its height, unless it is nearly square (upper thoracic).
        && (minor_axis_si >= 0.55 || major / minor < 1.25)
}

/// Planes searched: all of a sagittal series; on axial or coronal data, planes every ~4.5 mm across
/// the middle of the patient, where the column is.
fn planes(coarse: &Coarse, air: f32) -> Vec<usize> {
    let n2 = coarse.data.dim().2;
    let step = ((4.5 / coarse.spacing_mm[2]).round() as usize).max(1);
    if step == 1 {
        return (0..n2).collect();
    }
    // Left-right extent of the patient (non-air) in the coarse volume: per row, its first and
    // last such voxel (rows run left-right; planes in parallel).
    let (lo, hi) = coarse
        .data
        .axis_iter(ndarray::Axis(0))
        .into_par_iter()
        .map(|plane| {
            let mut ends = (n2, 0);
            for row in plane.rows() {
                if let Some(first) = row.iter().position(|v| *v > air) {
                    let last = row.iter().rposition(|v| *v > air).unwrap_or(first);
                    ends = (ends.0.min(first), ends.1.max(last));
                }
            }
            ends
        })
        .reduce(|| (n2, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    if lo > hi {
        return Vec::new();
    }
    let mid = (lo + hi) / 2;
    let half = ((70.0 / coarse.spacing_mm[2]) as usize).min((hi - lo) / 2 + 1);
    (mid.saturating_sub(half)..(mid + half + 1).min(n2))
        .step_by(step)
        .collect()
}

/// All candidate bodies: body-like sections over all planes and bands, clustered.
///
/// With `ct` (cortex is the brightest tissue), holes of body size in the bands
/// above a level are filled: a lytic or gas-filled body is then its cortical shell, filled. On MR
/// cortex is dark and the bright bands hold fat and marrow, whose holes are other tissue.
///
/// Takes the coarse copy by value: on axial data only a few of its planes are searched, and the
/// rest is freed before the sections are found (the study's memory peak).
pub fn candidates(coarse: Coarse, ct: bool) -> Vec<Candidate> {
    let all = sorted_sample(&coarse.data, 200_000);
    let air = air_level(&all, !ct);
    let levels = levels(&all, air);
    let bands = bands(&levels);
    let planes = planes(&coarse, air);
    // Shells are looked for in the bands above the patient's median voxel (soft tissue on CT):
    // lower bands hold the whole patient, whose holes are fat and gas, not bodies. (From the top
    // decile only, the Kümmell body's gas slit inside marrow was lost.)
    let shell_from = ct.then(|| {
        let first = all.partition_point(|v| *v <= air);
        quantile(&all[first..], 0.5)
    });
    let spacing_mm = coarse.spacing_mm;
    let in_plane = |plane: usize, img: &Array2<f32>| {
        let coded = CodedPlane::new(img, &levels);
        bands
            .iter()
            .flat_map(|band| sections_in_plane(&coded, spacing_mm, plane, band, shell_from))
            .collect::<Vec<_>>()
    };
    // One work item per plane, all bands on a contiguous copy of it: the plane is a strided
    // view of the coarse volume, read once instead of once per band.
    let copy = |plane: usize| {
        coarse
            .data
            .index_axis(ndarray::Axis(2), plane)
            .as_standard_layout()
            .into_owned()
    };
    let found: Vec<Section> = if 2 * planes.len() < coarse.data.dim().2 {
        // On axial data the planes searched are an eighth of the copy (about 34 of 256 on a
        // 512² CT, whose copy is 39 MB). Freeing the rest first keeps it from adding to the
        // sections' pixel runs at a study's memory peak (`docs/performance.md`, session 26).
        let imgs: Vec<(usize, Array2<f32>)> = planes.par_iter().map(|&p| (p, copy(p))).collect();
        drop(coarse);
        imgs.par_iter()
            .flat_map_iter(|(plane, img)| in_plane(*plane, img))
            .collect()
    } else {
        planes
            .par_iter()
            .flat_map_iter(|&plane| in_plane(plane, &copy(plane)))
            .collect()
    };
    // Filled shells are candidates of their own: a body seen in its marrow keeps exactly the
    // sections it had, and the shells add the bodies whose interior is not marrow. The chain
    // takes one candidate per body (its steps are a body and a disc long).
    let (filled, plain): (Vec<Section>, Vec<Section>) = found.into_iter().partition(|s| s.filled);
    // The two clusterings are sequential scans of their own; side by side they take the time of one.
    let (mut out, shells) = rayon::join(
        || cluster(plain, spacing_mm[2]),
        || cluster(filled, spacing_mm[2]),
    );
    out.extend(shells);
    out
}

fn sections_in_plane(
    coded: &CodedPlane,
    s: [f64; 3],
    plane: usize,
    band: &Band,
    shell_from: Option<f32>,
) -> Vec<Section> {
    let (n0, n1) = (coded.n0, coded.n1);
    let mut inb = coded.bits(band);
    let band = band.value;
    let mut out = components(&inb, n0, n1, s, plane, band, None);
    if band.1 == f32::INFINITY && shell_from.is_some_and(|q| band.0 >= q) {
        // Above a level, a body is its cortical shell around marrow of any signal: a lytic or
        // gas-filled (Kümmell) body on CT is a ring. Holes of at most a body's size are filled;
        // larger ones (the patient inside a ring of fat) are not holes in a body. Only sections
        // that are mostly fill are new: a few filled specks do not change a body of marrow.
        // Holes too small to be a fifth of the smallest section are noise in marrow; leaving
        // them spares the second pass on most planes.
        let px_mm2 = s[0] * s[1];
        let sizes = (
            (0.2 * SECTION_MIN_MM2 / px_mm2).ceil() as usize,
            (SECTION_MAX_MM2 / px_mm2) as usize + 1,
        );
        let filled = fill_small_holes(&mut inb, n0, n1, sizes);
        if filled.iter().any(|w| *w != 0) {
            out.extend(components(&inb, n0, n1, s, plane, band, Some(&filled)));
        }
    }
    out
}

/// Root of `x` in a union-find forest of runs, halving the path on the way.
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Largest area of a body's sagittal section, mm².
const SECTION_MAX_MM2: f64 = 2_600.0;

/// Smallest area of a body's (eroded) sagittal section, mm².
const SECTION_MIN_MM2: f64 = 80.0;

/// Body-like components of `inb` (`n0` rows of `n1` pixels, as [`CodedPlane::bits`] makes them), eroded
/// by one pixel (4-neighbourhood). With `filled` (rows of bits likewise), only components of which
/// at least a fifth was filled are kept, marked filled.
fn components(
    inb: &[u64],
    n0: usize,
    n1: usize,
    s: [f64; 3],
    plane: usize,
    band: (f32, f32),
    filled: Option<&[u64]>,
) -> Vec<Section> {
    // On bit rows (64 pixels to a word): this runs for every plane and band.
    let words = n1.div_ceil(64);
    let mask = erode_rows(inb, n0, words);
    let px_mm2 = s[0] * s[1];
    let max_px = (SECTION_MAX_MM2 / px_mm2) as usize + 1;
    let min_px = (SECTION_MIN_MM2 / px_mm2) as usize;
    // 4-connected components on runs, joined row to row by a union-find: the cost is one scan
    // of the plane plus the runs, where a pixel flood pushed and popped every pixel of every
    // region (most of a wide band's plane; a third of a sagittal MR's analysis time).
    let (runs, mut parent) = joined_runs(&mask, n0, n1, true);
    let mut size = vec![0usize; runs.len()];
    let mut root = vec![0usize; runs.len()];
    for k in 0..runs.len() {
        root[k] = find(&mut parent, k);
        size[root[k]] += runs[k].2 - runs[k].1;
    }
    // Each component's runs, in raster order; components in the order of their first pixel
    // (a component's root is its first run).
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); runs.len()];
    for (k, r) in root.iter().enumerate() {
        // As the pixel flood did: a region is too big from max_px + 2 pixels.
        if (min_px..=max_px + 1).contains(&size[*r]) {
            members[*r].push(k);
        }
    }
    let mut out = Vec::new();
    for (r, list) in members.into_iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        // The component's pixels in raster order, read off its runs (most components fail the
        // shape test, and their pixel lists were most of the allocations here).
        let px = || pixels_of(list.iter().map(|&k| &runs[k]));
        if let Some(f) = filled {
            let n_filled = px()
                .filter(|(a, b)| f[a * words + b / 64] >> (b % 64) & 1 == 1)
                .count();
            if 5 * n_filled < size[r] {
                continue;
            }
        }
        let (mut sec, minor_si) = describe_section(px, size[r], s, band, plane);
        if section_like(&sec, minor_si) {
            sec.filled = filled.is_some();
            sec.runs = list.iter().map(|&k| runs[k]).collect();
            out.push(sec);
        }
    }
    out
}

/// The runs of pixels whose bit is `set` in `m` (`n0` rows of `n1` pixels, as
/// [`CodedPlane::bits`] makes them), `(row, start, end)` in raster order, and a union-find forest
/// over them joining runs 4-connected to the row above; a component's root is its first run.
fn joined_runs(
    m: &[u64],
    n0: usize,
    n1: usize,
    set: bool,
) -> (Vec<(usize, usize, usize)>, Vec<usize>) {
    let words = n1.div_ceil(64);
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut prev = 0..0;
    for a in 0..n0 {
        let row = &m[a * words..(a + 1) * words];
        let first = runs.len();
        let mut b = 0;
        let mut q = prev.start;
        loop {
            let start = next_bit(row, b, set).min(n1);
            if start >= n1 {
                break;
            }
            b = next_bit(row, start, !set).min(n1);
            let id = runs.len();
            runs.push((a, start, b));
            parent.push(id);
            // Runs of the row above sharing a column with this one (both lists are sorted).
            while q < prev.end && runs[q].2 <= start {
                q += 1;
            }
            let mut k = q;
            while k < prev.end && runs[k].1 < b {
                let (x, y) = (find(&mut parent, k), find(&mut parent, id));
                if x != y {
                    parent[x.max(y)] = x.min(y);
                }
                k += 1;
            }
        }
        prev = first..runs.len();
    }
    (runs, parent)
}

/// Erosion of bit rows by one pixel (4-neighbourhood); the border rows and columns become 0.
fn erode_rows(m: &[u64], n0: usize, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; m.len()];
    for a in 1..n0.saturating_sub(1) {
        let row = |r: usize| &m[r * words..(r + 1) * words];
        let (up, mid, down) = (row(a - 1), row(a), row(a + 1));
        for k in 0..words {
            let before = if k > 0 { mid[k - 1] >> 63 } else { 0 };
            let after = if k + 1 < words { mid[k + 1] << 63 } else { 0 };
            let left = (mid[k] << 1) | before;
            let right = (mid[k] >> 1) | after;
            out[a * words + k] = mid[k] & up[k] & down[k] & left & right;
        }
    }
    out
}

/// The first pixel at or after `from` whose bit is `set`; past the row when there is none.
fn next_bit(row: &[u64], from: usize, set: bool) -> usize {
    let mut k = from / 64;
    if k >= row.len() {
        return from;
    }
    let flip = if set { 0 } else { u64::MAX };
    let mut w = (row[k] ^ flip) & (u64::MAX << (from % 64));
    while w == 0 {
        k += 1;
        if k == row.len() {
            return 64 * k;
        }
        w = row[k] ^ flip;
    }
    64 * k + w.trailing_zeros() as usize
}

/// Sets every 4-connected region of zeros of `m` (`n0` rows of `n1` pixels, as [`CodedPlane::bits`]
/// makes them) that does not touch the border and has `min_px..=max_px` pixels; returns which pixels
/// were set, as rows of bits likewise.
///
/// Works on runs of zeros, joined row to row by a union-find: the cost is one scan of the plane
/// plus the number of runs, where a pixel flood would visit all the background (most of a
/// plane), for every band and plane.
fn fill_small_holes(
    m: &mut [u64],
    n0: usize,
    n1: usize,
    (min_px, max_px): (usize, usize),
) -> Vec<u64> {
    let words = n1.div_ceil(64);
    let (runs, mut parent) = joined_runs(m, n0, n1, false);
    let mut size = vec![0usize; runs.len()];
    let mut border = vec![false; runs.len()];
    for (k, &(row, start, end)) in runs.iter().enumerate() {
        let r = find(&mut parent, k);
        size[r] += end - start;
        border[r] |= row == 0 || row + 1 == n0 || start == 0 || end == n1;
    }
    let mut filled = vec![0u64; m.len()];
    for (k, &(row, start, end)) in runs.iter().enumerate() {
        let r = find(&mut parent, k);
        if !border[r] && (min_px..=max_px).contains(&size[r]) {
            for b in start..end {
                filled[row * words + b / 64] |= 1 << (b % 64);
            }
        }
    }
    for (w, f) in m.iter_mut().zip(&filled) {
        *w |= f;
    }
    filled
}

/// Centroid, principal lengths and area of a pixel set; also how well the minor axis lines up
/// with cranio-caudal (|cos|).
/// `px` yields the `count` pixels (every call the same, in the same order); the section's
/// run list is left empty.
fn describe_section<I: Iterator<Item = (usize, usize)>>(
    px: impl Fn() -> I,
    count: usize,
    s: [f64; 3],
    band: (f32, f32),
    plane: usize,
) -> (Section, f64) {
    let n = count as f64;
    let (mut m0, mut m1) = (0.0, 0.0);
    for (a, b) in px() {
        m0 += a as f64 * s[0];
        m1 += b as f64 * s[1];
    }
    m0 /= n;
    m1 /= n;
    let (mut c00, mut c01, mut c11) = (s[0] * s[0] / 12.0, 0.0, s[1] * s[1] / 12.0);
    for (a, b) in px() {
        let (d0, d1) = (a as f64 * s[0] - m0, b as f64 * s[1] - m1);
        c00 += d0 * d0 / n;
        c01 += d0 * d1 / n;
        c11 += d1 * d1 / n;
    }
    let tr = c00 + c11;
    let det = c00 * c11 - c01 * c01;
    let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
    let (l_major, l_minor) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
    // Minor eigenvector: (c01, l_minor − c00) or (l_minor − c11, c01).
    let (mut e0, mut e1) = (l_minor - c11, c01);
    if e0.abs() + e1.abs() < 1e-12 {
        e0 = 1.0;
        e1 = 0.0;
    }
    let norm = (e0 * e0 + e1 * e1).sqrt();
    let minor_si = (e0 / norm).abs();
    (
        Section {
            band,
            plane,
            centroid_mm: (m0, m1),
            lengths_mm: ((12.0 * l_major).sqrt(), (12.0 * l_minor).sqrt()),
            area_mm2: n * s[0] * s[1],
            filled: false,
            runs: Vec::new(),
        },
        minor_si,
    )
}

/// A cluster of sections being formed by [`cluster`].
struct Acc {
    rep: (f64, f64),
    rep_minor: f64,
    rep_plane: usize,
    best: Vec<Section>,
    count: usize,
}

/// Whether what lies in `plane` around `at` (mm) belongs to cluster `c`, centred at `centre`:
/// near its centre for its size, and within 30 mm of its plane. The plane test comes first: it
/// is the cheaper one and rejects most clusters.
fn joins(c: &Acc, centre: (f64, f64), plane: usize, at: (f64, f64), plane_mm: f64) -> bool {
    (c.rep_plane.abs_diff(plane) as f64) * plane_mm <= 30.0
        && ((centre.0 - at.0).powi(2) + (centre.1 - at.1).powi(2)).sqrt()
            < 0.35 * c.rep_minor.max(6.0)
}

fn cluster(mut found: Vec<Section>, plane_mm: f64) -> Vec<Candidate> {
    found.sort_by(|a, b| b.area_mm2.total_cmp(&a.area_mm2));
    let mut acc: Vec<Acc> = Vec::new();
    for sec in found {
        let home = acc
            .iter_mut()
            .find(|c| joins(c, c.rep, sec.plane, sec.centroid_mm, plane_mm));
        match home {
            Some(c) => {
                c.count += 1;
                if !c.best.iter().any(|b| b.plane == sec.plane) {
                    c.best.push(sec);
                }
            }
            None => acc.push(Acc {
                rep: sec.centroid_mm,
                rep_minor: sec.lengths_mm.1,
                rep_plane: sec.plane,
                count: 1,
                best: vec![sec],
            }),
        }
    }
    // Lateral sections of one body can start their own cluster; merge clusters that overlap.
    // Each merged cluster's centre is kept beside it and recomputed only when its sections
    // change (recomputed for every pair, it was most of the clustering's time: 780 clusters).
    let centre = |a: &Acc| {
        let area: f64 = a.best.iter().map(|s| s.area_mm2).sum();
        let mut m = (0.0, 0.0);
        for s in &a.best {
            m.0 += s.centroid_mm.0 * s.area_mm2 / area;
            m.1 += s.centroid_mm.1 * s.area_mm2 / area;
        }
        m
    };
    let mut merged: Vec<Acc> = Vec::new();
    let mut centres: Vec<(f64, f64)> = Vec::new();
    for c in acc {
        let cc = centre(&c);
        let home = merged
            .iter()
            .zip(&centres)
            .position(|(m, mc)| joins(m, *mc, c.rep_plane, cc, plane_mm));
        match home {
            Some(k) => {
                let m = &mut merged[k];
                m.count += c.count;
                for sec in c.best {
                    match m.best.iter_mut().find(|b| b.plane == sec.plane) {
                        Some(b) if b.area_mm2 < sec.area_mm2 => *b = sec,
                        Some(_) => {}
                        None => m.best.push(sec),
                    }
                }
                centres[k] = centre(m);
            }
            None => {
                merged.push(c);
                centres.push(cc);
            }
        }
    }
    merged
        .into_iter()
        .map(|c| {
            let mut sections = c.best;
            sections.sort_by_key(|s| s.plane);
            let sections = convex_run(sections);
            let area: f64 = sections.iter().map(|s| s.area_mm2).sum();
            let mut centroid = Vector3::zeros();
            for s in &sections {
                centroid +=
                    Vector3::new(s.centroid_mm.0, s.centroid_mm.1, s.plane as f64 * plane_mm)
                        * s.area_mm2;
            }
            centroid /= area;
            let mut minors: Vec<f64> = sections.iter().map(|s| s.lengths_mm.1).collect();
            minors.sort_by(f64::total_cmp);
            Candidate {
                height_mm: minors[minors.len() / 2],
                volume_mm3: area * plane_mm,
                centroid_mm: centroid,
                stability: c.count,
                sections,
            }
        })
        .collect()
}

/// Largest growth of a section's area (and height) from the largest kept nearer the middle: a
/// body is convex, its sagittal sections shrink away from the midline.
const SECTION_GROWTH: (f64, f64) = (1.6, 1.5);

/// The sections (sorted by plane) that form one convex body: from the middle plane outwards,
/// each side stops at the first section much larger or taller than those nearer the middle, or
/// off their centre. (Not at gaps: the sections of a burst body's marrow can miss the middle
/// planes in every band.) The psoas beside a lumbar body has a similar T2
/// signal and joined the body's cluster in the outer planes (sections of 1 700–2 000 mm² beside
/// a body's 600), and the body was grown into it.
fn convex_run(sections: Vec<Section>) -> Vec<Section> {
    let n = sections.len();
    if n < 3 {
        return sections;
    }
    let mid = n / 2;
    // What the kept sections are: largest area, tallest, area-weighted centre.
    struct Kept {
        area: f64,
        minor: f64,
        weight: f64,
        centre: (f64, f64),
    }
    impl Kept {
        fn fits(&self, s: &Section) -> bool {
            let c = (
                self.centre.0 / self.weight - s.centroid_mm.0,
                self.centre.1 / self.weight - s.centroid_mm.1,
            );
            s.area_mm2 <= SECTION_GROWTH.0 * self.area
                && s.lengths_mm.1 <= SECTION_GROWTH.1 * self.minor
                && c.0.hypot(c.1) <= 0.5 * self.minor
        }
        fn add(&mut self, s: &Section) {
            self.area = self.area.max(s.area_mm2);
            self.minor = self.minor.max(s.lengths_mm.1);
            self.weight += s.area_mm2;
            self.centre.0 += s.centroid_mm.0 * s.area_mm2;
            self.centre.1 += s.centroid_mm.1 * s.area_mm2;
        }
    }
    // The limits start from the typical section, not the middle one alone: that may come from
    // a band that saw a sliver of the body.
    let median = |f: &dyn Fn(&Section) -> f64| {
        let mut v: Vec<f64> = sections.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut kept = Kept {
        area: median(&|s| s.area_mm2),
        minor: median(&|s| s.lengths_mm.1),
        weight: 0.0,
        centre: (0.0, 0.0),
    };
    kept.add(&sections[mid]);
    let (mut lo, mut hi) = (mid, mid);
    // Outwards on both sides in turn, so that neither side's sections set the other's limits
    // alone.
    let (mut up, mut down) = (true, true);
    while up || down {
        if up {
            up = hi + 1 < n && kept.fits(&sections[hi + 1]);
            if up {
                hi += 1;
                kept.add(&sections[hi]);
            }
        }
        if down {
            down = lo > 0 && kept.fits(&sections[lo - 1]);
            if down {
                lo -= 1;
                kept.add(&sections[lo]);
            }
        }
    }
    sections.into_iter().skip(lo).take(hi - lo + 1).collect()
}

/// A body is wide: a section seen in one or two planes is not one (unless the series is thin).
fn wide(k: &Candidate, plane_mm: f64) -> bool {
    k.sections.len() as f64 * plane_mm >= 9.0_f64.min(plane_mm * 2.0)
}

/// The best chain of candidates down the column, cranial first.
///
/// Each candidate scores by its stability relative to the most stable candidates, so that the
/// column's bodies (seen in many planes and bands) win over incidental blobs; neighbours must be
/// one body plus one disc apart (or two bodies, when one between was missed), roughly in line
/// and of similar size. A disc cannot pass for a body: it is too close to both neighbours.
pub fn chain(cands: &[Candidate], plane_mm: f64) -> Vec<Candidate> {
    let mut c: Vec<&Candidate> = cands.iter().filter(|k| wide(k, plane_mm)).collect();
    c.sort_by(|a, b| a.centroid_mm[0].total_cmp(&b.centroid_mm[0]));
    let mut stabs: Vec<usize> = c.iter().map(|k| k.stability).collect();
    stabs.sort_unstable();
    let top = stabs
        .get(stabs.len().saturating_sub(1 + stabs.len() / 10))
        .copied()
        .unwrap_or(1) as f64;
    let node = |k: &Candidate| ((1.0 + k.stability as f64) / (1.0 + 0.2 * top)).ln();
    let mut best = vec![0.0f64; c.len()];
    let mut prev = vec![usize::MAX; c.len()];
    for i in 0..c.len() {
        best[i] = node(c[i]);
        for j in 0..i {
            let d = c[i].centroid_mm - c[j].centroid_mm;
            let h = c[i].height_mm.max(c[j].height_mm);
            // Two bodies are half of each plus a disc apart: at least the taller one's height
            // (a small candidate squeezed between two bodies is nearer), and with at least 0.15
            // of it between their extents (a disc beside a body, or a crushed body's dark band
            // taken with the disc above it, leaves next to nothing). No wider margin on the
            // height: the sacrum's candidate, S1 fused to S2, is far taller than L5.
            let between = d[0] - 0.5 * (c[i].height_mm + c[j].height_mm);
            if d[0] < h || between < 0.15 * h || d[0] > 3.6 * h {
                continue;
            }
            // Of similar height: a candidate under half its neighbour's is a fragment (the bright
            // half of a body dark elsewhere) or a disc. A crushed body is taken back by
            // `fill_gaps` from the gap it leaves.
            if c[i].height_mm.min(c[j].height_mm) < 0.5 * h {
                continue;
            }
            // Roughly in line: the column turns forward by up to 45° between L5 and the sacrum
            // (further with the spine rotated), but hardly sideways (a lowest candidate 30 mm to
            // one side is the sacral ala, not S1).
            let off = (d[1] * d[1] + d[2] * d[2]).sqrt();
            if off > d[0] || d[2].abs() > 0.6 * d[0] {
                continue;
            }
            let ratio = c[i].volume_mm3 / c[j].volume_mm3;
            if !(0.25..=4.0).contains(&ratio) {
                continue;
            }
            let gap_penalty = if d[0] > 2.1 * h { 1.0 } else { 0.0 };
            let s = best[j] + node(c[i]) - 2.0 * (off / d[0]).powi(2) - gap_penalty;
            if s > best[i] {
                best[i] = s;
                prev[i] = j;
            }
        }
    }
    let Some(mut end) = (0..c.len()).max_by(|a, b| best[*a].total_cmp(&best[*b])) else {
        return Vec::new();
    };
    let mut out = vec![c[end].clone()];
    while prev[end] != usize::MAX {
        end = prev[end];
        out.push(c[end].clone());
    }
    out.reverse();
    out
}

/// A stand-in candidate at `at` (canonical mm), when no section of the missed body passed the
/// shape test (a crushed or infiltrated body is often not body-shaped in any band): a small
/// square section, a third of the neighbours' height across, in the planes the neighbours share,
/// from which the body is grown with its own marrow level.
fn seed_section(
    above: &Candidate,
    below: &Candidate,
    at: Vector3<f64>,
    spacing_mm: [f64; 3],
) -> Option<Candidate> {
    let planes: Vec<usize> = above
        .sections
        .iter()
        .map(|s| s.plane)
        .filter(|p| below.sections.iter().any(|b| b.plane == *p))
        .collect();
    let reference = above.sections.first()?;
    let (d0, d1) = (spacing_mm[0], spacing_mm[1]);
    let half = (0.5 * above.height_mm.min(below.height_mm) / 3.0).max(2.0);
    let (c0, c1) = (at[0] / d0, at[1] / d1);
    let (r0, r1) = ((half / d0).ceil() as i64, (half / d1).ceil() as i64);
    let (x0, y0) = (c0.round() as i64, c1.round() as i64);
    let (ylo, yhi) = ((y0 - r1).max(0), y0 + r1 + 1);
    let runs: Vec<(usize, usize, usize)> = (x0 - r0..=x0 + r0)
        .filter(|x| *x >= 0 && ylo < yhi)
        .map(|x| (x as usize, ylo as usize, yhi as usize))
        .collect();
    let sections: Vec<Section> = planes
        .iter()
        .map(|&plane| Section {
            band: reference.band,
            plane,
            runs: runs.clone(),
            centroid_mm: (at[0], at[1]),
            lengths_mm: (2.0 * half, 2.0 * half),
            area_mm2: (2.0 * half).powi(2),
            filled: false,
        })
        .collect();
    if sections.is_empty() {
        return None;
    }
    Some(Candidate {
        sections,
        centroid_mm: at,
        height_mm: 0.5 * (above.height_mm + below.height_mm),
        volume_mm3: 0.5 * (above.volume_mm3 + below.volume_mm3),
        stability: 0,
    })
}

/// One slot of the column: a chained candidate, or a body missed between two chained ones.
#[derive(Debug, Clone)]
pub enum Slot {
    /// A body to grow.
    Found(Candidate),
    /// A level the chain stepped over; its expected centre (canonical mm).
    Missed(Vector3<f64>),
}

/// Walks the chain and, where two neighbours are about two or more intervals apart, looks for
/// the skipped bodies among all candidates (a fractured or infiltrated body is often less stable
/// and smaller than its neighbours, so the chain steps over it); what is not found stays a
/// missed slot, so that counting and the report keep the level.
pub fn fill_gaps(chain: &[Candidate], all: &[Candidate], spacing_mm: [f64; 3]) -> Vec<Slot> {
    let mut spacings: Vec<f64> = chain
        .windows(2)
        .map(|w| (w[1].centroid_mm - w[0].centroid_mm).norm())
        .collect();
    spacings.sort_by(f64::total_cmp);
    let Some(&typical) = spacings.get(spacings.len() / 2) else {
        return chain.iter().cloned().map(Slot::Found).collect();
    };
    // The chain's typical disc, head-foot: what separates two neighbours' extents.
    let mut discs: Vec<f64> = chain
        .windows(2)
        .map(|w| {
            (w[1].centroid_mm[0] - w[0].centroid_mm[0]) - 0.5 * (w[0].height_mm + w[1].height_mm)
        })
        .collect();
    discs.sort_by(f64::total_cmp);
    let disc_mm = discs[discs.len() / 2].max(0.0);
    let mut out = Vec::new();
    for (k, c) in chain.iter().enumerate() {
        out.push(Slot::Found(c.clone()));
        let Some(next) = chain.get(k + 1) else { break };
        let gap = (next.centroid_mm - c.centroid_mm).norm();
        // A collapsed body shortens its gap: 1.45 intervals already hide one.
        let count = |typical: f64| {
            ((gap / typical).round() as usize).max(if gap >= 1.45 * typical { 2 } else { 1 })
        };
        let mut missing = count(typical);
        // Intervals grow down the column, and the lumbo-sacral one (a thick disc between the
        // two largest bodies) most: the lowest gap must also leave room by the interval above it.
        if k + 2 == chain.len() && k > 0 {
            let above = (c.centroid_mm - chain[k - 1].centroid_mm).norm();
            missing = missing.min(count(above));
        }
        if missing < 2 {
            continue;
        }
        for m in 1..missing {
            let at =
                c.centroid_mm + (next.centroid_mm - c.centroid_mm) * (m as f64 / missing as f64);
            // A stand-in must leave room for a disc on both sides: a crushed body's dark
            // oedema band and the disc above it make one body-sized candidate that touches the
            // body above (seen on T1 under a burst fracture).
            let clear = |x: &&Candidate| {
                let (top, bottom) = (
                    x.centroid_mm[0] - 0.5 * x.height_mm,
                    x.centroid_mm[0] + 0.5 * x.height_mm,
                );
                top - (c.centroid_mm[0] + 0.5 * c.height_mm) >= 0.25 * disc_mm
                    && (next.centroid_mm[0] - 0.5 * next.height_mm) - bottom >= 0.25 * disc_mm
            };
            let found = all
                .iter()
                .filter(|x| (x.centroid_mm - at).norm() < 0.35 * typical && wide(x, spacing_mm[2]))
                .filter(clear)
                .max_by_key(|x| x.stability);
            out.push(match found {
                Some(x) => Slot::Found(x.clone()),
                None => match seed_section(c, next, at, spacing_mm) {
                    Some(x) => Slot::Found(x),
                    None => Slot::Missed(at),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CT plane with a 30 × 20 mm lytic body (a 2 mm cortical ring around soft tissue) beside
    /// a normal one (trabecular bone inside the same ring).
    fn plane(lytic_hu: f32) -> ndarray::Array2<f32> {
        let mut img = ndarray::Array2::<f32>::from_elem((80, 60), 40.0);
        for (off, inside) in [(5usize, lytic_hu), (45, 250.0)] {
            for a in off..off + 20 {
                for b in 15..45 {
                    let ring = !(off + 2..off + 18).contains(&a) || !(17..43).contains(&b);
                    img[[a, b]] = if ring { 900.0 } else { inside };
                }
            }
        }
        img
    }

    /// `m` (`n0` × `n1` bytes of 0 or 1, row-major) as rows of bits, as [`CodedPlane::bits`]
    /// makes them.
    fn pack_rows(m: &[u8], n0: usize, n1: usize) -> Vec<u64> {
        let words = n1.div_ceil(64);
        let mut out = vec![0u64; n0 * words];
        for (p, v) in m.iter().enumerate() {
            let (a, b) = (p / n1, p % n1);
            out[a * words + b / 64] |= u64::from(*v != 0) << (b % 64);
        }
        out
    }

    /// Sections of `img` in the band `(lo, hi)` (no `hi`: upwards), as [`candidates`] finds them.
    fn sections_in(
        img: &ndarray::Array2<f32>,
        lo: f32,
        hi: Option<f32>,
        shell_from: Option<f32>,
    ) -> Vec<Section> {
        let levels: Vec<f32> = std::iter::once(lo).chain(hi).collect();
        let band = Band {
            lo: 0,
            hi: hi.map(|_| 1),
            value: (lo, hi.unwrap_or(f32::INFINITY)),
        };
        sections_in_plane(
            &CodedPlane::new(img, &levels),
            [1.0; 3],
            0,
            &band,
            shell_from,
        )
    }

    #[test]
    fn bands_select_the_same_pixels_as_comparing_values() {
        // Rows of 70 pixels: full and partial groups of eight, and a second word.
        let img = ndarray::Array2::from_shape_fn((7, 70), |(a, b)| {
            if a == 3 && b == 66 {
                f32::NAN
            } else {
                ((a * 70 + b) % 13) as f32
            }
        });
        let levels = [2.0f32, 5.0, 5.5, 9.0, 12.0];
        let coded = CodedPlane::new(&img, &levels);
        let mut bands = bands(&levels);
        bands.extend((0..levels.len()).map(|lo| Band {
            lo,
            hi: Some((lo + 1).min(levels.len() - 1)),
            value: (levels[lo], levels[(lo + 1).min(levels.len() - 1)]),
        }));
        for (lo, level) in levels.iter().enumerate() {
            bands.push(Band {
                lo,
                hi: None,
                value: (*level, f32::INFINITY),
            });
        }
        for band in &bands {
            let want: Vec<u8> = img
                .iter()
                .map(|v| u8::from(*v >= band.value.0 && *v <= band.value.1))
                .collect();
            assert_eq!(coded.bits(band), pack_rows(&want, 7, 70), "{band:?}");
        }
    }

    #[test]
    fn bit_rows_erode_like_bytes() {
        // Rows of 1, 63, 64, 65 and 130 pixels: every word boundary and row end.
        for n1 in [1usize, 3, 63, 64, 65, 130] {
            let n0 = 6;
            let m: Vec<u8> = (0..n0 * n1)
                .map(|p| u8::from((p * 7919) % 11 != 0))
                .collect();
            let words = n1.div_ceil(64);
            let eroded = erode_rows(&pack_rows(&m, n0, n1), n0, words);
            for a in 0..n0 {
                for b in 0..n1 {
                    let at = |a: usize, b: usize| m[a * n1 + b] == 1;
                    let want = a > 0
                        && a + 1 < n0
                        && b > 0
                        && b + 1 < n1
                        && at(a, b)
                        && at(a - 1, b)
                        && at(a + 1, b)
                        && at(a, b - 1)
                        && at(a, b + 1);
                    let got = eroded[a * words + b / 64] >> (b % 64) & 1 == 1;
                    assert_eq!(got, want, "n1 {n1} at ({a}, {b})");
                }
                let row = &eroded[a * words..(a + 1) * words];
                let mut b = 0;
                while b < n1 {
                    let on = next_bit(row, b, true).min(n1);
                    assert!((b..on).all(|x| row[x / 64] >> (x % 64) & 1 == 0));
                    b = on;
                    if b < n1 {
                        let off = next_bit(row, b, false).min(n1);
                        assert!(off > b && (b..off).all(|x| row[x / 64] >> (x % 64) & 1 == 1));
                        b = off;
                    }
                }
            }
        }
    }

    #[test]
    fn a_lytic_body_is_found_as_its_filled_shell_on_ct_only() {
        let img = plane(40.0);
        // Above cortex-and-trabecular level: the normal body is bone throughout, the lytic one
        // only its ring.
        let plain = sections_in(&img, 200.0, None, None);
        assert_eq!(plain.len(), 1, "{plain:?}");
        assert!(!plain[0].filled);
        assert!((plain[0].centroid_mm.0 - 54.5).abs() < 0.6, "{plain:?}");
        let with_shells = sections_in(&img, 200.0, None, Some(100.0));
        let shells: Vec<&Section> = with_shells.iter().filter(|x| x.filled).collect();
        assert_eq!(shells.len(), 1, "{with_shells:?}");
        // The lytic body's centre and size, eroded by one pixel.
        assert!((shells[0].centroid_mm.0 - 14.5).abs() < 0.6, "{shells:?}");
        assert!((shells[0].area_mm2 - 18.0 * 28.0).abs() < 1.0, "{shells:?}");
        // The normal body keeps its plain section and gets no shell of its own.
        assert_eq!(with_shells.iter().filter(|x| !x.filled).count(), 1);
        // A closed band (soft tissue) is never filled.
        let soft = sections_in(&img, 0.0, Some(100.0), Some(0.0));
        assert!(soft.iter().all(|x| !x.filled));
    }

    #[test]
    fn components_join_a_u_shape_and_keep_diagonal_neighbours_apart() {
        // 1 mm pixels. A U: two 12 × 12 arms joined only by their 4 × 32 bottom bar (rows seen
        // first as two runs, then as one); beside it a 20 × 14 block touching a 20 × 14 block
        // only at a corner. Erosion takes one pixel off every side.
        let (n0, n1) = (60, 110);
        let mut m = vec![0u8; n0 * n1];
        let mut set = |a0: usize, a1: usize, b0: usize, b1: usize| {
            for a in a0..a1 {
                for b in b0..b1 {
                    m[a * n1 + b] = 1;
                }
            }
        };
        set(5, 25, 5, 17);
        set(5, 25, 25, 37);
        set(25, 31, 5, 37);
        set(5, 25, 50, 64);
        set(25, 45, 64, 78);
        let got = components(
            &pack_rows(&m, n0, n1),
            n0,
            n1,
            [1.0; 3],
            0,
            (0.0, 1.0),
            None,
        );
        let areas: Vec<f64> = got.iter().map(|s| s.area_mm2).collect();
        // Eroded: the U is one region of 522 pixels,
        // the two blocks (18 × 12 = 216 each) are two; in the order of their first pixels.
        assert_eq!(areas, vec![522.0, 216.0, 216.0], "{areas:?}");
        assert!(
            (got[1].centroid_mm.0 - 14.5).abs() < 1e-9,
            "{:?}",
            got[1].centroid_mm
        );
        assert!(
            (got[2].centroid_mm.0 - 34.5).abs() < 1e-9,
            "{:?}",
            got[2].centroid_mm
        );
    }

    #[test]
    fn holes_larger_than_a_body_or_open_to_the_border_stay_empty() {
        // A 50 × 50 ring: its hole (48 × 48) is larger than 100 pixels.
        let (n0, n1) = (60, 60);
        let mut m = vec![0u8; n0 * n1];
        for a in 5..55 {
            for b in 5..55 {
                if a == 5 || a == 54 || b == 5 || b == 54 {
                    m[a * n1 + b] = 1;
                }
            }
        }
        let mut m = pack_rows(&m, n0, n1);
        let before = m.clone();
        let filled = fill_small_holes(&mut m, n0, n1, (1, 100));
        assert!(filled.iter().all(|f| *f == 0));
        assert_eq!(m, before);
        // With room for it, the hole is filled and only the hole is reported.
        let filled = fill_small_holes(&mut m, n0, n1, (1, 48 * 48));
        let ones = |v: &[u64]| v.iter().map(|w| w.count_ones()).sum::<u32>();
        assert_eq!(ones(&filled), 48 * 48);
        assert_eq!(ones(&m), 50 * 50);
    }

    /// A candidate at canonical `(si, ap, lr)` mm, `h` mm tall, seen in four 2 mm planes.
    fn body(si: f64, ap: f64, h: f64, stability: usize) -> Candidate {
        let section = |plane| Section {
            band: (0.0, 1.0),
            plane,
            runs: vec![(0, 0, 1)],
            centroid_mm: (si, ap),
            lengths_mm: (35.0, h),
            area_mm2: 35.0 * h,
            filled: false,
        };
        Candidate {
            sections: (10..14).map(section).collect(),
            centroid_mm: Vector3::new(si, ap, 50.0),
            height_mm: h,
            volume_mm3: 35.0 * h * 30.0,
            stability,
        }
    }

    /// `n` bodies from `first_si` mm down, `step` mm apart, at AP 80 mm.
    fn column(n: usize, first_si: f64, step: f64, h: f64, stability: usize) -> Vec<Candidate> {
        (0..n)
            .map(|k| body(first_si + step * k as f64, 80.0, h, stability))
            .collect()
    }

    fn si_of(chain: &[Candidate]) -> Vec<f64> {
        chain.iter().map(|c| c.centroid_mm[0]).collect()
    }

    /// The column turns forward at the lumbosacral junction and the sacrum's candidate (S1
    /// fused to S2) is taller than L5 and its centre lies low and forward: L5 stays in the
    /// chain (it was once stepped over, one disc short of the taller one's height and too far
    /// forward, and the levels were left unnamed).
    #[test]
    fn the_chain_keeps_l5_above_a_tall_forward_sacrum() {
        let mut c = column(7, 20.0, 32.0, 22.0, 150);
        c.push(body(20.0 + 32.0 * 7.0, 90.0, 23.0, 160));
        c.push(body(20.0 + 32.0 * 7.0 + 34.0, 120.0, 31.7, 250));
        let chain = chain(&c, 2.0);
        assert_eq!(chain.len(), 9, "{:?}", si_of(&chain));
    }

    /// A missed body (dark on T1) between two found ones two intervals apart is still bridged:
    /// the levels below it are kept.
    #[test]
    fn the_chain_bridges_one_missed_lumbar_body() {
        let mut c = column(6, 20.0, 32.0, 20.5, 300);
        // L4 missed: L3 to L5 is two intervals (70 mm, 3.4 of their heights).
        c.push(body(20.0 + 32.0 * 5.0 + 70.0, 85.0, 20.2, 400));
        c.push(body(20.0 + 32.0 * 5.0 + 104.0, 100.0, 22.0, 300));
        let chain = chain(&c, 2.0);
        assert_eq!(chain.len(), 8, "{:?}", si_of(&chain));
    }

    /// A small candidate half a disc from a body (a disc, or a crushed body's fragment) is no
    /// link of the chain.
    #[test]
    fn a_candidate_closer_than_a_body_height_is_not_chained() {
        let mut c = column(5, 20.0, 32.0, 21.0, 300);
        c.push(body(20.0 + 32.0 * 4.0 + 17.0, 80.0, 8.0, 30));
        let chain = chain(&c, 2.0);
        assert_eq!(si_of(&chain), si_of(&c[..5]));
    }

    /// The bright lower half of a T1-dark body (10 mm tall, 22 mm above the body below it) is
    /// no link of the chain, which steps over the dark body instead (`fill_gaps` takes it back):
    /// chained, it made one body too many and every level above was named one too high.
    #[test]
    fn a_fragment_under_half_its_neighbours_height_is_not_chained() {
        let mut c: Vec<Candidate> = (0..6)
            .map(|k| body(58.0 + 30.0 * k as f64, 90.0, 21.0, 270))
            .collect();
        c.push(body(208.0 + 47.3, 97.0, 9.9, 200));
        c.push(body(208.0 + 69.5, 106.0, 22.0, 300));
        let chain = chain(&c, 2.0);
        assert_eq!(chain.len(), 7, "{:?}", si_of(&chain));
        assert!(chain.iter().all(|k| k.height_mm > 20.0));
    }

    /// A gap of two intervals is filled with the candidate between, unless that candidate
    /// touches the body above (the disc above a crushed body with its dark oedema band): then a
    /// stand-in is seeded at the gap's middle.
    #[test]
    fn a_gap_takes_a_candidate_that_leaves_room_for_both_discs() {
        let (above, below) = (body(100.0, 80.0, 20.0, 300), body(164.0, 80.0, 20.0, 300));
        let chain = [
            body(36.0, 80.0, 20.0, 300),
            body(68.0, 80.0, 20.0, 300),
            above.clone(),
            below.clone(),
            body(196.0, 80.0, 20.0, 300),
        ];
        let middle = |slots: &[Slot]| match &slots[3] {
            Slot::Found(c) => (c.centroid_mm[0], c.stability),
            Slot::Missed(at) => (at[0], usize::MAX),
        };
        // In its place: taken.
        let fits = body(133.0, 80.0, 18.0, 40);
        let slots = fill_gaps(&chain, &[fits], [1.0, 1.0, 2.0]);
        assert_eq!(slots.len(), 6);
        assert_eq!(middle(&slots), (133.0, 40));
        // Touching the body above (its top 1 mm under the body above's bottom): a seeded
        // stand-in (stability 0) at the middle instead.
        let touching = body(111.0 + 0.5 * 22.0, 80.0, 22.0, 40);
        let slots = fill_gaps(&chain, &[touching], [1.0, 1.0, 2.0]);
        assert_eq!(middle(&slots), (132.0, 0));
    }
}
