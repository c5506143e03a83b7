//! Ground truth, computed from the analytic shape (never from the rendered images).

use serde::{Deserialize, Serialize};

use crate::model::{
    ArchPart, FractureKind, LevelSpec, Oedema, Side, Spine, Tissue, Tumour, Vertebra,
};
use rayon::prelude::*;

/// Heights of one body, mm, between the outer surfaces of the endplates along the body's own axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Heights {
    /// At 10 % of the AP depth at mid-height (from the anterior wall), mid-plane.
    pub anterior_mm: f64,
    /// At 50 %.
    pub middle_mm: f64,
    /// At 90 %.
    pub posterior_mm: f64,
    /// At 10 % of the width from the left margin, mid-depth (coronal).
    pub left_mm: f64,
    /// At 10 % of the width from the right margin, mid-depth (coronal).
    pub right_mm: f64,
}

/// Everything known about one level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelTruth {
    /// Level name (T10, L1, S1, ...).
    pub name: String,
    /// Centroid of the body, cortex included, LPS mm.
    pub centre_lps_mm: [f64; 3],
    /// Body volume, mm³.
    pub body_volume_mm3: f64,
    /// The body's cranial axis (unit, LPS).
    pub axis_cranial: [f64; 3],
    /// The body's posterior axis (unit, LPS).
    pub axis_posterior: [f64; 3],
    /// The body's left axis (unit, LPS).
    pub axis_left: [f64; 3],
    /// AP depth at mid-height, mm.
    pub depth_mm: f64,
    /// Width, mm.
    pub width_mm: f64,
    /// Measured heights.
    pub heights: Heights,
    /// Heights before any fracture (physiologic shape).
    pub nominal_heights: Heights,
    /// Expected height: the pre-fracture posterior height, mm.
    pub expected_height_mm: f64,
    /// 100 × (1 − min(Ha, Hm, Hp) / expected).
    pub height_loss_pct: f64,
    /// Kyphosis (anterior wedge) %: 100 × (1 − Ha / Hp).
    pub wedge_pct: f64,
    /// Dorsal-wall height reduction %: 100 × (1 − Hp / expected).
    pub dorsal_wall_loss_pct: f64,
    /// Lateral wedge (scoliosis) %: 100 × (1 − min(Hl, Hr) / max(Hl, Hr)).
    pub lateral_wedge_pct: f64,
    /// Physiologic (pre-fracture) wedge %, for level-specific normal ranges.
    pub physiologic_wedge_pct: f64,
    /// Genant grade from height loss: 0 < 20 %, 1 20–25 %, 2 25–40 %, 3 > 40 %.
    pub genant_grade: u8,
    /// Fracture morphology, if fractured.
    pub fracture: Option<FractureKind>,
    /// Marrow oedema pattern.
    pub oedema: Oedema,
    /// Tumour marrow replacement.
    pub tumour: Tumour,
    /// Posterior-element involvement.
    pub posterior_involvement: Side,
    /// Intravertebral cleft.
    pub cleft: bool,
    /// Retropulsion of the posterior wall beyond the line of the posterior corners, mm.
    pub retropulsion_mm: f64,
    /// Convex bulge of the posterior wall, mm.
    pub convex_posterior_mm: f64,
    /// Bony canal antero-posterior diameter behind the body at mid-height, mm.
    pub canal_ap_mm: f64,
    /// The thecal sac's antero-posterior diameter there as fluid-sensitive MR shows it, mm: from
    /// the first CSF behind the wall to the last CSF or cord, so epidural tissue abutting the
    /// cord leaves only the CSF behind it.
    pub thecal_sac_ap_mm: f64,
    /// Distance from the wall to that first CSF (the anterior epidural space), mm.
    pub anterior_epidural_space_mm: f64,
    /// Ventral epidural soft tissue, midline thickness, mm (0: none).
    pub epidural_mm: f64,
    /// Destroyed arc of the body's outer cortex, degrees (0: intact).
    pub cortical_gap_deg: f64,
    /// Paravertebral soft tissue, greatest thickness, mm (0: none).
    pub paravertebral_mm: f64,
    /// Retropulsion as a share of the mean bony canal diameter of the nearest levels above and
    /// below whose walls are not displaced, %.
    pub canal_compromise_pct: f64,
    /// The spec the level was built from.
    pub spec: LevelSpec,
    /// Pedicles, lamina and spinous process (bone, cortex included) as the images show them:
    /// where a neighbour's structure overlaps, the higher-priority one.
    pub arch: Vec<ArchTruth>,
}

/// One posterior-element structure of a level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchTruth {
    /// Which structure.
    pub part: ArchPart,
    /// Centroid, LPS mm.
    pub centroid_lps_mm: [f64; 3],
    /// Volume, mm³.
    pub volume_mm3: f64,
}

