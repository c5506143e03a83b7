//! The rule files in `rules/`, embedded at build time so the binary carries the exact text it
//! was tested against.

use crate::expr::{Expr, ExprError, Facts};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One procedure row of an ACR variant.
#[derive(Debug, Clone, Deserialize)]
pub struct ProcedureRow {
    /// Procedure, verbatim from the seed.
    pub procedure: String,
    /// Appropriateness category, verbatim from the seed.
    pub category: String,
}

/// One ACR variant.
#[derive(Debug, Clone, Deserialize)]
pub struct VariantRule {
    /// Variant number, 1–9.
    pub variant: u8,
    /// Title, verbatim from the seed.
    pub title: String,
    /// "next_imaging", "initial_imaging" or "initial_treatment".
    pub phase: String,
    /// When the variant applies, in the rule language.
    pub applies_when: String,
    /// How the title was read, where that needs saying.
    pub note: Option<String>,
    /// Procedure rows, in the seed's order.
    pub procedures: Vec<ProcedureRow>,
}

/// The ACR Appropriateness Criteria document.
#[derive(Debug, Clone, Deserialize)]
pub struct AcrRules {
    /// Citation.
    pub source: String,
    /// Category → rating range.
    pub categories: BTreeMap<String, [u8; 2]>,
    /// The nine variants.
    pub variants: Vec<VariantRule>,
}

/// One item of a checklist (an indication, a contraindication, a payer criterion).
#[derive(Debug, Clone, Deserialize)]
pub struct ItemRule {
    /// Identifier as the source numbers it ("A.1", "I.A.5.b").
    pub id: String,
    /// The source's wording.
    pub text: String,
    /// When it holds, in the rule language.
    pub when: String,
    /// "criterion" (default) or "investigational".
    #[serde(default)]
    pub kind: Option<String>,
}

impl ItemRule {
    /// The name under which a decision rule refers to this item: the id with dots as
    /// underscores.
    pub fn key(&self) -> String {
        self.id.replace('.', "_")
    }
}

/// The practice parameter's section II.
#[derive(Debug, Clone, Deserialize)]
pub struct PracticeRules {
    /// Citation.
    pub source: String,
    /// II.A.
    pub indications: Vec<ItemRule>,
    /// II.B.
    pub absolute_contraindications: Vec<ItemRule>,
    /// II.C.
    pub relative_contraindications: Vec<ItemRule>,
    /// Cement-leakage risk factors.
    pub leakage_risks: Vec<ItemRule>,
}

/// A billing code of a payer policy.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct CodeRule {
    /// "CPT" or "HCPCS".
    pub system: String,
    /// The code.
    pub code: String,
    /// Short description.
    pub description: String,
    /// "vertebroplasty", "kyphoplasty", "sacroplasty" or "implant".
    pub procedure: String,
    /// Spinal region it is billed for.
    pub region: String,
    /// "first", "additional" or "all_levels".
    pub role: String,
}

/// A payer policy.
#[derive(Debug, Clone, Deserialize)]
pub struct PayerRules {
    /// Short name.
    pub name: String,
    /// Citation.
    pub source: String,
    /// Criteria, in the policy's order.
    pub criteria: Vec<ItemRule>,
    /// Medical necessity, in the rule language over criterion keys.
    pub decision: String,
    /// Codes.
    pub codes: Vec<CodeRule>,
}

/// Every rule file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// ACR Appropriateness Criteria.
    pub acr: AcrRules,
    /// Practice parameter.
    pub practice: PracticeRules,
    /// Payer policies.
    pub payers: Vec<PayerRules>,
}

/// Why the embedded rules could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A rule file is not valid TOML for its schema.
    #[error("rules/{file}: {message}")]
    File {
        /// The file.
        file: &'static str,
        /// What the parser said.
        message: String,
    },
    /// A rule expression is invalid.
    #[error("rules/{file} {id}: {source}")]
    Expr {
        /// The file.
        file: &'static str,
        /// The item.
        id: String,
        /// The problem.
        source: ExprError,
    },
}

fn parse<T: for<'de> Deserialize<'de>>(file: &'static str, text: &str) -> Result<T, RuleError> {
    toml::from_str(text).map_err(|e| RuleError::File {
        file,
        message: e.to_string(),
    })
}

/// Parses `text` as a rule of `file`/`id` and checks its names against `facts`.
pub fn compile(file: &'static str, id: &str, text: &str, facts: &Facts) -> Result<Expr, RuleError> {
    let err = |source| RuleError::Expr {
        file,
        id: id.to_string(),
        source,
    };
    let e = Expr::parse(text).map_err(err)?;
    e.check(facts).map_err(err)?;
    Ok(e)
}

impl Rules {
    /// The embedded rules.
    pub fn embedded() -> Result<Rules, RuleError> {
        Ok(Rules {
            acr: parse("acr_vcf.toml", include_str!("../rules/acr_vcf.toml"))?,
            practice: parse(
                "practice_parameter.toml",
                include_str!("../rules/practice_parameter.toml"),
            )?,
            payers: vec![
                parse(
                    "regence_107.toml",
                    include_str!("../rules/regence_107.toml"),
                )?,
                parse("bcbsma_484.toml", include_str!("../rules/bcbsma_484.toml"))?,
            ],
        })
    }
}
