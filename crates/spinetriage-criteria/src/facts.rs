//! Clinical facts the user supplies per study (`--clinical FILE` or `clinical.toml` next to the
//! study). Every field is optional: absent means unknown, and the engine never assumes a value.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A conservative therapy kind (Regence 107 I.A.4 a–c; BCBSMA 484 "analgesics, physical therapy
/// and rest").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConservativeTherapy {
    /// Narcotic or non-narcotic analgesics, NSAIDs.
    Analgesics,
    /// A trial of physical therapy.
    PhysicalTherapy,
    /// Alteration of activities, rest.
    ActivityModification,
    /// Bracing.
    Bracing,
    /// Osteoporosis medication (for example bisphosphonates, calcitonin).
    OsteoporosisMedication,
}

/// Red flags of the ACR document's Appendix 1 (seed 003_*), each with the underlying condition
/// it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedFlag {
    /// History of cancer.
    HistoryOfCancer,
    /// Unexplained weight loss.
    UnexplainedWeightLoss,
    /// Immunosuppression.
    Immunosuppression,
    /// Urinary infection.
    UrinaryInfection,
    /// Intravenous drug use.
    IntravenousDrugUse,
    /// Prolonged use of corticosteroids.
    ProlongedCorticosteroids,
    /// Back pain not improved with conservative management.
    PainNotImprovedWithConservativeManagement,
    /// Fever.
    Fever,
    /// History of significant trauma.
    SignificantTrauma,
    /// Minor fall or heavy lift in a potentially osteoporotic or elderly individual.
    MinorFallOrHeavyLiftOsteoporotic,
    /// Cauda equina syndrome (acute urinary retention or overflow incontinence, loss of anal
    /// sphincter tone or faecal incontinence, saddle anaesthesia).
    CaudaEquinaSyndrome,
    /// Global or progressive motor weakness in the lower limbs.
    ProgressiveMotorWeakness,
    /// Severe neurologic compromise.
    SevereNeurologicCompromise,
}

impl RedFlag {
    /// The potential underlying condition Appendix 1 pairs the flag with.
    pub fn condition(self) -> &'static str {
        use RedFlag::*;
        match self {
            HistoryOfCancer
            | UnexplainedWeightLoss
            | Immunosuppression
            | UrinaryInfection
            | IntravenousDrugUse
            | ProlongedCorticosteroids
            | PainNotImprovedWithConservativeManagement
            | Fever => "cancer or infection",
            SignificantTrauma | MinorFallOrHeavyLiftOsteoporotic => "spinal fracture",
            CaudaEquinaSyndrome | ProgressiveMotorWeakness | SevereNeurologicCompromise => {
                "epidural spinal cord compression"
            }
        }
    }
}

