//! Imaging findings as the rules see them: per level from the morphometry (and, once measured,
//! the marrow signal), then summarised into named facts with their evidence.

use crate::expr::Value;
use serde::Serialize;
use spinetriage_marrow::{LevelSignal, MarrowReport};
use spinetriage_measure::{Status, StudyMorphometry};
use spinetriage_volume::SeriesKind;

/// Posterior-wall displacement, mm, from which retropulsion is reported. A normal posterior wall
/// is straight or slightly concave; below 3 mm a bulge is within the measurement's spread on
/// normal levels (`docs/criteria.md`).
pub const RETROPULSION_MM: f64 = 3.0;

/// Height loss, per cent, from which collapse is "severe" (Genant grade 3, which Genant et al.,
/// J Bone Miner Res 1993, name severe); a cement-leakage risk factor of the practice parameter.
pub const SEVERE_COLLAPSE_PCT: f64 = 40.0;

/// Marrow-signal and bone-quality findings of one level; `None` is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SignalFindings {
    /// Marrow oedema (STIR bright, T1 dark).
    pub edema: Option<bool>,
    /// Intravertebral cleft (fluid on MR, gas on CT).
    pub cleft: Option<bool>,
    /// Marrow replacement.
    pub marrow_replacement: Option<bool>,
    /// Posterior-element involvement.
    pub posterior_element_involvement: Option<bool>,
    /// Convex posterior wall.
    pub convex_posterior_wall: Option<bool>,
    /// Lytic pattern on CT.
    pub lytic: Option<bool>,
    /// Sclerotic (or mixed) pattern on CT.
    pub sclerotic: Option<bool>,
    /// Cortical destruction.
    pub cortical_destruction: Option<bool>,
    /// Epidural or paravertebral soft tissue.
    pub epidural_soft_tissue: Option<bool>,
    /// Why the unknown fields are unknown.
    pub reason: Option<String>,
}

/// One level's findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelFinding {
    /// Level name, when labelled.
    pub level: Option<String>,
    /// Whether the level was measured.
    pub evaluable: bool,
    /// Height loss, per cent.
    pub height_loss_pct: Option<f64>,
    /// Genant grade.
    pub genant_grade: Option<u8>,
    /// ACR deformity (any of the four criteria).
    pub deformity: Option<bool>,
    /// The ACR kyphosis criterion, outside the level's physiologic wedge.
    pub kyphotic: Option<bool>,
    /// The smallest of the anterior, middle and posterior heights, mm.
    pub min_height_mm: Option<f64>,
    /// Posterior-wall displacement, mm.
    pub retropulsion_mm: Option<f64>,
    /// Its uncertainty (1 σ), mm.
    pub retropulsion_sigma_mm: Option<f64>,
    /// Canal compromise: the displacement as a share of the neighbouring levels' canal, %.
    pub canal_compromise_pct: Option<f64>,
    /// Its uncertainty (1 σ), percentage points.
    pub canal_compromise_sigma_pct: Option<f64>,
    /// What the canal diameter spans (bony canal on CT, thecal sac on fluid-sensitive MR).
    pub canal_extent: Option<spinetriage_measure::canal::CanalExtent>,
    /// Thecal sac narrowed to half its neighbours' or less: an imaging sign of cord or cauda
    /// equina compression; unknown without a fluid-sensitive fat-suppressed series.
    pub thecal_sac_compressed: Option<bool>,
    /// The thecal sac at mid-height as a share of the neighbours', %.
    pub thecal_sac_residual_pct: Option<f64>,
    /// Tissue in front of the CSF column beyond the neighbours' anterior epidural space, mm.
    pub epidural_thickness_mm: Option<f64>,
    /// Marrow signal.
    pub signal: SignalFindings,
}

impl LevelFinding {
    /// Fractured: Genant grade 1 or more (height loss ≥ 20 %), as
    /// [`spinetriage_measure::fractured`] reads it for the marrow stage's convex-wall sign.
    pub fn fractured(&self) -> Option<bool> {
        spinetriage_measure::fractured(self.genant_grade)
    }

