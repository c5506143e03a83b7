//! Ingest end to end on mutated phantom slices (`spinetriage_fuzzing::analyze_files`; seed corpus:
//! `fuzz/seeds/`, phantom files).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spinetriage_fuzzing::analyze_files(data, &std::env::temp_dir()));
