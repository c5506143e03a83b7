//! Loading a 512×512×300 CT series (157 MB of 16-bit pixels) from the page cache:
//! discovery (headers only) and assembly into an f32 HU volume.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_volume::assemble;

fn load_ct(c: &mut Criterion) {
    let dir = spinetriage_benches::ct_series(512, 300);
    let bytes = 512u64 * 512 * 300 * 2;
    let opts = DiscoverOptions::default();
    // Warm the page cache so the figure is decoding, not disk.
    let _ = discover(std::slice::from_ref(&dir), &opts);
    let mut g = c.benchmark_group("ct_512x512x300");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("discover_headers", |b| {
        b.iter(|| discover(std::slice::from_ref(&dir), &opts))
    });
    let inv = discover(std::slice::from_ref(&dir), &opts);
    let series = inv.studies[0].series[0].clone();
    g.bench_function("assemble_volume", |b| {
        b.iter(|| assemble(&series, &Limits::default()).expect("assembles"))
    });
    g.bench_function("discover_and_assemble", |b| {
        b.iter(|| {
            let inv = discover(std::slice::from_ref(&dir), &opts);
            assemble(&inv.studies[0].series[0], &Limits::default()).expect("assembles")
        })
    });
    g.finish();
}

criterion_group!(benches, load_ct);
criterion_main!(benches);
