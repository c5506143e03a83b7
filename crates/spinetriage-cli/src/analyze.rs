//! `spinetriage analyze`: morphometry, criteria and the report for every study of the input.

use anyhow::{Context, Result};
use spinetriage_batch::analyze_study;
use spinetriage_criteria::{ClinicalFacts, ImagingFindings, Rules};
use spinetriage_measure::Status;
use spinetriage_report::StudyInput;
use spinetriage_segment::Anchor;
use spinetriage_volume::Volume;
use std::path::{Path, PathBuf};

pub use spinetriage_batch::study::{by_study, findings_of, Clinical, StudyResult};

/// Reads `--clinical FILE`, or else looks for a facts file beside the (single) input.
pub fn clinical_for(explicit: Option<&Path>, inputs: &[PathBuf]) -> Result<Option<Clinical>> {
    if let Some(p) = explicit {
        let f = ClinicalFacts::read(p)?;
        return Ok(Some((f, p.display().to_string())));
    }
    match inputs {
        [one] => {
            let dir = if one.is_dir() {
                one.as_path()
            } else {
                one.parent().unwrap_or(Path::new("."))
            };
            Ok(spinetriage_batch::study::clinical_in(dir)?)
        }
        _ => Ok(None),
    }
}

/// Analyses every study among `vols` and writes the report into `out`.
pub fn run(
    vols: Vec<Volume>,
    out: &Path,
    anchor: Option<&Anchor>,
    clinical: Option<&Clinical>,
    prior: Option<&ImagingFindings>,
    masks: bool,
    patients: &std::collections::BTreeMap<String, spinetriage_dicom::Patient>,
) -> Result<Vec<StudyResult>> {
    let rules = Rules::embedded()?;
    let t0 = std::time::Instant::now();
    let results: Vec<StudyResult> = by_study(vols)
        .into_iter()
        .map(|(uid, vols)| {
            let mut r = analyze_study(uid, vols, anchor, clinical, prior, &rules);
            r.patient = patients.get(&r.uid).cloned();
            r
        })
        .collect();
    let t1 = std::time::Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let inputs: Vec<StudyInput> = results.iter().map(StudyResult::input).collect();
    spinetriage_report::write_outputs(out, &inputs, masks)?;
    if std::env::var_os("SPINETRIAGE_TIMING").is_some() {
        eprintln!("analyze: studies {:?}, report {:?}", t1 - t0, t1.elapsed());
    }
    Ok(results)
}

/// Prints the level table.
pub fn print(results: &[StudyResult]) {
    for r in results {
        println!("study {}", r.uid);
        for e in &r.errors {
            println!("  error: {e}");
        }
        let Some(m) = &r.morph else {
            println!("  no CT or MR series to measure");
            continue;
        };
        for n in &m.labelling {
            println!("  labels: {n}");
        }
        println!(
            "  {:<5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>3} {:>6} {:>6} {:>6} {:>5}  status",
            "level",
            "Ha",
            "Hm",
            "Hp",
            "exp",
            "loss%",
            "kyph%",
            "G",
            "dors%",
            "scol%",
            "retro",
            "ACR"
        );
        let f = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "—".into());
        for l in &m.levels {
            let me = &l.measurement;
            let d = &l.derived;
            println!(
                "  {:<5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>3} {:>6} {:>6} {:>6} {:>5}  {}",
                l.level.clone().unwrap_or_else(|| "?".into()),
                f(me.anterior.map(|h| h.height_mm)),
                f(me.middle.map(|h| h.height_mm)),
                f(me.posterior.map(|h| h.height_mm)),
                f(d.expected_height_mm),
                f(d.height_loss_pct),
                f(d.kyphosis_pct),
                d.genant_grade
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "—".into()),
                f(d.dorsal_wall_loss_pct),
                f(d.scoliosis_pct),
                f(me.retropulsion_mm),
                match d.acr_deformity {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "—",
                },
                match &me.status {
                    Status::Measured => "measured".to_string(),
                    Status::NotEvaluable(w) => format!("not evaluable: {w}"),
                }
            );
        }
        if let Some(c) = &r.criteria {
            println!(
                "  triage: {} (priority {})",
                c.triage.label, c.triage.priority
            );
            println!("  ACR variants: {}", c.acr_summary);
            for p in &c.payers {
                println!(
                    "  {}: medical necessity {}",
                    p.name,
                    p.medical_necessity.replace('_', " ")
                );
            }
        }
    }
}
