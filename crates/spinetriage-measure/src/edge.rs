//! Sub-voxel outer-surface location along a ray.
//!
//! A ray leaving a vertebral body crosses marrow, then cortex (darker on MR, brighter on CT, often
//! thinner than a voxel), then whatever lies outside (disc, canal, soft tissue). The profile is
//! fitted with that model, three constant levels with edges `a` (inner cortex surface) and `b`
//! (outer surface), blurred by the scanner's and the interpolation's point-spread function. For
//! given edges the levels are a linear least-squares problem, so the fit is a search over
//! `(a, b)` with a 3×3 solve at each point. The outer surface `b` is what the heights need; its
//! uncertainty comes from the curvature of the residual around the optimum.

/// Standard normal cumulative distribution (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
pub(crate) fn phi(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

/// A located surface.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Distance of the outer surface from the ray's origin, mm.
    pub outer_mm: f64,
    /// Distance of the inner cortical surface, mm.
    pub inner_mm: f64,
    /// Standard uncertainty of `outer_mm`, mm.
    pub sigma_mm: f64,
    /// Fitted levels: inside (marrow), cortex, outside.
    pub levels: [f64; 3],
    /// Root-mean-square residual of the fit.
    pub rms: f64,
}

/// A unit step at `at` blurred by a Gaussian of σ `psf`, at each position of `t`.
fn blurred_step(t: &[f64], at: f64, psf: f64) -> Vec<f64> {
    t.iter().map(|x| phi((x - at) / psf)).collect()
}

/// The three-level model's residual for given blurred steps: `ga[k]` and `gb[k]` are the steps
/// at the inner and outer cortical surfaces, at each sample `k` of `f`. The steps are
/// precomputed by the caller, since a grid search meets each surface position many times.
fn sse_rows(ga: &[f64], gb: &[f64], f: &[f64], cortex: Option<f64>) -> (f64, [f64; 3]) {
    if let Some(c) = cortex {
        return sse_fixed_cortex(ga, gb, f, c);
    }
    // Normal equations for the three level weights.
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for ((&ga, &gb), &y) in ga.iter().zip(gb).zip(f) {
        let r = [1.0 - ga, ga - gb, gb];
        for i in 0..3 {
            for j in 0..3 {
                ata[i][j] += r[i] * r[j];
            }
            atb[i] += r[i] * y;
        }
    }
    // Ridge keeps a vanishing cortex (b ≈ a) solvable.
    for (i, row) in ata.iter_mut().enumerate() {
        row[i] += 1e-6;
    }
    let m = nalgebra::Matrix3::from_fn(|i, j| ata[i][j]);
    let lv = match m.try_inverse() {
        Some(inv) => inv * nalgebra::Vector3::new(atb[0], atb[1], atb[2]),
        None => return (f64::INFINITY, [0.0; 3]),
    };
    let mut sse = 0.0;
    for ((&ga, &gb), &y) in ga.iter().zip(gb).zip(f) {
        let m = (1.0 - ga) * lv[0] + (ga - gb) * lv[1] + gb * lv[2];
        sse += (y - m) * (y - m);
    }
    (sse, [lv[0], lv[1], lv[2]])
}

/// With the cortex level known, the cortex thickness is identifiable even below a voxel: only
/// the inside and outside levels are free.
fn sse_fixed_cortex(ga: &[f64], gb: &[f64], f: &[f64], c: f64) -> (f64, [f64; 3]) {
    let (mut s00, mut s01, mut s11, mut r0, mut r1) = (1e-9, 0.0, 1e-9, 0.0, 0.0);
    for ((&ga, &gb), &y) in ga.iter().zip(gb).zip(f) {
        let (p0, pc, p1) = (1.0 - ga, ga - gb, gb);
        let y2 = y - c * pc;
        s00 += p0 * p0;
        s01 += p0 * p1;
        s11 += p1 * p1;
        r0 += p0 * y2;
        r1 += p1 * y2;
    }
    let det = s00 * s11 - s01 * s01;
    if det.abs() < 1e-12 {
        return (f64::INFINITY, [0.0; 3]);
    }
    let m = (r0 * s11 - r1 * s01) / det;
    let d = (s00 * r1 - s01 * r0) / det;
    let mut sse = 0.0;
    for ((&ga, &gb), &y) in ga.iter().zip(gb).zip(f) {
        let e = y - (m * (1.0 - ga) + c * (ga - gb) + d * gb);
        sse += e * e;
    }
    (sse, [m, c, d])
}

