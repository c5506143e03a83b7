//! Regions of interest in patient space: the body interior (mask eroded away from cortex and
//! endplates), discs between bodies, pedicles and the posterior arch from each level's frame.

use nalgebra::Vector3;
use spinetriage_segment::{BodyMask, CanonicalView};
use spinetriage_volume::LpsPoint;

/// Margin the body ROI keeps from the mask's surface, mm: the 1 mm cortex plus a voxel of
/// partial volume, so that cortical bone and endplates do not dilute the marrow signal.
pub const ERODE_MM: f64 = 2.0;

/// Points of the body mask at least [`ERODE_MM`] inside its surface along each canonical axis,
/// in LPS mm, with each point's relative height in the body (0 caudal … 1 cranial, along
/// `cranial`) for the pattern of a finding.
pub fn body_interior(
    mask: &BodyMask,
    view: &CanonicalView,
    centre: [f64; 3],
    cranial: [f64; 3],
    half_height_mm: f64,
) -> Vec<(LpsPoint, f64)> {
    let r: [usize; 3] = std::array::from_fn(|a| (ERODE_MM / view.spacing_mm[a]).ceil() as usize);
    let m = &mask.mask;
    let (n0, n1, n2) = m.dim();
    let inside = |a: isize, b: isize, c: isize| {
        a >= 0
            && b >= 0
            && c >= 0
            && (a as usize) < n0
            && (b as usize) < n1
            && (c as usize) < n2
            && m[[a as usize, b as usize, c as usize]] != 0
    };
    let up = Vector3::from(cranial);
    let c0 = Vector3::from(centre);
    let mut out = Vec::new();
    for ((a, b, c), v) in m.indexed_iter() {
        if *v == 0 {
            continue;
        }
        let (a, b, c) = (a as isize, b as isize, c as isize);
        let deep = (1..=r[0] as isize).all(|d| inside(a - d, b, c) && inside(a + d, b, c))
            && (1..=r[1] as isize).all(|d| inside(a, b - d, c) && inside(a, b + d, c))
            && (1..=r[2] as isize).all(|d| inside(a, b, c - d) && inside(a, b, c + d));
        if deep {
            let p = view.to_lps([
                (a as usize + mask.origin[0]) as f64,
                (b as usize + mask.origin[1]) as f64,
                (c as usize + mask.origin[2]) as f64,
            ]);
            let h = (p.0.coords - c0).dot(&up);
            let t = (0.5 + h / (2.0 * half_height_mm.max(1.0))).clamp(0.0, 1.0);
            out.push((p, t));
        }
    }
    out
}

/// Points of a ball of `radius_mm` around `centre`, on a `step_mm` grid.
pub fn ball(centre: Vector3<f64>, radius_mm: f64, step_mm: f64) -> Vec<LpsPoint> {
    let n = (radius_mm / step_mm).floor() as i32;
    let mut out = Vec::new();
    for i in -n..=n {
        for j in -n..=n {
            for k in -n..=n {
                let d = Vector3::new(i as f64, j as f64, k as f64) * step_mm;
                if d.norm() <= radius_mm {
                    let p = centre + d;
                    out.push(LpsPoint::new(p.x, p.y, p.z));
                }
            }
        }
    }
    out
}

/// A point of the body model: where it is, its relative height (0 caudal … 1 cranial), and
/// whether it lies in the core (inside the measured endplates) or only under the chord of the
/// anterior and posterior heights (where a cleft may have stopped the middle height short).
#[derive(Debug, Clone, Copy)]
pub struct ModelPoint {
    /// Position, LPS mm.
    pub p: LpsPoint,
    /// Relative height in the body.
    pub t: f64,
    /// Inside the measured endplates (not only under the anterior–posterior chord).
    pub core: bool,
}

fn interp(pts: &[(f64, f64); 3], v: f64) -> f64 {
    let (a, m, p) = (pts[0], pts[1], pts[2]);
    if v <= a.0 {
        a.1
    } else if v <= m.0 {
        a.1 + (m.1 - a.1) * (v - a.0) / (m.0 - a.0).max(1e-6)
    } else if v <= p.0 {
        m.1 + (p.1 - m.1) * (v - m.0) / (p.0 - m.0).max(1e-6)
    } else {
        p.1
    }
}

/// The body as measured: an elliptic section (depth × width) between endplate surfaces through
/// the anterior, middle and posterior height lines, [`ERODE_MM`] inside every surface, sampled
/// every `step_mm`. It does not depend on the mask, so marrow whose signal kept it out of the
/// mask (oedema or tumour on T1, gas on CT) is still sampled. `None` for a level without all
/// three heights.
pub fn body_model(l: &spinetriage_measure::Level, step_mm: f64) -> Option<Vec<ModelPoint>> {
    let m = &l.measurement;
    let (a, mid, p) = (m.anterior?, m.middle?, m.posterior?);
    let (depth, width) = (m.depth_mm?, m.width_mm?);
    let c = Vector3::from(m.center_lps_mm);
    let (u, v, w) = (
        Vector3::from(m.frame.cranial),
        Vector3::from(m.frame.posterior),
        Vector3::from(m.frame.left),
    );
    let local = |x: [f64; 3]| {
        let d = Vector3::from(x) - c;
        (d.dot(&v), d.dot(&u))
    };
    let sup = [a, mid, p].map(|h| local(h.superior_lps_mm));
    let inf = [a, mid, p].map(|h| local(h.inferior_lps_mm));
    let (va, vp) = ((sup[0].0 + inf[0].0) / 2.0, (sup[2].0 + inf[2].0) / 2.0);
    let vmid = (va + vp) / 2.0;
    let (ra, rw) = (depth / 2.0 - ERODE_MM, width / 2.0 - ERODE_MM);
    if ra <= 1.0 || rw <= 1.0 {
        return None;
    }
    let chord = |s: &[(f64, f64); 3], x: f64| {
        let (a, p) = (s[0], s[2]);
        let span = if (p.0 - a.0).abs() < 1e-6 {
            1e-6
        } else {
            p.0 - a.0
        };
        a.1 + (p.1 - a.1) * (x - a.0) / span
    };
    let hmax = sup.iter().map(|x| x.1).fold(f64::MIN, f64::max);
    let hmin = inf.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    let mut out = Vec::new();
    let n = |r: f64| (r / step_mm).ceil() as i32;
    for i in -n(ra)..=n(ra) {
        let x = vmid + i as f64 * step_mm;
        for j in -n(rw)..=n(rw) {
            let y = j as f64 * step_mm;
            if ((x - vmid) / ra).powi(2) + (y / rw).powi(2) > 1.0 {
                continue;
            }
            let (top, bot) = (interp(&sup, x) - ERODE_MM, interp(&inf, x) + ERODE_MM);
            let (ctop, cbot) = (
                chord(&sup, x).max(interp(&sup, x)) - ERODE_MM,
                chord(&inf, x).min(interp(&inf, x)) + ERODE_MM,
            );
            for k in -n(-hmin).min(200)..=n(hmax).min(200) {
                let h = k as f64 * step_mm;
                if h < cbot || h > ctop {
                    continue;
                }
                let core = h >= bot && h <= top;
                let t = ((h - bot) / (top - bot).max(1.0)).clamp(0.0, 1.0);
                let q = c + v * x + w * y + u * h;
                out.push(ModelPoint {
                    p: LpsPoint::new(q.x, q.y, q.z),
                    t,
                    core,
                });
            }
        }
    }
    Some(out)
}
