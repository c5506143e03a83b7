//! Marrow signal per vertebral body, from every series of a study that shares the shape series'
//! frame of reference: STIR and T1 statistics in the body interior, ratios against a local
//! reference of unaffected bodies, oedema (flag, pattern, extent), marrow replacement, fluid or
//! gas clefts, pedicle signal, CT attenuation and pattern, and the acuity they imply.
//!
//! Nothing here knows an intensity in advance: every threshold is a ratio to the same study's
//! reference bodies, discs or CSF, or a spread measured in them. Definitions, thresholds and
//! their sources: `docs/measurements.md` (marrow signal).

#![deny(missing_docs)]

mod cortex;
pub mod roi;

pub use cortex::{
    CORTICAL_GAP_MIN_DEG, MR_FALSE_LACK_MAX, MR_MIN_VOID_DEPTH, MR_VOID_SHARE, MR_WALL_PLANE_DEG,
    PARAVERTEBRAL_MIN_CONTRAST, PARAVERTEBRAL_MIN_DEG,
};

use nalgebra::Vector3;
use rayon::prelude::*;
use serde::Serialize;
use spinetriage_measure::{Level, StudyMorphometry};
use spinetriage_volume::{LpsPoint, SeriesKind, Volume};

/// Share of the interior with abnormal signal from which a body is flagged (a band of oedema
/// 3 mm deep under one endplate of a 25 mm body is ≈ 12 %; isolated noise voxels at the
/// thresholds below are < 1 %).
pub const EXTENT_FLAG_PCT: f64 = 10.0;
/// Extent from which abnormal signal is "diffuse" whatever its position.
pub const DIFFUSE_PCT: f64 = 50.0;
/// Smallest rise of STIR over the reference that counts as bright (a ratio of 1.5); raised to
/// 3 reference spreads when the reference bodies are noisier.
pub const STIR_RISE: f64 = 0.5;
/// Smallest fall of T1 under the reference that counts as dark.
pub const T1_FALL: f64 = 0.25;
/// Fluid in a cleft: STIR at least this share of the level's CSF signal...
pub const CLEFT_STIR_OF_CSF: f64 = 0.85;
/// ...and T1 at most this share of the reference marrow.
pub const CLEFT_T1_OF_MARROW: f64 = 0.3;
/// Gas in a cleft on CT (vacuum phenomenon), HU: the threshold morphometry uses too.
pub use spinetriage_measure::GAS_HU;
/// Smallest cleft, mm³.
pub const CLEFT_MM3: f64 = 30.0;
/// Osteoporosis screening threshold of L1 trabecular attenuation, HU (Pickhardt et al., Ann
/// Intern Med 2013: L1 ≤ 110 HU is 90 % sensitive for DXA osteoporosis; 100 HU is the commonly
/// used, more specific cut-off).
pub const L1_OSTEOPOROSIS_HU: f64 = 100.0;
/// Bulge of the posterior wall's middle over the chord of its ends, mm, from which it is convex.
pub const CONVEX_WALL_MM: f64 = 1.5;
/// Width of the distance weighting of reference levels, in levels.
pub const REFERENCE_SIGMA_LEVELS: f64 = 2.0;

/// Robust statistics of a signal in a region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Samples.
    pub n: usize,
}

fn stats(v: &[f64]) -> Option<Stats> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.len() < 5 {
        return None;
    }
    // A total order: the unstable sort gives the same sequence, about twice as fast.
    s.sort_unstable_by(f64::total_cmp);
    let q = |f: f64| s[((s.len() - 1) as f64 * f).round() as usize];
    Some(Stats {
        mean: s.iter().sum::<f64>() / s.len() as f64,
        median: q(0.5),
        p10: q(0.1),
        p90: q(0.9),
        n: s.len(),
    })
}

impl Stats {
    /// Spread relative to the median: the p10–p90 range as ±1.28 σ of a normal distribution.
    fn rel_sigma(&self) -> f64 {
        ((self.p90 - self.p10) / 2.563) / self.median.abs().max(1e-9)
    }
}

/// How a series of the study was used.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesUse {
    /// Series Instance UID.
    pub series_uid: String,
    /// Its kind.
    pub kind: SeriesKind,
    /// "stir", "t1" or "ct".
    pub role: &'static str,
    /// Whether it was combined with the shape series' masks.
    pub combined: bool,
    /// Why not, or how.
    pub note: String,
}

/// Oedema pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Next to one endplate.
    Band,
    /// Through the body.
    Diffuse,
    /// No oedema.
    None,
}

/// Acuity of a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Acuity {
    /// Fracture with marrow oedema.
    AcuteOrSubacute,
    /// Deformity without oedema.
    ChronicOrHealed,
    /// CT alone cannot tell.
    NotDeterminableFromCt,
    /// Oedema without height loss (microfracture).
    OedemaWithoutFracture,
    /// No fracture and no oedema.
    NotApplicable,
    /// Not known (no fluid-sensitive series, or the level was not evaluable).
    Unknown,
}

/// Signal in the posterior elements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PosteriorSignal {
    /// Left pedicle abnormal.
    pub left: Option<bool>,
    /// Right pedicle abnormal.
    pub right: Option<bool>,
    /// Posterior arch (lamina) abnormal.
    pub arch: Option<bool>,
    /// Any involvement.
    pub present: Option<bool>,
    /// Pedicles: "left", "right", "bilateral" or "none".
    pub side: Option<&'static str>,
    /// STIR ratio of the left pedicle, right pedicle and lamina to their references.
    pub stir_ratio: [Option<f64>; 3],
    /// T1 ratio of the left pedicle, right pedicle and lamina to their references.
    pub t1_ratio: [Option<f64>; 3],
    /// CT attenuation of the left and right pedicle (median in a 2 mm ball at its centroid) as
    /// a share of the same pedicle's at the reference levels.
    pub ct_ratio: [Option<f64>; 2],
    /// CT lysis of the left and right pedicle: attenuation at most [`PEDICLE_LYSIS_RATIO`] of
    /// the reference and at least 75 HU below it.
    pub ct_lysis: [Option<bool>; 2],
    /// Where each was read: "segmented" (its own core) or [`READ_WHERE_EXPECTED`] (a structure
    /// not segmented, read where the neighbouring levels put it) or "body frame" (no
    /// segmentation).
    pub located: [Option<&'static str>; 3],
}

/// [`PosteriorSignal::located`] of a structure that was not segmented and was read where the
/// neighbouring levels put it.
pub const READ_WHERE_EXPECTED: &str = "expected";

