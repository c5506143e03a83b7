//! The spinal canal's antero-posterior diameter behind each body.
//!
//! Canal compromise is a share of the canal the neighbouring levels have, so the canal is measured
//! at every level the same way: mid-sagittal, at the body's mid-height, along the vertebra's
//! posterior axis, starting at the posterior wall's outer surface. What bounds it depends on the
//! image:
//! - **CT** shows the bony canal: the diameter runs to the front of the neural arch (the lamina),
//!   the first bone met behind the wall.
//! - **Fat-suppressed fluid-sensitive MR** (STIR, T2 fat-sat) shows the thecal sac: the diameter
//!   is the extent of the bright CSF column, the cord's intermediate signal included. The sac is
//!   narrower than the bony canal, so a displacement is a larger share of it.
//!
//! T1 and plain T2 do not separate the canal's contents from the arch's marrow and the epidural
//! fat reliably, so they are not used: the canal is then "not measured", never guessed.

use nalgebra::Vector3;
use serde::Serialize;
use spinetriage_volume::{LpsPoint, Point3, SeriesKind, Volume};

/// What a canal diameter spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CanalExtent {
    /// Posterior wall to the front of the neural arch (CT).
    BonyCanal,
    /// The CSF-filled thecal sac (fat-suppressed fluid-sensitive MR).
    ThecalSac,
}

/// The canal at one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Canal {
    /// Antero-posterior diameter at mid-height, mid-sagittal, mm.
    pub ap_mm: f64,
    /// Standard uncertainty of `ap_mm`, from the sampling step and the image's blur, mm.
    pub sigma_mm: f64,
    /// What the diameter spans.
    pub extent: CanalExtent,
    /// The series it was measured on.
    pub series_uid: String,
    /// Thecal sac only: distance from the wall to the sac's front (the anterior epidural space),
    /// mm.
    pub anterior_space_mm: Option<f64>,
    /// Thecal sac only: the anterior epidural space's median signal, from 0 (the darkest tenth
    /// near the wall: suppressed fat) to 1 (CSF).
    pub anterior_signal: Option<f64>,
}

/// Sampling step along the ray, mm.
const STEP_MM: f64 = 0.25;
/// How far behind the wall the canal's far boundary is looked for, mm (adult canals are ≤ 25 mm).
const REACH_MM: f64 = 32.0;

/// The series a study's canal is measured on: CT, else a fat-suppressed fluid-sensitive MR in the
/// shape series' frame of reference.
pub fn canal_volume<'a>(vols: &'a [Volume], shape: &Volume) -> Option<&'a Volume> {
    vols.iter()
        .find(|v| {
            v.kind == SeriesKind::Ct && (v.series_uid == shape.series_uid || same_frame(v, shape))
        })
        .or_else(|| sac_volume(vols, shape))
}

/// The series the thecal sac is measured on: a fat-suppressed fluid-sensitive MR in the shape
/// series' frame of reference (the wall points come from the shape series).
pub fn sac_volume<'a>(vols: &'a [Volume], shape: &Volume) -> Option<&'a Volume> {
    vols.iter().find(|v| {
        matches!(v.kind, SeriesKind::MrStir | SeriesKind::MrT2FatSat) && same_frame(v, shape)
    })
}

fn same_frame(v: &Volume, shape: &Volume) -> bool {
    v.frame_of_reference_uid.is_some() && v.frame_of_reference_uid == shape.frame_of_reference_uid
}

fn profile(vol: &Volume, start: Point3<f64>, dir: Vector3<f64>) -> Vec<f64> {
    let n = (REACH_MM / STEP_MM) as usize;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let p = start + dir * (k as f64 * STEP_MM);
        match vol.sample_lps(LpsPoint(p)) {
            Some(v) => out.push(f64::from(v)),
            None => break,
        }
    }
    out
}

