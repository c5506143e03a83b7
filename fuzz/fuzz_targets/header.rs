//! Header parsing and pixel decoding of one file held in memory (`spinetriage_fuzzing::header`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spinetriage_fuzzing::header(data));
