//! Series planning from arbitrary slice geometry (`spinetriage_fuzzing::assemble_plan`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spinetriage_fuzzing::assemble_plan(data));