fn grade(loss: f64) -> u8 {
    match loss {
        l if l < 20.0 => 0,
        l if l < 25.0 => 1,
        l if l <= 40.0 => 2,
        _ => 3,
    }
}

fn heights(vb: &Vertebra, nominal: bool) -> Heights {
    let d = vb.depth;
    let wd = vb.width;
    let h = |v: f64, w: f64| {
        if nominal {
            vb.hm + vb.slope * v
        } else {
            vb.u_top(v, w) - vb.u_bot(v, w)
        }
    };
    // The posterior wall at mid-height is at +D/2 unless a convex bulge moves it.
    let mid_u = (vb.u_top(0.0, 0.0) + vb.u_bot(0.0, 0.0)) / 2.0;
    let back = if nominal {
        d / 2.0
    } else {
        posterior_wall_at(vb, mid_u)
    };
    let front = -d / 2.0;
    let at = |f: f64| front + f * (back - front);
    Heights {
        anterior_mm: h(at(0.1), 0.0),
        middle_mm: h(at(0.5), 0.0),
        posterior_mm: h(at(0.9), 0.0),
        left_mm: h(0.0, 0.4 * wd),
        right_mm: h(0.0, -0.4 * wd),
    }
}

/// Posterior wall position on the mid-plane at local height `u`, found by bisection on the shape.
fn posterior_wall_at(vb: &Vertebra, u: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, vb.depth);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if vb.body_at(u, mid, 0.0).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Computes the truth of every level (S2 and S3 are fused sacral segments and are left out).
pub fn truth(spine: &Spine) -> Vec<LevelTruth> {
    let mut out: Vec<LevelTruth> = spine
        .vertebrae
        .iter()
        .filter(|v| !matches!(v.name, "S2" | "S3"))
        .map(level_truth)
        .collect();
    for i in 0..out.len() {
        let intact = |j: &usize| out[*j].retropulsion_mm == 0.0;
        let above = (0..i).rev().find(intact);
        let below = (i + 1..out.len()).find(intact);
        let refs: Vec<f64> = above
            .into_iter()
            .chain(below)
            .map(|j| out[j].canal_ap_mm)
            .collect();
        if !refs.is_empty() {
            let reference = refs.iter().sum::<f64>() / refs.len() as f64;
            out[i].canal_compromise_pct = 100.0 * out[i].retropulsion_mm / reference;
        }
    }
    let arches: Vec<Vec<ArchTruth>> = (0..out.len())
        .into_par_iter()
        .map(|i| arch_truth(spine, i))
        .collect();
    for (t, a) in out.iter_mut().zip(arches) {
        t.arch = a;
    }
    out
}

/// Pedicles, lamina and spinous process of vertebra `i` by midpoint integration on a 0.7 mm
/// grid of its own frame (transverse processes left out).
fn arch_truth(spine: &Spine, i: usize) -> Vec<ArchTruth> {
    let vb = &spine.vertebrae[i];
    let h = 0.7;
    let (u0, u1) = (-vb.hm / 2.0 - vb.disc_below - 3.0, vb.hm / 2.0 + 9.0);
    let (v0, v1) = (vb.depth / 2.0 - 3.0, vb.depth / 2.0 + vb.canal_ap + 44.0);
    let half_w = vb.canal_w / 2.0 + vb.ped_w + 1.0;
    let parts = [
        ArchPart::LeftPedicle,
        ArchPart::RightPedicle,
        ArchPart::Lamina,
        ArchPart::Spinous,
    ];
    let mut acc = [([0.0f64; 3], 0usize); 4];
    let n = |a: f64, b: f64| ((b - a) / h).ceil() as usize;
    for a in 0..n(u0, u1) {
        let u = u0 + (a as f64 + 0.5) * h;
        for b in 0..n(v0, v1) {
            let v = v0 + (b as f64 + 0.5) * h;
            for c in 0..n(-half_w, half_w) {
                let w = -half_w + (c as f64 + 0.5) * h;
                let p = vb.to_lps(u, v, w);
                if let Some((j, part)) = spine.arch_part_at(&p) {
                    if let (true, Some(k)) = (j == i, parts.iter().position(|x| *x == part)) {
                        for (s, x) in acc[k].0.iter_mut().zip([p.x, p.y, p.z]) {
                            *s += x;
                        }
                        acc[k].1 += 1;
                    }
                }
            }
        }
    }
    parts
        .iter()
        .zip(acc)
        .filter(|(_, (_, count))| *count > 0)
        .map(|(part, (sum, count))| ArchTruth {
            part: *part,
            centroid_lps_mm: sum.map(|s| s / count as f64),
            volume_mm3: count as f64 * h * h * h,
        })
        .collect()
}

