//! `spinetriage analyze`: the per-level table, written with the report keys of the report issue
//! until the report crate lands.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use spinetriage_measure::{analyze_volumes, Level, Status, StudyMorphometry};
use spinetriage_segment::Anchor;
use spinetriage_volume::Volume;
use std::collections::BTreeMap;
use std::path::Path;

/// A study's UID, its morphometry (none without a CT or MR series) and its errors.
pub type StudyResult = (String, Option<StudyMorphometry>, Vec<String>);

/// Report schema version of `levels.json`.
pub const SCHEMA_VERSION: &str = "0.1.0";

fn r(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn opt(x: Option<f64>, digits: i32) -> Value {
    x.map(|v| json!(r(v, digits))).unwrap_or(Value::Null)
}

/// One level in report form.
pub fn level_json(l: &Level) -> Value {
    let m = &l.measurement;
    let d = &l.derived;
    let h = |x: &Option<spinetriage_measure::Height>| opt(x.map(|h| h.height_mm), 2);
    let hs = |x: &Option<spinetriage_measure::Height>| opt(x.map(|h| h.sigma_mm), 2);
    let mut evidence = vec![format!("expected height: {}", d.expected_from)];
    if let Status::NotEvaluable(why) = &m.status {
        evidence.push(format!("not evaluable: {why}"));
    }
    if d.wedge_physiologic == Some(true) && d.acr_kyphosis.met == Some(true) {
        evidence.push(
            "anterior wedge within this level's physiologic range: not counted as deformity".into(),
        );
    }
    evidence.push("marrow signal (edema, replacement, cleft) and posterior elements: not measured yet (issue 4)".into());
    json!({
        "level": l.level,
        "label_confidence": r(l.label_confidence, 2),
        "center_lps_mm": m.center_lps_mm.map(|v| r(v, 2)),
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
        "edema": {"present": null, "stir_ratio": null, "t1_ratio": null, "pattern": null},
        "posterior_element_involvement": {"present": null, "side": null},
        "marrow_replacement": null,
        "cleft": null,
        "retropulsion_mm": opt(m.retropulsion_mm, 2),
        "retropulsion_sigma_mm": opt(m.retropulsion_sigma_mm, 2),
        "frame": m.frame,
        "evidence": evidence,
    })
}

/// Analyses every study among `vols` (grouped by study UID) and writes `levels.json` and
/// `levels.csv` into `out`. Returns the morphometry per study.
pub fn run(vols: Vec<Volume>, out: &Path, anchor: Option<&Anchor>) -> Result<Vec<StudyResult>> {
    let mut by_study: BTreeMap<String, Vec<Volume>> = BTreeMap::new();
    for v in vols {
        by_study.entry(v.study_uid.clone()).or_default().push(v);
    }
    let mut studies = Vec::new();
    let mut results = Vec::new();
    for (uid, vols) in by_study {
        let series: Vec<Value> = vols
            .iter()
            .map(|v| json!({"series_uid": v.series_uid, "kind": v.kind, "description": v.description}))
            .collect();
        let (morph, errors) = match analyze_volumes(&vols, anchor) {
            Ok(m) => (m, Vec::new()),
            Err(e) => (None, vec![e.to_string()]),
        };
        let levels: Vec<Value> = morph
            .iter()
            .flat_map(|m| m.levels.iter().map(level_json))
            .collect();
        let not_evaluable: Vec<Value> = morph
            .iter()
            .flat_map(|m| m.levels.iter())
            .filter_map(|l| match &l.measurement.status {
                Status::NotEvaluable(why) => Some(json!({"level": l.level, "reason": why})),
                Status::Measured => None,
            })
            .collect();
        studies.push(json!({
            "study_uid": uid,
            "series": series,
            "shape_series_uid": morph.as_ref().map(|m| m.shape_series_uid.clone()),
            "labelling": morph.as_ref().map(|m| m.labelling.clone()).unwrap_or_default(),
            "levels": levels,
            "acr_variants": [],
            "acr_variants_note": "criteria engine not built yet (issue 5)",
            "not_evaluable": not_evaluable,
            "errors": errors,
        }));
        results.push((uid, morph, errors));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let doc = json!({"schema_version": SCHEMA_VERSION, "studies": studies});
    write_atomic(
        &out.join("levels.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    write_atomic(&out.join("levels.csv"), csv(&results).as_bytes())?;
    Ok(results)
}

fn csv(results: &[StudyResult]) -> String {
    let mut s = String::from(
        "study_uid,level,status,center_x_mm,center_y_mm,center_z_mm,anterior_mm,middle_mm,posterior_mm,left_mm,right_mm,expected_height_mm,height_loss_pct,genant_grade,morphology,kyphosis_pct,dorsal_wall_loss_pct,scoliosis_pct,wedge_angle_deg,retropulsion_mm,acr_deformity\n",
    );
    let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_default();
    for (uid, m, _) in results {
        for l in m.iter().flat_map(|m| m.levels.iter()) {
            let me = &l.measurement;
            let d = &l.derived;
            s += &format!(
                "{uid},{},{},{:.2},{:.2},{:.2},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                l.level.clone().unwrap_or_default(),
                if me.status == Status::Measured {
                    "measured"
                } else {
                    "not_evaluable"
                },
                me.center_lps_mm[0],
                me.center_lps_mm[1],
                me.center_lps_mm[2],
                f(me.anterior.map(|h| h.height_mm)),
                f(me.middle.map(|h| h.height_mm)),
                f(me.posterior.map(|h| h.height_mm)),
                f(me.left.map(|h| h.height_mm)),
                f(me.right.map(|h| h.height_mm)),
                f(d.expected_height_mm),
                f(d.height_loss_pct),
                d.genant_grade.map(|g| g.to_string()).unwrap_or_default(),
                d.morphology
                    .map(|m| format!("{m:?}").to_lowercase())
                    .unwrap_or_default(),
                f(d.kyphosis_pct),
                f(d.dorsal_wall_loss_pct),
                f(d.scoliosis_pct),
                f(d.wedge_angle_deg),
                f(me.retropulsion_mm),
                d.acr_deformity.map(|b| b.to_string()).unwrap_or_default(),
            );
        }
    }
    s
}

/// Temp file then rename, so a killed run never leaves a half-written table.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Prints the level table.
pub fn print(results: &[StudyResult]) {
    for (uid, m, errors) in results {
        println!("study {uid}");
        for e in errors {
            println!("  error: {e}");
        }
        let Some(m) = m else {
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
    }
}