/// The marrow findings of one level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelSignal {
    /// Level name.
    pub level: Option<String>,
    /// Position in the column.
    pub ordinal: usize,
    /// STIR (or fat-suppressed T2) in the body interior.
    pub stir: Option<Stats>,
    /// T1 in the body interior.
    pub t1: Option<Stats>,
    /// CT attenuation in the body interior, HU.
    pub ct_hu: Option<Stats>,
    /// Body STIR median over the local reference.
    pub stir_ratio: Option<f64>,
    /// Body T1 median over the local reference.
    pub t1_ratio: Option<f64>,
    /// Body T1 median over the adjacent discs' T1.
    pub t1_disc_ratio: Option<f64>,
    /// Marrow oedema.
    pub edema: Option<bool>,
    /// Its pattern.
    pub edema_pattern: Option<Pattern>,
    /// Share of the interior with STIR-bright (and, with T1, T1-dark) signal, per cent.
    pub edema_extent_pct: Option<f64>,
    /// Share of the interior with T1-dark signal, per cent.
    pub t1_dark_pct: Option<f64>,
    /// Marrow replacement.
    pub marrow_replacement: Option<bool>,
    /// Posterior wall convex (bulging) over its middle.
    pub convex_posterior_wall: Option<bool>,
    /// The bulge, mm.
    pub posterior_bulge_mm: Option<f64>,
    /// Intravertebral cleft.
    pub cleft: Option<bool>,
    /// Fluid (MR) or gas (CT) cleft volume, mm³.
    pub cleft_mm3: Option<f64>,
    /// Kümmell pattern: a cleft in a fractured (Genant ≥ 1) body.
    pub kummell: Option<bool>,
    /// Posterior elements.
    pub posterior: PosteriorSignal,
    /// CT pattern: "lytic", "sclerotic", "mixed" or "none".
    pub ct_pattern: Option<&'static str>,
    /// Cortical destruction of the body's wall: an arc of at least [`CORTICAL_GAP_MIN_DEG`]
    /// without cortex, on CT; without CT, on sagittal MR where its slices resolve the wall (within
    /// [`MR_WALL_PLANE_DEG`] of their plane: the anterior and paramedian posterior wall).
    pub cortical_destruction: Option<bool>,
    /// The longest arc of the wall without cortex, degrees.
    pub cortical_gap_deg: Option<f64>,
    /// Paravertebral (or prevertebral) soft tissue: tissue as bright as the body's abnormal
    /// STIR signal following its wall outwards over an arc of at least
    /// [`PARAVERTEBRAL_MIN_DEG`], on a STIR or fat-suppressed T2 (where its slices resolve the
    /// wall, as for the cortex). Not judged without one, nor where the body's marrow is not
    /// STIR-bright: on CT without contrast it cannot be told from muscle.
    pub paravertebral_soft_tissue: Option<bool>,
    /// The longest arc of the wall with such tissue outside it, degrees.
    pub paravertebral_arc_deg: Option<f64>,
    /// L1 trabecular attenuation below the osteoporosis screening threshold.
    pub osteoporosis_screen: Option<bool>,
    /// Acuity.
    pub acuity: Acuity,
    /// Levels whose bodies made the reference, with their weights.
    pub reference_levels: Vec<String>,
    /// The numbers behind each finding, and why a finding is unknown.
    pub evidence: Vec<String>,
}

/// Marrow findings of a study.
#[derive(Debug, Clone, Serialize)]
pub struct MarrowReport {
    /// How each series was used.
    pub series: Vec<SeriesUse>,
    /// One entry per level of the morphometry, in the same order.
    pub levels: Vec<LevelSignal>,
}

/// A signal series combined with the shape series.
struct Channel<'a> {
    vol: &'a Volume,
}

impl Channel<'_> {
    fn at(&self, p: LpsPoint) -> Option<f64> {
        self.vol.sample_lps(p).map(f64::from)
    }

    fn values(&self, pts: &[(LpsPoint, f64)]) -> Vec<f64> {
        pts.iter()
            .map(|(p, _)| self.at(*p).unwrap_or(f64::NAN))
            .collect()
    }
}

fn pick<'a>(
    vols: &'a [Volume],
    shape: &Volume,
    kinds: &[SeriesKind],
    role: &'static str,
    uses: &mut Vec<SeriesUse>,
) -> Option<Channel<'a>> {
    let v = kinds.iter().find_map(|k| {
        vols.iter()
            .filter(|v| v.kind == *k)
            .max_by_key(|v| v.data.len())
    })?;
    let same = v.series_uid == shape.series_uid
        || (v.frame_of_reference_uid.is_some()
            && v.frame_of_reference_uid == shape.frame_of_reference_uid);
    uses.push(SeriesUse {
        series_uid: v.series_uid.clone(),
        kind: v.kind,
        role,
        combined: same,
        note: if v.series_uid == shape.series_uid {
            "the shape series itself".into()
        } else if same {
            "same FrameOfReferenceUID as the shape series: body regions sampled in patient coordinates".into()
        } else {
            "FrameOfReferenceUID differs from the shape series (or is missing): not combined".into()
        },
    });
    same.then_some(Channel { vol: v })
}

/// Weighted median of (value, weight).
fn weighted_median(mut v: Vec<(f64, f64)>) -> Option<f64> {
    v.retain(|(x, w)| x.is_finite() && *w > 0.0);
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|x| x.1).sum();
    let mut acc = 0.0;
    for (x, w) in &v {
        acc += w;
        if acc >= total / 2.0 {
            return Some(*x);
        }
    }
    v.last().map(|x| x.0)
}

/// Leave-one-out reference of level `i` from the unaffected levels: a distance-weighted median
/// (Gaussian in levels), so that a smooth bias field across the column cancels in the ratio.
fn reference(
    i: usize,
    ordinals: &[usize],
    unaffected: &[bool],
    value: &[Option<f64>],
) -> Option<(f64, Vec<usize>)> {
    let mut pairs = Vec::new();
    let mut used = Vec::new();
    for j in 0..value.len() {
        if j == i || !unaffected[j] {
            continue;
        }
        if let Some(x) = value[j] {
            let d = ordinals[j] as f64 - ordinals[i] as f64;
            pairs.push((x, (-0.5 * (d / REFERENCE_SIGMA_LEVELS).powi(2)).exp()));
            used.push(j);
        }
    }
    if pairs.len() < 2 {
        return None;
    }
    weighted_median(pairs).map(|r| (r, used))
}

