//! Development tool: segment and measure every series of a phantom study against the truth.
//! `cargo run --release -p spinetriage-measure --example eval_phantom -- CASE [SEED] [ct|mr]`
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_measure::{measure_bodies, Status};
use spinetriage_segment::segment_volume;
use spinetriage_volume::{assemble, LpsPoint};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("normal");
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut cfg = spinetriage_phantom::case(case, seed)
        .or_else(|| spinetriage_phantom::case("normal", seed))
        .expect("case");
    match args.get(3).map(String::as_str) {
        Some("ct") => cfg.series = spinetriage_phantom::SeriesSet::ct_only(),
        Some("mr") => cfg.series = spinetriage_phantom::SeriesSet::mr(true, true, true),
        _ => {}
    }
    // An existing phantom folder (holding truth.json) is read instead of generating one.
    let existing = std::path::Path::new(case).join("truth.json");
    let (dir, truth) = if existing.exists() {
        let t: spinetriage_phantom::Truth =
            serde_json::from_slice(&std::fs::read(&existing).expect("truth")).expect("truth.json");
        (std::path::PathBuf::from(case), t)
    } else {
        let dir = std::env::temp_dir().join(format!("st-evalm-{case}-{seed}"));
        let t = spinetriage_phantom::generate(&cfg, &dir).expect("generate");
        (dir, t)
    };
    let inv = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
    for series in &inv.studies[0].series {
        for vol in assemble(series, &Limits::default()).expect("assemble") {
            let t = std::time::Instant::now();
            let Ok(seg) = segment_volume(&vol, None) else {
                println!("{:?}: no column", vol.kind);
                continue;
            };
            let t_seg = t.elapsed().as_secs_f64() * 1e3;
            let ms = measure_bodies(&vol, &seg);
            let t_all = t.elapsed().as_secs_f64() * 1e3;
            println!(
                "{:?}: {} bodies, seg {t_seg:.0} ms, total {t_all:.0} ms; {:?}",
                vol.kind,
                seg.bodies.len(),
                seg.labelling
            );
            for (b, m) in seg.bodies.iter().zip(&ms) {
                if std::env::var("ST_MARROW").is_ok() {
                    println!("    marrow {:?}", b.marrow);
                }
                let (t, d) = truth
                    .levels
                    .iter()
                    .map(|l| {
                        let c = l.centre_lps_mm;
                        (
                            l,
                            b.centroid_lps.distance_mm(&LpsPoint::new(c[0], c[1], c[2])),
                        )
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .expect("truth levels");
                let f = |h: Option<spinetriage_measure::Height>, w: f64| {
                    h.map(|h| format!("{:+5.2}", h.height_mm - w))
                        .unwrap_or_else(|| "  -  ".into())
                };
                let st = match &m.status {
                    Status::Measured => "ok".to_string(),
                    Status::NotEvaluable(w) => w.clone(),
                };
                println!(
                    "  {:>4} as {:>4} c {:4.1} | A {} M {} P {} L {} R {} | depth {:+.1} width {:+.1} retro {:.1}/{:.1} | {st}",
                    t.name,
                    b.label.clone().unwrap_or_else(|| "?".into()),
                    d,
                    f(m.anterior, t.heights.anterior_mm),
                    f(m.middle, t.heights.middle_mm),
                    f(m.posterior, t.heights.posterior_mm),
                    f(m.left, t.heights.left_mm),
                    f(m.right, t.heights.right_mm),
                    m.depth_mm.unwrap_or(f64::NAN) - t.depth_mm,
                    m.width_mm.unwrap_or(f64::NAN) - t.width_mm,
                    m.retropulsion_mm.unwrap_or(f64::NAN),
                    t.retropulsion_mm,
                );
            }
        }
    }
    if !existing.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
