//! One study through the pipeline: morphometry, findings, criteria.

use spinetriage_criteria::{evaluate, ClinicalFacts, CriteriaReport, ImagingFindings, Rules};
use spinetriage_marrow::{analyze_marrow, MarrowReport};
use spinetriage_measure::{analyze_volumes, StudyMorphometry};
use spinetriage_report::StudyInput;
use spinetriage_segment::{Anchor, SegmentError};
use spinetriage_volume::Volume;
use std::collections::BTreeMap;
use std::path::Path;

/// One analysed study.
pub struct StudyResult {
    /// Study Instance UID.
    pub uid: String,
    /// Its volumes.
    pub volumes: Vec<Volume>,
    /// Morphometry (none without a CT or MR series, or when segmentation failed).
    pub morph: Option<StudyMorphometry>,
    /// Marrow signal per level (aligned with the morphometry's levels).
    pub marrow: Option<MarrowReport>,
    /// Findings for the criteria engine.
    pub findings: Option<ImagingFindings>,
    /// Criteria.
    pub criteria: Option<CriteriaReport>,
    /// Errors.
    pub errors: Vec<String>,
    /// Where the clinical facts came from.
    pub clinical_source: Option<String>,
    /// Patient identity, only when asked for (`--include-phi`).
    pub patient: Option<spinetriage_dicom::Patient>,
}

impl StudyResult {
    /// The report's view of this study.
    pub fn input(&self) -> StudyInput<'_> {
        StudyInput {
            study_uid: &self.uid,
            volumes: &self.volumes,
            morphometry: self.morph.as_ref(),
            marrow: self.marrow.as_ref(),
            findings: self.findings.as_ref(),
            criteria: self.criteria.as_ref(),
            clinical_source: self.clinical_source.as_deref(),
            errors: &self.errors,
            has_image: true,
            patient: self.patient.as_ref(),
        }
    }

    /// Whether the study could not be analysed.
    pub fn failed(&self) -> bool {
        self.morph.is_none() || !self.errors.is_empty()
    }
}

/// Clinical facts with where they came from.
pub type Clinical = (ClinicalFacts, String);

/// `clinical.toml` or `clinical.json` in `dir`, if present.
pub fn clinical_in(dir: &Path) -> Result<Option<Clinical>, spinetriage_criteria::FactsError> {
    for name in ["clinical.toml", "clinical.json"] {
        let p = dir.join(name);
        if p.is_file() {
            let f = ClinicalFacts::read(&p)?;
            return Ok(Some((f, p.display().to_string())));
        }
    }
    Ok(None)
}

/// The findings of a set of volumes (for a prior study).
pub fn findings_of(vols: &[Volume]) -> Result<ImagingFindings, SegmentError> {
    let m = analyze_volumes(vols, None)?;
    let marrow = m.as_ref().map(|m| analyze_marrow(vols, m));
    Ok(ImagingFindings::from_morphometry(
        m.as_ref(),
        vols.iter().map(|v| v.kind).collect(),
        marrow.as_ref(),
    ))
}

/// Analyses one study: morphometry, findings, criteria. Errors are kept in the result; nothing
/// here fails the caller.
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
    let t_marrow = std::time::Instant::now();
    let marrow = morph.as_ref().map(|m| analyze_marrow(&volumes, m));
    if std::env::var_os("SPINETRIAGE_TIMING").is_some() {
        eprintln!("marrow: {:?}", t_marrow.elapsed());
    }
    let findings = ImagingFindings::from_morphometry(
        morph.as_ref(),
        volumes.iter().map(|v| v.kind).collect(),
        marrow.as_ref(),
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
        marrow,
        findings: Some(findings),
        criteria,
        errors,
        clinical_source: clinical.map(|c| c.1.clone()),
        patient: None,
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
