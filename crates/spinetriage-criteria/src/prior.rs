//! Longitudinal comparison with an earlier study, level by level (by level name): height
//! change, new fractures and progression, the practice parameter's "rapidly progressive
//! fracture" (indication A.5).

use crate::expr::Value;
use crate::findings::{Fact, ImagingFindings};
use serde::Serialize;

/// Increase in height loss, percentage points, from which a fractured level counts as
/// progressing: twice the loss MAE the accuracy benchmark measures, so that measurement spread
/// alone does not read as progression (`docs/criteria.md`).
pub const PROGRESSION_POINTS: f64 = 10.0;

/// One level compared with the prior study.
#[derive(Debug, Clone, Serialize)]
pub struct LevelChange {
    /// Level name.
    pub level: String,
    /// Smallest of A/M/P on the prior study, mm.
    pub prior_min_height_mm: Option<f64>,
    /// Smallest of A/M/P now, mm.
    pub current_min_height_mm: Option<f64>,
    /// Change, mm (negative: lost height).
    pub change_mm: Option<f64>,
    /// Change, per cent of the prior height.
    pub change_pct: Option<f64>,
    /// Height loss on the prior study, per cent.
    pub prior_loss_pct: Option<f64>,
    /// Height loss now, per cent.
    pub current_loss_pct: Option<f64>,
    /// Genant grade then.
    pub prior_grade: Option<u8>,
    /// Genant grade now.
    pub current_grade: Option<u8>,
    /// Fractured now and not on the prior study.
    pub new_fracture: Option<bool>,
    /// Fractured now, with the loss up by at least [`PROGRESSION_POINTS`] or the grade up.
    pub progression: Option<bool>,
}

/// The comparison.
#[derive(Debug, Clone, Serialize)]
pub struct PriorComparison {
    /// Levels named in both studies.
    pub levels: Vec<LevelChange>,
    /// Levels named now but not on the prior study.
    pub unmatched: Vec<String>,
}

/// Compares `current` with `prior` by level name.
pub fn compare(current: &ImagingFindings, prior: &ImagingFindings) -> PriorComparison {
    let mut levels = Vec::new();
    let mut unmatched = Vec::new();
    for c in &current.levels {
        let Some(name) = &c.level else { continue };
        let Some(p) = prior
            .levels
            .iter()
            .find(|p| p.level.as_deref() == Some(name))
        else {
            unmatched.push(name.clone());
            continue;
        };
        let change_mm = c
            .min_height_mm
            .zip(p.min_height_mm)
            .map(|(now, then)| now - then);
        let change_pct = change_mm
            .zip(p.min_height_mm)
            .filter(|(_, then)| *then > 0.0)
            .map(|(d, then)| 100.0 * d / then);
        let new_fracture = match (p.fractured(), c.fractured()) {
            (Some(false), Some(true)) => Some(true),
            (Some(_), Some(_)) => Some(false),
            _ => None,
        };
        let progression = match (c.fractured(), p.genant_grade, c.genant_grade) {
            (Some(false), _, _) => Some(false),
            (Some(true), Some(gp), Some(gc)) => {
                let dl = c.height_loss_pct.zip(p.height_loss_pct).map(|(a, b)| a - b);
                Some(gc > gp || dl.is_some_and(|d| d >= PROGRESSION_POINTS))
            }
            _ => None,
        };
        levels.push(LevelChange {
            level: name.clone(),
            prior_min_height_mm: p.min_height_mm,
            current_min_height_mm: c.min_height_mm,
            change_mm,
            change_pct,
            prior_loss_pct: p.height_loss_pct,
            current_loss_pct: c.height_loss_pct,
            prior_grade: p.genant_grade,
            current_grade: c.genant_grade,
            new_fracture,
            progression,
        });
    }
    PriorComparison { levels, unmatched }
}

impl PriorComparison {
    fn fact(&self, what: &str, f: impl Fn(&LevelChange) -> Option<bool>) -> Fact {
        let yes: Vec<&str> = self
            .levels
            .iter()
            .filter(|l| f(l) == Some(true))
            .map(|l| l.level.as_str())
            .collect();
        let unknown = self.levels.iter().any(|l| f(l).is_none()) || self.levels.is_empty();
        let value = if !yes.is_empty() {
            Value::Bool(true)
        } else if unknown {
            Value::Unknown
        } else {
            Value::Bool(false)
        };
        Fact {
            value,
            source: "imaging",
            evidence: format!("{what} against the prior study: {}", yes.join(", ")),
        }
    }

    /// "A level fractured now was not fractured on the prior study".
    pub fn new_fracture_fact(&self) -> Fact {
        self.fact("new fracture", |l| l.new_fracture)
    }

    /// "A fractured level lost more height since the prior study".
    pub fn progression_fact(&self) -> Fact {
        self.fact("progression", |l| l.progression)
    }
}
