//! Evaluates the rules against one study's findings and facts.

use crate::expr::{Expr, Facts, Tri, Value};
use crate::facts::{ClinicalFacts, ConservativeTherapy, RedFlag};
use crate::findings::{Fact, ImagingFindings};
use crate::prior::{compare, PriorComparison};
use crate::rules::{compile, CodeRule, ItemRule, RuleError, Rules};
use crate::sins::{sins, SinsLevel};
use crate::triage::{triage, Triage};
use serde::{Serialize, Serializer};
use spinetriage_volume::SeriesKind;
use std::collections::BTreeMap;

/// Serialises a [`Tri`] as `true`, `false` or `"undetermined"` (the report's `applies`).
fn applies_ser<S: Serializer>(t: &Tri, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Tri::True => s.serialize_bool(true),
        Tri::False => s.serialize_bool(false),
        Tri::Unknown => s.serialize_str("undetermined"),
    }
}

/// A procedure with its ACR category and rating range.
#[derive(Debug, Clone, Serialize)]
pub struct ProcedureRating {
    /// Procedure, as the seed names it.
    pub procedure: String,
    /// Appropriateness category.
    pub category: String,
    /// Rating range of the category, [low, high].
    pub rating_range: [u8; 2],
}

/// One ACR variant, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct VariantResult {
    /// Variant number.
    pub variant: u8,
    /// Title.
    pub title: String,
    /// Clinical phase.
    pub phase: String,
    /// Whether it applies: true, false or "undetermined".
    #[serde(serialize_with = "applies_ser")]
    pub applies: Tri,
    /// The rule, as evaluated.
    pub rule: String,
    /// Each fact the rule read, with its value and the numbers behind it.
    pub evidence: Vec<String>,
    /// For an undetermined variant, the unknown facts that would decide it.
    pub deciding_facts: Vec<String>,
    /// Every procedure with its category.
    pub procedures: Vec<ProcedureRating>,
    /// For the imaging variants (1–4), how the study analysed here is rated.
    pub current_study: Vec<ProcedureRating>,
    /// How the title was read.
    pub note: Option<String>,
}

/// One checklist item, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    /// Identifier as the source numbers it.
    pub id: String,
    /// The source's wording.
    pub text: String,
    /// "met", "not_met", or "unknown" ("needs_documentation" on payer worksheets).
    pub status: &'static str,
    /// "criterion" or "investigational".
    pub kind: String,
    /// The rule, as evaluated.
    pub rule: String,
    /// Each fact the rule read.
    pub evidence: Vec<String>,
    /// For an unknown item, the facts that would decide it.
    pub deciding_facts: Vec<String>,
}

/// The practice parameter, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct PracticeResult {
    /// Citation.
    pub source: String,
    /// II.A.
    pub indications: Vec<ItemResult>,
    /// II.B.
    pub absolute_contraindications: Vec<ItemResult>,
    /// II.C.
    pub relative_contraindications: Vec<ItemResult>,
    /// Cement-leakage risk factors.
    pub leakage_risks: Vec<ItemResult>,
}

/// Codes that would apply to the fractured levels, informational only.
#[derive(Debug, Clone, Serialize)]
pub struct CodeSuggestion {
    /// Procedure.
    pub procedure: String,
    /// Levels it would cover.
    pub levels: Vec<String>,
    /// Codes with units.
    pub codes: Vec<(String, u32)>,
    /// Always true: codes depend on the procedure actually performed.
    pub informational: bool,
}

/// A payer worksheet.
#[derive(Debug, Clone, Serialize)]
pub struct PayerResult {
    /// Short name.
    pub name: String,
    /// Citation.
    pub source: String,
    /// Criteria.
    pub criteria: Vec<ItemResult>,
    /// Medical necessity: "met", "not_met" or "needs_documentation".
    pub medical_necessity: &'static str,
    /// The decision rule.
    pub decision_rule: String,
    /// What would decide it.
    pub deciding_facts: Vec<String>,
    /// The policy's codes.
    pub codes: Vec<CodeRule>,
    /// Codes by region and level count for the fractured levels, informational.
    pub code_suggestions: Vec<CodeSuggestion>,
}

/// A red flag of ACR Appendix 1.
#[derive(Debug, Clone, Serialize)]
pub struct RedFlagResult {
    /// The flag.
    pub flag: RedFlag,
    /// The condition it points to.
    pub condition: &'static str,
}