/// Bulge of the posterior wall's middle over the chord of its ends (positive: convex), mm. Each
/// end is the median of its three outermost rays, and a middle ray counts only as far as one of
/// its neighbours agrees: one ray running on through a gap in the wall is not a bulge.
fn posterior_bulge(l: &Level) -> Option<f64> {
    let p = &l.measurement.posterior_wall_mm;
    let n = p.len();
    if n < 9 {
        return None;
    }
    let end = |ks: [usize; 3]| -> Option<(f64, f64)> {
        let mut v = [p[ks[0]]?, p[ks[1]]?, p[ks[2]]?];
        v.sort_by(f64::total_cmp);
        Some((ks[1] as f64, v[1]))
    };
    let (a, b) = (end([0, 1, 2])?, end([n - 3, n - 2, n - 1])?);
    let mut best: Option<f64> = None;
    for k in n / 4..n - n / 4 {
        let (Some(v), Some(lo), Some(hi)) = (p[k], p[k - 1], p[k + 1]) else {
            continue;
        };
        let v = v.min(lo.max(hi));
        let chord = a.1 + (b.1 - a.1) * (k as f64 - a.0) / (b.0 - a.0);
        best = Some(best.map_or(v - chord, |x: f64| x.max(v - chord)));
    }
    best
}

fn frame(l: &Level) -> (Vector3<f64>, Vector3<f64>, Vector3<f64>, Vector3<f64>) {
    let m = &l.measurement;
    (
        Vector3::from(m.center_lps_mm),
        Vector3::from(m.frame.cranial),
        Vector3::from(m.frame.posterior),
        Vector3::from(m.frame.left),
    )
}

/// The median of a channel over points.
fn median_at(ch: &Channel, pts: &[LpsPoint]) -> Option<f64> {
    let v: Vec<f64> = pts.iter().filter_map(|p| ch.at(*p)).collect();
    stats(&v).map(|s| s.median)
}

