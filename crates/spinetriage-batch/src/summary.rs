//! The batch summary: one row per study, as CSV and JSON, and the merge of shard summaries.

use serde::{Deserialize, Serialize};
use spinetriage_criteria::Tri;
use spinetriage_measure::Status;
use std::path::{Path, PathBuf};

use crate::study::StudyResult;
use crate::BatchError;

/// Version of the summary format.
pub const SUMMARY_VERSION: &str = "1.1.0";

/// Worklist priority of a study that could not be analysed at all: after every analysed one,
/// but listed (and "not evaluable", never "no fracture").
pub const FAILED_PRIORITY: u8 = 9;

/// Worklist order: priority, then study UID.
pub fn sort_rows(rows: &mut [SummaryRow]) {
    rows.sort_by(|a, b| (a.triage_priority, &a.study_uid).cmp(&(b.triage_priority, &b.study_uid)));
}

/// One study's line in the batch summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Output folder name under OUT (a hash of the StudyInstanceUID: no PHI).
    pub study_dir: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Triage priority, 1 = most urgent (9 when the study could not be analysed at all).
    pub triage_priority: u8,
    /// Triage category.
    pub triage_category: String,
    /// The reasons of the category: "level finding value", separated by "; ".
    pub triage_reasons: String,
    /// "ok" (analysed), "partial" (analysed, but something could not be read: see `reason`),
    /// "failed" (could not be analysed: see `reason`).
    pub status: String,
    /// Why it failed, or what was not evaluable.
    pub reason: String,
    /// Series found.
    pub series: usize,
    /// Kind of the series measured ("ct", "mr_t1", ...), empty when none.
    pub shape_kind: String,
    /// Levels found.
    pub levels: usize,
    /// Levels measured.
    pub measured: usize,
    /// Levels not evaluable.
    pub not_evaluable: usize,
    /// Levels with height loss ≥ 20 %, space-separated.
    pub fractured_levels: String,
    /// Largest height loss, per cent.
    pub max_height_loss_pct: Option<f64>,
    /// Highest Genant grade.
    pub max_genant_grade: Option<u8>,
    /// Levels meeting the ACR deformity definition, space-separated.
    pub acr_deformity_levels: String,
    /// ACR variants that apply, space-separated.
    pub acr_variants: String,
    /// ACR variants undetermined for want of facts, space-separated.
    pub acr_undetermined: String,
    /// Regence 107 medical necessity.
    pub regence_107: String,
    /// BCBSMA 484 medical necessity.
    pub bcbsma_484: String,
    /// Wall time of the study, seconds (not compared by merge checks).
    pub seconds: f64,
}

