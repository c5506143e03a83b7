//! Development tool: marrow findings of phantom cases against their truth, level by level.
//! `cargo run --release -p spinetriage-marrow --example eval_marrow -- [CASE...]`
//! Env: SEED, SNR, BIAS (per cent), MR_ONLY=1, CT_ONLY=1, V=1 (print evidence).
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_marrow::analyze_marrow;
use spinetriage_measure::analyze_volumes;
use spinetriage_volume::assemble;

fn env<T: std::str::FromStr>(k: &str) -> Option<T> {
    std::env::var(k).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let mut cases: Vec<String> = std::env::args().skip(1).collect();
    if cases.is_empty() {
        cases = spinetriage_phantom::CASES
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let seed: u64 = env("SEED").unwrap_or(1);
    let mut tally = std::collections::BTreeMap::<&str, [usize; 4]>::new(); // tp fp fn tn
    for case in &cases {
        let mut cfg = spinetriage_phantom::case(case, seed).expect("case");
        if let Some(s) = env::<f64>("SNR") {
            cfg.mr.snr = s;
        }
        if let Some(b) = env::<f64>("BIAS") {
            cfg.mr.bias_pct = b;
        }
        if std::env::var("MR_ONLY").is_ok() {
            cfg.series = spinetriage_phantom::SeriesSet::mr(true, true, true);
        }
        if std::env::var("CT_ONLY").is_ok() {
            cfg.series = spinetriage_phantom::SeriesSet::ct_only();
        }
        let dir = std::env::temp_dir().join(format!("st-marrow-{case}-{seed}"));
        let _ = std::fs::remove_dir_all(&dir);
        let truth = spinetriage_phantom::generate(&cfg, &dir).expect("generate");
        let inv = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
        let vols: Vec<_> = inv.studies[0]
            .series
            .iter()
            .flat_map(|s| assemble(s, &Limits::default()).expect("assemble"))
            .collect();
        let m = analyze_volumes(&vols, None)
            .expect("segment")
            .expect("shape");
        let t0 = std::time::Instant::now();
        let r = analyze_marrow(&vols, &m);
        println!(
            "== {case} (marrow {:.0} ms)",
            t0.elapsed().as_secs_f64() * 1e3
        );
        for (l, s) in m.levels.iter().zip(&r.levels) {
            let c = l.measurement.center_lps_mm;
            let Some(t) = truth.levels.iter().min_by(|a, b| {
                let d = |x: &[f64; 3]| (0..3).map(|k| (x[k] - c[k]).powi(2)).sum::<f64>();
                d(&a.centre_lps_mm).total_cmp(&d(&b.centre_lps_mm))
            }) else {
                continue;
            };
            let tv = serde_json::to_value(t).unwrap();
            let truth_of = |k: &str| tv[k] != "none" && tv[k] != false;
            let rows = [
                ("oedema", truth_of("oedema"), s.edema),
                (
                    "replacement",
                    truth_of("tumour") && tv["tumour"] != "sclerotic"
                        || tv["tumour"] == "sclerotic",
                    s.marrow_replacement,
                ),
                (
                    "posterior",
                    truth_of("posterior_involvement"),
                    s.posterior.present,
                ),
                ("cleft", tv["cleft"] == true, s.cleft),
            ];
            let mut line = format!(
                "  {:<4} truth {:<4}",
                l.level.clone().unwrap_or("?".into()),
                t.name
            );
            for (k, want, got) in rows {
                let e = tally.entry(k).or_default();
                match (want, got) {
                    (true, Some(true)) => e[0] += 1,
                    (false, Some(true)) => e[1] += 1,
                    (true, _) => e[2] += 1,
                    (false, _) => e[3] += 1,
                }
                let mark = match (want, got) {
                    (true, Some(true)) | (false, Some(false)) => "",
                    (_, None) => "?",
                    _ => "✗",
                };
                line += &format!(
                    " {k}={}{mark}",
                    match got {
                        Some(true) => "Y",
                        Some(false) => "n",
                        None => "-",
                    }
                );
            }
            line += &format!(
                " stir {} t1 {} disc {} ext {} bulge {} ped {:?}/{:?}",
                f(s.stir_ratio),
                f(s.t1_ratio),
                f(s.t1_disc_ratio),
                f(s.edema_extent_pct),
                f(s.posterior_bulge_mm),
                s.posterior
                    .stir_ratio
                    .map(|x| x.map(|v| (v * 100.0).round() / 100.0)),
                s.posterior
                    .t1_ratio
                    .map(|x| x.map(|v| (v * 100.0).round() / 100.0)),
            );
            println!("{line}");
            if std::env::var("V").is_ok() {
                for e in &s.evidence {
                    println!("      {e}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    for (k, [tp, fp, fn_, tn]) in tally {
        println!(
            "{k:<12} sensitivity {}/{} specificity {}/{}",
            tp,
            tp + fn_,
            tn,
            tn + fp
        );
    }
}

fn f(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{v:.2}"))
}
