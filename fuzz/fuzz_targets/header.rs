//! Header parsing and pixel decoding of one file held in memory: must never panic, abort or allocate
//! beyond the limits, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spinetriage_dicom::{open_object_bytes, read_header_bytes, Limits};
use spinetriage_volume::pixels_from_object;

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    // Keep single inputs small so the fuzzer explores structure, not huge buffers.
    limits.max_voxels = 1 << 22;
    let name = std::path::Path::new("fuzz.dcm");
    let _ = read_header_bytes(data, name, &limits);
    if let Ok(Some(obj)) = open_object_bytes(data, name, &limits, false) {
        let _ = pixels_from_object(&obj, name, &limits);
    }
});