fn level_truth(vb: &Vertebra) -> LevelTruth {
    let hs = heights(vb, false);
    let nom = heights(vb, true);
    let expected = nom.posterior_mm;
    let min_h = hs.anterior_mm.min(hs.middle_mm).min(hs.posterior_mm);
    let loss = 100.0 * (1.0 - min_h / expected);
    let (cent, vol) = centroid(vb);
    let sac = thecal_sac(vb);
    let c = vb.to_lps(cent[0], cent[1], cent[2]);
    LevelTruth {
        name: vb.name.to_string(),
        centre_lps_mm: [c.x, c.y, c.z],
        body_volume_mm3: vol,
        axis_cranial: vb.u.into(),
        axis_posterior: vb.v.into(),
        axis_left: vb.w.into(),
        depth_mm: vb.depth,
        width_mm: vb.width,
        heights: hs,
        nominal_heights: nom,
        expected_height_mm: expected,
        height_loss_pct: loss,
        wedge_pct: 100.0 * (1.0 - hs.anterior_mm / hs.posterior_mm),
        dorsal_wall_loss_pct: 100.0 * (1.0 - hs.posterior_mm / expected),
        lateral_wedge_pct: 100.0
            * (1.0 - hs.left_mm.min(hs.right_mm) / hs.left_mm.max(hs.right_mm)),
        physiologic_wedge_pct: 100.0 * (1.0 - nom.anterior_mm / nom.posterior_mm),
        genant_grade: if vb.spec.fracture.is_some() {
            grade(loss)
        } else {
            0
        },
        fracture: vb.spec.fracture.map(|f| f.kind),
        oedema: vb.spec.oedema,
        tumour: vb.spec.tumour,
        posterior_involvement: vb.spec.posterior,
        cleft: vb.spec.cleft,
        retropulsion_mm: vb.spec.retropulsion_mm,
        convex_posterior_mm: vb.spec.convex_posterior_mm,
        canal_ap_mm: vb.canal_ap,
        thecal_sac_ap_mm: sac.1 - sac.0,
        anterior_epidural_space_mm: sac.0,
        epidural_mm: vb.spec.epidural_mm,
        cortical_gap_deg: vb.spec.cortical_gap_deg,
        paravertebral_mm: vb.spec.paravertebral_mm,
        canal_compromise_pct: 0.0,
        spec: vb.spec,
        arch: Vec::new(),
    }
}

/// The thecal sac along the mid-sagittal ray at mid-height: (first CSF, last CSF or cord), mm
/// behind the wall.
fn thecal_sac(vb: &Vertebra) -> (f64, f64) {
    let step = 0.05;
    let (mut front, mut back) = (None, 0.0);
    for k in 0..(40.0 / step) as usize {
        let t = k as f64 * step;
        match vb.classify(0.0, vb.depth / 2.0 + t, 0.0).map(|c| c.0) {
            Some(Tissue::Csf) => {
                front.get_or_insert(t);
                back = t + step;
            }
            Some(Tissue::Cord) if front.is_some() => back = t + step,
            _ => {}
        }
    }
    (front.unwrap_or(0.0), back.max(front.unwrap_or(0.0)))
}

/// Centroid (local u, v, w) and volume of the body by midpoint integration on a 0.2 mm grid.
fn centroid(vb: &Vertebra) -> ([f64; 3], f64) {
    let h = 0.2;
    let (hu, hv, hw) = (
        vb.hm / 2.0 + vb.depth * 0.5,
        vb.depth / 2.0 + 16.0,
        vb.width / 2.0 + 1.0,
    );
    let nu = (2.0 * hu / h).ceil() as i64;
    let nv = (2.0 * hv / h).ceil() as i64;
    let nw = (2.0 * hw / h).ceil() as i64;
    let mut sum = [0.0f64; 3];
    let mut count = 0u64;
    for a in 0..nw {
        let w = -hw + (a as f64 + 0.5) * h;
        for b in 0..nv {
            let v = -hv + (b as f64 + 0.5) * h;
            // Column extent in u is bounded by the endplate surfaces at (v, w).
            let (lo, hi) = (vb.u_bot(v, w), vb.u_top(v, w));
            let c0 = ((lo + hu) / h).floor().max(0.0) as i64;
            let c1 = (((hi + hu) / h).ceil() as i64).min(nu);
            for c in c0..c1 {
                let u = -hu + (c as f64 + 0.5) * h;
                if vb.body_at(u, v, w).is_some() {
                    sum[0] += u;
                    sum[1] += v;
                    sum[2] += w;
                    count += 1;
                }
            }
        }
    }
    let n = count.max(1) as f64;
    (
        [sum[0] / n, sum[1] / n, sum[2] / n],
        count as f64 * h * h * h,
    )
}