/// Analyses the marrow of every level of `m`, with the series of `vols`.
pub fn analyze_marrow(vols: &[Volume], m: &StudyMorphometry) -> MarrowReport {
    let mut uses = Vec::new();
    let Some(shape) = vols.iter().find(|v| v.series_uid == m.shape_series_uid) else {
        return MarrowReport {
            series: uses,
            levels: Vec::new(),
        };
    };
    let stir = pick(
        vols,
        shape,
        &[SeriesKind::MrStir, SeriesKind::MrT2FatSat],
        "stir",
        &mut uses,
    );
    let t1 = pick(vols, shape, &[SeriesKind::MrT1], "t1", &mut uses);
    let ct = pick(vols, shape, &[SeriesKind::Ct], "ct", &mut uses);
    let seg = &m.segmentation;
    let n = m.levels.len();
    let ordinals: Vec<usize> = m.levels.iter().map(|l| l.ordinal).collect();
    // Body interiors: the measured body model (independent of which voxels the mask took, so
    // oedema or tumour that kept marrow out of a T1 mask, or gas out of a CT mask, is sampled);
    // the mask's own interior, thinned to ≈ 1 mm, for a level without all three heights.
    struct Roi {
        pts: Vec<(LpsPoint, f64)>,
        cleft_extra: Vec<LpsPoint>,
        mm3: f64,
    }
    let rois: Vec<Roi> = m
        .levels
        .par_iter()
        .map(|l| {
            if let Some(model) = roi::body_model(l, 1.0) {
                let (core, extra): (Vec<_>, Vec<_>) = model.into_iter().partition(|p| p.core);
                return Roi {
                    pts: core.into_iter().map(|p| (p.p, p.t)).collect(),
                    cleft_extra: extra.into_iter().map(|p| p.p).collect(),
                    mm3: 1.0,
                };
            }
            let Some(b) = seg.bodies.iter().find(|b| b.ordinal == l.ordinal) else {
                return Roi {
                    pts: Vec::new(),
                    cleft_extra: Vec::new(),
                    mm3: 1.0,
                };
            };
            let half = l.measurement.middle.map_or(12.0, |h| h.height_mm / 2.0);
            let pts = roi::body_interior(
                &b.mask,
                &seg.view,
                l.measurement.center_lps_mm,
                l.measurement.frame.cranial,
                half,
            );
            let voxel = seg.view.spacing_mm.iter().product::<f64>();
            let keep = (1.0 / voxel).floor().max(1.0) as usize;
            Roi {
                pts: pts.into_iter().step_by(keep).collect(),
                cleft_extra: Vec::new(),
                mm3: voxel * keep as f64,
            }
        })
        .collect();
    let interiors: Vec<&Vec<(LpsPoint, f64)>> = rois.iter().map(|r| &r.pts).collect();
    let sample = |ch: &Option<Channel>| -> Vec<Option<Vec<f64>>> {
        interiors
            .par_iter()
            .map(|pts| {
                ch.as_ref()
                    .filter(|_| !pts.is_empty())
                    .map(|c| c.values(pts))
            })
            .collect()
    };
    let stir_v = sample(&stir);
    let t1_v = sample(&t1);
    let ct_v = sample(&ct);
    let st = |v: &Vec<Option<Vec<f64>>>| -> Vec<Option<Stats>> {
        v.par_iter()
            .map(|x| x.as_ref().and_then(|x| stats(x)))
            .collect()
    };
    let (stir_s, t1_s, ct_s) = (st(&stir_v), st(&t1_v), st(&ct_v));
    // Unaffected, from shape alone (never from signal, so the reference cannot chase the
    // finding): measured, Genant grade 0.
    let unaffected: Vec<bool> = m
        .levels
        .iter()
        .map(|l| l.measured() && l.derived.genant_grade == Some(0))
        .collect();
    let med = |s: &[Option<Stats>]| -> Vec<Option<f64>> {
        s.iter().map(|x| x.map(|x| x.median)).collect()
    };
    let spread = |s: &[Option<Stats>]| -> Option<f64> {
        let mut v: Vec<f64> = s
            .iter()
            .zip(&unaffected)
            .filter_map(|(x, u)| x.filter(|_| *u).map(|x| x.rel_sigma()))
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let (stir_spread, t1_spread, ct_spread) = (spread(&stir_s), spread(&t1_s), spread(&ct_s));
    // The cortex around each body on CT, and each body's typical cortical peak.
    let cortex: Vec<Option<Vec<[f64; 3]>>> = m
        .levels
        .par_iter()
        .map(|l| {
            let sacral = spinetriage_measure::is_sacral(l.level.as_deref());
            (l.measured() && !sacral)
                .then(|| cortex::cortex_peaks(l, ct.as_ref()?))
                .flatten()
        })
        .collect();
    let cortex_level: Vec<Option<f64>> = cortex
        .iter()
        .map(|p| {
            let all: Vec<f64> = p
                .as_ref()?
                .iter()
                .flatten()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            stats(&all).map(|s| s.median)
        })
        .collect();
    // The cortex on sagittal MR, surveyed on every MR series combined with the shape series (the
    // shape series too when it is neither the STIR nor the T1), with each series' per-level
    // summaries (darker side, void depth, false-lack share) for the references.
    let shape_ch = (shape.kind != SeriesKind::Ct
        && [stir.as_ref(), t1.as_ref()]
            .into_iter()
            .flatten()
            .all(|c| c.vol.series_uid != shape.series_uid))
    .then_some(Channel { vol: shape });
    // With CT only the STIR, for paravertebral tissue: CT shows the cortex itself.
    let mr_series: Vec<(&'static str, &Channel)> = if ct.is_some() {
        stir.as_ref().map(|c| ("stir", c)).into_iter().collect()
    } else {
        [
            ("stir", stir.as_ref()),
            ("t1", t1.as_ref()),
            (shape_role(shape.kind), shape_ch.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, c)| Some((role, c?)))
        .collect()
    };
    let mr_walls: Vec<Vec<Option<cortex::Survey>>> = mr_series
        .iter()
        .map(|(_, ch)| {
            m.levels
                .par_iter()
                .map(|l| {
                    if !l.measured() || spinetriage_measure::is_sacral(l.level.as_deref()) {
                        return None;
                    }
                    let body = seg.bodies.iter().find(|b| b.ordinal == l.ordinal)?;
                    let inside = |p: LpsPoint| body.mask.contains_lps(&seg.view, p);
                    cortex::mr_wall_survey(l, ch, &inside)
                })
                .collect()
        })
        .collect();
    let mr_wall_refs: Vec<[Vec<Option<f64>>; 3]> = mr_walls
        .iter()
        .map(|levels| {
            let s: Vec<Option<[f64; 3]>> = levels
                .iter()
                .map(|d| d.as_ref().and_then(|d| cortex::wall_summary(&d.dips)))
                .collect();
            std::array::from_fn(|q| s.iter().map(|x| x.map(|x| x[q])).collect())
        })
        .collect();
    // The STIR survey's typical signal outside each wall, for the paravertebral references.
    let stir_survey = mr_series.iter().position(|(role, _)| *role == "stir");
    let outside_levels: Vec<Option<f64>> = stir_survey.map_or_else(Vec::new, |k| {
        mr_walls[k]
            .iter()
            .map(|d| d.as_ref().and_then(|d| cortex::outside_level(&d.outside)))
            .collect()
    });
    // Discs: midway between consecutive bodies' facing endplates (middle height line).
    let disc_t1: Vec<Option<f64>> = (0..n.saturating_sub(1))
        .map(|i| {
            let (a, b) = (&m.levels[i].measurement, &m.levels[i + 1].measurement);
            let (ha, hb) = (a.middle?, b.middle?);
            let c = (Vector3::from(ha.inferior_lps_mm) + Vector3::from(hb.superior_lps_mm)) / 2.0;
            let gap =
                (Vector3::from(ha.inferior_lps_mm) - Vector3::from(hb.superior_lps_mm)).norm();
            let r = (gap / 3.0).clamp(1.0, 2.5);
            median_at(t1.as_ref()?, &roi::ball(c, r, 0.7))
        })
        .collect();
    // Levels are independent from here on. Run serially, this loop and the statistics above
    // held 44 % of the stage's samples while the other of two threads sat idle (perf).
    let levels: Vec<LevelSignal> = (0..n)
        .into_par_iter()
        .map(|i| {
            let l = &m.levels[i];
            let mut ev = Vec::new();
            let name = |j: usize| {
                m.levels[j]
                    .level
                    .clone()
                    .unwrap_or_else(|| format!("#{}", ordinals[j] + 1))
            };
            let stir_ref = reference(i, &ordinals, &unaffected, &med(&stir_s));
            let t1_ref = reference(i, &ordinals, &unaffected, &med(&t1_s));
            let ct_ref = reference(i, &ordinals, &unaffected, &med(&ct_s));
            let reference_levels: Vec<String> = stir_ref
                .as_ref()
                .or(t1_ref.as_ref())
                .or(ct_ref.as_ref())
                .map(|r| r.1.iter().map(|j| name(*j)).collect())
                .unwrap_or_default();
            let stir_ratio = stir_s[i]
                .zip(stir_ref.as_ref())
                .map(|(s, r)| s.median / r.0);
            let t1_ratio = t1_s[i].zip(t1_ref.as_ref()).map(|(s, r)| s.median / r.0);
            let discs: Vec<f64> = [i.checked_sub(1), (i + 1 < n).then_some(i)]
                .into_iter()
                .flatten()
                .filter_map(|d| disc_t1.get(d).copied().flatten())
                .collect();
            let t1_disc_ratio = t1_s[i]
                .filter(|_| !discs.is_empty())
                .map(|s| s.median / (discs.iter().sum::<f64>() / discs.len() as f64));
            // Voxel classes against the reference.
            let stir_hi = stir_ref
                .as_ref()
                .map(|r| r.0 * (1.0 + STIR_RISE.max(3.0 * stir_spread.unwrap_or(0.0))));
            let t1_lo = t1_ref
                .as_ref()
                .map(|r| r.0 * (1.0 - T1_FALL.max(3.0 * t1_spread.unwrap_or(0.0)).min(0.6)));
            let pts = &interiors[i];
            let npts = pts.len();
            let mut bright = vec![false; npts];
            let mut dark = vec![false; npts];
            if let (Some(v), Some(hi)) = (&stir_v[i], stir_hi) {
                for (k, x) in v.iter().enumerate() {
                    bright[k] = *x > hi;
                }
            }
            if let (Some(v), Some(lo)) = (&t1_v[i], t1_lo) {
                for (k, x) in v.iter().enumerate() {
                    dark[k] = *x < lo;
                }
            }
            let pct = |c: usize| 100.0 * c as f64 / npts.max(1) as f64;
            let t1_dark_pct = t1_v[i]
                .as_ref()
                .filter(|_| t1_lo.is_some())
                .map(|_| pct(dark.iter().filter(|d| **d).count()));
            // Oedema-like voxels: STIR bright, and T1 dark where T1 is available.
            let have_t1 = t1_v[i].is_some() && t1_lo.is_some();
            let oedema_like: Vec<bool> = (0..npts)
                .map(|k| bright[k] && (!have_t1 || dark[k]))
                .collect();
            let extent = stir_v[i]
                .as_ref()
                .filter(|_| stir_hi.is_some())
                .map(|_| pct(oedema_like.iter().filter(|b| **b).count()));
            // Convex posterior wall (a malignancy sign).
            let bulge = posterior_bulge(l);
            // The sacrum's posterior wall follows the sacral curve, convex by anatomy: the sign is a
            // vertebral body's.
            let sacral = spinetriage_measure::is_sacral(l.level.as_deref());
            // The sign is the convex posterior border of a *compressed* body (Jung et al.,
            // RadioGraphics 2003; Cuénod et al., Radiology 1996: it tells metastatic from
            // osteoporotic compression fractures). An intact body's wall profile is not read for
            // it: on 17 real T2 lumbar exams of normal-appearing bodies, 43 of 124 intact walls
            // bulged ≥ 1.5 mm over their chord (the basivertebral vein's gap, the posterior
            // longitudinal ligament and epidural veins shift the middle rays on T2), and each
            // became a "suspected pathological fracture".
            let fractured = l.derived.fractured();
            let convex = bulge.and_then(|b| {
                if sacral || b < CONVEX_WALL_MM {
                    Some(false)
                } else {
                    fractured
                }
            });
            if sacral && bulge.is_some() {
                ev.push(
                    "convex posterior wall: not applicable at the sacrum (curved by anatomy)".into(),
                );
            } else if let (Some(b), Some(false)) = (bulge.filter(|b| *b >= CONVEX_WALL_MM), fractured) {
                ev.push(format!(
                    "convex posterior wall: the wall bulges {b:+.1} mm, but the sign is read on compressed bodies only (Genant 0 here)"
                ));
            }
            // Pedicles: regions behind the upper body at its lateral thirds.
            let posterior = pedicles(
                i,
                m,
                &ordinals,
                &unaffected,
                stir.as_ref(),
                t1.as_ref(),
                ct.as_ref(),
                ct_ref.as_ref().map(|r| r.0),
                &mut ev,
            );
            // Fluid cleft: CSF-like STIR and T1 far below marrow, as a volume.
            let (mut cleft, mut cleft_mm3) = (None, None);
            if let (Some(sv), Some(st_ch)) = (&stir_v[i], stir.as_ref()) {
                let (c, _, pp, _) = frame(l);
                let depth = l.measurement.depth_mm.unwrap_or(30.0);
                // The thecal sac behind the body: the brightest tenth of a line through the canal.
                let canal: Vec<f64> = (0..12)
                    .filter_map(|k| st_ch.at(to_lps(c + pp * (depth / 2.0 + 2.0 + k as f64))))
                    .collect();
                let csf = stats(&canal).map(|s| s.p90);
                if let Some(csf) = csf.filter(|x| *x > 0.0) {
                    let t1_cut = t1_ref.as_ref().map(|r| r.0 * CLEFT_T1_OF_MARROW);
                    let fluid = |stir_v: f64, t1_v: Option<f64>| {
                        stir_v >= CLEFT_STIR_OF_CSF * csf
                            && match (t1_cut, t1_v) {
                                (Some(cut), Some(t)) => t <= cut,
                                (Some(_), None) => false,
                                _ => true,
                            }
                    };
                    // A candidate is re-tested on the mean of itself and its six neighbours 1 mm
                    // away, so that noise in oedema does not add up to a cleft.
                    let smooth = |ch: &Channel, p: LpsPoint| -> Option<f64> {
                        let q = p.0.coords;
                        let mut acc = Vec::with_capacity(7);
                        for d in [
                            Vector3::zeros(),
                            Vector3::x(),
                            -Vector3::x(),
                            Vector3::y(),
                            -Vector3::y(),
                            Vector3::z(),
                            -Vector3::z(),
                        ] {
                            acc.push(ch.at(to_lps(q + d))?);
                        }
                        Some(acc.iter().sum::<f64>() / acc.len() as f64)
                    };
                    let own = stir_s[i].map_or(0.0, |s| s.median);
                    let is_fluid = |p: LpsPoint| -> bool {
                        let (Some(sv), t) = (smooth(st_ch, p), t1.as_ref().and_then(|c| smooth(c, p)))
                        else {
                            return false;
                        };
                        // Brighter than a diffusely oedematous body's own marrow, too.
                        sv >= 1.3 * own && fluid(sv, t)
                    };
                    let core = (0..npts)
                        .filter(|k| fluid(sv[*k], t1_v[i].as_ref().map(|tv| tv[*k])))
                        .filter(|k| is_fluid(pts[*k].0))
                        .count();
                    // Under the anterior-posterior chord too: a cleft under the endplate can stop
                    // the middle height short of it. Discs there are neither CSF-bright on STIR
                    // nor as dark as fluid on T1.
                    let extra = rois[i]
                        .cleft_extra
                        .iter()
                        .filter(|p| {
                            st_ch
                                .at(**p)
                                .is_some_and(|sv| fluid(sv, t1.as_ref().and_then(|c| c.at(**p))))
                                && is_fluid(**p)
                        })
                        .count();
                    let n_fluid = core + extra;
                    let vol = n_fluid as f64 * rois[i].mm3;
                    cleft = Some(vol >= CLEFT_MM3);
                    cleft_mm3 = Some(vol);
                    ev.push(format!(
                        "cleft: {vol:.0} mm³ with STIR ≥ {:.0} % of the canal's CSF signal{}",
                        CLEFT_STIR_OF_CSF * 100.0,
                        if t1_cut.is_some() {
                            " and T1 ≤ 30 % of reference marrow"
                        } else {
                            ""
                        }
                    ));
                }
            }
            // CT: attenuation, pattern, gas.
            let (mut ct_pattern, mut osteo) = (None, None);
            let (mut cortical_destruction, mut cortical_gap_deg) = (None, None);
            if let (Some(v), Some(s)) = (&ct_v[i], ct_s[i]) {
                let gas = v.iter().filter(|x| **x < GAS_HU).count() as f64 * rois[i].mm3;
                if gas >= CLEFT_MM3 {
                    cleft = Some(true);
                    cleft_mm3 = Some(gas);
                    ev.push(format!(
                        "gas cleft (vacuum phenomenon): {gas:.0} mm³ below {GAS_HU} HU"
                    ));
                } else if cleft.is_none() {
                    cleft = Some(false);
                    cleft_mm3 = Some(gas);
                }
                if sacral {
                    ev.push(
                        "CT pattern: not compared at the sacrum (sacral marrow is fattier than the mobile spine's that forms the reference)"
                            .into(),
                    );
                } else if let Some((r, _)) = &ct_ref {
                    let sd = (ct_spread.unwrap_or(0.0) * r.abs()).max(25.0);
                    let low = v
                        .iter()
                        .filter(|x| **x > GAS_HU && **x < r - (3.0 * sd).max(75.0))
                        .count();
                    let high = v.iter().filter(|x| **x > r + (3.0 * sd).max(150.0)).count();
                    let (lp, hp) = (pct(low), pct(high));
                    ct_pattern = Some(match (lp >= 20.0, hp >= 20.0, lp >= 10.0 && hp >= 10.0) {
                        (_, _, true) => "mixed",
                        (true, false, _) => "lytic",
                        (false, true, _) => "sclerotic",
                        _ => "none",
                    });
                    ev.push(format!(
                        "CT: trabecular {:.0} HU (reference {r:.0} HU); {lp:.0} % of the interior lytic, {hp:.0} % sclerotic",
                        s.median
                    ));
                }
                if let (Some(peaks), Some((r, _)), Some((c, _))) = (
                    &cortex[i],
                    &ct_ref,
                    reference(i, &ordinals, &unaffected, &cortex_level),
                ) {
                    (cortical_destruction, cortical_gap_deg) =
                        cortex::cortical_gap(peaks, *r, c, &mut ev);
                }
                if l.level.as_deref() == Some("L1") {
                    osteo = Some(s.median < L1_OSTEOPOROSIS_HU);
                    ev.push(format!(
                        "L1 trabecular attenuation {:.0} HU (osteoporosis screening threshold {L1_OSTEOPOROSIS_HU} HU)",
                        s.median
                    ));
                }
            }
            if cortical_destruction.is_none() && !sacral && ct.is_none() {
                let walls: Vec<cortex::MrWall> = mr_series
                    .iter()
                    .zip(mr_walls.iter().zip(&mr_wall_refs))
                    .filter_map(|((role, _), (dips, [flank, depth, false_lack]))| {
                        let r =
                            |v: &[Option<f64>]| reference(i, &ordinals, &unaffected, v).map(|r| r.0);
                        Some(cortex::MrWall {
                            role,
                            dips: &dips[i].as_ref()?.dips,
                            flank: r(flank)?,
                            depth: r(depth)?,
                            false_lack: r(false_lack)?,
                        })
                    })
                    .collect();
                if !walls.is_empty() {
                    (cortical_destruction, cortical_gap_deg) = cortex::mr_cortical_gap(&walls, &mut ev);
                } else if !mr_series.is_empty() {
                    ev.push(
                        "MR cortex: not judged (the body's wall could not be surveyed, or fewer than two unaffected levels to compare it with)"
                            .into(),
                    );
                }
            }
            let (paravertebral, paravertebral_arc_deg) = match (stir_survey, stir_s[i]) {
                _ if sacral => (None, None),
                (Some(k), Some(body)) => {
                    let own = mr_walls[k][i].as_ref();
                    match (own, reference(i, &ordinals, &unaffected, &outside_levels)) {
                        (Some(survey), Some((outside, used))) => {
                            let refs: Vec<&[[Option<cortex::Outward>; 3]]> = used
                                .iter()
                                .filter_map(|j| Some(&mr_walls[k][*j].as_ref()?.outside[..]))
                                .collect();
                            cortex::paravertebral(&survey.outside, body.median, outside, &refs, &mut ev)
                        }
                        _ => {
                            ev.push(
                                "paravertebral soft tissue: not judged (the wall could not be surveyed on the STIR, or fewer than two unaffected levels to compare it with)"
                                    .into(),
                            );
                            (None, None)
                        }
                    }
                }
                _ => {
                    ev.push(
                        "paravertebral soft tissue: not judged (needs a STIR or fat-suppressed T2 in the shape frame; on CT without contrast it cannot be told from muscle)"
                            .into(),
                    );
                    (None, None)
                }
            };
            // Marrow replacement: T1 at or below disc, through most of the body, with a sign that
            // favours tumour over oedema (no STIR rise, a convex wall, pedicle involvement,
            // epidural or paravertebral soft tissue, lytic bone on CT, cortical destruction on CT
            // or MR).
            let marrow_replacement = match (t1_disc_ratio, t1_dark_pct) {
                (Some(r), Some(d)) => {
                    let diffuse_dark = r <= 1.0 && d >= DIFFUSE_PCT;
                    // A sign that favours tumour over oedema; unknown when none is seen but the
                    // wall or the pedicles could not be assessed. Epidural or paravertebral tissue
                    // and CT lysis count only when seen: many studies have no CT, and the canal is not always
                    // measurable.
                    let epidural =
                        l.derived.epidural_soft_tissue == Some(true) || paravertebral == Some(true);
                    let lytic = matches!(ct_pattern, Some("lytic" | "mixed"))
                        || cortical_destruction == Some(true);
                    let signs = [
                        stir_ratio.map(|s| s < 1.0 + STIR_RISE),
                        convex,
                        posterior.present,
                    ];
                    let tumour_sign = if epidural || lytic || signs.contains(&Some(true)) {
                        Some(true)
                    } else if signs.contains(&None) {
                        None
                    } else {
                        Some(false)
                    };
                    ev.push(format!(
                        "T1 body/disc {r:.2}, {d:.0} % of the interior T1-dark; STIR ratio {}; convex wall {}; pedicles {}; epidural soft tissue {}; paravertebral soft tissue {}; CT pattern {}",
                        stir_ratio.map_or("—".into(), |s| format!("{s:.2}")),
                        bulge.map_or("—".into(), |b| format!("{b:+.1} mm")),
                        posterior.side.unwrap_or("not known"),
                        known(l.derived.epidural_soft_tissue),
                        known(paravertebral),
                        ct_pattern.unwrap_or("—")
                    ));
                    match (diffuse_dark, tumour_sign) {
                        (false, _) => Some(false),
                        (true, t) => t,
                    }
                }
                _ => {
                    ev.push(
                        "marrow replacement: needs T1 of the body and of a disc in the shape frame"
                            .into(),
                    );
                    None
                }
            };
            let (edema, edema_pattern) = match extent {
                None => {
                    ev.push(if stir.is_none() {
                        "oedema: no STIR or fat-suppressed T2 combinable with the shape series"
                            .to_string()
                    } else {
                        "oedema: no reference (fewer than two unaffected levels) or no body interior"
                            .to_string()
                    });
                    (None, None)
                }
                Some(e) if e >= EXTENT_FLAG_PCT && marrow_replacement.is_none() => {
                    ev.push(
                        "oedema or marrow replacement: diffuse STIR-bright, T1-dark signal at or below disc T1, and the posterior wall or pedicles could not be assessed to tell them apart"
                            .into(),
                    );
                    (None, None)
                }
                Some(e) if e >= EXTENT_FLAG_PCT && marrow_replacement != Some(true) => {
                    let k: Vec<f64> = (0..npts)
                        .filter(|k| oedema_like[*k])
                        .map(|k| pts[k].1)
                        .collect();
                    let up = k.iter().filter(|t| **t >= 0.6).count() as f64 / k.len().max(1) as f64;
                    let dn = k.iter().filter(|t| **t <= 0.4).count() as f64 / k.len().max(1) as f64;
                    let pattern = if e < DIFFUSE_PCT && up.max(dn) >= 0.75 {
                        Pattern::Band
                    } else {
                        Pattern::Diffuse
                    };
                    (Some(true), Some(pattern))
                }
                Some(_) => (Some(false), Some(Pattern::None)),
            };
            if let (Some(e), Some(r)) = (extent, stir_ratio) {
                ev.push(format!(
                    "oedema: {e:.0} % of the interior STIR-bright{}; body STIR ratio {r:.2}{} (reference: {})",
                    if have_t1 { " and T1-dark" } else { "" },
                    t1_ratio.map_or(String::new(), |t| format!(", T1 ratio {t:.2}")),
                    reference_levels.join(", ")
                ));
            }
            if marrow_replacement == Some(true) && extent.is_some_and(|e| e >= EXTENT_FLAG_PCT) {
                ev.push(
                    "STIR-bright, T1-dark signal attributed to marrow replacement, not oedema".into(),
                );
            }
            // Kümmell: a cleft in a collapsed body (intravertebral vacuum or fluid: osteonecrosis
            // and non-union after a fracture). It favours a benign cause, and a cleft is what the
            // cement is meant to fill.
            let kummell = match (cleft, fractured) {
                (Some(true), Some(true)) => Some(true),
                (Some(false), _) | (_, Some(false)) => Some(false),
                _ => None,
            };
            if kummell == Some(true) {
                ev.push(
                    "Kümmell pattern: an intravertebral cleft in a collapsed body (osteonecrosis or non-union); favours a benign cause"
                        .into(),
                );
            }
            let acuity = match (edema, fractured) {
                (Some(true), Some(true)) => Acuity::AcuteOrSubacute,
                (Some(true), Some(false)) => Acuity::OedemaWithoutFracture,
                (Some(false), Some(true)) => Acuity::ChronicOrHealed,
                (Some(false), Some(false)) => Acuity::NotApplicable,
                (None, Some(true)) if ct.is_some() && stir.is_none() => Acuity::NotDeterminableFromCt,
                (None, Some(false)) => Acuity::NotApplicable,
                _ => Acuity::Unknown,
            };
            LevelSignal {
                level: l.level.clone(),
                ordinal: l.ordinal,
                stir: stir_s[i],
                t1: t1_s[i],
                ct_hu: ct_s[i],
                stir_ratio,
                t1_ratio,
                t1_disc_ratio,
                edema,
                edema_pattern,
                edema_extent_pct: extent,
                t1_dark_pct,
                marrow_replacement,
                convex_posterior_wall: convex,
                posterior_bulge_mm: bulge,
                cleft,
                cleft_mm3,
                kummell,
                posterior,
                ct_pattern,
                cortical_destruction,
                cortical_gap_deg,
                paravertebral_soft_tissue: paravertebral,
                paravertebral_arc_deg,
                osteoporosis_screen: osteo,
                acuity,
                reference_levels,
                evidence: ev,
            }
        })
        .collect();
    MarrowReport {
        series: uses,
        levels,
    }
}

/// How the shape series is named where it is surveyed as one more MR series.
fn shape_role(kind: SeriesKind) -> &'static str {
    match kind {
        SeriesKind::MrT2 => "t2",
        _ => "shape series",
    }
}

