//! Development tool: segment a phantom study and compare body centroids with the truth.
//! `cargo run --release -p spinetriage-segment --example eval_phantom -- CASE [SEED]`
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_segment::segment_volume;
use spinetriage_volume::{assemble, LpsPoint};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("normal");
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let cfg = spinetriage_phantom::case(case, seed).expect("case");
    let dir = std::env::temp_dir().join(format!("st-eval-{case}-{seed}"));
    let truth = spinetriage_phantom::generate(&cfg, &dir).expect("generate");
    let inv = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
    for series in &inv.studies[0].series {
        for vol in assemble(series, &Limits::default()).expect("assemble") {
            let t = std::time::Instant::now();
            let seg = segment_volume(&vol, None);
            let el = t.elapsed().as_secs_f64() * 1e3;
            let Ok(seg) = seg else {
                println!("{:?}: {:?}", series.classification.kind, seg.err());
                continue;
            };
            println!(
                "{:?} {:.0} ms: {} bodies, {} candidates",
                series.classification.kind,
                el,
                seg.bodies.len(),
                seg.candidates
            );
            for b in &seg.bodies {
                let (lvl, d) = truth
                    .levels
                    .iter()
                    .map(|l| {
                        (
                            l.name.clone(),
                            b.centroid_lps.distance_mm(&LpsPoint::new(
                                l.centre_lps_mm[0],
                                l.centre_lps_mm[1],
                                l.centre_lps_mm[2],
                            )),
                        )
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                let tv = truth
                    .levels
                    .iter()
                    .find(|l| l.name == lvl)
                    .map(|l| l.body_volume_mm3)
                    .unwrap_or(0.0);
                println!("   {lvl:>4} centroid err {d:5.2} mm  vol {:7.0} truth {:7.0} at {:.1?} stab {} planes {} band {:?}", b.volume_mm3, tv, b.centroid_lps.0, b.candidate.stability, b.candidate.sections.len(), b.candidate.sections[0].band);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
