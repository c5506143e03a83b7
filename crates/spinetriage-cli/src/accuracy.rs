//! `spinetriage bench-accuracy`: morphometry against the phantom's ground truth over varied
//! noise, resolution, curvature and whole-spine rotation (issue 3, item 6).

use anyhow::{Context, Result};
use serde::Serialize;
use spinetriage_measure::{analyze_volumes, canal::CanalExtent};
use spinetriage_phantom::{PhantomConfig, SeriesSet, CASES};
use spinetriage_volume::LpsPoint;
use std::path::Path;

/// One phantom run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    case: String,
    seed: u64,
    modality: &'static str,
    pixel_mm: f64,
    slice_mm: f64,
    noise: f64,
    curvature: f64,
    rotation_deg: [f64; 3],
}

/// Per-level comparison.
#[derive(Debug, Clone, Serialize)]
pub struct LevelResult {
    truth_level: String,
    found_level: Option<String>,
    centre_error_mm: f64,
    height_errors_mm: [f64; 3],
    loss_error_pct: Option<f64>,
    genant_truth: u8,
    genant_found: Option<u8>,
    /// Measured minus true retropulsion, mm.
    retropulsion_error_mm: Option<f64>,
    /// Measured minus true canal diameter (bony canal or thecal sac, as measured), mm.
    canal_ap_error_mm: Option<f64>,
    /// Measured minus true canal compromise, percentage points.
    canal_compromise_error_pct: Option<f64>,
    status: String,
}

/// Summary over all runs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    runs: usize,
    levels_truth: usize,
    levels_found: usize,
    height_mae_mm: f64,
    height_p95_mm: f64,
    height_mae_measured_mm: f64,
    height_median_measured_mm: f64,
    heights_measured_pct: f64,
    loss_mae_pct: f64,
    genant_agreement_pct: f64,
    label_accuracy_pct: f64,
    cases_all_labels_correct_pct: f64,
    retropulsion_mae_mm: f64,
    retropulsion_max_error_mm: f64,
    canal_ap_mae_mm: f64,
    canal_compromise_mae_pct: f64,
}