/// Everything the criteria engine says about one study.
#[derive(Debug, Clone, Serialize)]
pub struct CriteriaReport {
    /// Every fact the rules read, by name.
    pub facts: BTreeMap<String, Fact>,
    /// ACR variants 1–9.
    pub acr_variants: Vec<VariantResult>,
    /// The variants that apply, and those undetermined.
    pub acr_summary: String,
    /// Practice parameter.
    pub practice_parameter: PracticeResult,
    /// Payer worksheets.
    pub payers: Vec<PayerResult>,
    /// SINS imaging components per fractured level.
    pub sins: Vec<SinsLevel>,
    /// Red flags present (ACR Appendix 1); `None` when unknown.
    pub red_flags: Option<Vec<RedFlagResult>>,
    /// Comparison with a prior study.
    pub prior: Option<PriorComparison>,
    /// Triage category, priority and reasons.
    pub triage: Triage,
}

/// Why the engine could not run.
pub type CriteriaError = RuleError;

/// One fact from two sources: "yes" from either wins, then a known "no", then unknown. (Unlike
/// the rules' "or", a single known answer settles it: the sources report the same thing.)
fn either(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
        _ => Value::Unknown,
    }
}

fn or(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
        (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
        _ => Value::Unknown,
    }
}

/// Clinical facts as named values, plus the facts computed from them.
fn clinical_facts(c: &ClinicalFacts) -> Vec<(String, Fact)> {
    let mut out = Vec::new();
    let fact = |value: Value, evidence: String| Fact {
        value,
        source: "clinical",
        evidence,
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(c) {
        for (k, v) in map {
            let value = match v {
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(n) => n.as_f64().map_or(Value::Unknown, Value::Number),
                serde_json::Value::Null => Value::Unknown,
                // Lists are summarised below.
                _ => continue,
            };
            let ev = format!("clinical fact {k} = {value}");
            out.push((k, fact(value, ev)));
        }
    }
    let kinds = c.conservative_therapies.as_ref().map(|v| {
        let mut k: Vec<ConservativeTherapy> = v
            .iter()
            .copied()
            .filter(|t| {
                matches!(
                    t,
                    ConservativeTherapy::Analgesics
                        | ConservativeTherapy::PhysicalTherapy
                        | ConservativeTherapy::ActivityModification
                )
            })
            .collect();
        k.sort_by_key(|t| *t as u8);
        k.dedup();
        k
    });
    out.push((
        "conservative_therapy_kinds".into(),
        fact(
            kinds
                .as_ref()
                .map_or(Value::Unknown, |k| Value::Number(k.len() as f64)),
            format!(
                "conservative therapies of Regence I.A.4 a-c tried: {}",
                kinds.map_or("unknown".into(), |k| format!("{k:?}"))
            ),
        ),
    ));
    out
}

/// Builds the fact table: clinical facts, imaging facts, and the facts that combine both.
pub fn fact_table(
    findings: &ImagingFindings,
    clinical: &ClinicalFacts,
    prior: Option<&PriorComparison>,
) -> BTreeMap<String, Fact> {
    let mut t: BTreeMap<String, Fact> = clinical_facts(clinical).into_iter().collect();
    for (k, f) in findings.facts() {
        t.insert(k.to_string(), f);
    }
    fn combine(t: &mut BTreeMap<String, Fact>, name: &str, a: &str, b: Fact) {
        let av = t.get(a).cloned();
        let (value, evidence) = match av {
            Some(af) => (
                either(&af.value, &b.value),
                format!("{}; {}", af.evidence, b.evidence),
            ),
            None => (b.value.clone(), b.evidence.clone()),
        };
        t.insert(
            name.to_string(),
            Fact {
                value,
                source: "clinical+imaging",
                evidence,
            },
        );
    }
    let imaging = |t: &BTreeMap<String, Fact>, k: &str| t[k].clone();
    let flag = clinical
        .red_flags
        .as_ref()
        .map(|f| f.contains(&RedFlag::HistoryOfCancer));
    combine(
        &mut t,
        "history_of_malignancy",
        "history_of_malignancy",
        Fact {
            value: flag.map_or(Value::Unknown, Value::Bool),
            source: "clinical",
            evidence: "red flag history_of_cancer".into(),
        },
    );
    let new_img = imaging(&t, "imaging_new_fracture");
    let new_prior = prior.map_or(
        Fact {
            value: Value::Unknown,
            source: "imaging",
            evidence: "no prior study".into(),
        },
        |p| p.new_fracture_fact(),
    );
    let new_imaging = Fact {
        value: or(&new_img.value, &new_prior.value),
        source: "imaging",
        evidence: format!("{}; {}", new_img.evidence, new_prior.evidence),
    };
    combine(&mut t, "new_fracture", "new_fracture", new_imaging);
    let prog = prior.map_or(
        Fact {
            value: Value::Unknown,
            source: "imaging",
            evidence: "no prior study to compare".into(),
        },
        |p| p.progression_fact(),
    );
    combine(&mut t, "progressive_fracture", "rapidly_progressive", prog);
    let long_pain = Fact {
        value: match clinical.pain_duration_weeks {
            Some(w) => Value::Bool(w > 26.0),
            None => Value::Unknown,
        },
        source: "clinical",
        evidence: "pain_duration_weeks > 26 (six months)".into(),
    };
    combine(&mut t, "chronic_fracture", "chronic_fracture", long_pain);
    let edema = imaging(&t, "edema_at_fracture");
    let cleft = imaging(&t, "cleft");
    t.insert(
        "non_healing_fracture".into(),
        Fact {
            value: or(&edema.value, &cleft.value),
            source: "imaging",
            evidence: format!("{}; {}", edema.evidence, cleft.evidence),
        },
    );
    t
}

fn values(t: &BTreeMap<String, Fact>) -> Facts {
    t.iter()
        .map(|(k, f)| (k.clone(), f.value.clone()))
        .collect()
}

fn evidence(e: &Expr, t: &BTreeMap<String, Fact>) -> Vec<String> {
    e.names()
        .iter()
        .filter_map(|n| {
            t.get(n)
                .map(|f| format!("{n} = {} ({})", f.value, f.evidence))
        })
        .collect()
}

fn item(
    file: &'static str,
    r: &ItemRule,
    t: &BTreeMap<String, Fact>,
    unknown_word: &'static str,
) -> Result<(ItemResult, Tri), RuleError> {
    let v = values(t);
    let e = compile(file, &r.id, &r.when, &v)?;
    let tri = e.eval(&v);
    Ok((
        ItemResult {
            id: r.id.clone(),
            text: r.text.clone(),
            status: match tri {
                Tri::True => "met",
                Tri::False => "not_met",
                Tri::Unknown => unknown_word,
            },
            kind: r.kind.clone().unwrap_or_else(|| "criterion".into()),
            rule: e.to_string(),
            evidence: evidence(&e, t),
            deciding_facts: e.deciding(&v),
        },
        tri,
    ))
}

fn items(
    file: &'static str,
    rules: &[ItemRule],
    t: &BTreeMap<String, Fact>,
) -> Result<Vec<ItemResult>, RuleError> {
    rules
        .iter()
        .map(|r| item(file, r, t, "unknown").map(|x| x.0))
        .collect()
}

/// The procedures of the study itself, as ACR names them.
fn current_procedures(kinds: &[SeriesKind]) -> Vec<&'static str> {
    let mut v = Vec::new();
    if kinds.contains(&SeriesKind::Ct) {
        v.push("CT spine area of interest without IV contrast");
    }
    if kinds.iter().any(|k| {
        matches!(
            k,
            SeriesKind::MrT1
                | SeriesKind::MrT2
                | SeriesKind::MrStir
                | SeriesKind::MrT2FatSat
                | SeriesKind::MrOther
        )
    }) {
        v.push("MRI spine area of interest without IV contrast");
    }
    v
}

