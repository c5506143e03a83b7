//! Rasterising the model: partial-volume edges, bias field, noise.

use nalgebra::Vector3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{Spine, TISSUES};
use crate::rng::Rng;

/// A sampling grid in LPS: voxel (i, j, k) centre = origin + i·col_step + j·row_step + k·slice_step.
#[derive(Debug, Clone, Copy)]
pub struct SliceGrid {
    /// Columns (i).
    pub cols: usize,
    /// Rows (j).
    pub rows: usize,
    /// Slices (k).
    pub slices: usize,
    /// Centre of voxel (0, 0, 0).
    pub origin: Vector3<f64>,
    /// Unit row direction (i increases along it).
    pub row_dir: Vector3<f64>,
    /// Unit column direction (j increases along it).
    pub col_dir: Vector3<f64>,
    /// Unit slice normal.
    pub normal: Vector3<f64>,
    /// Pixel spacing, mm (square pixels).
    pub pixel_mm: f64,
    /// Slice spacing, mm.
    pub spacing_mm: f64,
    /// Slice thickness (through-plane extent integrated for partial volume), mm.
    pub thickness_mm: f64,
}

impl SliceGrid {
    /// LPS position of a continuous voxel index.
    pub fn at(&self, i: f64, j: f64, k: f64) -> Vector3<f64> {
        self.origin
            + self.row_dir * (i * self.pixel_mm)
            + self.col_dir * (j * self.pixel_mm)
            + self.normal * (k * self.spacing_mm)
    }
}

/// Per-tissue intensities of one contrast.
pub type Contrast = [f32; TISSUES];

/// CT attenuation, HU, indexed by [`Tissue`].
pub fn ct_contrast(trabecular_hu: f64) -> Contrast {
    let tb = trabecular_hu as f32;
    [
        -1000.0,
        -100.0,
        45.0,
        8.0,
        35.0,
        -90.0,
        85.0,
        105.0,
        950.0,
        tb,
        tb + 15.0,
        40.0,
        750.0,
        -900.0,
        40.0,
    ]
}

/// MR sequences the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MrSequence {
    /// Short-tau inversion recovery.
    Stir,
    /// T1-weighted TSE.
    T1,
    /// T2-weighted TSE.
    T2,
}

/// MR signal (arbitrary units, 1.5 T-like relative values) by [`Tissue`].
pub fn mr_contrast(seq: MrSequence) -> Contrast {
    match seq {
        MrSequence::T1 => [
            0.0, 900.0, 400.0, 150.0, 450.0, 900.0, 350.0, 300.0, 60.0, 750.0, 280.0, 230.0, 150.0,
            140.0, 240.0,
        ],
        MrSequence::T2 => [
            0.0, 700.0, 250.0, 1000.0, 450.0, 700.0, 800.0, 200.0, 50.0, 500.0, 650.0, 550.0,
            150.0, 1000.0, 550.0,
        ],
        MrSequence::Stir => [
            0.0, 40.0, 120.0, 900.0, 300.0, 40.0, 550.0, 150.0, 30.0, 110.0, 650.0, 600.0, 100.0,
            950.0, 600.0,
        ],
    }
}