/// The clinical facts of one study. Field names are the names the rules use
/// (`docs/criteria.md` lists them with the seed each comes from).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalFacts {
    /// Back pain attributed to the spine (ACR variants: "symptomatic").
    pub symptomatic: Option<bool>,
    /// History of malignancy (ACR variants 2 and 4).
    pub history_of_malignancy: Option<bool>,
    /// Prior vertebral augmentation or spine surgery (ACR variants 3 and 7).
    pub prior_augmentation_or_surgery: Option<bool>,
    /// Worsening pain (ACR variant 8).
    pub worsening_pain: Option<bool>,
    /// Clinically progressive deformity (ACR variant 8; the imaging deformity is measured).
    pub progressive_deformity: Option<bool>,
    /// Pulmonary dysfunction attributed to kyphosis (ACR variant 8; practice parameter A.6).
    pub pulmonary_dysfunction: Option<bool>,
    /// Severe pain (BCBSMA 484 osteolytic indication).
    pub severe_pain: Option<bool>,
    /// Duration of the current pain, weeks.
    pub pain_duration_weeks: Option<f64>,
    /// Weeks of conservative therapy so far.
    pub conservative_therapy_weeks: Option<f64>,
    /// Which conservative therapies were tried.
    pub conservative_therapies: Option<Vec<ConservativeTherapy>>,
    /// Conservative therapy failed to treat the symptoms adequately.
    pub conservative_therapy_failed: Option<bool>,
    /// Medically refractory pain, for example opioid intolerance (practice parameter A.1).
    pub medically_refractory_pain: Option<bool>,
    /// Pain requiring reduction in activities of daily living (practice parameter A.1).
    pub pain_limits_adl: Option<bool>,
    /// The impaired instrumental ADLs and how they are limited are documented (Regence I.A.3).
    pub iadl_impairment_documented: Option<bool>,
    /// Imaging findings correlate with the patient's pain (Regence I.A.1).
    pub imaging_correlates_with_pain: Option<bool>,
    /// Pain is more likely than not related to the fracture(s) (Regence I.A.2; BCBSMA 484).
    pub pain_related_to_fracture: Option<bool>,
    /// Hospitalised because of the fracture.
    pub hospitalised: Option<bool>,
    /// Cannot walk or transfer without assistance.
    pub non_ambulatory: Option<bool>,
    /// Neurological deficit.
    pub neurological_deficit: Option<bool>,
    /// Septicaemia (practice parameter B.1).
    pub septicemia: Option<bool>,
    /// Active osteomyelitis of the target vertebra (B.2; Regence I.A.5.e).
    pub osteomyelitis: Option<bool>,
    /// Infection along the intended access trajectory (B.3).
    pub infection_along_access: Option<bool>,
    /// Ongoing systemic infection (C.4; Regence I.A.5.e).
    pub systemic_infection: Option<bool>,
    /// Urinary tract infection (Regence I.A.5.e).
    pub urinary_tract_infection: Option<bool>,
    /// Uncorrectable coagulopathy (B.4; Regence I.A.5.g).
    pub uncorrectable_coagulopathy: Option<bool>,
    /// Pregnancy (C.6).
    pub pregnancy: Option<bool>,
    /// Known allergy to the materials used (Regence I.A.5.h).
    pub allergy_to_materials: Option<bool>,
    /// Radiculopathy from a compressive syndrome unrelated to the fracture (C.1).
    pub radiculopathy_unrelated_to_fracture: Option<bool>,
    /// Radiculopathy from a herniated disc (Regence I.A.5.k).
    pub disc_herniation_radiculopathy: Option<bool>,
    /// Untreated stenosis, facet arthropathy or another pain generator at the level (I.A.5.a).
    pub other_pain_generator: Option<bool>,
    /// Symptoms that cannot be related to a fracture (I.A.5.c).
    pub symptoms_unrelated_to_fracture: Option<bool>,
    /// Unstable fracture, or stabilisation needed in the same or adjacent region (I.A.5.d).
    pub unstable_fracture: Option<bool>,
    /// Painful metastases outside the spine (I.A.5.f).
    pub painful_metastases_elsewhere: Option<bool>,
    /// Spinal cord compression, clinically (I.A.5.f).
    pub cord_compression: Option<bool>,
    /// Primary bone or osteoblastic tumour (I.A.5.f).
    pub primary_bone_or_osteoblastic_tumour: Option<bool>,
    /// Solitary plasmacytoma (I.A.5.f).
    pub solitary_plasmacytoma: Option<bool>,
    /// Severe cardiopulmonary disease (I.A.5.j).
    pub severe_cardiopulmonary_disease: Option<bool>,
    /// Fracture documented as older than six months (I.A.5.i).
    pub chronic_fracture: Option<bool>,
    /// Stable fracture in a patient who is clinically improving (C.5).
    pub clinically_improving: Option<bool>,
    /// A benign painful bone lesion is the target (A.4).
    pub benign_painful_bone_lesion: Option<bool>,
    /// Vertebral haemangioma is the target (Regence II).
    pub hemangioma: Option<bool>,
    /// Highly vascular lesion (cement-leakage risk).
    pub vascular_lesion: Option<bool>,
    /// Acute fracture due to trauma (Regence II; BCBSMA 484).
    pub trauma: Option<bool>,
    /// Prophylactic treatment (Regence II; BCBSMA 484).
    pub prophylactic: Option<bool>,
    /// A non-balloon mechanical device is planned (Regence III).
    pub non_balloon_mechanical_device: Option<bool>,
    /// The fracture is new, clinically (ACR variant 7).
    pub new_fracture: Option<bool>,
    /// Rapidly progressive fracture, clinically (practice parameter A.5).
    pub rapidly_progressive: Option<bool>,
    /// Red flags of ACR Appendix 1 that are present; an empty list means none.
    pub red_flags: Option<Vec<RedFlag>>,
}

/// Why a clinical-facts file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON for [`ClinicalFacts`] (an unknown key is an error, so
    /// that a misspelt fact is not silently unknown).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
}

/// Upper bound on a facts file: the full set of facts is a few kilobytes.
const MAX_FACTS_BYTES: u64 = 1 << 20;

impl ClinicalFacts {
    /// Reads a TOML (`.toml`) or JSON (any other extension) facts file.
    pub fn read(path: &Path) -> Result<ClinicalFacts, FactsError> {
        let io = |source| FactsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_FACTS_BYTES {
            return Err(FactsError::Parse {
                path: path.to_path_buf(),
                message: format!("{len} bytes; a facts file is at most {MAX_FACTS_BYTES}"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| FactsError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_and_absent_keys_unknown() {
        let f: ClinicalFacts =
            toml::from_str("symptomatic = true\npain_duration_weeks = 3\nred_flags = [\"fever\"]")
                .unwrap();
        assert_eq!(f.symptomatic, Some(true));
        assert_eq!(f.history_of_malignancy, None);
        assert_eq!(f.red_flags, Some(vec![RedFlag::Fever]));
        assert!(toml::from_str::<ClinicalFacts>("symptomatik = true").is_err());
    }
}
