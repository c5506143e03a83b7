//! `spinetriage bench-marrow`: marrow findings against phantom truth, level by level, with bias
//! fields up to ±20 % and Rician noise at SNR 10–30 (the marrow issue's accuracy item).

use anyhow::{Context, Result};
use serde::Serialize;
use spinetriage_marrow::analyze_marrow;
use spinetriage_measure::analyze_volumes;
use spinetriage_phantom::{SeriesSet, CASES};
use std::collections::BTreeMap;

/// Counts of one finding.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Found where present.
    pub true_positive: usize,
    /// Found where absent.
    pub false_positive: usize,
    /// Missed (or unknown) where present.
    pub false_negative: usize,
    /// Not found (or unknown) where absent.
    pub true_negative: usize,
    /// Reported unknown (counted as not found above).
    pub unknown: usize,
    /// Sensitivity, per cent.
    pub sensitivity_pct: f64,
    /// Specificity, per cent.
    pub specificity_pct: f64,
}

/// The bench's result.
#[derive(Debug, Clone, Serialize)]
pub struct MarrowSummary {
    /// Runs.
    pub runs: usize,
    /// Per finding.
    pub findings: BTreeMap<&'static str, Counts>,
    /// Levels whose finding disagreed with the truth: case, seed, truth level, finding.
    pub errors: Vec<String>,
    /// Levels not scored because their body reaches outside the shape series' image (a
    /// sagittal slab too narrow for a rotated or scoliotic spine): the morphometry issue makes
    /// such a level not evaluable, so every finding there is unknown by design.
    pub outside_the_image: Vec<String>,
}

/// Whether a truth level's body (its elliptic section of the true depth and width, and its
/// nominal height) reaches outside the image of `vol`.
fn cut_by_image(t: &spinetriage_phantom::LevelTruth, vol: &spinetriage_volume::Volume) -> bool {
    let v3 = |a: [f64; 3]| nalgebra::Vector3::from(a);
    let (u, v, w) = (v3(t.axis_cranial), v3(t.axis_posterior), v3(t.axis_left));
    let n = &t.nominal_heights;
    let h = n.anterior_mm.max(n.middle_mm).max(n.posterior_mm);
    let c = t.centre_lps_mm;
    let q = vol
        .grid
        .to_index(spinetriage_volume::LpsPoint::new(c[0], c[1], c[2]))
        .0;
    let spacing = vol.grid.spacing_mm();
    (0..3).any(|a| {
        let axis = vol.grid.direction(a);
        let half_mm = ((t.width_mm / 2.0 * w.dot(&axis)).powi(2)
            + (t.depth_mm / 2.0 * v.dot(&axis)).powi(2))
        .sqrt()
            + h / 2.0 * u.dot(&axis).abs();
        let half = half_mm / spacing[a];
        q[a] - half < -0.5 || q[a] + half > vol.grid.dims[a] as f64 - 0.5
    })
}

