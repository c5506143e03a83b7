//! Benchmark fixtures: phantom studies generated once into `target/bench-data/` and reused.
#![deny(missing_docs)]

use std::path::PathBuf;

/// A CT-only phantom of `matrix`² × `slices` (0.5 mm pixels, 1 mm slices), generated if absent.
/// Returns the series folder.
pub fn ct_series(matrix: usize, slices: usize) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let name = format!("ct-{matrix}x{matrix}x{slices}");
    let dir = root.join(&name).join("dicom/02_ct");
    if dir.is_dir() && std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == slices {
        return dir;
    }
    let mut cfg = spinetriage_phantom::case("normal", 1).expect("built-in case");
    cfg.name = name;
    cfg.series = spinetriage_phantom::SeriesSet::ct_only();
    cfg.ct.matrix = matrix;
    cfg.ct.pixel_mm = 0.5;
    cfg.ct.slice_mm = 1.0;
    cfg.ct.slices = slices;
    spinetriage_phantom::generate(&cfg, &root).expect("phantom generation");
    dir
}

/// A sagittal MR T1 phantom of 15 slices (defaults otherwise), generated if absent. Returns the
/// series folder.
pub fn mr_t1_series() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let name = "mr-t1-15".to_string();
    let dir = root.join(&name).join("dicom/04_t1");
    if dir.is_dir() && std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 15 {
        return dir;
    }
    let mut cfg = spinetriage_phantom::case("acute-wedge-l1", 1).expect("built-in case");
    cfg.name = name;
    cfg.series = spinetriage_phantom::SeriesSet::mr(false, true, false);
    cfg.mr.slices = 15;
    spinetriage_phantom::generate(&cfg, &root).expect("phantom generation");
    dir
}