fn to_lps(v: Vector3<f64>) -> LpsPoint {
    LpsPoint::new(v.x, v.y, v.z)
}

/// Left pedicle, right pedicle and lamina of level `i`, each read at its segmented core (or
/// where the neighbouring levels put it when it was not segmented: tumour in a pedicle is
/// neither marrow-like nor bone-dense) and compared with the same structure at the unaffected
/// levels (leave-one-out, distance-weighted).
#[allow(clippy::too_many_arguments)]
fn pedicles(
    i: usize,
    m: &StudyMorphometry,
    ordinals: &[usize],
    unaffected: &[bool],
    stir: Option<&Channel>,
    t1: Option<&Channel>,
    ct: Option<&Channel>,
    ct_trabecular_hu: Option<f64>,
    ev: &mut Vec<String>,
) -> PosteriorSignal {
    use spinetriage_measure::posterior::ArchPart;
    const PARTS: [ArchPart; 3] = [
        ArchPart::LeftPedicle,
        ArchPart::RightPedicle,
        ArchPart::Lamina,
    ];
    // The region of one structure: a ball at its core, or, without a segmentation, behind the
    // wall at the body's lateral thirds in its upper half, where pedicles join the body.
    let region = |lv: &Level, s: usize| -> Option<(Vec<LpsPoint>, &'static str)> {
        if let Some(pe) = &lv.measurement.posterior_elements {
            let seg = pe.part(PARTS[s])?;
            let how = if seg.found {
                "segmented"
            } else {
                READ_WHERE_EXPECTED
            };
            if !seg.located {
                return None;
            }
            return Some((roi::ball(Vector3::from(seg.core_lps_mm), 2.0, 0.8), how));
        }
        if s == 2 {
            return None;
        }
        let (c, up, post, left) = frame(lv);
        let depth = lv.measurement.depth_mm?;
        let width = lv.measurement.width_mm?;
        let h = lv.measurement.middle?.height_mm;
        let side = if s == 0 { 1.0 } else { -1.0 };
        let centre = c + post * (depth / 2.0 + 6.0) + left * (side * 0.3 * width) + up * (0.15 * h);
        Some((roi::ball(centre, 2.5, 0.8), "body frame"))
    };
    let mut out = PosteriorSignal::default();
    if spinetriage_measure::is_sacral(m.levels[i].level.as_deref()) {
        ev.push("posterior elements: sacral level (no pedicles as in the mobile spine)".into());
        return out;
    }
    if let Some(ct) = ct {
        ct_pedicle_lysis(
            i,
            m,
            ordinals,
            unaffected,
            ct,
            ct_trabecular_hu,
            &mut out,
            ev,
        );
    }
    if stir.is_none() && t1.is_none() {
        ev.push("posterior elements: no MR series combinable with the shape series".into());
        combine_posterior(&mut out, [None; 3]);
        return out;
    }
    // Fluid level of the canal behind each level: a region that reaches CSF is not bone.
    let csf: Vec<Option<f64>> = m
        .levels
        .iter()
        .map(|lv| {
            let (c, _, post, _) = frame(lv);
            let depth = lv.measurement.depth_mm?;
            let line: Vec<f64> = (0..12)
                .filter_map(|k| stir?.at(to_lps(c + post * (depth / 2.0 + 2.0 + k as f64))))
                .collect();
            stats(&line).map(|s| s.p90)
        })
        .collect();
    let mut abnormal = [None; 3];
    for (s, flag) in abnormal.iter_mut().enumerate() {
        let regions: Vec<Option<(Vec<LpsPoint>, &'static str)>> =
            m.levels.iter().map(|lv| region(lv, s)).collect();
        out.located[s] = regions[i].as_ref().map(|r| r.1);
        let vals = |ch: Option<&Channel>| -> Vec<Option<f64>> {
            regions
                .iter()
                .map(|r| ch.and_then(|c| r.as_ref().and_then(|(pts, _)| median_at(c, pts))))
                .collect()
        };
        let (mut sv, tv) = (vals(stir), vals(t1));
        // Regions that landed in CSF (rotation, scoliosis, a narrow canal) are dropped, here
        // and as references. The level's own structure is kept where it was not segmented and
        // is read where its neighbours' lie: it lies as far from the canal as theirs, and what
        // kept it from being segmented (tumour, neither marrow-like nor bone-dense) can be as
        // bright on STIR as fluid (`tumour-l4`, bench-marrow seed 3: the left pedicle read 881
        // against the canal's 880, and its T1 143 against the canal's 150).
        for (j, v) in sv.iter_mut().enumerate() {
            if j == i && out.located[s] == Some(READ_WHERE_EXPECTED) {
                continue;
            }
            if let (Some(x), Some(c)) = (*v, csf[j]) {
                if x >= 0.7 * c {
                    *v = None;
                }
            }
        }
        if stir.is_some() && sv[i].is_none() {
            continue;
        }
        let sr = sv[i]
            .zip(reference(i, ordinals, unaffected, &sv))
            .map(|(x, r)| x / r.0);
        let tr = tv[i]
            .zip(reference(i, ordinals, unaffected, &tv))
            .map(|(x, r)| x / r.0);
        out.stir_ratio[s] = sr;
        out.t1_ratio[s] = tr;
        // Tumour in a pedicle is STIR-bright and T1-dark; with both series, both are required,
        // so that a region grazing fluid or fat on one sequence is not read as involvement.
        // A pedicle is a few millimetres across: the region takes in its cortex and
        // surroundings, so alone each sequence needs a strong change (STIR ×2, T1 ×0.5) and
        // together a moderate one (STIR ×2, T1 below ×0.75).
        let bright = sr.map(|r| r >= 1.0 + 2.0 * STIR_RISE);
        *flag = match (bright, tr) {
            (None, None) => None,
            (Some(b), Some(t)) => Some(b && t <= 1.0 - T1_FALL),
            (Some(b), None) => Some(b),
            (None, Some(t)) => Some(t <= 1.0 - 2.0 * T1_FALL),
        };
    }
    combine_posterior(&mut out, abnormal);
    let names = ["left pedicle", "right pedicle", "lamina"];
    let read: Vec<String> = (0..3)
        .map(|s| {
            format!(
                "{} ({}) STIR {} T1 {}",
                names[s],
                out.located[s].unwrap_or("not located"),
                fmt(out.stir_ratio[s]),
                fmt(out.t1_ratio[s])
            )
        })
        .collect();
    ev.push(format!("posterior elements: {}", read.join("; ")));
    out
}

/// Left, right and arch involvement from MR signal (`mr`) and CT lysis (already in `out`).
fn combine_posterior(out: &mut PosteriorSignal, mr: [Option<bool>; 3]) {
    let either = |a: Option<bool>, b: Option<bool>| match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (None, None) => None,
        _ => Some(false),
    };
    let abnormal = [
        either(mr[0], out.ct_lysis[0]),
        either(mr[1], out.ct_lysis[1]),
        mr[2],
    ];
    out.left = abnormal[0];
    out.right = abnormal[1];
    out.arch = abnormal[2];
    out.present = if abnormal.contains(&Some(true)) {
        Some(true)
    } else if abnormal[..2].contains(&None) {
        None
    } else {
        Some(false)
    };
    out.side = match (abnormal[0], abnormal[1]) {
        (Some(true), Some(true)) => Some("bilateral"),
        (Some(true), _) => Some("left"),
        (_, Some(true)) => Some("right"),
        (Some(false), Some(false)) => Some("none"),
        _ => None,
    };
}

