//! Helpers shared by the workspace integration tests.
#![deny(missing_docs)]

use std::path::PathBuf;

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// `../shared/data/<folder>` if present. When absent, tests skip with a message, unless
/// `SPINETRIAGE_REQUIRE_SHARED_DATA=1` (set by CI), where absence is a failure.
pub fn shared_data(folder: &str) -> Option<PathBuf> {
    let p = workspace_root().join("../shared/data").join(folder);
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("SPINETRIAGE_REQUIRE_SHARED_DATA").as_deref() == Ok("1") {
        panic!(
            "shared data folder {} is missing and SPINETRIAGE_REQUIRE_SHARED_DATA=1",
            p.display()
        );
    }
    eprintln!("skipping: shared data folder {} not found", p.display());
    None
}

/// The sagittal T2 exams of `../shared/data/real-mr-t2-lumbar-masks` (`*_t2.nii.gz`, sorted; each
/// has its `*_bodies.nii.gz` expert mask beside it), or `None` as [`shared_data`] says.
pub fn real_t2_exams() -> Option<Vec<PathBuf>> {
    let dir = shared_data("real-mr-t2-lumbar-masks")?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_t2.nii.gz"))
        .collect();
    files.sort();
    Some(files)
}

/// A small CT-only phantom study (`matrix`² × `slices`, coarse voxels) written under `root`;
/// returns its series folder.
pub fn small_ct_phantom(
    root: &std::path::Path,
    seed: u64,
    matrix: usize,
    pixel_mm: f64,
    slice_mm: f64,
    slices: usize,
) -> PathBuf {
    let mut cfg = spinetriage_phantom::case("normal", seed).expect("built-in case");
    cfg.series = spinetriage_phantom::SeriesSet::ct_only();
    cfg.ct.matrix = matrix;
    cfg.ct.pixel_mm = pixel_mm;
    cfg.ct.slice_mm = slice_mm;
    cfg.ct.slices = slices;
    spinetriage_phantom::generate(&cfg, root).expect("phantom generation");
    root.join("normal/dicom/02_ct")
}

/// Every regular file below `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// The text of the seed document `../shared/seeds/<prefix>_*.txt`, under the same skip/require
/// rule as [`shared_data`].
pub fn shared_seed(prefix: &str) -> Option<String> {
    let dir = workspace_root().join("../shared/seeds");
    let found = std::fs::read_dir(&dir).ok().and_then(|rd| {
        rd.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{prefix}_")) && n.ends_with(".txt"))
        })
    });
    match found {
        Some(p) => Some(std::fs::read_to_string(&p).expect("seed is readable text")),
        None if std::env::var("SPINETRIAGE_REQUIRE_SHARED_DATA").as_deref() == Ok("1") => {
            panic!(
                "seed {prefix}_* missing in {} and SPINETRIAGE_REQUIRE_SHARED_DATA=1",
                dir.display()
            )
        }
        None => {
            eprintln!("skipping: seed {prefix}_* not found in {}", dir.display());
            None
        }
    }
}

/// A global allocator for test binaries that records the largest single request, so that a test
/// can assert that no input makes the code allocate beyond a bound. Declare it in the test with
/// `#[global_allocator] static A: spinetriage_tests::CountingAlloc = spinetriage_tests::CountingAlloc;`
/// and read [`LARGEST_ALLOC`].
pub struct CountingAlloc;

/// The largest single allocation seen by [`CountingAlloc`] since it was last reset.
pub static LARGEST_ALLOC: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only records the largest single request.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(l.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(l.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(p, l, new) }
    }
}
