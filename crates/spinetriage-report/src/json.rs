//! `report.json`: the machine-readable report. Its schema is `docs/report.schema.json`; the
//! required keys are those of the report issue, everything else is free.

use crate::StudyInput;
use serde_json::{json, Value};
use spinetriage_criteria::LevelFinding;
use spinetriage_measure::{Height, Level, Status};

/// Version of the report format. Bump the minor for added keys, the major for changed ones.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// `x` rounded to `digits` decimals.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn opt(x: Option<f64>, digits: i32) -> Value {
    x.filter(|v| v.is_finite())
        .map(|v| json!(round(v, digits)))
        .unwrap_or(Value::Null)
}

/// One level in report form; `finding` carries the marrow-signal findings (unknown until
/// measured, with the reason in `evidence`).
pub fn level_json(
    l: &Level,
    finding: Option<&LevelFinding>,
    marrow: Option<&spinetriage_marrow::LevelSignal>,
) -> Value {
    let m = &l.measurement;
    let d = &l.derived;
    let h = |x: &Option<Height>| opt(x.map(|h| h.height_mm), 2);
    let hs = |x: &Option<Height>| opt(x.map(|h| h.sigma_mm), 2);
    let mut evidence = vec![format!("expected height: {}", d.expected_from)];
    if let Status::NotEvaluable(why) = &m.status {
        evidence.push(format!("not evaluable: {why}"));
    }
    evidence.extend(m.notes.iter().cloned());
    if let Some(r) = d.middle_reference.filter(|r| r.ratio < 1.0) {
        evidence.push(format!(
            "middle height read at {:.3} of the expected height, the study's endplate concavity \
             (median Hm/((Ha+Hp)/2) {:.3} over {} bodies, less {:.2} allowed for flat endplates)",
            r.ratio,
            r.median_ratio,
            r.levels,
            spinetriage_measure::FLAT_ENDPLATE_SPREAD
        ));
    }
    if d.wedge_physiologic == Some(true) && d.acr_kyphosis.met == Some(true) {
        evidence.push(
            "anterior wedge within this level's physiologic range: not counted as deformity".into(),
        );
    }
    let signal = finding.map(|f| f.signal.clone()).unwrap_or_default();
    if let Some(why) = &signal.reason {
        evidence.push(why.clone());
    }
    evidence.extend(finding.and_then(LevelFinding::unread_wall_displacement));
    if let Some(mr) = marrow {
        evidence.extend(mr.evidence.iter().cloned());
    }
    let edema_pattern = marrow.and_then(|mr| mr.edema_pattern);
    let pe_side = marrow.and_then(|mr| mr.posterior.side);
    let canal = json!({"ap_mm": opt(m.canal.as_ref().map(|c| c.ap_mm), 2),
                  "ap_sigma_mm": opt(m.canal.as_ref().map(|c| c.sigma_mm), 2),
                  "extent": m.canal.as_ref().map(|c| c.extent),
                  "series_uid": m.canal.as_ref().map(|c| &c.series_uid),
                  "reference_mm": opt(d.canal_reference_mm, 2),
                  "compromise_pct": opt(d.canal_compromise_pct, 1),
                  "compromise_sigma_pct": opt(d.canal_compromise_sigma_pct, 1),
                  "residual_ap_mm": opt(m.canal_residual.as_ref().map(|c| c.ap_mm), 2),
                  "residual_pct": opt(d.canal_residual_pct, 1),
                  "thecal_sac_residual_pct": opt(d.thecal_sac_residual_pct, 1),
                  "thecal_sac_compressed": d.thecal_sac_compressed,
                  "thecal_sac_ap_mm": opt(m.thecal_sac.as_ref().map(|c| c.ap_mm), 2),
                  "anterior_epidural_space_mm": opt(m.thecal_sac.as_ref().and_then(|c| c.anterior_space_mm), 2),
                  "epidural_thickness_mm": opt(d.epidural_thickness_mm, 2),
                  "epidural_soft_tissue": d.epidural_soft_tissue});
    json!({
        "level": l.level,
        "label_confidence": round(l.label_confidence, 2),
        "center_lps_mm": m.center_lps_mm.map(|v| round(v, 2)),
        "status": if m.status == Status::Measured { "measured" } else { "not_evaluable" },
        "heights_mm": {"anterior": h(&m.anterior), "middle": h(&m.middle), "posterior": h(&m.posterior),
                        "left": h(&m.left), "right": h(&m.right)},
        "heights_sigma_mm": {"anterior": hs(&m.anterior), "middle": hs(&m.middle), "posterior": hs(&m.posterior),
                              "left": hs(&m.left), "right": hs(&m.right)},
        "height_lines_lps_mm": {
            "anterior": m.anterior.map(|h| [h.superior_lps_mm, h.inferior_lps_mm]),
            "middle": m.middle.map(|h| [h.superior_lps_mm, h.inferior_lps_mm]),
            "posterior": m.posterior.map(|h| [h.superior_lps_mm, h.inferior_lps_mm]),
        },
        "depth_mm": opt(m.depth_mm, 2),
        "width_mm": opt(m.width_mm, 2),
        "expected_height_mm": opt(d.expected_height_mm, 2),
        "height_loss_pct": opt(d.height_loss_pct, 1),
        "height_loss_sigma_pct": opt(d.height_loss_sigma_pct, 1),
        "middle_reference": d.middle_reference.map(|r| json!({
            "ratio": round(r.ratio, 3), "median_ratio": round(r.median_ratio, 3), "levels": r.levels})),
        "genant_grade": d.genant_grade,
        "morphology": d.morphology,
        "kyphosis_pct": opt(d.kyphosis_pct, 1),
        "dorsal_wall_loss_pct": opt(d.dorsal_wall_loss_pct, 1),
        "scoliosis_pct": opt(d.scoliosis_pct, 1),
        "wedge_angle_deg": opt(d.wedge_angle_deg, 1),
        "segmental_kyphosis_deg": opt(d.segmental_kyphosis_deg, 1),
        "normal_wedge_pct": d.normal_wedge,
        "wedge_physiologic": d.wedge_physiologic,
        "acr_deformity": d.acr_deformity,
        "acr_criteria": {"height_loss": d.acr_height_loss, "kyphosis": d.acr_kyphosis,
                          "scoliosis": d.acr_scoliosis, "dorsal_wall": d.acr_dorsal_wall},
        "edema": {"present": signal.edema,
                  "stir_ratio": opt(marrow.and_then(|mr| mr.stir_ratio), 3),
                  "t1_ratio": opt(marrow.and_then(|mr| mr.t1_ratio), 3),
                  "pattern": edema_pattern,
                  "extent_pct": opt(marrow.and_then(|mr| mr.edema_extent_pct), 1)},
        "posterior_element_involvement": {"present": signal.posterior_element_involvement, "side": pe_side,
                                           "arch": marrow.and_then(|mr| mr.posterior.arch)},
        "posterior_elements": m.posterior_elements.as_ref().map(|pe| pe.parts.iter().map(|p| json!({
            "part": p.part, "found": p.found, "located": p.located,
            "centroid_lps_mm": p.located.then(|| p.centroid_lps_mm.map(|v| round(v, 2))),
            "core_lps_mm": p.located.then(|| p.core_lps_mm.map(|v| round(v, 2))),
            "volume_mm3": round(p.volume_mm3, 0), "note": p.note})).collect::<Vec<_>>()),
        "acuity": marrow.map(|mr| mr.acuity),
        "marrow": marrow,
        "marrow_replacement": signal.marrow_replacement,
        "cleft": signal.cleft,
        "retropulsion_mm": opt(m.retropulsion_mm, 2),
        "retropulsion_sigma_mm": opt(m.retropulsion_sigma_mm, 2),
        "canal": canal,
        "frame": m.frame,
        "evidence": evidence,
    })
}

