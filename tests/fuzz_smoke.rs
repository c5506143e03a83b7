//! Fuzz smoke run on stable Rust, inside `cargo test` so that CI fuzzes on every run (≤ 2 min):
//! each cargo-fuzz target's harness (`spinetriage-fuzzing`) is fed its seeds (and the grown corpus
//! when present), mutated by a
//! seeded PRNG (byte flips, truncation, insertion, splicing), for `SPINETRIAGE_FUZZ_SECS`
//! seconds per target (default 20), one target after another (the allocation counter is
//! process-wide). No input may panic out of a harness or allocate 256 MB at
//! once; a failing input is written to `target/fuzz-smoke/` with its seed for `fuzz/regressions/`.
//! The long runs (≥ 10 min per target) use libFuzzer: `cargo +nightly fuzz run <target>`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use spinetriage_tests::workspace_root;

#[global_allocator]
static ALLOC: spinetriage_tests::CountingAlloc = spinetriage_tests::CountingAlloc;
use spinetriage_tests::LARGEST_ALLOC as LARGEST;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = Vec::new();
    // The committed seeds and regressions; the grown corpus too when present (it is not
    // committed, so a fresh clone fuzzes from the seeds).
    for dir in [
        format!("fuzz/seeds/{target}"),
        format!("fuzz/corpus/{target}"),
        "fuzz/regressions".into(),
    ] {
        if let Ok(rd) = std::fs::read_dir(workspace_root().join(dir)) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    // Small inputs keep the run fast; the corpus holds thousands of them.
    let mut v: Vec<Vec<u8>> = files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|d| d.len() <= 64 << 10)
        .collect();
    if v.is_empty() {
        v.push(b"DICM".to_vec());
    }
    v
}

fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut d = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(8) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0x00, 0xff, 0x7f, 0x80, 0xfe][rng.below(5)];
            }
            2 => d.truncate(rng.below(d.len() + 1)),
            3 => {
                let i = rng.below(d.len() + 1);
                let n = 1 + rng.below(16);
                let fill: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(i..i, fill);
            }
            4 => {
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a);
                    let i = rng.below(d.len() + 1);
                    d.splice(i..i, other[a..b].iter().copied());
                }
            }
            _ if d.len() >= 4 => {
                // A length field: four bytes set to a large little-endian value.
                let i = rng.below(d.len() - 3);
                d[i..i + 4].copy_from_slice(&(0xffff_fff0u32 - rng.below(64) as u32).to_le_bytes());
            }
            _ => {}
        }
    }
    d
}

fn smoke(target: &str, harness: &dyn Fn(&[u8], &Path)) {
    let secs: u64 = std::env::var("SPINETRIAGE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("SPINETRIAGE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let pool = corpus(target);
    let scratch = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let mut runs = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        let input = mutate(&mut rng, &pool);
        LARGEST.store(0, Ordering::Relaxed);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harness(&input, scratch.path())
        }))
        .is_ok();
        let largest = LARGEST.load(Ordering::Relaxed);
        if !ok || largest >= 256 << 20 {
            let out = workspace_root().join("target/fuzz-smoke");
            std::fs::create_dir_all(&out).unwrap();
            let p = out.join(format!("{target}-seed{seed}-run{runs}.bin"));
            std::fs::write(&p, &input).unwrap();
            panic!(
                "{target}: {} on input {} (seed {seed}, run {runs})",
                if ok {
                    format!("allocated {largest} bytes at once")
                } else {
                    "panic".into()
                },
                p.display()
            );
        }
        runs += 1;
    }
    eprintln!("{target}: {runs} mutated inputs in {secs} s, seed {seed}");
    assert!(runs > 0);
}

/// `SPINETRIAGE_FUZZ_REPLAY=DIR`: every file of DIR (for example libFuzzer's artifacts) through
/// the header harness, with the same checks, instead of the mutation run.
fn replay(dir: &Path) {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let input = std::fs::read(e.path()).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let ok = std::panic::catch_unwind(|| spinetriage_fuzzing::header(&input)).is_ok();
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            ok && largest < 256 << 20,
            "{}: ok {ok}, largest allocation {largest}",
            e.path().display()
        );
        n += 1;
    }
    eprintln!("replayed {n} inputs from {}", dir.display());
}

#[test]
fn fuzz_smoke_every_target() {
    if let Ok(dir) = std::env::var("SPINETRIAGE_FUZZ_REPLAY") {
        return replay(Path::new(&dir));
    }
    smoke("header", &|d, _| spinetriage_fuzzing::header(d));
    smoke("assemble", &|d, _| spinetriage_fuzzing::assemble_plan(d));
    smoke("analyze_files", &|d, s| {
        spinetriage_fuzzing::analyze_files(d, s)
    });
}