    /// The level's name, or "unlabelled level".
    pub fn name(&self) -> String {
        self.level
            .clone()
            .unwrap_or_else(|| "unlabelled level".into())
    }

    /// Whether a displaced posterior wall is read as retropulsion here: not at a level measured
    /// without height loss (Genant 0). Retropulsion is a fragment of a burst fracture pushed into
    /// the canal; on an uncompressed body a wall "displaced" from its own line is the wall's
    /// shape or what the rays met behind it (on 17 real T2 exams of normal lumbar spines:
    /// 9.2 mm where two rays ran on through the basivertebral foramen, 15.5 mm against a line
    /// drawn through two rays that left the body at its inferior corner). The convex-wall sign
    /// is read the same way (`spinetriage-marrow`).
    pub fn wall_displacement_read(&self) -> bool {
        self.fractured() != Some(false)
    }

    /// Why a measured wall displacement of at least [`RETROPULSION_MM`] is not read as
    /// retropulsion at this level, if it is not.
    pub fn unread_wall_displacement(&self) -> Option<String> {
        let v = self.retropulsion_mm.filter(|v| *v >= RETROPULSION_MM)?;
        (!self.wall_displacement_read()).then(|| {
            format!(
                "retropulsion: the posterior wall reads {v:.1} mm off its line, but retropulsion is read on compressed bodies only (Genant 0 here)"
            )
        })
    }

    /// Retropulsion beyond [`RETROPULSION_MM`] by more than 2 σ: true; below it by more than 2 σ,
    /// or at a level without height loss ([`Self::wall_displacement_read`]): false; otherwise
    /// unknown.
    pub fn retropulsed(&self) -> Option<bool> {
        if !self.wall_displacement_read() {
            return Some(false);
        }
        let v = self.retropulsion_mm?;
        let s = self.retropulsion_sigma_mm.unwrap_or(0.0);
        if v - 2.0 * s >= RETROPULSION_MM {
            Some(true)
        } else if v + 2.0 * s < RETROPULSION_MM {
            Some(false)
        } else {
            None
        }
    }

    /// Any imaging sign of a pathological (neoplastic) fracture among those measured: marrow
    /// replacement, posterior-element involvement, a convex posterior wall, a lytic pattern.
    /// Epidural or paravertebral soft tissue counts when found; its absence is not assessed, and
    /// the evidence says so (`docs/criteria.md`).
    pub fn pathological_signs(&self) -> Option<bool> {
        let s = &self.signal;
        if s.epidural_soft_tissue == Some(true) {
            return Some(true);
        }
        any([
            s.marrow_replacement,
            s.posterior_element_involvement,
            s.convex_posterior_wall,
            s.lytic,
        ])
    }
}

