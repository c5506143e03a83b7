//! The bodies of the fuzz targets, as library functions: `fuzz/` wraps each in libFuzzer
//! (nightly, `cargo fuzz run`), and `tests/fuzz_smoke.rs` drives them on stable Rust with
//! mutated corpus files for a bounded time, so that CI fuzzes on every run.
//!
//! Each function must never panic, abort or allocate beyond the limits, whatever the bytes.

#![deny(missing_docs)]

use spinetriage_dicom::{
    classify, discover, open_object_bytes, read_header_bytes, DiscoverOptions, FrameGeometry,
    InstanceHeader, Limits, Rescale, Series,
};
use spinetriage_volume::{assemble, pixels_from_object, plan};

/// Header parsing and pixel decoding of one file held in memory.
pub fn header(data: &[u8]) {
    let mut limits = Limits::default();
    // Keep single inputs small so the fuzzer explores structure, not huge buffers.
    limits.max_voxels = 1 << 22;
    let name = std::path::Path::new("fuzz.dcm");
    let _ = read_header_bytes(data, name, &limits);
    if let Ok(Some(obj)) = open_object_bytes(data, name, &limits, false) {
        let _ = pixels_from_object(&obj, name, &limits);
    }
}

fn f64_at(d: &[u8], i: usize) -> f64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = *d.get(i * 8 + k).unwrap_or(&0);
    }
    f64::from_le_bytes(b)
}

/// Series planning from arbitrary slice geometry (positions, orientations, spacings, sizes taken
/// from the input, NaN and infinities included): never plans a volume beyond the limits.
pub fn assemble_plan(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let n = usize::from(data[0] % 24) + 1;
    let rows = u32::from(data[1] % 16) + 1;
    let cols = u32::from(data[2] % 16) + 1;
    let body = &data[3..];
    let template = |k: usize| -> InstanceHeader {
        let g = |j: usize| f64_at(body, k * 11 + j);
        // Mostly sane values perturbed by the input, plus raw input when the selector says so.
        let raw = body.get(k).is_some_and(|b| b & 1 == 1);
        let pick = |j: usize, sane: f64| if raw { g(j) } else { sane + (g(j) % 3.0) };
        InstanceHeader {
            path: format!("slice{k}.dcm").into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: format!("2.25.{k}"),
            study_uid: "2.25.1".into(),
            series_uid: "2.25.2".into(),
            synthesized: vec![],
            frame_of_reference_uid: None,
            modality: "CT".into(),
            series_description: None,
            series_number: Some(1),
            instance_number: Some(k as i64),
            study_date: None,
            image_type: vec![],
            rows,
            columns: cols,
            frames: 1,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 16,
            pixel_representation: 0,
            photometric: Some("MONOCHROME2".into()),
            has_image: true,
            frames_geometry: vec![FrameGeometry {
                position_lps_mm: Some([pick(0, 0.0), pick(1, 0.0), pick(2, k as f64 * 2.0)]),
                orientation: Some([
                    pick(3, 1.0),
                    pick(4, 0.0),
                    pick(5, 0.0),
                    pick(6, 0.0),
                    pick(7, 1.0),
                    pick(8, 0.0),
                ]),
                pixel_spacing_mm: Some([pick(9, 1.0), pick(10, 1.0)]),
                slice_thickness_mm: Some(2.0),
                rescale: Rescale::default(),
            }],
            spacing_between_slices_mm: None,
            gantry_tilt_deg: None,
            mr: None,
        }
    };
    let instances: Vec<InstanceHeader> = (0..n).map(template).collect();
    let series = Series {
        uid: "2.25.2".into(),
        modality: "CT".into(),
        description: None,
        number: Some(1),
        classification: classify(&instances[0]),
        instances,
    };
    let mut limits = Limits::default();
    limits.max_voxels = 1 << 20;
    if let Ok(plans) = plan(&series, &limits) {
        for p in plans {
            let [i, j, k] = p.grid.dims;
            assert!((i * j * k) as u64 <= limits.max_voxels);
        }
    }
}

/// Ingest end to end: the input is split into up to three files (each a little-endian u32 length
/// then its bytes) in a fresh folder under `scratch`, then discovered and assembled as a user's
/// folder would be.
pub fn analyze_files(data: &[u8], scratch: &std::path::Path) {
    let dir = scratch.join(format!("spinetriage-fuzz-{}", std::process::id()));
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
        let n =
            (u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let _ = std::fs::write(dir.join(format!("f{i}.dcm")), &rest[4..4 + n]);
        rest = &rest[4 + n..];
    }
    let mut limits = Limits::default();
    limits.max_voxels = 1 << 22;
    let inv = discover(
        std::slice::from_ref(&dir),
        &DiscoverOptions::with_limits(limits),
    );
    for st in &inv.studies {
        for s in &st.series {
            let _ = assemble(s, &limits);
        }
    }
}
