//! The study's triage category, priority and reasons, for worklist ordering. Rules and the seed
//! text each follows: `docs/triage.md`.

use crate::facts::{ClinicalFacts, RedFlag};
use crate::findings::{ImagingFindings, LevelFinding};
use crate::prior::{LevelChange, PriorComparison};
use serde::Serialize;

/// Canal compromise, per cent of the neighbouring levels' canal diameter, from which a study is
/// urgent, beyond 2 σ of its own uncertainty. Hashimoto et al. (Spine 1988) found neurological
/// injury likely above 35 % at T11–T12, 45 % at L1 and 55 % at L2 and below; a triage tool
/// surfaces the study before those, so 25 % (`docs/triage.md`).
pub const URGENT_CANAL_COMPROMISE_PCT: f64 = 25.0;

/// Retropulsion, mm, from which a study is urgent when no series shows the canal (T1 or T2
/// without CT, STIR or T2 fat-sat): 4 mm is 25 % of a 16 mm lumbar canal.
pub const URGENT_RETROPULSION_MM: f64 = 4.0;

/// Hashimoto et al.'s canal compromise above which neurological injury was likely, per cent.
pub fn hashimoto_threshold_pct(level: Option<&str>) -> Option<f64> {
    match level? {
        "T11" | "T12" => Some(35.0),
        "L1" => Some(45.0),
        "L2" | "L3" | "L4" | "L5" => Some(55.0),
        _ => None,
    }
}

/// Triage categories, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Retropulsion into the canal, epidural soft tissue, or cord/cauda equina compression.
    Urgent,
    /// Marrow replacement, posterior-element involvement, a convex posterior wall, lysis.
    SuspectedPathologicalFracture,
    /// Oedema or a cleft at a fractured level; without a fluid-sensitive series, a fracture new
    /// or progressing since a prior study.
    AcuteFractureAugmentationCandidate,
    /// A fracture whose acuity cannot be told (CT alone, or no fluid-sensitive series).
    FractureAcuityUndetermined,
    /// Oedema at a level without height loss (microfracture).
    OedemaWithoutHeightLoss,
    /// Part of the study could not be evaluated, and nothing above was found.
    NotEvaluable,
    /// Deformity without oedema.
    ChronicOrHealedFracture,
    /// Every level measured, no fracture, no oedema.
    NoFractureDetected,
}

impl Category {
    /// Priority, 1 = most urgent.
    pub fn priority(self) -> u8 {
        self as u8 + 1
    }

    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Category::Urgent => "Urgent",
            Category::SuspectedPathologicalFracture => "Suspected pathological fracture",
            Category::AcuteFractureAugmentationCandidate => {
                "Acute fracture, augmentation candidate"
            }
            Category::FractureAcuityUndetermined => "Fracture, acuity undetermined",
            Category::OedemaWithoutHeightLoss => "Oedema without height loss",
            Category::NotEvaluable => "Not evaluable",
            Category::ChronicOrHealedFracture => "Chronic or healed fracture",
            Category::NoFractureDetected => "No fracture detected",
        }
    }
}

/// One reason: level, finding, value, rule.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    /// Level, when the reason is a level's.
    pub level: Option<String>,
    /// The finding.
    pub finding: String,
    /// Its value.
    pub value: String,
    /// The rule it met, with its source.
    pub rule: String,
    /// The category this reason supports.
    pub category: Category,
}

/// The triage record of a study.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    /// Category.
    pub category: Category,
    /// Its label.
    pub label: &'static str,
    /// Priority, 1 = most urgent.
    pub priority: u8,
    /// Every reason found, most urgent first; the first ones decided the category.
    pub reasons: Vec<Reason>,
}

