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