fn region(level: &str, procedure: &str) -> &'static str {
    match (level.as_bytes().first(), procedure) {
        (Some(b'S'), _) => "sacral",
        (Some(b'C') | Some(b'T'), "vertebroplasty") => "cervicothoracic",
        (Some(b'L'), "vertebroplasty") => "lumbosacral",
        (Some(b'T'), _) => "thoracic",
        (Some(b'L'), _) => "lumbar",
        _ => "other",
    }
}

/// Codes per procedure for the fractured levels: one primary code by the region of the first
/// level, add-on codes for the others (CPT), or the all-levels HCPCS code.
fn suggest_codes(codes: &[CodeRule], levels: &[String]) -> Vec<CodeSuggestion> {
    let mut out = Vec::new();
    for procedure in ["vertebroplasty", "kyphoplasty", "sacroplasty"] {
        let lv: Vec<&String> = levels
            .iter()
            .filter(|l| (region(l, procedure) == "sacral") == (procedure == "sacroplasty"))
            .collect();
        let Some(first) = lv.first() else { continue };
        let reg = region(first, procedure);
        let mut c = Vec::new();
        for code in codes.iter().filter(|c| c.procedure == procedure) {
            let units = match code.role.as_str() {
                "first" if code.region == reg => 1,
                "additional" => lv.len() as u32 - 1,
                "all_levels" if code.region == reg => 1,
                _ => 0,
            };
            if units > 0 && !(procedure == "sacroplasty" && code.code == "0201T") {
                c.push((format!("{} {}", code.system, code.code), units));
            }
        }
        if !c.is_empty() {
            out.push(CodeSuggestion {
                procedure: procedure.into(),
                levels: lv.iter().map(|s| s.to_string()).collect(),
                codes: c,
                informational: true,
            });
        }
    }
    out
}