/// Kleene "or" over options.
fn any(v: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for x in v {
        match x {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// The imaging findings of one study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagingFindings {
    /// Kinds of the series in the study.
    pub series_kinds: Vec<SeriesKind>,
    /// Levels, cranial first (not evaluable ones included).
    pub levels: Vec<LevelFinding>,
}

/// The rules' view of one level's marrow findings.
fn signal_of(s: Option<&LevelSignal>) -> SignalFindings {
    let Some(s) = s else {
        return SignalFindings {
            reason: Some("marrow signal not measured for this study".into()),
            ..SignalFindings::default()
        };
    };
    let unknown: Vec<&str> = [
        ("oedema", s.edema.is_none()),
        ("cleft", s.cleft.is_none()),
        ("marrow replacement", s.marrow_replacement.is_none()),
        ("posterior elements", s.posterior.present.is_none()),
    ]
    .iter()
    .filter(|x| x.1)
    .map(|x| x.0)
    .collect();
    SignalFindings {
        edema: s.edema,
        cleft: s.cleft,
        marrow_replacement: s.marrow_replacement,
        posterior_element_involvement: s.posterior.present,
        convex_posterior_wall: s.convex_posterior_wall,
        // Without CT, bone destruction is judged on MR as marrow replacement.
        lytic: s
            .ct_pattern
            .map(|p| p == "lytic" || p == "mixed")
            .or(s.marrow_replacement.map(|_| false)),
        sclerotic: s.ct_pattern.map(|p| p == "sclerotic" || p == "mixed"),
        cortical_destruction: s.cortical_destruction,
        // Paravertebral tissue from the marrow stage; epidural tissue comes from the canal
        // measurement (the morphometry), and the caller combines them.
        epidural_soft_tissue: s.paravertebral_soft_tissue.filter(|p| *p),
        reason: (!unknown.is_empty()).then(|| {
            format!(
                "{} not determined: {}",
                unknown.join(", "),
                s.evidence
                    .iter()
                    .filter(|e| e.contains("no ") || e.contains("needs"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }),
    }
}

/// One named fact for the rules, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// Its value.
    pub value: Value,
    /// "clinical", "imaging" or "clinical+imaging".
    pub source: &'static str,
    /// The numbers behind it.
    pub evidence: String,
}

/// Whether a level name lies in T5–L5 (Regence 107 I.A). `None` for an unlabelled level.
pub fn in_t5_l5(level: Option<&str>) -> Option<bool> {
    let l = level?;
    let n: u32 = l.get(1..)?.parse().ok()?;
    Some(match l.as_bytes().first()? {
        b'T' => n >= 5,
        b'L' => true,
        _ => false,
    })
}

impl ImagingFindings {
    /// Findings from a study's morphometry and, when measured, its marrow signal (aligned with
    /// the morphometry's levels). Without it the signal findings are unknown.
    pub fn from_morphometry(
        m: Option<&StudyMorphometry>,
        series_kinds: Vec<SeriesKind>,
        marrow: Option<&MarrowReport>,
    ) -> ImagingFindings {
        let levels = m
            .map(|m| {
                m.levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let d = &l.derived;
                        let measured = l.measurement.status == Status::Measured;
                        LevelFinding {
                            level: l.level.clone(),
                            evaluable: measured,
                            height_loss_pct: d.height_loss_pct,
                            genant_grade: d.genant_grade,
                            deformity: d.acr_deformity,
                            kyphotic: d
                                .acr_kyphosis
                                .met
                                .map(|k| k && d.wedge_physiologic != Some(true)),
                            min_height_mm: [
                                &l.measurement.anterior,
                                &l.measurement.middle,
                                &l.measurement.posterior,
                            ]
                            .iter()
                            .filter_map(|h| h.map(|h| h.height_mm))
                            .reduce(f64::min),
                            retropulsion_mm: l.measurement.retropulsion_mm,
                            retropulsion_sigma_mm: l.measurement.retropulsion_sigma_mm,
                            canal_compromise_pct: d.canal_compromise_pct,
                            canal_compromise_sigma_pct: d.canal_compromise_sigma_pct,
                            canal_extent: l.measurement.canal.as_ref().map(|c| c.extent),
                            thecal_sac_compressed: d.thecal_sac_compressed,
                            thecal_sac_residual_pct: d.thecal_sac_residual_pct,
                            epidural_thickness_mm: d.epidural_thickness_mm,
                            signal: {
                                let s = signal_of(marrow.and_then(|r| r.levels.get(i)));
                                SignalFindings {
                                    // Either extension is the sign; paravertebral tissue is
                                    // mostly not judged (it needs a STIR-bright body).
                                    epidural_soft_tissue: if s.epidural_soft_tissue == Some(true) {
                                        Some(true)
                                    } else {
                                        d.epidural_soft_tissue
                                    },
                                    ..s
                                }
                            },
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        ImagingFindings {
            series_kinds,
            levels,
        }
    }

    /// The levels where `f` holds, and those where it is unknown.
    fn scan(&self, f: &impl Fn(&LevelFinding) -> Option<bool>) -> (Vec<String>, Vec<String>) {
        let names = |want: Option<bool>| -> Vec<String> {
            self.levels
                .iter()
                .filter(|l| f(l) == want)
                .map(|l| l.name())
                .collect()
        };
        (names(Some(true)), names(None))
    }

    /// A per-level predicate summarised over the study: true if some level has it, false if
    /// every level is known not to, unknown otherwise; with the levels that decided it.
    fn exists(&self, what: &str, f: impl Fn(&LevelFinding) -> Option<bool>) -> Fact {
        let (yes, unknown) = self.scan(&f);
        let (value, evidence) = if !yes.is_empty() {
            (Value::Bool(true), format!("{what}: {}", yes.join(", ")))
        } else if self.levels.is_empty() {
            (Value::Unknown, "no vertebral level was found".to_string())
        } else if unknown.is_empty() {
            (
                Value::Bool(false),
                format!("{what}: none of {} levels", self.levels.len()),
            )
        } else {
            (
                Value::Unknown,
                format!("{what}: none seen; not known at {}", unknown.join(", ")),
            )
        };
        Fact {
            value,
            source: "imaging",
            evidence,
        }
    }

    /// A count of levels, known only when every level that could add to it is known.
    fn count(&self, what: &str, f: impl Fn(&LevelFinding) -> Option<bool>) -> Fact {
        let (yes, unknown) = self.scan(&f);
        let unknown = unknown.len();
        let (value, evidence) = if unknown == 0 && !self.levels.is_empty() {
            (
                Value::Number(yes.len() as f64),
                format!("{what}: {} ({})", yes.len(), yes.join(", ")),
            )
        } else {
            (
                Value::Unknown,
                format!(
                    "{what}: at least {} ({}); {unknown} level(s) not known",
                    yes.len(),
                    yes.join(", ")
                ),
            )
        };
        Fact {
            value,
            source: "imaging",
            evidence,
        }
    }

    /// The levels of the mobile spine. The sacrum is neither graded nor judged for signal (its
    /// marrow is fattier than the mobile spine's reference, it has no pedicles like theirs), so
    /// a study whose column reaches S1 would otherwise know none of its facts ("not known at
    /// S1"); sacral levels decide only the sacral-fracture fact.
    fn mobile(&self) -> ImagingFindings {
        ImagingFindings {
            series_kinds: self.series_kinds.clone(),
            levels: self
                .levels
                .iter()
                .filter(|l| !spinetriage_measure::is_sacral(l.level.as_deref()))
                .cloned()
                .collect(),
        }
    }

    /// The study's imaging facts by name.
    pub fn facts(&self) -> Vec<(&'static str, Fact)> {
        let all = self;
        let mobile = self.mobile();
        let this = &mobile;
        let frac = |l: &LevelFinding| l.fractured();
        let both = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        };
        let fracture_desc = |l: &LevelFinding| {
            format!(
                "{} ({:.0} % loss, Genant {})",
                l.name(),
                l.height_loss_pct.unwrap_or(f64::NAN),
                l.genant_grade.map(|g| g.to_string()).unwrap_or("-".into())
            )
        };
        let mut fracture = this.exists("height loss >= 20 % (Genant >= 1)", frac);
        if fracture.value == Value::Bool(true) {
            let list: Vec<String> = self
                .levels
                .iter()
                .filter(|l| l.fractured() == Some(true))
                .map(fracture_desc)
                .collect();
            fracture.evidence = format!("vertebral compression fracture at {}", list.join(", "));
        }
        let fractures = this.count("fractured levels", frac);
        let multiple = Fact {
            value: match &fractures.value {
                Value::Number(n) => Value::Bool(*n >= 2.0),
                _ => {
                    let known = this.levels.iter().filter(|l| frac(l) == Some(true)).count();
                    if known >= 2 {
                        Value::Bool(true)
                    } else {
                        Value::Unknown
                    }
                }
            },
            source: "imaging",
            evidence: fractures.evidence.clone(),
        };
        vec![
            ("fracture", fracture),
            ("multiple_fractures", multiple),
            (
                "deformity",
                this.exists(
                    "ACR deformity (loss >= 20 %, kyphosis >= 15 %, scoliosis >= 10 % or dorsal wall >= 10 %)",
                    |l| l.deformity,
                ),
            ),
            (
                "kyphotic_deformity",
                this.exists("anterior wedge >= 15 % beyond the level's physiologic range", |l| {
                    l.kyphotic
                }),
            ),
            (
                "severe_collapse",
                this.exists("height loss > 40 % (Genant 3)", |l| {
                    l.height_loss_pct.map(|p| p > SEVERE_COLLAPSE_PCT)
                }),
            ),
            (
                "fractures_t5_l5",
                this.count("fractured levels in T5-L5", |l| {
                    both(frac(l), in_t5_l5(l.level.as_deref()))
                }),
            ),
            (
                "fractures_outside_t5_l5",
                this.count("fractured levels outside T5-L5", |l| {
                    both(frac(l), in_t5_l5(l.level.as_deref()).map(|b| !b))
                }),
            ),
            (
                "sacral_fracture",
                all.exists("fractured sacral level", |l| {
                    both(frac(l), l.level.as_deref().map(|n| n.starts_with('S')))
                }),
            ),
            (
                "retropulsion",
                this.exists(
                    &format!("posterior wall displaced >= {RETROPULSION_MM} mm (beyond 2 sigma)"),
                    |l| l.retropulsed(),
                ),
            ),
            (
                "edema_at_fracture",
                this.exists("marrow oedema at a fractured level", |l| {
                    both(frac(l), l.signal.edema)
                }),
            ),
            (
                "edema_without_height_loss",
                this.exists("marrow oedema without height loss", |l| {
                    both(frac(l).map(|b| !b), l.signal.edema)
                }),
            ),
            ("cleft", this.exists("intravertebral cleft", |l| l.signal.cleft)),
            (
                "pathological_signs",
                this.exists(
                    "imaging sign of a pathological fracture (marrow replacement, posterior elements, convex wall, lysis, ventral epidural or paravertebral tissue on STIR/T2 fat-sat)",
                    |l| l.pathological_signs(),
                ),
            ),
            (
                "epidural_soft_tissue",
                this.exists("epidural or paravertebral soft tissue", |l| {
                    l.signal.epidural_soft_tissue
                }),
            ),
            (
                "cortical_destruction",
                this.exists("cortical destruction", |l| l.signal.cortical_destruction),
            ),
            (
                "imaging_new_fracture",
                this.exists("fractured level with oedema (acute)", |l| {
                    both(frac(l), l.signal.edema)
                }),
            ),
            (
                "imaging_chronic_fracture",
                this.exists("deformity without oedema (chronic or healed)", |l| {
                    both(l.deformity, l.signal.edema.map(|e| !e))
                }),
            ),
        ]
    }
}

/// A level for unit tests: measured, `loss_pct` height loss, every signal finding known and
/// absent except `edema`.
#[cfg(test)]
pub(crate) fn test_level(name: &str, loss_pct: Option<f64>, edema: Option<bool>) -> LevelFinding {
    LevelFinding {
        level: Some(name.into()),
        evaluable: loss_pct.is_some(),
        height_loss_pct: loss_pct,
        genant_grade: loss_pct.map(spinetriage_measure::genant_grade),
        deformity: loss_pct.map(|l| l >= 20.0),
        kyphotic: Some(false),
        min_height_mm: loss_pct.map(|l| 25.0 * (1.0 - l / 100.0)),
        retropulsion_mm: Some(0.4),
        retropulsion_sigma_mm: Some(0.3),
        canal_compromise_pct: Some(2.5),
        canal_compromise_sigma_pct: Some(2.0),
        canal_extent: Some(spinetriage_measure::canal::CanalExtent::BonyCanal),
        thecal_sac_compressed: Some(false),
        thecal_sac_residual_pct: Some(98.0),
        epidural_thickness_mm: Some(0.1),
        signal: SignalFindings {
            edema,
            cleft: Some(false),
            marrow_replacement: Some(false),
            posterior_element_involvement: Some(false),
            convex_posterior_wall: Some(false),
            lytic: Some(false),
            sclerotic: Some(false),
            cortical_destruction: Some(false),
            epidural_soft_tissue: Some(false),
            reason: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(name: &str, grade: u8) -> LevelFinding {
        LevelFinding {
            level: Some(name.into()),
            evaluable: true,
            height_loss_pct: Some([5.0, 22.0, 30.0, 50.0][grade as usize]),
            genant_grade: Some(grade),
            deformity: Some(grade > 0),
            kyphotic: Some(false),
            min_height_mm: Some(20.0),
            retropulsion_mm: Some(0.5),
            retropulsion_sigma_mm: Some(0.3),
            canal_compromise_pct: None,
            canal_compromise_sigma_pct: None,
            canal_extent: None,
            thecal_sac_compressed: None,
            thecal_sac_residual_pct: None,
            epidural_thickness_mm: None,
            signal: SignalFindings::default(),
        }
    }

    #[test]
    fn counts_and_unknowns() {
        let mut f = ImagingFindings {
            series_kinds: vec![SeriesKind::Ct],
            levels: vec![level("T4", 2), level("T12", 3), level("L1", 0)],
        };
        let facts: std::collections::BTreeMap<_, _> = f.facts().into_iter().collect();
        assert_eq!(facts["fracture"].value, Value::Bool(true));
        assert_eq!(facts["fractures_t5_l5"].value, Value::Number(1.0));
        assert_eq!(facts["fractures_outside_t5_l5"].value, Value::Number(1.0));
        assert_eq!(facts["severe_collapse"].value, Value::Bool(true));
        assert_eq!(facts["retropulsion"].value, Value::Bool(false));
        // Oedema not measured: unknown, never "no".
        assert_eq!(facts["edema_at_fracture"].value, Value::Unknown);
        f.levels.iter_mut().for_each(|l| {
            l.genant_grade = Some(0);
            l.height_loss_pct = Some(3.0)
        });
        f.levels[2].genant_grade = None;
        let facts: std::collections::BTreeMap<_, _> = f.facts().into_iter().collect();
        // A level that could not be graded keeps "fracture" unknown.
        assert_eq!(facts["fracture"].value, Value::Unknown);
    }

    /// S1, ungraded and not judged for signal, leaves the mobile spine's facts known, and only
    /// the sacral-fracture fact unknown.
    #[test]
    fn the_sacrum_decides_only_the_sacral_fracture_fact() {
        let mut s1 = test_level("S1", None, None);
        s1.signal = SignalFindings::default();
        let f = ImagingFindings {
            series_kinds: vec![SeriesKind::MrT1],
            levels: vec![
                test_level("L4", Some(3.0), Some(false)),
                test_level("L5", Some(2.0), Some(false)),
                s1,
            ],
        };
        let facts: std::collections::BTreeMap<_, _> = f.facts().into_iter().collect();
        for name in [
            "fracture",
            "deformity",
            "pathological_signs",
            "edema_without_height_loss",
        ] {
            assert_eq!(
                facts[name].value,
                Value::Bool(false),
                "{name}: {:?}",
                facts[name]
            );
        }
        assert_eq!(facts["sacral_fracture"].value, Value::Unknown);
        assert!(facts["fracture"].evidence.contains("none of 2 levels"));
    }

    /// A wall read 9 mm off its line is retropulsion on a compressed body, not on one measured
    /// without height loss (whose evidence says why), and stays unknown on an ungraded one.
    #[test]
    fn a_displaced_wall_is_retropulsion_on_compressed_bodies_only() {
        let displaced = |grade: Option<u8>| {
            let mut l = level("L2", grade.unwrap_or(0));
            l.genant_grade = grade;
            l.retropulsion_mm = Some(9.2);
            l.retropulsion_sigma_mm = Some(0.9);
            l
        };
        let burst = displaced(Some(2));
        assert_eq!(burst.retropulsed(), Some(true));
        assert_eq!(burst.unread_wall_displacement(), None);
        let intact = displaced(Some(0));
        assert_eq!(intact.retropulsed(), Some(false));
        let why = intact.unread_wall_displacement().expect("a note");
        assert!(why.contains("9.2 mm") && why.contains("Genant 0"), "{why}");
        assert_eq!(displaced(None).retropulsed(), Some(true));
        // An intact body's wall within the threshold needs no note.
        assert_eq!(level("L2", 0).unread_wall_displacement(), None);
    }

    #[test]
    fn t5_l5_region() {
        assert_eq!(in_t5_l5(Some("T4")), Some(false));
        assert_eq!(in_t5_l5(Some("T5")), Some(true));
        assert_eq!(in_t5_l5(Some("L5")), Some(true));
        assert_eq!(in_t5_l5(Some("S1")), Some(false));
        assert_eq!(in_t5_l5(None), None);
    }
}