impl SummaryRow {
    /// The row of an analysed (or failed) study.
    pub fn from_result(
        study_dir: &str,
        r: &StudyResult,
        series: usize,
        seconds: f64,
    ) -> SummaryRow {
        let levels: Vec<_> = r.morph.iter().flat_map(|m| m.levels.iter()).collect();
        let name = |l: &spinetriage_measure::Level| l.level.clone().unwrap_or_else(|| "?".into());
        let join = |v: Vec<String>| v.join(" ");
        let c = r.criteria.as_ref();
        let variants = |t: Tri| {
            c.map(|c| {
                join(
                    c.acr_variants
                        .iter()
                        .filter(|v| v.applies == t)
                        .map(|v| v.variant.to_string())
                        .collect(),
                )
            })
            .unwrap_or_default()
        };
        let payer = |n: usize| {
            c.and_then(|c| c.payers.get(n))
                .map(|p| p.medical_necessity.to_string())
                .unwrap_or_default()
        };
        let status = match (r.morph.is_some(), r.errors.is_empty()) {
            (true, true) => "ok",
            (true, false) => "partial",
            (false, _) => "failed",
        };
        let triage = c.map(|c| &c.triage);
        SummaryRow {
            study_dir: study_dir.to_string(),
            study_uid: r.uid.clone(),
            triage_priority: triage.map_or(FAILED_PRIORITY, |t| t.priority),
            triage_category: triage.map_or("not_evaluable".into(), |t| {
                serde_json::to_value(t.category)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }),
            triage_reasons: triage
                .map(|t| {
                    t.reasons
                        .iter()
                        .filter(|x| x.category == t.category)
                        .map(|x| {
                            format!(
                                "{} {} {}",
                                x.level.as_deref().unwrap_or("study"),
                                x.finding,
                                x.value
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            status: status.into(),
            reason: if let Some(e) = r.errors.first() {
                e.clone()
            } else if r.morph.is_none() {
                "no CT or MR series to measure".into()
            } else {
                String::new()
            },
            series,
            shape_kind: r
                .morph
                .as_ref()
                .map(|m| {
                    serde_json::to_value(m.shape_kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
            levels: levels.len(),
            measured: levels.iter().filter(|l| l.measured()).count(),
            not_evaluable: levels
                .iter()
                .filter(|l| matches!(l.measurement.status, Status::NotEvaluable(_)))
                .count(),
            fractured_levels: join(
                levels
                    .iter()
                    .filter(|l| l.derived.genant_grade.unwrap_or(0) >= 1)
                    .map(|l| name(l))
                    .collect(),
            ),
            max_height_loss_pct: levels
                .iter()
                .filter_map(|l| l.derived.height_loss_pct)
                .reduce(f64::max)
                .map(|v| (v * 10.0).round() / 10.0),
            max_genant_grade: levels.iter().filter_map(|l| l.derived.genant_grade).max(),
            acr_deformity_levels: join(
                levels
                    .iter()
                    .filter(|l| l.derived.acr_deformity == Some(true))
                    .map(|l| name(l))
                    .collect(),
            ),
            acr_variants: variants(Tri::True),
            acr_undetermined: variants(Tri::Unknown),
            regence_107: payer(0),
            bcbsma_484: payer(1),
            seconds: (seconds * 1000.0).round() / 1000.0,
        }
    }

    /// The row of a study that failed before analysis (unreadable series, internal error).
    pub fn failed(
        study_dir: &str,
        uid: &str,
        series: usize,
        reason: String,
        seconds: f64,
    ) -> SummaryRow {
        SummaryRow {
            study_dir: study_dir.into(),
            study_uid: uid.into(),
            triage_priority: FAILED_PRIORITY,
            triage_category: "not_evaluable".into(),
            triage_reasons: reason.clone(),
            status: "failed".into(),
            reason,
            series,
            shape_kind: String::new(),
            levels: 0,
            measured: 0,
            not_evaluable: 0,
            fractured_levels: String::new(),
            max_height_loss_pct: None,
            max_genant_grade: None,
            acr_deformity_levels: String::new(),
            acr_variants: String::new(),
            acr_undetermined: String::new(),
            regence_107: String::new(),
            bcbsma_484: String::new(),
            seconds,
        }
    }
}

/// The summary file of a run or a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SUMMARY_VERSION`].
    pub summary_version: String,
    /// `Some([k, n])` for shard k of n (0-based), `None` for a whole run or a merge.
    pub shard: Option<[usize; 2]>,
    /// Studies found under the root before sharding.
    pub studies_discovered: usize,
    /// Files that could not be read (path and reason), not tied to any study.
    pub unreadable_files: Vec<String>,
    /// One row per study of this run (or shard), in worklist order: priority, then study UID.
    pub rows: Vec<SummaryRow>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The rows as CSV, with a header line.
pub fn to_csv(rows: &[SummaryRow]) -> String {
    let mut out = String::from(
        "study_dir,study_uid,triage_priority,triage_category,triage_reasons,status,reason,series,shape_kind,levels,measured,not_evaluable,fractured_levels,max_height_loss_pct,max_genant_grade,acr_deformity_levels,acr_variants,acr_undetermined,regence_107,bcbsma_484,seconds\n",
    );
    let o = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let cells = [
            csv_field(&r.study_dir),
            csv_field(&r.study_uid),
            r.triage_priority.to_string(),
            csv_field(&r.triage_category),
            csv_field(&r.triage_reasons),
            csv_field(&r.status),
            csv_field(&r.reason),
            r.series.to_string(),
            csv_field(&r.shape_kind),
            r.levels.to_string(),
            r.measured.to_string(),
            r.not_evaluable.to_string(),
            csv_field(&r.fractured_levels),
            o(r.max_height_loss_pct),
            r.max_genant_grade
                .map(|g| g.to_string())
                .unwrap_or_default(),
            csv_field(&r.acr_deformity_levels),
            csv_field(&r.acr_variants),
            csv_field(&r.acr_undetermined),
            csv_field(&r.regence_107),
            csv_field(&r.bcbsma_484),
            r.seconds.to_string(),
        ];
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// File stem of a summary: `batch-summary` or `batch-summary-shard-K-of-N`.
pub fn stem(shard: Option<[usize; 2]>) -> String {
    match shard {
        Some([k, n]) => format!("batch-summary-shard-{k}-of-{n}"),
        None => "batch-summary".into(),
    }
}

/// Writes `<stem>.json` and `<stem>.csv` into `out`, atomically.
pub fn write(out: &Path, s: &Summary) -> Result<Vec<PathBuf>, BatchError> {
    let stem = stem(s.shard);
    let json = out.join(format!("{stem}.json"));
    let csv = out.join(format!("{stem}.csv"));
    let text = serde_json::to_string_pretty(s).map_err(|e| BatchError::Summary {
        path: json.clone(),
        reason: e.to_string(),
    })?;
    spinetriage_report::write_atomic(&csv, to_csv(&s.rows).as_bytes())?;
    spinetriage_report::write_atomic(&json, text.as_bytes())?;
    Ok(vec![json, csv])
}

/// Combines shard summaries into one: checks that every shard of the same N is present exactly
/// once and that no study appears twice, then sorts the rows by study UID.
pub fn merge(files: &[PathBuf]) -> Result<Summary, BatchError> {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| BatchError::Summary {
            path: f.clone(),
            reason: e.to_string(),
        })?;
        let s: Summary = serde_json::from_str(&text).map_err(|e| BatchError::Summary {
            path: f.clone(),
            reason: e.to_string(),
        })?;
        parts.push((f.clone(), s));
    }
    let Some((_, first)) = parts.first() else {
        return Err(BatchError::Merge("no shard summaries to merge".into()));
    };
    let n = first.shard.map(|s| s[1]).unwrap_or(1);
    let mut seen = vec![false; n];
    for (f, p) in &parts {
        let [k, pn] = p.shard.unwrap_or([0, 1]);
        if pn != n || k >= n {
            return Err(BatchError::Merge(format!(
                "{} is shard {k} of {pn}, the others are of {n}",
                f.display()
            )));
        }
        if std::mem::replace(&mut seen[k], true) {
            return Err(BatchError::Merge(format!("shard {k} of {n} given twice")));
        }
        if p.studies_discovered != first.studies_discovered {
            return Err(BatchError::Merge(format!(
                "{} saw {} studies, another shard saw {}: not the same input",
                f.display(),
                p.studies_discovered,
                first.studies_discovered
            )));
        }
    }
    if let Some(k) = seen.iter().position(|s| !s) {
        return Err(BatchError::Merge(format!("shard {k} of {n} is missing")));
    }
    let mut rows: Vec<SummaryRow> = parts.iter().flat_map(|(_, p)| p.rows.clone()).collect();
    rows.sort_by(|a, b| a.study_uid.cmp(&b.study_uid));
    if let Some(w) = rows.windows(2).find(|w| w[0].study_uid == w[1].study_uid) {
        return Err(BatchError::Merge(format!(
            "study {} appears in two shards",
            w[0].study_dir
        )));
    }
    let mut unreadable: Vec<String> = parts
        .iter()
        .flat_map(|(_, p)| p.unreadable_files.clone())
        .collect();
    unreadable.sort();
    unreadable.dedup();
    sort_rows(&mut rows);
    Ok(Summary {
        summary_version: SUMMARY_VERSION.into(),
        shard: None,
        studies_discovered: first.studies_discovered,
        unreadable_files: unreadable,
        rows,
    })
}