fn rnd(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs every case `repeats` times, alternating CT + MR and MR-only studies.
pub fn bench(
    cases: Option<Vec<String>>,
    repeats: usize,
    seed: u64,
    verbose: bool,
) -> Result<MarrowSummary> {
    let cases: Vec<String> = cases.unwrap_or_else(|| CASES.iter().map(|s| s.to_string()).collect());
    let mut state = seed;
    let mut findings: BTreeMap<&'static str, Counts> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut outside_the_image = Vec::new();
    let mut runs = 0;
    for r in 0..repeats {
        for (k, case) in cases.iter().enumerate() {
            let s = seed + r as u64;
            let mut cfg = spinetriage_phantom::case(case, s).context("unknown case")?;
            cfg.mr.snr = 10.0 + 20.0 * rnd(&mut state);
            cfg.mr.bias_pct = 40.0 * rnd(&mut state) - 20.0;
            let mr_only = (k + r) % 2 == 1;
            if mr_only {
                cfg.series = SeriesSet::mr(true, true, true);
            }
            let tmp = tempfile::tempdir()?;
            let truth = spinetriage_phantom::generate(&cfg, tmp.path())?;
            let (vols, errs, _) =
                crate::load_all(&[tmp.path().join(&cfg.name)], &crate::Input::default());
            if let Some(e) = errs.first() {
                anyhow::bail!("phantom did not load: {e}");
            }
            let m = analyze_volumes(&vols, None)?.context("no shape series")?;
            let report = analyze_marrow(&vols, &m);
            let run_name = format!("run{runs}");
            crate::accuracy::keep_or_remove(&tmp.path().join(&cfg.name), &run_name);
            runs += 1;
            let tag = format!(
                "{case} seed {s} {} SNR {:.0} bias {:+.0} %",
                if mr_only { "MR" } else { "CT+MR" },
                cfg.mr.snr,
                cfg.mr.bias_pct
            );
            if verbose {
                eprintln!("{run_name} {tag}");
            }
            for (ti, t) in truth.levels.iter().enumerate() {
                // Nothing is judged at the sacrum (its marrow is fattier than the mobile
                // spine's reference, it has no pedicles like theirs): S1 would only count as
                // unknown where the column finds it, and as L5's findings a second time where
                // it does not (the nearest level found).
                if spinetriage_measure::is_sacral(Some(&t.name)) {
                    continue;
                }
                if let Some(shape) = vols.iter().find(|v| v.series_uid == m.shape_series_uid) {
                    if cut_by_image(t, shape) {
                        outside_the_image.push(format!("{tag}: {}", t.name));
                        continue;
                    }
                }
                let c = t.centre_lps_mm;
                // The sac's truth against its neighbours', as the product reports it.
                let sac_neighbours: Vec<f64> = [ti.checked_sub(1), Some(ti + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|j| truth.levels.get(j))
                    .filter(|n| n.epidural_mm == 0.0 && n.retropulsion_mm == 0.0)
                    .map(|n| n.thecal_sac_ap_mm)
                    .collect();
                let sac_compressed = !sac_neighbours.is_empty()
                    && 100.0 * t.thecal_sac_ap_mm
                        / (sac_neighbours.iter().sum::<f64>() / sac_neighbours.len() as f64)
                        <= spinetriage_measure::derive::SAC_COMPRESSION_PCT;
                let Some(i) = (0..m.levels.len()).min_by(|a, b| {
                    let d = |j: usize| {
                        let x = m.levels[j].measurement.center_lps_mm;
                        (0..3).map(|q| (x[q] - c[q]).powi(2)).sum::<f64>()
                    };
                    d(*a).total_cmp(&d(*b))
                }) else {
                    continue;
                };
                let sig = &report.levels[i];
                let tv = serde_json::to_value(t)?;
                let present = |k: &str| tv[k] != "none" && tv[k] != false;
                for (name, want, got) in [
                    ("oedema", present("oedema"), sig.edema),
                    (
                        "marrow_replacement",
                        present("tumour"),
                        sig.marrow_replacement,
                    ),
                    (
                        "posterior_elements",
                        present("posterior_involvement"),
                        sig.posterior.present,
                    ),
                    ("cleft", tv["cleft"] == true, sig.cleft),
                    (
                        "epidural_soft_tissue",
                        t.epidural_mm > 0.0,
                        m.levels[i].derived.epidural_soft_tissue,
                    ),
                    (
                        "thecal_sac_compression",
                        sac_compressed,
                        m.levels[i].derived.thecal_sac_compressed,
                    ),
                    (
                        "cortical_destruction",
                        t.cortical_gap_deg > 0.0,
                        sig.cortical_destruction,
                    ),
                    (
                        "paravertebral_soft_tissue",
                        t.paravertebral_mm > 0.0,
                        sig.paravertebral_soft_tissue,
                    ),
                ] {
                    let e = findings.entry(name).or_default();
                    e.unknown += usize::from(got.is_none());
                    match (want, got == Some(true)) {
                        (true, true) => e.true_positive += 1,
                        (false, true) => e.false_positive += 1,
                        (true, false) => e.false_negative += 1,
                        (false, false) => e.true_negative += 1,
                    }
                    if want != (got == Some(true)) {
                        // The canal findings' numbers, so a miss can be told from a near miss.
                        let d = &m.levels[i].derived;
                        let canal = m.levels[i].measurement.thecal_sac.as_ref();
                        let detail = match name {
                            "thecal_sac_compression" => format!(
                                " (sac {} mm, {} % of neighbours; truth {:.1} mm)",
                                canal.map_or("—".into(), |c| format!("{:.1}", c.ap_mm)),
                                d.thecal_sac_residual_pct
                                    .map_or("—".into(), |p| format!("{p:.0}")),
                                t.thecal_sac_ap_mm
                            ),
                            "epidural_soft_tissue" => format!(
                                " (tissue {} mm; truth {:.1} mm)",
                                d.epidural_thickness_mm
                                    .map_or("—".into(), |x| format!("{x:.1}")),
                                t.epidural_mm
                            ),
                            _ => String::new(),
                        };
                        errors.push(format!(
                            "{tag}: {} {name} truth {want}, found {}{detail}",
                            t.name,
                            got.map_or("unknown".into(), |g| g.to_string())
                        ));
                        if verbose {
                            // The stage's own reasons, so a miss can be diagnosed from the run.
                            eprintln!("  miss: {} {name}", t.name);
                            for e in &sig.evidence {
                                eprintln!("    {e}");
                            }
                        }
                    }
                }
            }
        }
    }
    for c in findings.values_mut() {
        c.sensitivity_pct =
            100.0 * c.true_positive as f64 / (c.true_positive + c.false_negative).max(1) as f64;
        c.specificity_pct =
            100.0 * c.true_negative as f64 / (c.true_negative + c.false_positive).max(1) as f64;
    }
    Ok(MarrowSummary {
        runs,
        findings,
        errors,
        outside_the_image,
    })
}