fn reason(
    l: &LevelFinding,
    finding: &str,
    value: String,
    rule: &str,
    category: Category,
) -> Reason {
    Reason {
        level: Some(l.name()),
        finding: finding.into(),
        value,
        rule: rule.into(),
        category,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{v:.0} %"))
}

/// Triage of one study. `analysed` is false when no series could be measured at all.
pub fn triage(
    f: &ImagingFindings,
    clinical: &ClinicalFacts,
    prior: Option<&PriorComparison>,
    analysed: bool,
    why_not: &str,
) -> Triage {
    use Category::*;
    let mut r: Vec<Reason> = Vec::new();
    if !analysed || f.levels.is_empty() {
        r.push(Reason {
            level: None,
            finding: "study".into(),
            value: why_not.into(),
            rule: "no vertebral level could be measured".into(),
            category: NotEvaluable,
        });
    }
    for l in &f.levels {
        let fractured = l.fractured() == Some(true);
        let s = &l.signal;
        // A wall's displacement, and the canal compromise computed from it, count only where a
        // fracture can have displaced it.
        let wall = l.wall_displacement_read();
        if let Some(pct) = l.canal_compromise_pct.filter(|_| wall) {
            let sigma = l.canal_compromise_sigma_pct.unwrap_or(0.0);
            if pct - 2.0 * sigma >= URGENT_CANAL_COMPROMISE_PCT {
                let of = match l.canal_extent {
                    Some(spinetriage_measure::canal::CanalExtent::ThecalSac) => "thecal sac",
                    _ => "bony canal",
                };
                let neuro = hashimoto_threshold_pct(l.level.as_deref())
                    .map(|t| {
                        format!(
                            "; {} Hashimoto's {t:.0} % neurological-risk level for this level",
                            if pct >= t { "at or above" } else { "below" }
                        )
                    })
                    .unwrap_or_default();
                r.push(reason(
                    l,
                    "canal compromise",
                    format!(
                        "{pct:.1} ± {sigma:.1} % of the neighbouring {of} ({:.1} mm retropulsion)",
                        l.retropulsion_mm.unwrap_or(0.0)
                    ),
                    &format!(
                        "canal compromise ≥ {URGENT_CANAL_COMPROMISE_PCT:.0} %{neuro}: practice parameter relative contraindication C.2; seed 003 surgical consultation"
                    ),
                    Urgent,
                ));
            }
        } else if wall
            && l.retropulsion_mm.is_some_and(|v| {
                v - 2.0 * l.retropulsion_sigma_mm.unwrap_or(0.0) >= URGENT_RETROPULSION_MM
            })
        {
            r.push(reason(
                l,
                "retropulsion",
                format!(
                    "{:.1} ± {:.1} mm",
                    l.retropulsion_mm.unwrap_or(0.0),
                    l.retropulsion_sigma_mm.unwrap_or(0.0)
                ),
                "posterior wall ≥ 4 mm into the canal (≈ 25 % of a 16 mm canal; no series shows the canal itself): practice parameter relative contraindication C.2; seed 003 surgical consultation",
                Urgent,
            ));
        }
        if s.epidural_soft_tissue == Some(true) {
            r.push(reason(
                l,
                "epidural soft tissue",
                l.epidural_thickness_mm.map_or("present".into(), |t| {
                    format!("{t:.1} mm of tissue in front of the CSF column beyond the neighbours'")
                }),
                "ventral epidural tissue ≥ 2.5 mm, not CSF and not suppressed fat: practice parameter relative contraindication C.3",
                Urgent,
            ));
        }
        // Sac narrowing counts where something can cause it here: a fracture, a displaced wall,
        // epidural tissue or a pathological sign (degenerative stenosis is not this tool's).
        let cause = fractured
            || l.retropulsed() == Some(true)
            || s.epidural_soft_tissue == Some(true)
            || l.pathological_signs() == Some(true);
        if l.thecal_sac_compressed == Some(true) && cause {
            r.push(reason(
                l,
                "thecal sac compression",
                format!(
                    "CSF column {} of the neighbouring levels'",
                    pct(l.thecal_sac_residual_pct)
                ),
                "thecal sac ≤ 50 % of its neighbours: imaging sign of cord or cauda equina compression; ACR Appendix 1 epidural spinal cord compression; seed 003 surgical consultation",
                Urgent,
            ));
        }
        for (flag, name) in [
            (s.marrow_replacement, "marrow replacement"),
            (
                s.posterior_element_involvement,
                "posterior-element involvement",
            ),
            (s.convex_posterior_wall, "convex posterior wall"),
            (s.lytic, "lytic pattern"),
        ] {
            if flag == Some(true) {
                r.push(reason(
                    l,
                    name,
                    "present".into(),
                    "sign of a pathological fracture: seed 003 variants 2, 4 and 9 (biopsy, oncology)",
                    SuspectedPathologicalFracture,
                ));
            }
        }
        if fractured {
            let value = format!(
                "height loss {}, Genant {}",
                pct(l.height_loss_pct),
                l.genant_grade.unwrap_or(0)
            );
            match (s.edema, s.cleft) {
                (Some(true), _) | (_, Some(true)) => r.push(reason(
                    l,
                    if s.edema == Some(true) { "fracture with marrow oedema" } else { "fracture with a cleft" },
                    value.clone(),
                    "seed 003 variant 6: symptomatic osteoporotic VCF with bone marrow oedema or intravertebral cleft",
                    AcuteFractureAugmentationCandidate,
                )),
                (Some(false), _) => r.push(reason(
                    l,
                    "fracture without oedema",
                    value.clone(),
                    "deformity without oedema: chronic or healed (seed 003 variant 5/8 context)",
                    ChronicOrHealedFracture,
                )),
                // Without oedema to go by, a prior study or sclerosis can still say more
                // (marrow issue item 8).
                (None, _) => {
                    let then = prior
                        .zip(l.level.as_deref())
                        .and_then(|(p, n)| p.levels.iter().find(|c| c.level == n));
                    let since = |c: &LevelChange| {
                        format!(
                            "{value}; prior study: Genant {}, loss {}",
                            c.prior_grade.map_or("unknown".into(), |g| g.to_string()),
                            pct(c.prior_loss_pct)
                        )
                    };
                    r.push(match then {
                        Some(c) if c.new_fracture == Some(true) || c.progression == Some(true) => {
                            reason(
                                l,
                                "fracture new or progressing since the prior study, oedema not assessable",
                                since(c),
                                "acuity from the prior study: the fracture arose or progressed since it, so it is recent (an MRI would show its oedema); seed 003 variant 6, practice parameter indication A.5",
                                AcuteFractureAugmentationCandidate,
                            )
                        }
                        Some(c) if c.new_fracture == Some(false) && c.progression == Some(false) => {
                            reason(
                                l,
                                "fracture unchanged since the prior study",
                                since(c),
                                "acuity from the prior study: fractured then and not progressing, so not new",
                                ChronicOrHealedFracture,
                            )
                        }
                        _ if s.sclerotic == Some(true) => reason(
                            l,
                            "fracture with sclerotic bone, oedema not assessable",
                            value.clone(),
                            "CT alone: sclerosis in a fractured body reads as a healing or healed fracture, or as a sclerotic lesion, not as an acute fracture; the other signs tell a lesion",
                            FractureAcuityUndetermined,
                        ),
                        _ => reason(
                            l,
                            "fracture, oedema not assessable",
                            value.clone(),
                            "acuity not determinable without a fluid-sensitive series (CT alone cannot tell) or a prior study",
                            FractureAcuityUndetermined,
                        ),
                    });
                }
            }
        } else if l.deformity == Some(true) && s.edema == Some(false) {
            r.push(reason(
                l,
                "deformity without oedema",
                format!("ACR deformity; loss {}", pct(l.height_loss_pct)),
                "ACR deformity definition (seed 003 variants 5, 8) without oedema",
                ChronicOrHealedFracture,
            ));
        }
        if l.fractured() == Some(false) && s.edema == Some(true) {
            r.push(reason(
                l,
                "oedema without height loss",
                pct(l.height_loss_pct),
                "practice parameter indication A.3: microfracture documented by advanced imaging",
                OedemaWithoutHeightLoss,
            ));
        }
        // The sacrum is not graded (S1 is fused to S2): its missing grade hides nothing.
        let sacral = spinetriage_measure::is_sacral(l.level.as_deref());
        if !sacral && (!l.evaluable || l.genant_grade.is_none()) {
            r.push(reason(
                l,
                "level not evaluable",
                "not measured".into(),
                "a level that could not be measured may hide a fracture",
                NotEvaluable,
            ));
        }
    }
    // Clinical red flags of cord or cauda equina compression make a study with a fracture urgent.
    if let Some(flags) = &clinical.red_flags {
        for fl in flags {
            if matches!(
                fl,
                RedFlag::CaudaEquinaSyndrome | RedFlag::SevereNeurologicCompromise
            ) && f.levels.iter().any(|l| l.fractured() == Some(true))
            {
                r.push(Reason {
                    level: None,
                    finding: format!("{fl:?}"),
                    value: "clinical red flag".into(),
                    rule: "ACR Appendix 1: epidural spinal cord compression".into(),
                    category: Urgent,
                });
            }
        }
    }
    r.sort_by_key(|x| x.category);
    let category = r.first().map_or(NoFractureDetected, |x| x.category);
    if r.is_empty() {
        r.push(Reason {
            level: None,
            finding: "all levels".into(),
            value: format!(
                "{} levels measured, none with height loss ≥ 20 %, no oedema",
                f.levels.len()
            ),
            rule: "no level meets a fracture, oedema or deformity rule".into(),
            category,
        });
    }
    Triage {
        category,
        label: category.label(),
        priority: category.priority(),
        reasons: r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinetriage_volume::SeriesKind;

    fn level(name: &str, loss: Option<f64>, edema: Option<bool>) -> LevelFinding {
        let mut l = crate::findings::test_level(name, loss, edema);
        l.retropulsion_mm = Some(0.5);
        l.retropulsion_sigma_mm = Some(0.2);
        l
    }

    fn run(levels: Vec<LevelFinding>) -> Triage {
        let f = ImagingFindings {
            series_kinds: vec![SeriesKind::MrT1],
            levels,
        };
        triage(&f, &ClinicalFacts::default(), None, true, "")
    }

    #[test]
    fn every_category_is_reachable() {
        let normal = || level("L2", Some(2.0), Some(false));
        let mut burst = level("L1", Some(35.0), Some(true));
        burst.retropulsion_mm = Some(6.0);
        burst.canal_compromise_pct = Some(37.0);
        burst.canal_compromise_sigma_pct = Some(1.0);
        let mut tumour = level("L4", Some(10.0), Some(false));
        tumour.signal.marrow_replacement = Some(true);
        let cases = [
            (vec![normal(), burst], Category::Urgent),
            (
                vec![normal(), tumour],
                Category::SuspectedPathologicalFracture,
            ),
            (
                vec![normal(), level("L1", Some(30.0), Some(true))],
                Category::AcuteFractureAugmentationCandidate,
            ),
            (
                vec![normal(), level("L1", Some(30.0), None)],
                Category::FractureAcuityUndetermined,
            ),
            (
                vec![normal(), level("L3", Some(3.0), Some(true))],
                Category::OedemaWithoutHeightLoss,
            ),
            (
                vec![normal(), level("L3", None, None)],
                Category::NotEvaluable,
            ),
            (
                vec![normal(), level("L2", Some(35.0), Some(false))],
                Category::ChronicOrHealedFracture,
            ),
            (vec![normal(), normal()], Category::NoFractureDetected),
            (vec![], Category::NotEvaluable),
        ];
        for (levels, want) in cases {
            let t = run(levels);
            assert_eq!(t.category, want, "{:#?}", t.reasons);
            assert_eq!(t.priority, want.priority());
            assert!(!t.reasons.is_empty());
            assert_eq!(t.reasons[0].category, want);
        }
    }

    /// A fracture on CT alone (oedema unknown), with or without a prior study or sclerosis.
    #[test]
    fn a_prior_study_or_sclerosis_says_more_about_a_ct_fracture() {
        let normal = || level("L2", Some(2.0), Some(false));
        let ct_fracture = || level("L1", Some(30.0), None);
        let f = ImagingFindings {
            series_kinds: vec![SeriesKind::Ct],
            levels: vec![normal(), ct_fracture()],
        };
        let prior_with = |grade: u8, loss: f64| {
            let mut then = f.clone();
            then.levels[1].genant_grade = Some(grade);
            then.levels[1].height_loss_pct = Some(loss);
            crate::prior::compare(&f, &then)
        };
        let run = |f: &ImagingFindings, p: Option<&PriorComparison>| {
            triage(f, &ClinicalFacts::default(), p, true, "")
        };
        assert_eq!(run(&f, None).category, Category::FractureAcuityUndetermined);
        // Not fractured on the prior study: new in the interval.
        let new = run(&f, Some(&prior_with(0, 5.0)));
        assert_eq!(new.category, Category::AcuteFractureAugmentationCandidate);
        assert!(
            new.reasons[0].value.contains("prior study: Genant 0"),
            "{new:#?}"
        );
        // Fractured as much before: not new.
        let old = run(&f, Some(&prior_with(2, 29.0)));
        assert_eq!(old.category, Category::ChronicOrHealedFracture, "{old:#?}");
        // Progressed by more than the measurement's spread: recent.
        let worse = run(&f, Some(&prior_with(1, 12.0)));
        assert_eq!(worse.category, Category::AcuteFractureAugmentationCandidate);
        // Sclerotic bone in the fractured body, no prior study: said, still undetermined.
        let mut g = f.clone();
        g.levels[1].signal.sclerotic = Some(true);
        let t = run(&g, None);
        assert_eq!(t.category, Category::FractureAcuityUndetermined);
        assert!(t.reasons[0].finding.contains("sclerotic"), "{t:#?}");
    }

    #[test]
    fn fractures_oedema_and_unknowns_never_read_as_no_fracture() {
        let losses = [None, Some(0.0), Some(19.9), Some(20.0), Some(45.0)];
        let oedema = [None, Some(false), Some(true)];
        for a in losses {
            for b in losses {
                for ea in oedema {
                    for eb in oedema {
                        let t = run(vec![level("L1", a, ea), level("L2", b, eb)]);
                        let fracture = [a, b].iter().any(|l| l.is_some_and(|l| l >= 20.0));
                        let any_oedema = [ea, eb].contains(&Some(true));
                        let unevaluable = a.is_none() || b.is_none();
                        if fracture || any_oedema || unevaluable {
                            assert_ne!(
                                t.category,
                                Category::NoFractureDetected,
                                "{a:?}/{ea:?} {b:?}/{eb:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn canal_compromise_decides_when_measured_and_millimetres_only_without_it() {
        let normal = || level("L2", Some(2.0), Some(false));
        // 5 mm into a wide canal: 20 %, below the threshold, so not urgent on millimetres.
        let mut wide = level("L1", Some(30.0), Some(false));
        wide.retropulsion_mm = Some(5.0);
        wide.canal_compromise_pct = Some(20.0);
        wide.canal_compromise_sigma_pct = Some(1.0);
        assert_ne!(run(vec![normal(), wide.clone()]).category, Category::Urgent);
        // Same wall, canal 2 σ-uncertain about the threshold: not urgent either.
        wide.canal_compromise_pct = Some(27.0);
        wide.canal_compromise_sigma_pct = Some(2.0);
        assert_ne!(run(vec![normal(), wide.clone()]).category, Category::Urgent);
        // Clearly above: urgent, and the reason carries the value and Hashimoto's L1 level.
        wide.canal_compromise_pct = Some(48.0);
        let t = run(vec![normal(), wide.clone()]);
        assert_eq!(t.category, Category::Urgent);
        assert_eq!(t.reasons[0].finding, "canal compromise");
        assert!(
            t.reasons[0].value.starts_with("48.0 ± 2.0 %"),
            "{}",
            t.reasons[0].value
        );
        assert!(t.reasons[0].rule.contains("at or above Hashimoto's 45 %"));
        // No canal series: the millimetre rule stands in.
        wide.canal_compromise_pct = None;
        wide.canal_compromise_sigma_pct = None;
        let t = run(vec![normal(), wide.clone()]);
        assert_eq!(t.category, Category::Urgent);
        assert_eq!(t.reasons[0].finding, "retropulsion");
        // The same wall on a body without height loss is not a displaced fragment, with or
        // without a canal series.
        let mut intact = level("L1", Some(4.0), Some(false));
        intact.retropulsion_mm = wide.retropulsion_mm;
        intact.canal_compromise_pct = None;
        assert_eq!(
            run(vec![normal(), intact.clone()]).category,
            Category::NoFractureDetected
        );
        intact.canal_compromise_pct = Some(48.0);
        assert_eq!(
            run(vec![normal(), intact]).category,
            Category::NoFractureDetected
        );
    }
}
