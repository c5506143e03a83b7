//! `spinetriage analyze`: morphometry, criteria and the report for every study of the input.

use anyhow::{Context, Result};
use spinetriage_criteria::{evaluate, ClinicalFacts, CriteriaReport, ImagingFindings, Rules};
use spinetriage_measure::{analyze_volumes, Status, StudyMorphometry};
use spinetriage_report::StudyInput;
use spinetriage_segment::Anchor;
use spinetriage_volume::Volume;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why marrow-signal findings are unknown in this version.
const SIGNAL_REASON: &str =
    "not measured: this version does not yet measure marrow signal, so these findings are unknown";

/// One analysed study.
pub struct StudyResult {
    /// Study Instance UID.
    pub uid: String,
    /// Its volumes.
    pub volumes: Vec<Volume>,
    /// Morphometry (none without a CT or MR series, or when segmentation failed).
    pub morph: Option<StudyMorphometry>,
    /// Findings for the criteria engine.
    pub findings: Option<ImagingFindings>,
    /// Criteria.
    pub criteria: Option<CriteriaReport>,
    /// Errors.
    pub errors: Vec<String>,
    /// Where the clinical facts came from.
    pub clinical_source: Option<String>,
}

impl StudyResult {
    /// The report's view of this study.
    pub fn input(&self) -> StudyInput<'_> {
        StudyInput {
            study_uid: &self.uid,
            volumes: &self.volumes,
            morphometry: self.morph.as_ref(),
            findings: self.findings.as_ref(),
            criteria: self.criteria.as_ref(),
            clinical_source: self.clinical_source.as_deref(),
            errors: &self.errors,
            has_image: true,
        }
    }

    /// Whether the study could not be analysed at all.
    pub fn failed(&self) -> bool {
        self.morph.is_none() || !self.errors.is_empty()
    }
}

/// Clinical facts with where they came from.
pub type Clinical = (ClinicalFacts, String);

/// `clinical.toml` or `clinical.json` in `dir`, if present.
pub fn clinical_beside(dir: &Path) -> Result<Option<Clinical>> {
    for name in ["clinical.toml", "clinical.json"] {
        let p = dir.join(name);
        if p.is_file() {
            let f = ClinicalFacts::read(&p)?;
            return Ok(Some((f, p.display().to_string())));
        }
    }
    Ok(None)
}

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
            clinical_beside(dir)
        }
        _ => Ok(None),
    }
}

/// Findings of the morphometry of a set of volumes (for a prior study).
pub fn findings_of(vols: &[Volume]) -> Result<ImagingFindings> {
    let m = analyze_volumes(vols, None)?;
    Ok(ImagingFindings::from_morphometry(
        m.as_ref(),
        vols.iter().map(|v| v.kind).collect(),
        SIGNAL_REASON,
    ))
}

/// Analyses one study: morphometry, findings, criteria.
pub fn analyze_study(
    uid: String,
    volumes: Vec<Volume>,
    anchor: Option<&Anchor>,
    clinical: Option<&Clinical>,
    prior: Option<&ImagingFindings>,
    rules: &Rules,
) -> StudyResult {
    let mut errors = Vec::new();
    let morph = match analyze_volumes(&volumes, anchor) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let findings = ImagingFindings::from_morphometry(
        morph.as_ref(),
        volumes.iter().map(|v| v.kind).collect(),
        SIGNAL_REASON,
    );
    let facts = clinical.map(|c| c.0.clone()).unwrap_or_default();
    let criteria = match evaluate(rules, &findings, &facts, prior) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(format!("criteria: {e}"));
            None
        }
    };
    StudyResult {
        uid,
        volumes,
        morph,
        findings: Some(findings),
        criteria,
        errors,
        clinical_source: clinical.map(|c| c.1.clone()),
    }
}

/// Groups volumes by study.
pub fn by_study(vols: Vec<Volume>) -> BTreeMap<String, Vec<Volume>> {
    let mut by_study: BTreeMap<String, Vec<Volume>> = BTreeMap::new();
    for v in vols {
        by_study.entry(v.study_uid.clone()).or_default().push(v);
    }
    by_study
}

/// Analyses every study among `vols` and writes the report into `out`.
pub fn run(
    vols: Vec<Volume>,
    out: &Path,
    anchor: Option<&Anchor>,
    clinical: Option<&Clinical>,
    prior: Option<&ImagingFindings>,
    masks: bool,
) -> Result<Vec<StudyResult>> {
    let rules = Rules::embedded()?;
    let results: Vec<StudyResult> = by_study(vols)
        .into_iter()
        .map(|(uid, vols)| analyze_study(uid, vols, anchor, clinical, prior, &rules))
        .collect();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let inputs: Vec<StudyInput> = results.iter().map(StudyResult::input).collect();
    spinetriage_report::write_outputs(out, &inputs, masks)?;
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
