//! Segmentation plus morphometry (issue 3, item 8): a 512×512×300 CT and a 15-slice sagittal
//! MR T1, from an assembled volume to derived per-level measurements. Targets: 0.5 s and 0.2 s on
//! 2 cores.

use criterion::{criterion_group, criterion_main, Criterion};
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_measure::analyze_volumes;
use spinetriage_volume::{assemble, Volume};

fn volumes(dir: std::path::PathBuf) -> Vec<Volume> {
    let inv = discover(&[dir], &DiscoverOptions::default());
    assemble(&inv.studies[0].series[0], &Limits::default()).expect("assemble")
}

fn morphometry(c: &mut Criterion) {
    let ct = volumes(spinetriage_benches::ct_series(512, 300));
    let mr = volumes(spinetriage_benches::mr_t1_series());
    let mut g = c.benchmark_group("segment_and_measure");
    g.sample_size(10);
    g.bench_function("ct_512x512x300", |b| {
        b.iter(|| analyze_volumes(&ct, None).expect("analysis"))
    });
    g.bench_function("mr_t1_15_slices", |b| {
        b.iter(|| analyze_volumes(&mr, None).expect("analysis"))
    });
    g.finish();
}

criterion_group!(benches, morphometry);
criterion_main!(benches);