/// One study in report form.
pub fn study_json(s: &StudyInput) -> Value {
    let series: Vec<Value> = s
        .volumes
        .iter()
        .map(|v| {
            // What each series contributed: the shape, a marrow signal, or nothing (and why).
            let shape = s
                .morphometry
                .is_some_and(|m| m.shape_series_uid == v.series_uid);
            let signal = s
                .marrow
                .and_then(|mr| mr.series.iter().find(|u| u.series_uid == v.series_uid));
            let used_for = match (shape, signal) {
                (true, Some(u)) if u.combined => format!("shape and {} signal", u.role),
                (true, _) => "shape".to_string(),
                (false, Some(u)) if u.combined => format!("{} signal", u.role),
                (false, Some(u)) => format!("not used: {}", u.note),
                (false, None) => "not used".to_string(),
            };
            json!({"series_uid": v.series_uid, "kind": v.kind, "description": v.description,
                   "frame_of_reference_uid": v.frame_of_reference_uid,
                   "used_for": used_for})
        })
        .collect();
    let findings = s.findings.map(|f| &f.levels);
    let levels: Vec<Value> = s
        .morphometry
        .iter()
        .flat_map(|m| m.levels.iter().enumerate())
        .map(|(i, l)| {
            level_json(
                l,
                findings.and_then(|f| f.get(i)),
                s.marrow.and_then(|mr| mr.levels.get(i)),
            )
        })
        .collect();
    let mut not_evaluable: Vec<Value> = s
        .morphometry
        .iter()
        .flat_map(|m| m.levels.iter())
        .filter_map(|l| match &l.measurement.status {
            Status::NotEvaluable(why) => Some(json!({"level": l.level, "reason": why})),
            Status::Measured => None,
        })
        .collect();
    if s.morphometry.is_none() {
        not_evaluable.push(json!({"level": null, "reason": s.errors.first().cloned()
            .unwrap_or_else(|| "no CT or MR series to measure".into())}));
    }
    let c = s.criteria;
    let mut doc = json!({
        "study_uid": s.study_uid,
        "triage": c.map(|c| json!(c.triage)),
        "series": series,
        "shape_series_uid": s.morphometry.map(|m| m.shape_series_uid.clone()),
        "labelling": s.morphometry.map(|m| m.labelling.clone()).unwrap_or_default(),
        "marrow_series": s.marrow.map(|mr| json!(mr.series)),
        "levels": levels,
        "acr_variants": c.map(|c| json!(c.acr_variants)).unwrap_or(json!([])),
        "acr_summary": c.map(|c| c.acr_summary.clone()),
        "practice_parameter": c.map(|c| json!(c.practice_parameter)),
        "payer_worksheets": c.map(|c| json!(c.payers)),
        "sins": c.map(|c| json!(c.sins)),
        "red_flags": c.and_then(|c| c.red_flags.as_ref().map(|r| json!(r))),
        "prior_comparison": c.and_then(|c| c.prior.as_ref().map(|p| json!(p))),
        "facts": c.map(|c| json!(c.facts)),
        "clinical_facts_source": s.clinical_source,
        "not_evaluable": not_evaluable,
        "errors": s.errors,
    });
    // Only on request (`--include-phi`): absent, not null, by default.
    if let (Some(p), Some(o)) = (s.patient, doc.as_object_mut()) {
        o.insert("patient".into(), json!(p));
    }
    doc
}

/// The whole report.
pub fn report_json(studies: &[StudyInput]) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "generator": format!("spinetriage {}", env!("CARGO_PKG_VERSION")),
        "disclaimer": "Decision support, not a diagnosis: every finding carries the numbers behind it; levels that could not be measured are listed as not evaluable.",
        "studies": studies.iter().map(study_json).collect::<Vec<_>>(),
    })
}
