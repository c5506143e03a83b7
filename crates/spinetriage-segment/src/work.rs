//! The coarse working copy used for detection: the canonical view box-averaged to about 2 mm, and
//! the image's own intensity reference levels.

use ndarray::{Array3, ArrayView3, Axis};
use rayon::prelude::*;
use spinetriage_volume::Sample;

/// Where a coarse copy's voxels lie on the fine grid, without its values: all that the stages
/// after detection need of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoarseGrid {
    /// Averaging factor per canonical axis: coarse voxel `b` covers fine voxels `b·f .. b·f + f`.
    pub factor: [usize; 3],
    /// Coarse spacing, mm.
    pub spacing_mm: [f64; 3],
}

impl CoarseGrid {
    /// Fine (canonical) index of the centre of coarse voxel `b`.
    pub fn fine_centre(&self, b: [f64; 3]) -> [f64; 3] {
        std::array::from_fn(|n| b[n] * self.factor[n] as f64 + (self.factor[n] as f64 - 1.0) / 2.0)
    }
}

/// A box-averaged copy of a canonical view.
#[derive(Debug, Clone)]
pub struct Coarse {
    /// Values, `[si, ap, lr]`.
    pub data: Array3<f32>,
    /// Averaging factor per canonical axis: coarse voxel `b` covers fine voxels `b·f .. b·f + f`.
    pub factor: [usize; 3],
    /// Coarse spacing, mm.
    pub spacing_mm: [f64; 3],
}

impl Coarse {
    /// Averages `view` down to roughly `target_mm` per axis (never coarser than the input).
    pub fn new<T: Sample>(view: ArrayView3<T>, spacing_mm: [f64; 3], target_mm: f64) -> Coarse {
        let factor: [usize; 3] =
            std::array::from_fn(|n| ((target_mm / spacing_mm[n]).round() as usize).max(1));
        let (d0, d1, d2) = view.dim();
        let dims = [
            (d0 / factor[0]).max(1),
            (d1 / factor[1]).max(1),
            (d2 / factor[2]).max(1),
        ];
        let mut data = Array3::<f32>::zeros(dims);
        let [f0, f1, f2] = factor;
        // Which coarse bin each fine index falls in (the last bin takes the remainder), and how
        // many fine indices each bin holds.
        let bins = |d: usize, f: usize, n: usize| -> (Vec<usize>, Vec<f32>) {
            let to: Vec<usize> = (0..d).map(|a| (a / f).min(n - 1)).collect();
            let mut count = vec![0f32; n];
            for b in &to {
                count[*b] += 1.0;
            }
            (to, count)
        };
        let (to1, count1) = bins(d1, f1, dims[1]);
        let (_, count2) = bins(d2, f2, dims[2]);
        data.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(b0, mut plane)| {
                let Some(out) = plane.as_slice_mut() else {
                    return;
                };
                // Fine rows are first added column by column into one fine-width row per coarse
                // row (a vectorised add), and the columns binned once at the end: binning every
                // fine row through the bin table cost a tenth of a second on a 512² CT.
                let mut acc = vec![0f32; dims[1] * d2];
                let fine = b0 * f0..((b0 + 1) * f0).min(d0);
                let n0 = fine.len() as f32;
                for a0 in fine {
                    let src = view.index_axis(Axis(0), a0);
                    for (a1, row) in src.outer_iter().enumerate() {
                        let dst = &mut acc[to1[a1] * d2..(to1[a1] + 1) * d2];
                        match row.as_slice() {
                            Some(r) => dst.iter_mut().zip(r).for_each(|(o, v)| *o += v.value()),
                            None => dst
                                .iter_mut()
                                .zip(row.iter())
                                .for_each(|(o, v)| *o += v.value()),
                        }
                    }
                }
                let mut den = vec![0f32; dims[2]];
                for (b1, (row, sums)) in out
                    .chunks_exact_mut(dims[2])
                    .zip(acc.chunks_exact(d2))
                    .enumerate()
                {
                    // Each bin is a run of `f2` columns (the last takes the remainder), summed
                    // from zero in column order.
                    for (b2, o) in row.iter_mut().enumerate() {
                        let from = b2 * f2;
                        let to = if b2 + 1 == dims[2] { d2 } else { from + f2 };
                        *o = sums[from..to].iter().fold(0.0f32, |a, v| a + v);
                    }
                    for (d, c2) in den.iter_mut().zip(&count2) {
                        *d = (n0 * count1[b1] * c2).max(1.0);
                    }
                    for (o, d) in row.iter_mut().zip(&den) {
                        *o /= d;
                    }
                }
            });
        Coarse {
            data,
            factor,
            spacing_mm: std::array::from_fn(|n| spacing_mm[n] * factor[n] as f64),
        }
    }

    /// The copy's grid, to keep once its values are no longer needed.
    pub fn grid(&self) -> CoarseGrid {
        CoarseGrid {
            factor: self.factor,
            spacing_mm: self.spacing_mm,
        }
    }
}

/// Level below which a voxel is air or background: halfway from the darkest values to Otsu's
/// threshold. Otsu alone can land inside the tissue range on MR whose background is not black,
/// and would then hide dark-ish marrow (T2) from the bands.
///
/// With `background_peak` (MR), a half-way level that leaves fewer than half of the voxels
/// above the background's own peak is inside the tissue, and the peak's end is taken instead:
/// on a T2 whose background is a narrow spike just under the darkest tissue, and whose tissue is
/// mostly dark with bright fluid and fat, Otsu splits tissue from fluid, and half-way to it lies
/// above the marrow (two of the real lumbar exams lost every body that way). Otherwise the
/// half-way level stays: the quantile bands then fall finer through the marrow's range. CT
/// keeps it always: its air is far below all tissue, and the lungs, between the two, are not
/// the patient's tissue for the bands.
pub(crate) fn air_level(sorted: &[f32], background_peak: bool) -> f32 {
    let lo = quantile(sorted, 0.01);
    let half_way = lo + 0.5 * (otsu(sorted) - lo);
    if !background_peak {
        return half_way;
    }
    let end = peak_end(sorted, lo, half_way);
    let tissue = sorted.len() - sorted.partition_point(|v| *v < end);
    let above = sorted.len() - sorted.partition_point(|v| *v <= half_way);
    if 2 * above < tissue {
        end
    } else {
        half_way
    }
}

