//! Maps a study's findings and the clinical facts the user supplies onto the clinical documents
//! of `../shared/seeds/`: the ACR Appropriateness Criteria for vertebral compression fractures
//! (all nine variants), the vertebral augmentation practice parameter, two payer policies, and
//! the SINS imaging components.
//!
//! Rules are data (`rules/*.toml`, embedded at build time) in a three-valued rule language
//! ([`expr`]): a fact nobody supplied is unknown, and every answer that depends on it says
//! "undetermined" or "needs documentation" together with the facts that would decide it.

#![deny(missing_docs)]

pub mod engine;
pub mod expr;
pub mod facts;
pub mod findings;
pub mod prior;
pub mod rules;
pub mod sins;
pub mod triage;

pub use engine::{evaluate, CriteriaReport, ItemResult, PayerResult, VariantResult};
pub use expr::{Tri, Value};
pub use facts::{ClinicalFacts, FactsError};
pub use findings::{ImagingFindings, LevelFinding, SignalFindings};
pub use rules::{RuleError, Rules};
pub use triage::{Category, Triage};