/// Splitmix64: variants are reproducible for a seed without a dependency.
fn rnd(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The variants: every case, alternating CT and MR, with random settings in the ranges
/// (MR 0.6–1.2 mm in-plane, 3–4 mm slices; CT 0.5–1 mm in-plane, 1–3 mm slices; curvature
/// 0.5–1.5; rotation up to ±10° about each axis; noise from low to high).
pub fn variants(cases: &[&str], repeats: usize, seed: u64) -> Vec<(Variant, PhantomConfig)> {
    let mut state = seed;
    let mut out = Vec::new();
    for r in 0..repeats {
        for (k, case) in cases.iter().enumerate() {
            let Some(mut cfg) = spinetriage_phantom::case(case, seed + r as u64) else {
                continue;
            };
            let ct = (k + r) % 2 == 0;
            let mut u = || rnd(&mut state);
            let curvature = 0.5 + u();
            let rotation_deg = [20.0 * u() - 10.0, 20.0 * u() - 10.0, 20.0 * u() - 10.0];
            cfg.spine.curvature *= curvature;
            // The range is ±10° about each axis in total: a case's own rotation plus the
            // random one is kept inside it.
            for (a, b) in cfg.spine.rotation_deg.iter_mut().zip(rotation_deg) {
                *a = (*a + b).clamp(-10.0, 10.0);
            }
            let (pixel_mm, slice_mm, noise);
            if ct {
                pixel_mm = 0.5 + 0.5 * u();
                slice_mm = 1.0 + 2.0 * u();
                noise = 5.0 + 25.0 * u();
                cfg.ct.pixel_mm = pixel_mm;
                cfg.ct.matrix = (260.0 / pixel_mm).round() as usize;
                cfg.ct.slice_mm = slice_mm;
                cfg.ct.noise_hu = noise;
                cfg.series = SeriesSet::ct_only();
            } else {
                pixel_mm = 0.6 + 0.6 * u();
                slice_mm = 3.0 + u();
                noise = 10.0 + 30.0 * u();
                cfg.mr.pixel_mm = pixel_mm;
                cfg.mr.rows = (400.0 / pixel_mm).round() as usize;
                cfg.mr.cols = (288.0 / pixel_mm).round() as usize;
                // Cover ±55 mm across: a rotated spine drifts sideways along its length, and a
                // level that leaves the slab is (rightly) not evaluable, which is not what this
                // bench measures.
                cfg.mr.slices = (110.0 / slice_mm).ceil() as usize;
                cfg.mr.thickness_mm = slice_mm - 0.5;
                cfg.mr.gap_mm = 0.5;
                cfg.mr.snr = noise;
                cfg.series = SeriesSet::mr(false, true, false);
            }
            let v = Variant {
                case: case.to_string(),
                seed: seed + r as u64,
                modality: if ct { "CT" } else { "MR T1" },
                pixel_mm,
                slice_mm,
                noise,
                curvature: cfg.spine.curvature,
                rotation_deg: cfg.spine.rotation_deg,
            };
            out.push((v, cfg));
        }
    }
    out
}

/// The item of `items` whose centre (LPS mm) is nearest to `p`, with the distance.
fn nearest<T>(
    items: impl Iterator<Item = T>,
    centre: impl Fn(&T) -> [f64; 3],
    p: [f64; 3],
) -> Option<(T, f64)> {
    let p = LpsPoint::new(p[0], p[1], p[2]);
    items
        .map(|t| {
            let c = centre(&t);
            let d = p.distance_mm(&LpsPoint::new(c[0], c[1], c[2]));
            (t, d)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Runs one variant in `dir`.
pub fn run_one(cfg: &PhantomConfig, dir: &Path, verbose: bool) -> Result<(Vec<LevelResult>, bool)> {
    let truth = spinetriage_phantom::generate(cfg, dir)?;
    let (vols, errors, _) = crate::load_all(&[dir.join(&cfg.name)], &crate::Input::default());
    if let Some(e) = errors.first() {
        anyhow::bail!("phantom did not load: {e}");
    }
    let morph = analyze_volumes(&vols, None)?.context("no shape series")?;
    let truth_centre = |t: &&spinetriage_phantom::LevelTruth| t.centre_lps_mm;
    let found_centre = |l: &&spinetriage_measure::Level| l.measurement.center_lps_mm;
    if verbose {
        for n in &morph.labelling {
            eprintln!("    labels: {n}");
        }
        // The column as found: nearest truth level → label given.
        let col: Vec<String> = morph
            .levels
            .iter()
            .map(|l| {
                let (name, d) = nearest(
                    truth.levels.iter(),
                    truth_centre,
                    l.measurement.center_lps_mm,
                )
                .map(|(t, d)| (t.name.as_str(), d))
                .unwrap_or(("?", 0.0));
                let off = if d > 10.0 {
                    format!("({d:.0}mm)")
                } else {
                    String::new()
                };
                format!(
                    "{name}{off}→{}",
                    l.level.clone().unwrap_or_else(|| "?".into())
                )
            })
            .collect();
        eprintln!("    column: {}", col.join(" "));
    }
    let mut out = Vec::new();
    let mut all_labels = true;
    for t in truth
        .levels
        .iter()
        .filter(|t| !spinetriage_measure::is_sacral(Some(&t.name)))
    {
        let Some((l, d)) = nearest(morph.levels.iter(), found_centre, t.centre_lps_mm) else {
            all_labels = false;
            continue;
        };
        if d > 10.0 {
            all_labels = false;
            out.push(LevelResult {
                truth_level: t.name.clone(),
                found_level: None,
                centre_error_mm: d,
                height_errors_mm: [f64::NAN; 3],
                loss_error_pct: None,
                genant_truth: t.genant_grade,
                genant_found: None,
                retropulsion_error_mm: None,
                canal_ap_error_mm: None,
                canal_compromise_error_pct: None,
                status: "not found".into(),
            });
            continue;
        }
        if l.level.as_deref() != Some(t.name.as_str()) {
            all_labels = false;
        }
        let m = &l.measurement;
        let he = |h: Option<spinetriage_measure::Height>, want: f64| {
            h.map(|h| h.height_mm - want).unwrap_or(f64::NAN)
        };
        out.push(LevelResult {
            truth_level: t.name.clone(),
            found_level: l.level.clone(),
            centre_error_mm: d,
            height_errors_mm: [
                he(m.anterior, t.heights.anterior_mm),
                he(m.middle, t.heights.middle_mm),
                he(m.posterior, t.heights.posterior_mm),
            ],
            loss_error_pct: l.derived.height_loss_pct.map(|x| x - t.height_loss_pct),
            genant_truth: t.genant_grade,
            genant_found: l.derived.genant_grade,
            retropulsion_error_mm: m.retropulsion_mm.map(|r| r - t.retropulsion_mm),
            canal_ap_error_mm: m
                .canal
                .as_ref()
                .map(|c| c.ap_mm - sac_or_canal(c.extent, t)),
            canal_compromise_error_pct: match (l.derived.canal_compromise_pct, &m.canal) {
                (Some(p), Some(c)) => {
                    // Every level's sac is the same share of its canal, so the sac-based
                    // compromise is the bony one over that share.
                    let share = t.thecal_sac_ap_mm / t.canal_ap_mm;
                    Some(match c.extent {
                        CanalExtent::BonyCanal => p - t.canal_compromise_pct,
                        CanalExtent::ThecalSac => p - t.canal_compromise_pct / share,
                    })
                }
                _ => None,
            },
            status: match &m.status {
                spinetriage_measure::Status::Measured => "measured".into(),
                spinetriage_measure::Status::NotEvaluable(w) => w.clone(),
            },
        });
    }
    Ok((out, all_labels))
}

fn sac_or_canal(extent: CanalExtent, t: &spinetriage_phantom::LevelTruth) -> f64 {
    match extent {
        CanalExtent::BonyCanal => t.canal_ap_mm,
        CanalExtent::ThecalSac => t.thecal_sac_ap_mm,
    }
}

/// One run: its settings, and its levels with whether every label was right (or the error).
pub type Run = (Variant, Result<(Vec<LevelResult>, bool), String>);

/// Summarises level results.
pub fn summarise(runs: &[Run]) -> Summary {
    let mut s = Summary {
        runs: runs.len(),
        ..Summary::default()
    };
    let mut herr = Vec::new();
    let mut measured = Vec::new();
    let mut lerr = Vec::new();
    let (mut rerr, mut cerr, mut perr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut g_ok, mut g_n, mut lab_ok, mut cases_ok) = (0, 0, 0, 0);
    for (_, r) in runs {
        let Ok((levels, all)) = r else { continue };
        cases_ok += usize::from(*all);
        for l in levels {
            s.levels_truth += 1;
            if l.found_level.is_some() || l.centre_error_mm <= 10.0 {
                s.levels_found += 1;
            }
            if l.found_level.as_deref() == Some(l.truth_level.as_str()) {
                lab_ok += 1;
            }
            for e in l.height_errors_mm {
                // A height not found counts as a 100 % error of a typical 25 mm height.
                herr.push(if e.is_finite() { e.abs() } else { 25.0 });
                if e.is_finite() {
                    measured.push(e.abs());
                }
            }
            if let Some(e) = l.loss_error_pct {
                lerr.push(e.abs());
            }
            rerr.extend(l.retropulsion_error_mm.map(f64::abs));
            cerr.extend(l.canal_ap_error_mm.map(f64::abs));
            perr.extend(l.canal_compromise_error_pct.map(f64::abs));
            g_n += 1;
            if l.genant_found == Some(l.genant_truth) {
                g_ok += 1;
            }
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    s.height_mae_mm = mean(&herr);
    s.height_mae_measured_mm = mean(&measured);
    s.heights_measured_pct = 100.0 * measured.len() as f64 / herr.len().max(1) as f64;
    measured.sort_by(f64::total_cmp);
    s.height_median_measured_mm = measured
        .get(measured.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    herr.sort_by(f64::total_cmp);
    s.height_p95_mm = herr.get(herr.len() * 95 / 100).copied().unwrap_or(f64::NAN);
    s.loss_mae_pct = mean(&lerr);
    s.retropulsion_mae_mm = mean(&rerr);
    s.retropulsion_max_error_mm = rerr.iter().copied().fold(0.0, f64::max);
    s.canal_ap_mae_mm = mean(&cerr);
    s.canal_compromise_mae_pct = mean(&perr);
    s.genant_agreement_pct = 100.0 * g_ok as f64 / g_n.max(1) as f64;
    s.label_accuracy_pct = 100.0 * lab_ok as f64 / s.levels_truth.max(1) as f64;
    s.cases_all_labels_correct_pct = 100.0 * cases_ok as f64 / runs.len().max(1) as f64;
    s
}

/// Development aid: with `SPINETRIAGE_BENCH_KEEP=DIR`, a bench's generated study is moved to
/// `DIR/name` for inspection instead of being deleted.
pub(crate) fn keep_or_remove(dir: &Path, name: &str) {
    match std::env::var_os("SPINETRIAGE_BENCH_KEEP") {
        Some(keep) => {
            let _ = std::fs::create_dir_all(Path::new(&keep));
            let _ = std::fs::rename(dir, Path::new(&keep).join(name));
        }
        None => {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The command.
pub fn bench(
    cases: Option<Vec<String>>,
    repeats: usize,
    seed: u64,
    only: Option<usize>,
    json_out: Option<&Path>,
    verbose: bool,
) -> Result<Summary> {
    let names: Vec<&str> = match &cases {
        Some(c) => c.iter().map(String::as_str).collect(),
        None => CASES.to_vec(),
    };
    let tmp = tempfile::tempdir()?;
    let mut runs = Vec::new();
    for (i, (v, cfg)) in variants(&names, repeats, seed).into_iter().enumerate() {
        if only.is_some_and(|k| k != i) {
            continue;
        }
        let dir = tmp.path().join(format!("run{i}"));
        let t = std::time::Instant::now();
        let r = run_one(&cfg, &dir, verbose).map_err(|e| e.to_string());
        keep_or_remove(&dir, &format!("run{i}"));
        if verbose {
            match &r {
                Ok((levels, all)) => {
                    let mae: Vec<String> = levels
                        .iter()
                        .map(|l| {
                            let mut why = if l.status == "measured" {
                                String::new()
                            } else {
                                format!(" ({})", l.status)
                            };
                            if l.found_level.as_deref() != Some(l.truth_level.as_str()) {
                                why += &format!(" [labelled {:?}]", l.found_level);
                            }
                            format!(
                                "{}:{:+.1}/{:+.1}/{:+.1} g{}→{:?}{why}",
                                l.truth_level,
                                l.height_errors_mm[0],
                                l.height_errors_mm[1],
                                l.height_errors_mm[2],
                                l.genant_truth,
                                l.genant_found
                            )
                        })
                        .collect();
                    eprintln!(
                        "{:<26} {:<5} px {:.2} sl {:.1} rot {:>5.1?} labels {} ({:.1} s)\n    {}",
                        v.case,
                        v.modality,
                        v.pixel_mm,
                        v.slice_mm,
                        v.rotation_deg,
                        if *all { "ok" } else { "WRONG" },
                        t.elapsed().as_secs_f64(),
                        mae.join(" ")
                    );
                }
                Err(e) => eprintln!("{:<26} {:<5} error: {e}", v.case, v.modality),
            }
        }
        runs.push((v, r));
    }
    let summary = summarise(&runs);
    if let Some(p) = json_out {
        #[derive(Serialize)]
        struct Doc<'a> {
            summary: &'a Summary,
            runs: Vec<serde_json::Value>,
        }
        let doc = Doc {
            summary: &summary,
            runs: runs
                .iter()
                .map(|(v, r)| match r {
                    Ok((l, all)) => {
                        serde_json::json!({"variant": v, "levels": l, "labels_correct": all})
                    }
                    Err(e) => serde_json::json!({"variant": v, "error": e}),
                })
                .collect(),
        };
        std::fs::write(p, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(summary)
}