/// Where the lowest peak of a sorted sample's histogram over `lo..hi` has fallen to an eighth of
/// its height, going up from it; `hi` when it never does. Bins are at least the data's own
/// quantum wide (integer-valued images would otherwise alternate full and empty bins).
fn peak_end(sorted: &[f32], lo: f32, hi: f32) -> f32 {
    let from = sorted.partition_point(|v| *v < lo);
    let to = sorted.partition_point(|v| *v < hi);
    let part = &sorted[from..to];
    let quantum = part
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f32::INFINITY, f32::min);
    if part.len() < 2 || !quantum.is_finite() || hi <= lo {
        return hi;
    }
    let width = ((hi - lo) / 128.0).max(quantum);
    let bins = (((hi - lo) / width).ceil() as usize).max(1);
    let mut hist = vec![0usize; bins];
    for v in part {
        hist[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let Some((peak, &top)) = hist
        .iter()
        .enumerate()
        .max_by_key(|(i, h)| (**h, usize::MAX - i))
    else {
        return hi;
    };
    match hist[peak..].iter().position(|h| 8 * h < top) {
        Some(k) => lo + (peak + k) as f32 * width,
        None => hi,
    }
}

/// Sorted sample of values, for quantiles.
pub(crate) fn sorted_sample(data: &Array3<f32>, max_samples: usize) -> Vec<f32> {
    let n = data.len();
    let step = (n / max_samples.max(1)).max(1);
    // On a contiguous array every `step`-th value is one slice step (ndarray's iterator walks
    // every element in between).
    let mut v: Vec<f32> = match data.as_slice() {
        Some(flat) => flat
            .iter()
            .step_by(step)
            .copied()
            .filter(|x| x.is_finite())
            .collect(),
        None => data
            .iter()
            .step_by(step)
            .copied()
            .filter(|x| x.is_finite())
            .collect(),
    };
    // A total order, so the parallel sort gives the same sequence; serial, it idled one thread.
    v.par_sort_unstable_by(f32::total_cmp);
    v
}

/// Otsu's threshold of a sorted sample: separates air/background from the patient on any
/// modality, so quantiles can be taken over the patient alone.
pub(crate) fn otsu(sorted: &[f32]) -> f32 {
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return 0.0;
    };
    if hi <= lo {
        return lo;
    }
    const BINS: usize = 256;
    let mut hist = [0f64; BINS];
    let scale = (BINS - 1) as f32 / (hi - lo);
    for v in sorted {
        hist[((v - lo) * scale) as usize] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0usize);
    for (t, h) in hist.iter().enumerate() {
        w0 += h;
        sum0 += t as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    lo + (best_t as f32 + 0.5) / scale
}

/// Value at quantile `q` (0..1) of a sorted sample.
pub(crate) fn quantile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_averages_blocks() {
        let mut a = Array3::<f32>::zeros((4, 4, 2));
        a[[0, 0, 0]] = 8.0;
        let c = Coarse::new(a.view(), [1.0, 1.0, 4.0], 2.0);
        assert_eq!(c.factor, [2, 2, 1]);
        assert_eq!(c.data.dim(), (2, 2, 2));
        assert_eq!(c.data[[0, 0, 0]], 2.0);
        assert_eq!(c.spacing_mm, [2.0, 2.0, 4.0]);
        assert_eq!(c.grid().fine_centre([0.0, 1.0, 1.0]), [0.5, 2.5, 1.0]);
    }

    #[test]
    fn mr_background_ends_where_its_spike_does() {
        // Exam 06's histogram, roughly: a narrow background spike at 29–30 (43 % of the
        // voxels), dark tissue at 31–45 (30 %) tailing off to 90 (15 %), bright fluid and fat
        // at 100–220 (12 %).
        let mut v: Vec<f32> = Vec::new();
        v.extend((0..430).map(|i| 29.0 + (i % 2) as f32));
        v.extend((0..300).map(|i| 31.0 + (i % 15) as f32));
        v.extend((0..150).map(|i| 46.0 + (i % 45) as f32));
        v.extend((0..120).map(|i| 100.0 + i as f32));
        v.sort_by(f32::total_cmp);
        let ct_like = air_level(&v, false);
        let mr = air_level(&v, true);
        // Half-way to Otsu's threshold (between tissue and fluid) is inside the tissue.
        assert!(ct_like > 40.0, "{ct_like}");
        assert!((30.0..=31.0).contains(&mr), "{mr}");
        // Where the tissue lies above the half-way level (a black background), it stays.
        let mut v: Vec<f32> = (0..500).map(|i| (i % 2) as f32).collect();
        v.extend((0..500).map(|i| 100.0 + (i % 20) as f32));
        assert_eq!(air_level(&v, true), air_level(&v, false));
    }

    #[test]
    fn otsu_splits_two_modes() {
        let mut v: Vec<f32> = (0..100).map(|i| (i % 10) as f32).collect();
        v.extend((0..100).map(|i| 100.0 + (i % 10) as f32));
        v.sort_by(f32::total_cmp);
        let t = otsu(&v);
        assert!(t > 9.0 && t < 100.0, "{t}");
    }
}