/// Position (in samples) where `f` crosses `level` between samples `k - 1` and `k`.
fn crossing(f: &[f64], k: usize, level: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let (a, b) = (f[k - 1], f[k]);
    if (b - a).abs() < 1e-12 {
        return k as f64;
    }
    (k - 1) as f64 + ((level - a) / (b - a)).clamp(0.0, 1.0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Bony canal on CT: from the wall to the half-way crossing between the canal's contents and the
/// first bone behind them. `cortex` is the body's cortical level on this image: the arch is bone
/// when it climbs at least half-way from the canal's contents towards it.
fn bony(f: &[f64], cortex: f64) -> Option<f64> {
    let skip = (1.5 / STEP_MM) as usize;
    let contents = median(f.get(skip..(4.0 / STEP_MM) as usize)?.to_vec())?;
    if cortex <= contents {
        return None;
    }
    let bone = contents + 0.5 * (cortex - contents);
    let k = (skip..f.len()).find(|&k| f[k] >= bone)?;
    // The arch's front surface: half-way to its own peak (a thin, blurred cortex peaks lower).
    let peak = f[k..(k + (3.0 / STEP_MM) as usize).min(f.len())]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let half = contents + 0.5 * (peak - contents);
    let k0 = (skip..=k).find(|&j| f[j] >= half)?;
    Some(crossing(f, k0, half) * STEP_MM)
}

/// A thecal sac along a ray: its diameter, the space in front of it and that space's signal.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sac {
    ap_mm: f64,
    front_mm: f64,
    front_signal: f64,
}

/// Thecal sac on fluid-sensitive fat-suppressed MR: the bright CSF column behind the wall, gaps
/// of intermediate signal (the cord, nerve roots) up to `MAX_GAP_MM` included. Its front is the
/// half-way crossing between CSF and whatever lies in front of it: suppressed fat normally, and
/// tissue of intermediate signal (epidural tumour) must not count as sac.
fn sac(f: &[f64]) -> Option<Sac> {
    const MAX_GAP_MM: f64 = 10.0;
    // Ventral epidural tissue displaces the sac by up to about this much.
    const MAX_FRONT_MM: f64 = 15.0;
    let near = f.get(..(25.0 / STEP_MM) as usize).unwrap_or(f);
    let mut sorted = near.to_vec();
    sorted.sort_by(f64::total_cmp);
    let lo = *sorted.get(sorted.len() / 10)?;
    // CSF is the brightest thing here, but it may be a thin rim behind epidural tissue: its
    // level is the highest 1 mm running median, not a percentile.
    let w = (1.0 / STEP_MM) as usize;
    let hi = (0..near.len().saturating_sub(w))
        .filter_map(|k| median(near[k..k + w].to_vec()))
        .fold(f64::NEG_INFINITY, f64::max);
    // CSF must stand out: the cord and the dark arch are both well below it.
    if !hi.is_finite() || hi <= lo || hi - lo < 0.25 * hi.abs() {
        return None;
    }
    let core = near.iter().position(|&v| v >= lo + 0.8 * (hi - lo))?;
    if core as f64 * STEP_MM > MAX_FRONT_MM {
        return None;
    }
    let mm = |x: f64| (x / STEP_MM) as usize;
    let csf = median(near[core..(core + mm(1.0)).min(near.len())].to_vec())?;
    let before = if core >= mm(1.0) {
        median(near[core.saturating_sub(mm(2.0))..core - mm(0.5)].to_vec())?
    } else {
        lo
    };
    let front_level = 0.5 * (before.min(csf) + csf);
    let mut first = core;
    while first > 0 && near[first - 1] >= front_level {
        first -= 1;
    }
    let half = lo + 0.5 * (hi - lo);
    let gap = mm(MAX_GAP_MM);
    let mut last = core;
    for (k, &v) in near.iter().enumerate().skip(core) {
        if v >= half {
            if k - last > gap {
                break;
            }
            last = k;
        }
    }
    let a = crossing(f, first, front_level);
    let b = if last + 1 < f.len() {
        // Falling edge: crossing between `last` and `last + 1`.
        let (x, y) = (f[last], f[last + 1]);
        last as f64 + ((x - half) / (x - y)).clamp(0.0, 1.0)
    } else {
        last as f64
    };
    // The space in front, past the wall's own blurred edge.
    let space: Vec<f64> = near[mm(0.5).min(first)..first].to_vec();
    let front_signal = median(space).map_or(0.0, |m| ((m - lo) / (hi - lo)).clamp(0.0, 1.0));
    Some(Sac {
        ap_mm: (b - a) * STEP_MM,
        front_mm: a * STEP_MM,
        front_signal,
    })
}

/// Measures the canal behind a wall point `wall_lps` along the unit posterior axis `posterior`.
/// `cortex` is the body's cortical level on `vol` (needed on CT).
pub fn measure_canal(
    vol: &Volume,
    wall_lps: [f64; 3],
    posterior: [f64; 3],
    cortex: Option<f64>,
) -> Option<Canal> {
    let dir = Vector3::from(posterior).try_normalize(1e-9)?;
    let start = Point3::from(Vector3::from(wall_lps));
    let f = profile(vol, start, dir);
    let (ap, extent, front) = match vol.kind {
        SeriesKind::Ct => (bony(&f, cortex?)?, CanalExtent::BonyCanal, None),
        SeriesKind::MrStir | SeriesKind::MrT2FatSat => {
            let s = sac(&f)?;
            (s.ap_mm, CanalExtent::ThecalSac, Some(s))
        }
        _ => return None,
    };
    // Both ends are half-way crossings of a blurred edge read by linear interpolation: about a
    // third of the blur's σ each, plus the sampling step.
    let blur = crate::morph::Sampler::psf_mm(vol, &dir);
    let sigma = (2.0 * (blur / 3.0).powi(2) + STEP_MM.powi(2) / 6.0).sqrt();
    // A bony canal under 3 mm is a misread; a CSF column can be all but effaced.
    let least = if extent == CanalExtent::BonyCanal {
        3.0
    } else {
        0.5
    };
    (ap >= least).then(|| Canal {
        ap_mm: ap,
        sigma_mm: sigma,
        extent,
        series_uid: vol.series_uid.clone(),
        anterior_space_mm: front.map(|s| s.front_mm),
        anterior_signal: front.map(|s| s.front_signal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(levels: &[(f64, f64)]) -> Vec<f64> {
        // (from_mm, level) breakpoints → sampled profile.
        (0..(REACH_MM / STEP_MM) as usize)
            .map(|k| {
                let t = k as f64 * STEP_MM;
                levels
                    .iter()
                    .rev()
                    .find(|(from, _)| t >= *from)
                    .map(|x| x.1)
                    .unwrap_or(0.0)
            })
            .collect()
    }

    #[test]
    fn bony_canal_runs_to_the_arch() {
        // CSF/fat 0–17 mm, lamina cortex at 17 mm, marrow behind.
        let f = steps(&[(0.0, 10.0), (17.0, 900.0), (18.5, 180.0)]);
        let ap = bony(&f, 950.0).expect("canal");
        assert!((ap - 17.0).abs() < 0.3, "{ap}");
    }

    #[test]
    fn sac_includes_the_cord() {
        // Epidural 0–1 mm dark, CSF 1–4, cord 4–12 intermediate, CSF 12–15, dark fat and arch.
        let f = steps(&[
            (0.0, 50.0),
            (1.0, 900.0),
            (4.0, 350.0),
            (12.0, 900.0),
            (15.0, 60.0),
        ]);
        let s = sac(&f).expect("sac");
        assert!((s.ap_mm - 14.0).abs() < 0.3, "{s:?}");
        assert!((s.front_mm - 1.0).abs() < 0.3, "{s:?}");
        assert!(s.front_signal < 0.1, "{s:?}");
    }

    #[test]
    fn epidural_tissue_in_front_of_the_sac_is_not_sac() {
        // Tissue of intermediate signal 0–6 mm, CSF 6–9, cord 9–12, CSF 12–15, dark behind.
        let f = steps(&[
            (0.0, 600.0),
            (6.0, 900.0),
            (9.0, 350.0),
            (12.0, 900.0),
            (15.0, 40.0),
        ]);
        let s = sac(&f).expect("sac");
        assert!((s.front_mm - 6.0).abs() < 0.3, "{s:?}");
        assert!((s.ap_mm - 9.0).abs() < 0.3, "{s:?}");
        assert!(s.front_signal > 0.5, "{s:?}");
    }

    #[test]
    fn no_csf_means_no_sac() {
        let f = steps(&[(0.0, 100.0)]);
        assert_eq!(sac(&f), None);
    }
}