/// A pedicle whose CT attenuation is at most this share of the same pedicle's at the reference
/// levels (and 75 HU below it) is lytic: tumour replacing its marrow and thinning its cortex.
/// It must also read below the trabecular reference of the bodies: a pedicle's interior is the
/// same marrow, and its cortex only raises it, so a pedicle denser than trabecular bone is not
/// lytic however dense its references (a ball that grazed cortex at the other levels).
pub const PEDICLE_LYSIS_RATIO: f64 = 0.6;

/// CT lysis of each pedicle: the median attenuation in a 2 mm ball at its centroid (inside the
/// cortical ring, where marrow or tumour is), or where it is expected when it was not segmented,
/// against the same pedicle at the unaffected levels and the bodies' trabecular reference.
#[allow(clippy::too_many_arguments)]
fn ct_pedicle_lysis(
    i: usize,
    m: &StudyMorphometry,
    ordinals: &[usize],
    unaffected: &[bool],
    ct: &Channel,
    trabecular_hu: Option<f64>,
    out: &mut PosteriorSignal,
    ev: &mut Vec<String>,
) {
    use spinetriage_measure::posterior::ArchPart;
    for (s, part) in [ArchPart::LeftPedicle, ArchPart::RightPedicle]
        .into_iter()
        .enumerate()
    {
        let hu: Vec<Option<f64>> = m
            .levels
            .iter()
            .map(|lv| {
                let seg = lv.measurement.posterior_elements.as_ref()?.part(part)?;
                seg.located.then_some(())?;
                median_at(ct, &roi::ball(Vector3::from(seg.centroid_lps_mm), 2.0, 0.7))
            })
            .collect();
        let Some((x, (r, _))) = hu[i].zip(reference(i, ordinals, unaffected, &hu)) else {
            continue;
        };
        out.ct_ratio[s] = (r > 0.0).then(|| x / r);
        out.ct_lysis[s] = Some(
            x <= PEDICLE_LYSIS_RATIO * r && r - x >= 75.0 && trabecular_hu.is_none_or(|t| x < t),
        );
        ev.push(format!(
            "CT {}: {x:.0} HU (reference {r:.0} HU){}",
            part.name(),
            if out.ct_lysis[s] == Some(true) {
                ": lytic"
            } else {
                ""
            }
        ));
    }
}

/// "yes", "no" or "not known".
fn known(x: Option<bool>) -> &'static str {
    match x {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not known",
    }
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{v:.2}"))
}
