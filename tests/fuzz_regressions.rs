//! Every input the fuzzers found (`fuzz/regressions/`), replayed: no panic (not even a contained
//! one), and no allocation above
//! 256 MB at any moment (a counting allocator wraps the system one in this test binary).

use std::sync::atomic::Ordering;

use spinetriage_dicom::{open_object_bytes, read_header_bytes, Limits};
use spinetriage_tests::workspace_root;
use spinetriage_volume::pixels_from_object;

#[global_allocator]
static ALLOC: spinetriage_tests::CountingAlloc = spinetriage_tests::CountingAlloc;
use spinetriage_tests::LARGEST_ALLOC as LARGEST;

/// One test, so that the contained panics of the first part cannot trip the strict panic hook of
/// the second (tests in one binary run on parallel threads and share the hook and the counter).
#[test]
fn fuzz_findings_stay_fixed() {
    upstream_decoder_panics_stay_contained();
    // A decoder panic is contained per file in the product, but a finding must not panic at all.
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
        PANICKED.store(true, Ordering::Relaxed);
    }));
    let dir = workspace_root().join("fuzz/regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let limits = Limits::default();
        let _ = read_header_bytes(&data, &p, &limits);
        if let Ok(Some(obj)) = open_object_bytes(&data, &p, &limits, false) {
            let _ = pixels_from_object(&obj, &p, &limits);
        }
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < 256 << 20,
            "{}: allocated {largest} bytes at once",
            p.display()
        );
        n += 1;
    }
    assert!(n >= 1);
}

/// Inputs that panic inside a third-party decoder (`fuzz/regressions/contained/`, e.g. an integer
/// overflow in openjp2 0.6.1's t2.rs with overflow checks on): the panic must stay inside
/// `read_pixels`, which returns an error naming the file, with memory bounded.
fn upstream_decoder_panics_stay_contained() {
    let dir = workspace_root().join("fuzz/regressions/contained");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let limits = Limits::default();
        if let Ok(Some(obj)) = open_object_bytes(&data, &p, &limits, false) {
            let r = pixels_from_object(&obj, &p, &limits);
            if let Err(e) = r {
                assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");
            }
        }
        assert!(
            LARGEST.load(Ordering::Relaxed) < 256 << 20,
            "{}",
            p.display()
        );
    }
}
