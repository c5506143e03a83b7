//! The file path of ingest end to end on mutated phantom slices (seed corpus: `fuzz/seeds/`, phantom
//! files): the input is split into up to three files written to a temporary folder, then discovered
//! and assembled as a user's folder would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_volume::assemble;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("spinetriage-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    // Framing: each file is a little-endian u32 length followed by its bytes (clamped to the input).
    let mut rest = data;
    for i in 0..3 {
        if rest.len() < 4 {
            break;
        }
        let n = (u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let _ = std::fs::write(dir.join(format!("f{i}.dcm")), &rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
    let mut limits = Limits::default();
    limits.max_voxels = 1 << 22;
    let inv = discover(&[dir.clone()], &DiscoverOptions::with_limits(limits));
    for st in &inv.studies {
        for s in &st.series {
            let _ = assemble(s, &limits);
        }
    }
});
