//! The human report as a small document model, so that Markdown and HTML say the same thing from
//! one source.

use crate::StudyInput;
use spinetriage_criteria::{ItemResult, Tri};
use spinetriage_measure::Status;

/// A block of the human report.
#[derive(Debug, Clone)]
pub enum Block {
    /// Heading of depth 1–4.
    Heading(u8, String),
    /// A paragraph.
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table; `classes` marks rows ("flagged", "not_evaluable", "") for highlighting.
    Table {
        /// Column titles.
        head: Vec<String>,
        /// Cells.
        rows: Vec<Vec<String>>,
        /// Per-row class.
        classes: Vec<&'static str>,
    },
    /// The sagittal image of study `n` (0-based).
    Image(usize),
}

fn f(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

fn yes_no(b: Option<bool>) -> String {
    match b {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "unknown".into(),
    }
}

fn items_table(items: &[ItemResult]) -> Block {
    Block::Table {
        head: vec![
            "item".into(),
            "status".into(),
            "text".into(),
            "evidence".into(),
        ],
        rows: items
            .iter()
            .map(|i| {
                let mut ev = i.evidence.join("; ");
                if !i.deciding_facts.is_empty() {
                    ev = format!("decided by: {}. {ev}", i.deciding_facts.join(", "));
                }
                let text = if i.kind == "absence_required" {
                    format!("absence of: {}", i.text)
                } else if i.kind == "investigational" {
                    format!("investigational: {}", i.text)
                } else {
                    i.text.clone()
                };
                vec![i.id.clone(), i.status.replace('_', " "), text, ev]
            })
            .collect(),
        classes: items
            .iter()
            .map(|i| match i.status {
                "met" => "met",
                "not_met" => "",
                _ => "unknown",
            })
            .collect(),
    }
}

/// The blocks of the report, in order.
pub fn document(studies: &[StudyInput]) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(1, "spinetriage report".into()),
        Block::Para(
            "Decision support, not a diagnosis. Every finding carries the numbers behind it; a level that could not be measured is listed as not evaluable, with the reason.".into(),
        ),
    ];
    for (n, s) in studies.iter().enumerate() {
        out.push(Block::Heading(2, format!("Study {}", s.study_uid)));
        if let Some(c) = s.criteria {
            let t = &c.triage;
            out.push(Block::Heading(
                3,
                format!("Triage: {} (priority {})", t.label, t.priority),
            ));
            out.push(Block::Table {
                head: ["level", "finding", "value", "rule", "supports"]
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
                rows: t
                    .reasons
                    .iter()
                    .map(|r| {
                        vec![
                            r.level.clone().unwrap_or_else(|| "—".into()),
                            r.finding.clone(),
                            r.value.clone(),
                            r.rule.clone(),
                            r.category.label().into(),
                        ]
                    })
                    .collect(),
                classes: t
                    .reasons
                    .iter()
                    .map(|r| {
                        if r.category == t.category {
                            "flagged"
                        } else {
                            ""
                        }
                    })
                    .collect(),
            });
        }
        out.push(Block::Table {
            head: vec!["series".into(), "kind".into(), "description".into()],
            rows: s
                .volumes
                .iter()
                .map(|v| {
                    vec![
                        v.series_uid.clone(),
                        v.kind.label().into(),
                        v.description.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
            classes: vec![""; s.volumes.len()],
        });
        for e in s.errors {
            out.push(Block::Para(format!("Error: {e}")));
        }
        let Some(m) = s.morphometry else {
            out.push(Block::Para(
                "Not evaluable: no CT or MR series could be measured.".into(),
            ));
            continue;
        };
        if s.has_image {
            out.push(Block::Image(n));
        }
        out.push(Block::Heading(3, "Levels".into()));
        let head = [
            "level",
            "status",
            "Ha mm",
            "Hm mm",
            "Hp mm",
            "expected mm",
            "loss %",
            "Genant",
            "morphology",
            "kyphosis %",
            "dorsal wall %",
            "scoliosis %",
            "retropulsion mm",
            "canal compromise %",
            "ACR deformity",
        ];
        let mut rows = Vec::new();
        let mut classes = Vec::new();
        for l in &m.levels {
            let me = &l.measurement;
            let d = &l.derived;
            let h = |x: &Option<spinetriage_measure::Height>| {
                x.map(|h| format!("{:.1} ± {:.1}", h.height_mm, h.sigma_mm))
                    .unwrap_or_else(|| "—".into())
            };
            rows.push(vec![
                l.level.clone().unwrap_or_else(|| "?".into()),
                match &me.status {
                    Status::Measured => "measured".into(),
                    Status::NotEvaluable(w) => format!("not evaluable: {w}"),
                },
                h(&me.anterior),
                h(&me.middle),
                h(&me.posterior),
                f(d.expected_height_mm, 1),
                f(d.height_loss_pct, 0),
                d.genant_grade.map_or("—".into(), |g| g.to_string()),
                d.morphology
                    .map_or("—".into(), |m| format!("{m:?}").to_lowercase()),
                f(d.kyphosis_pct, 0),
                f(d.dorsal_wall_loss_pct, 0),
                f(d.scoliosis_pct, 0),
                f(me.retropulsion_mm, 1),
                f(d.canal_compromise_pct, 0),
                yes_no(d.acr_deformity),
            ]);
            classes.push(if !l.measured() {
                "not_evaluable"
            } else if d.acr_deformity == Some(true) || d.genant_grade.unwrap_or(0) >= 1 {
                "flagged"
            } else {
                ""
            });
        }
        out.push(Block::Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows,
            classes,
        });
        if !m.labelling.is_empty() {
            out.push(Block::Para(format!("Labels: {}", m.labelling.join("; "))));
        }
        if let Some(mr) = s.marrow {
            out.push(Block::Heading(3, "Marrow signal".into()));
            for u in &mr.series {
                out.push(Block::Para(format!(
                    "{} series {}: {}",
                    u.role.to_uppercase(),
                    u.series_uid,
                    u.note
                )));
            }
            let head = [
                "level",
                "STIR ratio",
                "T1 ratio",
                "T1 body/disc",
                "oedema",
                "extent %",
                "replacement",
                "cleft",
                "pedicles",
                "cortex",
                "paravertebral",
                "CT",
                "acuity",
            ];
            let yn = |b: Option<bool>| yes_no(b);
            let rows: Vec<Vec<String>> = m
                .levels
                .iter()
                .zip(&mr.levels)
                .map(|(l, x)| {
                    vec![
                        l.level.clone().unwrap_or_else(|| "?".into()),
                        f(x.stir_ratio, 2),
                        f(x.t1_ratio, 2),
                        f(x.t1_disc_ratio, 2),
                        match (x.edema, x.edema_pattern) {
                            (Some(true), Some(p)) => {
                                format!("yes ({})", format!("{p:?}").to_lowercase())
                            }
                            (e, _) => yn(e),
                        },
                        f(x.edema_extent_pct, 0),
                        yn(x.marrow_replacement),
                        yn(x.cleft),
                        x.posterior.side.unwrap_or("unknown").to_string(),
                        match (x.cortical_destruction, x.cortical_gap_deg) {
                            (Some(true), Some(g)) => format!("destroyed ({g:.0}°)"),
                            (Some(false), _) => "intact".into(),
                            _ => "unknown".into(),
                        },
                        match (x.paravertebral_soft_tissue, x.paravertebral_arc_deg) {
                            (Some(true), Some(a)) => format!("yes ({a:.0}°)"),
                            (p, _) => yn(p),
                        },
                        x.ct_hu
                            .map(|h| format!("{:.0} HU {}", h.median, x.ct_pattern.unwrap_or("")))
                            .unwrap_or_else(|| "—".into()),
                        format!("{:?}", x.acuity).to_lowercase(),
                    ]
                })
                .collect();
            let classes = mr
                .levels
                .iter()
                .map(|x| {
                    if x.edema == Some(true)
                        || x.marrow_replacement == Some(true)
                        || x.cleft == Some(true)
                        || x.posterior.present == Some(true)
                    {
                        "flagged"
                    } else {
                        ""
                    }
                })
                .collect();
            out.push(Block::Table {
                head: head.iter().map(|s| s.to_string()).collect(),
                rows,
                classes,
            });
        }
        let Some(c) = s.criteria else { continue };
        out.push(Block::Heading(3, "ACR Appropriateness Criteria".into()));
        out.push(Block::Para(format!(
            "Management of Vertebral Compression Fractures (seed 003): {}.",
            c.acr_summary
        )));
        for v in &c.acr_variants {
            let applies = match v.applies {
                Tri::True => "applies",
                Tri::False => "does not apply",
                Tri::Unknown => "undetermined",
            };
            out.push(Block::Heading(
                4,
                format!("Variant {}: {applies}", v.variant),
            ));
            out.push(Block::Para(v.title.clone()));
            let mut ev = v.evidence.clone();
            if !v.deciding_facts.is_empty() {
                ev.insert(
                    0,
                    format!("would be decided by: {}", v.deciding_facts.join(", ")),
                );
            }
            for p in &v.current_study {
                ev.push(format!(
                    "this study ({}): {} (rating {}–{})",
                    p.procedure, p.category, p.rating_range[0], p.rating_range[1]
                ));
            }
            out.push(Block::List(ev));
            if v.applies != Tri::False {
                out.push(Block::Table {
                    head: vec!["procedure".into(), "category".into(), "rating".into()],
                    rows: v
                        .procedures
                        .iter()
                        .map(|p| {
                            vec![
                                p.procedure.clone(),
                                p.category.clone(),
                                format!("{}–{}", p.rating_range[0], p.rating_range[1]),
                            ]
                        })
                        .collect(),
                    classes: vec![""; v.procedures.len()],
                });
            }
        }
        let pp = &c.practice_parameter;
        out.push(Block::Heading(
            3,
            "Practice parameter for vertebral augmentation".into(),
        ));
        out.push(Block::Para(pp.source.clone()));
        for (title, items) in [
            ("Indications", &pp.indications),
            ("Absolute contraindications", &pp.absolute_contraindications),
            ("Relative contraindications", &pp.relative_contraindications),
            ("Cement-leakage risk factors", &pp.leakage_risks),
        ] {
            out.push(Block::Heading(4, title.into()));
            out.push(items_table(items));
        }
        for p in &c.payers {
            out.push(Block::Heading(
                3,
                format!(
                    "Payer worksheet: {} — medical necessity {}",
                    p.name,
                    p.medical_necessity.replace('_', " ")
                ),
            ));
            out.push(Block::Para(p.source.clone()));
            out.push(items_table(&p.criteria));
            if !p.code_suggestions.is_empty() {
                out.push(Block::List(
                    p.code_suggestions
                        .iter()
                        .map(|s| {
                            format!(
                                "informational, {} of {}: {}",
                                s.procedure,
                                s.levels.join(", "),
                                s.codes
                                    .iter()
                                    .map(|(c, u)| format!("{c} × {u}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                        .collect(),
                ));
            }
        }
        if !c.sins.is_empty() {
            out.push(Block::Heading(3, "SINS (imaging components)".into()));
            out.push(Block::Table {
                head: [
                    "level",
                    "location",
                    "pain",
                    "bone lesion",
                    "alignment",
                    "collapse",
                    "posterolateral",
                    "total",
                    "category",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                rows: c
                    .sins
                    .iter()
                    .map(|s| {
                        let r = |c: &spinetriage_criteria::sins::Component| {
                            if c.min == c.max {
                                c.min.to_string()
                            } else {
                                format!("{}–{}", c.min, c.max)
                            }
                        };
                        vec![
                            s.level.clone(),
                            r(&s.location),
                            r(&s.pain),
                            r(&s.bone_lesion),
                            r(&s.alignment),
                            r(&s.collapse),
                            r(&s.posterolateral),
                            format!("{}–{}", s.total[0], s.total[1]),
                            s.categories.join(" to "),
                        ]
                    })
                    .collect(),
                classes: vec![""; c.sins.len()],
            });
        }
        if let Some(p) = &c.prior {
            out.push(Block::Heading(3, "Comparison with the prior study".into()));
            out.push(Block::Table {
                head: [
                    "level",
                    "min height then mm",
                    "now mm",
                    "change mm",
                    "change %",
                    "new fracture",
                    "progression",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                rows: p
                    .levels
                    .iter()
                    .map(|l| {
                        vec![
                            l.level.clone(),
                            f(l.prior_min_height_mm, 1),
                            f(l.current_min_height_mm, 1),
                            f(l.change_mm, 1),
                            f(l.change_pct, 0),
                            yes_no(l.new_fracture),
                            yes_no(l.progression),
                        ]
                    })
                    .collect(),
                classes: p
                    .levels
                    .iter()
                    .map(|l| {
                        if l.progression == Some(true) || l.new_fracture == Some(true) {
                            "flagged"
                        } else {
                            ""
                        }
                    })
                    .collect(),
            });
        }
    }
    out
}
