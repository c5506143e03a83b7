//! Spinal Instability Neoplastic Score (SINS), imaging components (Fisher et al., Spine 2010;
//! cited by seed 003_*, variants 2 and 4), per fractured level. A component that is not
//! measured contributes its full range, so the total is a range that narrows as findings land.

use crate::facts::ClinicalFacts;
use crate::findings::{ImagingFindings, LevelFinding};
use serde::Serialize;

/// One SINS component: the score range and why.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// Lowest possible points.
    pub min: u8,
    /// Highest possible points.
    pub max: u8,
    /// What decided it.
    pub basis: String,
}

fn c(min: u8, max: u8, basis: impl Into<String>) -> Component {
    Component {
        min,
        max,
        basis: basis.into(),
    }
}

/// SINS of one level.
#[derive(Debug, Clone, Serialize)]
pub struct SinsLevel {
    /// Level name.
    pub level: String,
    /// Location: junctional 3, mobile 2, semirigid 1, rigid 0.
    pub location: Component,
    /// Pain: mechanical 3, occasional non-mechanical 1, none 0.
    pub pain: Component,
    /// Bone lesion: lytic 2, mixed 1, blastic 0.
    pub bone_lesion: Component,
    /// Alignment: subluxation 4, de novo deformity 2, normal 0.
    pub alignment: Component,
    /// Collapse: > 50 % 3, < 50 % 2, none with > 50 % involvement 1, none 0.
    pub collapse: Component,
    /// Posterolateral involvement: bilateral 3, unilateral 1, none 0.
    pub posterolateral: Component,
    /// Total range, [min, max].
    pub total: [u8; 2],
    /// Categories the range spans: "stable" (0–6), "potentially unstable" (7–12),
    /// "unstable" (13–18).
    pub categories: Vec<&'static str>,
}

fn location(level: &str) -> Component {
    let n: u32 = level.get(1..).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (p, what) = match (level.as_bytes().first(), n) {
        (Some(b'C'), 1..=2) | (Some(b'C'), 7) | (Some(b'T'), 1..=2) => (3, "junctional"),
        (Some(b'T'), 11..=12) | (Some(b'L'), 1) | (Some(b'L'), 5) | (Some(b'S'), 1) => {
            (3, "junctional")
        }
        (Some(b'C'), 3..=6) | (Some(b'L'), 2..=4) => (2, "mobile spine"),
        (Some(b'T'), 3..=10) => (1, "semirigid"),
        (Some(b'S'), _) => (0, "rigid"),
        _ => return c(0, 3, "level unlabelled"),
    };
    c(p, p, format!("{level}: {what}"))
}

fn category(score: u8) -> &'static str {
    match score {
        0..=6 => "stable",
        7..=12 => "potentially unstable",
        _ => "unstable",
    }
}

fn level_sins(l: &LevelFinding, clinical: &ClinicalFacts) -> SinsLevel {
    let name = l.name();
    let pain = match clinical.symptomatic {
        Some(false) => c(0, 0, "pain-free lesion (symptomatic = no)"),
        Some(true) => c(1, 3, "symptomatic; mechanical or not is not recorded"),
        None => c(0, 3, "pain unknown"),
    };
    let bone_lesion = match l.signal.lytic {
        Some(true) => c(2, 2, "lytic"),
        _ => c(0, 2, "lesion quality not determined"),
    };
    let alignment = match l.kyphotic {
        Some(true) => c(2, 4, "de novo kyphotic deformity; translation not measured"),
        _ => c(
            0,
            4,
            "no de novo deformity measured; translation not measured",
        ),
    };
    let collapse = match l.height_loss_pct {
        Some(p) if p > 50.0 => c(3, 3, format!("{p:.0} % collapse (> 50 %)")),
        Some(p) if l.fractured() == Some(true) => c(2, 2, format!("{p:.0} % collapse (< 50 %)")),
        Some(p) => c(
            0,
            1,
            format!("{p:.0} % height loss: no collapse; body involvement not measured"),
        ),
        None => c(0, 3, "height loss not measured"),
    };
    let posterolateral = match l.signal.posterior_element_involvement {
        Some(false) => c(0, 0, "posterior elements not involved"),
        _ => c(0, 3, "posterolateral involvement not measured"),
    };
    let location = location(&name);
    let parts = [
        &location,
        &pain,
        &bone_lesion,
        &alignment,
        &collapse,
        &posterolateral,
    ];
    let total = [
        parts.iter().map(|p| p.min).sum(),
        parts.iter().map(|p| p.max).sum(),
    ];
    let mut categories = vec![category(total[0])];
    for s in [6, 12, total[1]] {
        if s >= total[0] && s <= total[1] && !categories.contains(&category(s)) {
            categories.push(category(s));
        }
    }
    if !categories.contains(&category(total[1])) {
        categories.push(category(total[1]));
    }
    SinsLevel {
        level: name,
        location,
        pain,
        bone_lesion,
        alignment,
        collapse,
        posterolateral,
        total,
        categories,
    }
}

/// SINS for every fractured level.
pub fn sins(findings: &ImagingFindings, clinical: &ClinicalFacts) -> Vec<SinsLevel> {
    findings
        .levels
        .iter()
        .filter(|l| l.fractured() == Some(true))
        .map(|l| level_sins(l, clinical))
        .collect()
}