/// Renders noiseless images of several contrasts at once, with partial volume at tissue edges.
///
/// Tissue labels are taken at voxel centres; a voxel whose six neighbours share its label gets the
/// label's intensity, any other voxel is supersampled (`sub_in` × `sub_in` in-plane, `sub_through`
/// across the slice thickness) and gets the mean over its sub-samples.
pub fn render(
    spine: &Spine,
    g: &SliceGrid,
    contrasts: &[Contrast],
    sub_in: usize,
    sub_through: usize,
) -> Vec<Vec<f32>> {
    let plane = g.rows * g.cols;
    let mut labels = vec![0u8; plane * g.slices];
    labels
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, out)| {
            for j in 0..g.rows {
                for i in 0..g.cols {
                    let p = g.at(i as f64, j as f64, k as f64);
                    out[j * g.cols + i] = spine.tissue_at(&p) as u8;
                }
            }
        });
    let nc = contrasts.len();
    let mut outs: Vec<Vec<f32>> = vec![vec![0.0; plane * g.slices]; nc];
    // Slice-major parallel fill of every contrast.
    let per_slice: Vec<Vec<Vec<f32>>> = (0..g.slices)
        .into_par_iter()
        .map(|k| {
            let mut o = vec![vec![0.0f32; plane]; nc];
            let lab = |i: usize, j: usize, k: usize| labels[k * plane + j * g.cols + i];
            for j in 0..g.rows {
                for i in 0..g.cols {
                    let l = lab(i, j, k);
                    let mut uniform = true;
                    if i > 0 && lab(i - 1, j, k) != l
                        || i + 1 < g.cols && lab(i + 1, j, k) != l
                        || j > 0 && lab(i, j - 1, k) != l
                        || j + 1 < g.rows && lab(i, j + 1, k) != l
                        || k > 0 && lab(i, j, k - 1) != l
                        || k + 1 < g.slices && lab(i, j, k + 1) != l
                    {
                        uniform = false;
                    }
                    if uniform {
                        for c in 0..nc {
                            o[c][j * g.cols + i] = contrasts[c][l as usize];
                        }
                        continue;
                    }
                    let mut frac = [0u16; TISSUES];
                    let t_frac = g.thickness_mm / g.spacing_mm;
                    for a in 0..sub_through {
                        let dk = ((a as f64 + 0.5) / sub_through as f64 - 0.5) * t_frac;
                        for b in 0..sub_in {
                            let dj = (b as f64 + 0.5) / sub_in as f64 - 0.5;
                            for c in 0..sub_in {
                                let di = (c as f64 + 0.5) / sub_in as f64 - 0.5;
                                let p = g.at(i as f64 + di, j as f64 + dj, k as f64 + dk);
                                frac[spine.tissue_at(&p) as usize] += 1;
                            }
                        }
                    }
                    let n = (sub_through * sub_in * sub_in) as f32;
                    for c in 0..nc {
                        let mut v = 0.0f32;
                        for (t, &f) in frac.iter().enumerate() {
                            if f > 0 {
                                v += contrasts[c][t] * f as f32;
                            }
                        }
                        o[c][j * g.cols + i] = v / n;
                    }
                }
            }
            o
        })
        .collect();
    for (k, o) in per_slice.into_iter().enumerate() {
        for (c, img) in o.into_iter().enumerate() {
            outs[c][k * plane..(k + 1) * plane].copy_from_slice(&img);
        }
    }
    outs
}

/// Multiplies an MR image by a smooth bias field of peak amplitude `bias_pct` % (a cranio-caudal
/// coil-coverage gradient plus an antero-posterior surface-coil falloff).
pub fn apply_bias(img: &mut [f32], g: &SliceGrid, centre: Vector3<f64>, bias_pct: f64) {
    if bias_pct == 0.0 {
        return;
    }
    let half_z = (g.rows as f64 * g.pixel_mm / 2.0).max(1.0);
    let half_y = (g.cols as f64 * g.pixel_mm / 2.0).max(1.0);
    let plane = g.rows * g.cols;
    img.par_chunks_mut(plane).enumerate().for_each(|(k, s)| {
        for j in 0..g.rows {
            for i in 0..g.cols {
                let p = g.at(i as f64, j as f64, k as f64) - centre;
                let f = (0.6 * p.z / half_z + 0.4 * p.y / half_y).clamp(-1.0, 1.0);
                s[j * g.cols + i] *= (1.0 + bias_pct / 100.0 * f) as f32;
            }
        }
    });
}

/// Adds noise, slice by slice with its own seeded stream so output is independent of thread count:
/// Rician (magnitude of complex Gaussian) when `rician`, else Gaussian.
pub fn add_noise(img: &mut [f32], plane: usize, sigma: f64, rician: bool, seed: u64) {
    if sigma <= 0.0 {
        return;
    }
    img.par_chunks_mut(plane).enumerate().for_each(|(k, s)| {
        let mut rng = Rng::new(seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for v in s.iter_mut() {
            let (n1, n2) = rng.gauss_pair();
            if rician {
                let re = f64::from(*v) + sigma * n1;
                let im = sigma * n2;
                *v = (re * re + im * im).sqrt() as f32;
            } else {
                *v += (sigma * n1) as f32;
            }
        }
    });
}