/// Fits the outer surface in a profile `f` sampled at positions `t` (mm, increasing outward).
/// `guess` is a rough outer-surface position (from a mask), searched within `±reach_mm`;
/// `psf_mm` is the Gaussian σ of the blur along the ray.
pub fn fit_edge(
    t: &[f64],
    f: &[f64],
    guess: f64,
    reach_mm: f64,
    psf_mm: f64,
    cortex: Option<f64>,
) -> Option<Edge> {
    if t.len() < 6 || t.len() != f.len() {
        return None;
    }
    let psf = psf_mm.max(0.05);
    let step = 0.1;
    let mut best = (f64::INFINITY, 0.0, 0.0, [0.0; 3]);
    // Coarse to fine: 0.3 mm over the whole range (cortex 0–3 mm thick: vertebral endplates
    // 0.3–1.5 mm, walls up to ~2 mm), then 0.05 mm around the best pair.
    let search = |best: &mut (f64, f64, f64, [f64; 3]),
                  b_lo: f64,
                  b_hi: f64,
                  c_lo: f64,
                  c_hi: f64,
                  st: f64| {
        let nb = ((b_hi - b_lo) / st).round() as usize;
        let nc = ((c_hi - c_lo) / st).round() as usize;
        // Both surfaces lie on one grid of step `st`: b = b_lo + ib·st, and
        // a = b − c_lo − ic·st = base + (ib − ic + nc)·st. The blurred step at each grid
        // position is computed once (not once per pair: 9× fewer error functions).
        let base = b_lo - c_lo - nc as f64 * st;
        let steps = |at: f64| blurred_step(t, at, psf);
        let outer: Vec<Vec<f64>> = (0..=nb).map(|ib| steps(b_lo + ib as f64 * st)).collect();
        let inner: Vec<Vec<f64>> = (0..=nb + nc)
            .map(|ja| steps(base + ja as f64 * st))
            .collect();
        for (ib, gb) in outer.iter().enumerate() {
            let b = b_lo + ib as f64 * st;
            for ic in 0..=nc {
                let ja = ib + nc - ic;
                let a = base + ja as f64 * st;
                let (sse, lv) = sse_rows(&inner[ja], gb, f, cortex);
                if sse < best.0 {
                    *best = (sse, a, b, lv);
                }
            }
        }
    };
    search(&mut best, guess - reach_mm, guess + reach_mm, 0.0, 3.0, 0.3);
    let (b0, c0) = (best.2, best.2 - best.1);
    search(
        &mut best,
        b0 - 0.3,
        b0 + 0.3,
        (c0 - 0.3).max(0.0),
        (c0 + 0.3).min(3.0),
        0.05,
    );
    let (sse, a, b, lv) = best;
    if !sse.is_finite() {
        return None;
    }
    let n = t.len() as f64;
    let dof = (n - 5.0).max(1.0);
    let s2 = sse / dof;
    // Curvature of the SSE in b (levels and a re-fitted) → variance of b.
    let h = 0.2;
    let side = |bb: f64| {
        // The outer step is the same for every cortex thickness tried: computed once.
        let gb = blurred_step(t, bb, psf);
        (0..=15)
            .map(|ic| {
                let a = bb - ic as f64 * 2.0 * step;
                sse_rows(&blurred_step(t, a, psf), &gb, f, cortex).0
            })
            .fold(f64::INFINITY, f64::min)
    };
    let curv = (side(b + h) + side(b - h) - 2.0 * sse) / (h * h);
    let sigma = if curv > 0.0 {
        (2.0 * s2 / curv).sqrt()
    } else {
        reach_mm
    };
    Some(Edge {
        outer_mm: b,
        inner_mm: a,
        sigma_mm: sigma,
        levels: lv,
        rms: s2.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Box-averaged step profile, the way a voxel sees it.
    fn profile(a: f64, b: f64, lv: [f64; 3], voxel: f64) -> (Vec<f64>, Vec<f64>) {
        let mut t = Vec::new();
        let mut f = Vec::new();
        let mut x = 0.0;
        while x < 20.0 {
            let mut acc = 0.0;
            for k in 0..100 {
                let y = x - voxel / 2.0 + voxel * (k as f64 + 0.5) / 100.0;
                acc += if y < a {
                    lv[0]
                } else if y < b {
                    lv[1]
                } else {
                    lv[2]
                };
            }
            t.push(x);
            f.push(acc / 100.0);
            x += voxel;
        }
        (t, f)
    }

    #[test]
    fn phi_matches_known_values() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((phi(-2.0) - 0.022_750_1).abs() < 1e-6);
    }

    #[test]
    fn finds_a_sub_voxel_outer_surface_behind_a_thin_dark_cortex() {
        for shift in [0.0, 0.25, 0.5, 0.75] {
            let b = 10.3 + shift;
            let (t, f) = profile(b - 1.0, b, [400.0, 0.0, 250.0], 1.0);
            let e = fit_edge(&t, &f, 10.0, 3.0, 0.29, Some(0.0)).expect("edge");
            assert!(
                (e.outer_mm - b).abs() < 0.2,
                "shift {shift}: {} vs {b}",
                e.outer_mm
            );
        }
    }

    #[test]
    fn finds_a_bright_ct_cortex_outer_surface() {
        let (t, f) = profile(11.1, 12.1, [170.0, 950.0, 85.0], 0.9);
        let e = fit_edge(&t, &f, 12.5, 3.0, 0.26, Some(950.0)).expect("edge");
        assert!((e.outer_mm - 12.1).abs() < 0.2, "{}", e.outer_mm);
        assert!(e.sigma_mm < 0.5);
    }
}