/// Evaluates every rule for one study.
pub fn evaluate(
    rules: &Rules,
    findings: &ImagingFindings,
    clinical: &ClinicalFacts,
    prior: Option<&ImagingFindings>,
) -> Result<CriteriaReport, CriteriaError> {
    let prior = prior.map(|p| compare(findings, p));
    let t = fact_table(findings, clinical, prior.as_ref());
    let v = values(&t);
    let rating = |proc_: &str, cat: &str| ProcedureRating {
        procedure: proc_.to_string(),
        category: cat.to_string(),
        rating_range: rules.acr.categories.get(cat).copied().unwrap_or([0, 0]),
    };
    let current = current_procedures(&findings.series_kinds);
    let mut acr = Vec::new();
    for r in &rules.acr.variants {
        let e = compile(
            "acr_vcf.toml",
            &format!("variant {}", r.variant),
            &r.applies_when,
            &v,
        )?;
        let applies = e.eval(&v);
        let procedures: Vec<ProcedureRating> = r
            .procedures
            .iter()
            .map(|p| rating(&p.procedure, &p.category))
            .collect();
        let current_study = if r.phase.ends_with("imaging") {
            procedures
                .iter()
                .filter(|p| current.contains(&p.procedure.as_str()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        acr.push(VariantResult {
            variant: r.variant,
            title: r.title.clone(),
            phase: r.phase.clone(),
            applies,
            rule: e.to_string(),
            evidence: evidence(&e, &t),
            deciding_facts: e.deciding(&v),
            procedures,
            current_study,
            note: r.note.clone(),
        });
    }
    let list = |want: Tri| {
        acr.iter()
            .filter(|a| a.applies == want)
            .map(|a| a.variant.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let acr_summary = format!(
        "applies: {}; undetermined: {}",
        or_none(list(Tri::True)),
        or_none(list(Tri::Unknown))
    );
    let p = &rules.practice;
    let practice_parameter = PracticeResult {
        source: p.source.clone(),
        indications: items("practice_parameter.toml", &p.indications, &t)?,
        absolute_contraindications: items(
            "practice_parameter.toml",
            &p.absolute_contraindications,
            &t,
        )?,
        relative_contraindications: items(
            "practice_parameter.toml",
            &p.relative_contraindications,
            &t,
        )?,
        leakage_risks: items("practice_parameter.toml", &p.leakage_risks, &t)?,
    };
    let fractured: Vec<String> = findings
        .levels
        .iter()
        .filter(|l| l.fractured() == Some(true))
        .filter_map(|l| l.level.clone())
        .collect();
    let mut payers = Vec::new();
    for pr in &rules.payers {
        let mut results = Vec::new();
        let mut keyed = t.clone();
        for c in &pr.criteria {
            let (res, tri) = item("payer rules", c, &t, "needs_documentation")?;
            keyed.insert(
                c.key(),
                Fact {
                    value: Value::from_tri(tri),
                    source: "criterion",
                    evidence: format!("criterion {} {}", c.id, res.status),
                },
            );
            results.push(res);
        }
        let kv = values(&keyed);
        let d = compile("payer rules", &pr.name, &pr.decision, &kv)?;
        let tri = d.eval(&kv);
        payers.push(PayerResult {
            name: pr.name.clone(),
            source: pr.source.clone(),
            criteria: results,
            medical_necessity: match tri {
                Tri::True => "met",
                Tri::False => "not_met",
                Tri::Unknown => "needs_documentation",
            },
            decision_rule: d.to_string(),
            deciding_facts: d.deciding(&kv),
            codes: pr.codes.clone(),
            code_suggestions: suggest_codes(&pr.codes, &fractured),
        });
    }
    Ok(CriteriaReport {
        triage: triage(
            findings,
            clinical,
            prior.as_ref(),
            !findings.levels.is_empty(),
            "no vertebral level was found or measured",
        ),
        sins: sins(findings, clinical),
        red_flags: clinical.red_flags.as_ref().map(|v| {
            v.iter()
                .map(|f| RedFlagResult {
                    flag: *f,
                    condition: f.condition(),
                })
                .collect()
        }),
        facts: t,
        acr_variants: acr,
        acr_summary,
        practice_parameter,
        payers,
        prior,
    })
}

fn or_none(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{LevelFinding, SignalFindings};

    fn level(name: &str, loss: f64, edema: Option<bool>) -> LevelFinding {
        crate::findings::test_level(name, Some(loss), edema)
    }

    fn study(levels: Vec<LevelFinding>) -> ImagingFindings {
        ImagingFindings {
            series_kinds: vec![SeriesKind::MrT1, SeriesKind::MrStir],
            levels,
        }
    }

    fn variant(r: &CriteriaReport, n: u8) -> &VariantResult {
        r.acr_variants.iter().find(|v| v.variant == n).unwrap()
    }

    #[test]
    fn acute_osteoporotic_fracture_is_variant_6() {
        let rules = Rules::embedded().unwrap();
        let f = study(vec![
            level("T12", 3.0, Some(false)),
            level("L1", 32.0, Some(true)),
            level("L2", 2.0, Some(false)),
        ]);
        let c = ClinicalFacts {
            symptomatic: Some(true),
            history_of_malignancy: Some(false),
            ..Default::default()
        };
        let r = evaluate(&rules, &f, &c, None).unwrap();
        assert_eq!(
            variant(&r, 6).applies,
            Tri::True,
            "{:?}",
            variant(&r, 6).evidence
        );
        assert_eq!(variant(&r, 1).applies, Tri::True);
        // MR without contrast is "Usually Appropriate" as the next study in variant 1.
        let cur = &variant(&r, 1).current_study;
        assert_eq!(cur.len(), 1);
        assert_eq!(cur[0].rating_range, [7, 9]);
        assert_eq!(variant(&r, 5).applies, Tri::False);
        assert_eq!(variant(&r, 9).applies, Tri::False);
        // Prior augmentation unknown: variant 7 is undetermined, and says what decides it.
        assert_eq!(variant(&r, 7).applies, Tri::Unknown);
        assert!(variant(&r, 7)
            .deciding_facts
            .contains(&"prior_augmentation_or_surgery".to_string()));
        // Regence I.A: one fracture in T5-L5.
        let regence = &r.payers[0];
        let ia = regence.criteria.iter().find(|c| c.id == "I.A").unwrap();
        assert_eq!(ia.status, "met");
        assert_eq!(regence.medical_necessity, "needs_documentation");
        let vp = &regence.code_suggestions[0];
        assert_eq!(
            vp.codes,
            vec![("CPT 22511".to_string(), 1), ("HCPCS C7505".to_string(), 1)]
        );
        // Oedema with a fracture: not "oedema without height loss".
        let a3 = &r.practice_parameter.indications[2];
        assert_eq!(a3.status, "not_met");
        assert_eq!(r.sins.len(), 1);
        assert_eq!(r.sins[0].location.min, 3);
    }

    #[test]
    fn nothing_assumed_when_facts_are_missing() {
        let rules = Rules::embedded().unwrap();
        let mut f = study(vec![level("L1", 30.0, None), level("L2", 0.0, None)]);
        f.levels
            .iter_mut()
            .for_each(|l| l.signal = SignalFindings::default());
        let r = evaluate(&rules, &f, &ClinicalFacts::default(), None).unwrap();
        for v in &r.acr_variants {
            // A fracture is measured, but symptoms are unknown: no variant is decided true.
            assert_ne!(v.applies, Tri::True, "variant {}", v.variant);
        }
        assert!(variant(&r, 1)
            .deciding_facts
            .contains(&"symptomatic".to_string()));
        for p in &r.payers {
            assert_ne!(p.medical_necessity, "met");
        }
    }

    #[test]
    fn prior_study_shows_progression_and_new_fractures() {
        let rules = Rules::embedded().unwrap();
        let prior = study(vec![
            level("L1", 22.0, Some(true)),
            level("L2", 2.0, Some(false)),
        ]);
        let now = study(vec![
            level("L1", 45.0, Some(true)),
            level("L2", 25.0, Some(true)),
        ]);
        let r = evaluate(&rules, &now, &ClinicalFacts::default(), Some(&prior)).unwrap();
        let p = r.prior.as_ref().unwrap();
        assert_eq!(p.levels[0].progression, Some(true));
        assert_eq!(p.levels[1].new_fracture, Some(true));
        assert!(p.levels[0].change_mm.unwrap() < -5.0);
        assert_eq!(r.practice_parameter.indications[4].status, "met");
    }
}
