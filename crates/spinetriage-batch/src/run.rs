//! `spinetriage batch`: every study under a root, memory-bounded and in parallel, resumable.

use crate::study::{analyze_study, clinical_in, Clinical, StudyResult};
use crate::summary::{self, Summary, SummaryRow, SUMMARY_VERSION};
use crate::{study_dir_name, BatchError, Shard};
use spinetriage_criteria::{ClinicalFacts, Rules};
use spinetriage_dicom::{
    discover, index, DiscoverOptions, InstanceHeader, Limits, Study, StudyFiles,
};
use spinetriage_segment::Anchor;
use spinetriage_volume::assemble;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Peak resident memory of one study relative to its volumes' bytes as stored, measured on
/// phantom studies (`docs/performance.md`): the f32 coarse copy, blocks and masks and the
/// process itself on top of the volumes. 1.5 while every volume was f32; 2.5 since integer
/// series are stored in 16 bits (91 MB peak for 37 MB of volumes, `--jobs 1`). Since session 22 a
/// study of that batch peaks at 1.9× (69 MiB, `--jobs 1` and `2`), but the factor stays: the
/// estimate must hold for studies unlike the phantoms as well.
pub const PEAK_FACTOR: f64 = 2.5;

/// Name of the completion marker, written after every other output of a study.
pub const DONE_MARKER: &str = "done.json";

/// Options of a batch run.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Output root.
    pub out: PathBuf,
    /// Folder of per-study clinical facts: `<StudyInstanceUID>.toml|json` or
    /// `<study_dir>.toml|json`.
    pub clinical_dir: Option<PathBuf>,
    /// Worker threads (studies and the work inside them share them).
    pub jobs: usize,
    /// Only this shard of the studies.
    pub shard: Option<Shard>,
    /// Reprocess studies that are already complete.
    pub force: bool,
    /// Header and allocation caps.
    pub limits: Limits,
    /// Memory budget, bytes; `None`: twice the largest study's volumes.
    pub memory_budget: Option<u64>,
    /// Label anchor for every study.
    pub anchor: Option<Anchor>,
    /// Also write segmentation label maps.
    pub masks: bool,
    /// Copy the patient's name, ID and birth date into the reports (off by default).
    pub include_phi: bool,
}

/// Told about the batch as it runs (a progress bar, log lines, nothing).
pub trait Progress: Sync {
    /// The batch has `total` studies to look at, `skipped` of them already complete.
    fn start(&self, total: usize, skipped: usize);
    /// A study finished (or failed).
    fn done(&self, row: &SummaryRow);
}

/// What a batch run produced.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The summary written.
    pub summary: Summary,
    /// Studies skipped because complete.
    pub skipped: usize,
    /// Files written for the summary.
    pub summary_files: Vec<PathBuf>,
}

impl BatchOutcome {
    /// Whether any study was not fully analysed, or any file could not be read.
    pub fn any_failed(&self) -> bool {
        self.summary.rows.iter().any(|r| r.status != "ok")
            || !self.summary.unreadable_files.is_empty()
    }
}

/// Bytes of volume an instance will take once assembled, from its header alone (a study's
/// estimate is the sum over its instances).
pub fn instance_bytes(h: &InstanceHeader) -> u64 {
    u64::from(h.rows)
        * u64::from(h.columns)
        * u64::from(h.frames.max(1))
        * spinetriage_volume::stored_bytes_per_voxel(h)
}

/// A study is complete when its marker and every report file exist.
pub fn is_complete(dir: &Path) -> bool {
    dir.join(DONE_MARKER).is_file()
        && spinetriage_report::OUTPUT_FILES
            .iter()
            .all(|f| dir.join(f).is_file())
}

/// Admission control: a study starts when its estimated bytes fit next to those in flight (an
/// oversized study runs alone), and at most `jobs` studies run at once.
struct Budget {
    limit: u64,
    jobs: usize,
    state: Mutex<(u64, usize)>,
    cv: Condvar,
}

impl Budget {
    fn acquire(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.1 > 0 && (s.1 >= self.jobs || s.0 + bytes > self.limit) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.0 += bytes;
        s.1 += 1;
    }

    fn release(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_sub(bytes);
        s.1 = s.1.saturating_sub(1);
        self.cv.notify_all();
    }
}

fn clinical_for(
    st: &Study,
    dir_name: &str,
    opts: &BatchOptions,
) -> Result<Option<Clinical>, String> {
    if let Some(d) = &opts.clinical_dir {
        for stem in [st.uid.as_str(), dir_name] {
            for ext in ["toml", "json"] {
                let p = d.join(format!("{stem}.{ext}"));
                if p.is_file() {
                    return ClinicalFacts::read(&p)
                        .map(|f| Some((f, p.display().to_string())))
                        .map_err(|e| e.to_string());
                }
            }
        }
    }
    // Otherwise a facts file in the study's own folder (the common parent of its files).
    let mut paths = st
        .series
        .iter()
        .flat_map(|s| s.instances.iter().map(|h| h.path.as_path()));
    let Some(first) = paths.next() else {
        return Ok(None);
    };
    let mut common = first.parent().map(Path::to_path_buf).unwrap_or_default();
    for p in paths {
        while !p.starts_with(&common) {
            if !common.pop() {
                return Ok(None);
            }
        }
    }
    clinical_in(&common).map_err(|e| e.to_string())
}

/// Reads the study's headers again (the index kept only paths), then analyses it; files that
/// could not be read this time are added to `unreadable`.
fn process(
    sf: &StudyFiles,
    dir: &Path,
    dir_name: &str,
    opts: &BatchOptions,
    rules: &Rules,
    unreadable: &Mutex<Vec<String>>,
) -> SummaryRow {
    let t0 = Instant::now();
    let fail = |reason: String| {
        SummaryRow::failed(
            dir_name,
            &sf.uid,
            sf.series,
            reason,
            t0.elapsed().as_secs_f64(),
        )
    };
    let files = match sf.files() {
        Ok(f) => f,
        Err(e) => return fail(format!("its file list: {e}")),
    };
    let inv = discover(&files, &DiscoverOptions::with_limits(opts.limits));
    drop(files);
    if !inv.errors.is_empty() {
        let mut u = unreadable.lock().unwrap_or_else(|e| e.into_inner());
        u.extend(inv.errors.iter().map(|e| e.to_string()));
    }
    let Some(st) = inv.studies.iter().find(|s| s.uid == sf.uid) else {
        return fail("its files no longer hold the study (changed since they were indexed)".into());
    };
    let clinical = match clinical_for(st, dir_name, opts) {
        Ok(c) => c,
        Err(e) => return fail(format!("clinical facts: {e}")),
    };
    let t_read = t0.elapsed();
    let mut vols = Vec::new();
    let mut errors = Vec::new();
    for s in &st.series {
        match assemble(s, &opts.limits) {
            Ok(v) => vols.extend(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if vols.is_empty() {
        return fail(
            errors
                .first()
                .cloned()
                .unwrap_or_else(|| "no image series".into()),
        );
    }
    let t_assemble = t0.elapsed();
    let mut r: StudyResult = analyze_study(
        st.uid.clone(),
        vols,
        opts.anchor.as_ref(),
        clinical.as_ref(),
        None,
        rules,
    );
    if opts.include_phi {
        r.patient = st
            .series
            .iter()
            .flat_map(|s| s.instances.first())
            .find_map(|h| spinetriage_dicom::read_patient(&h.path, &opts.limits).ok());
    }
    // A series that could not be read does not stop the others, but it is reported.
    r.errors
        .extend(errors.into_iter().map(|e| format!("series not read: {e}")));
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!("creating the output folder: {e}"));
    }
    remove_stale_temporaries(dir);
    if let Err(e) = spinetriage_report::write_outputs(dir, &[r.input()], opts.masks) {
        return fail(e.to_string());
    }
    if std::env::var_os("SPINETRIAGE_TIMING").is_some() {
        eprintln!(
            "study: headers {t_read:?}, volumes {:?}, analysis and report {:?}",
            t_assemble - t_read,
            t0.elapsed() - t_assemble
        );
    }
    let row = SummaryRow::from_result(dir_name, &r, st.series.len(), t0.elapsed().as_secs_f64());
    let marker = serde_json::to_string_pretty(&row).unwrap_or_default();
    if let Err(e) = spinetriage_report::write_atomic(&dir.join(DONE_MARKER), marker.as_bytes()) {
        return fail(e.to_string());
    }
    row
}

/// Temporary files a killed run left behind (`<name>.tmp<pid>`): the rerun rewrites every output.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().contains(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Hands memory freed by a finished study back to the OS. glibc keeps freed blocks in per-thread
/// arenas; without this, a long batch's RSS drifts above the budget although nothing leaks.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Buffers of at least this many bytes get their own mapping, returned to the OS when freed.
/// Session 26: 8 MiB left the MR volumes and the per-level blocks (1–4 MiB) in the arenas, where
/// two workers' freed blocks added 5–7 MiB over a one-thread run (74 against 66–67 MiB for a
/// batch of 24 phantom studies); at 2 MiB the same batch peaks at 69 MiB with the same wall time,
/// and the 512²×300 CT study takes as long. 256 kiB held 68 MiB but slowed that study by 40 %.
const MMAP_THRESHOLD_BYTES: i32 = 2 << 20;

/// Free bytes at the top of a heap beyond which glibc gives them back.
const TRIM_THRESHOLD_BYTES: i32 = 1 << 20;

/// Sets the allocator so that a study's large buffers do not stay resident after it (call once,
/// at start-up). glibc raises its mapping threshold to the largest buffer freed so far (up to
/// 32 MiB) and its trim threshold to twice that: after the first study, volume-sized buffers came
/// from the per-thread arenas and stayed there, and with two workers the peak RSS of a 50-study
/// batch drifted from 66 MiB after one study to 90 MiB (2.4× the largest study's volumes, against
/// a budget of 2×). Fixed (session 22: 8 MiB, session 26: 2 MiB; trim at 1 MiB) it stays flat,
/// with the same wall time; at the default 128 kiB a single large study took twice as long (every
/// block freshly mapped and zeroed).
pub fn bound_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs the batch over every study under `roots`.
pub fn run_batch(
    roots: &[PathBuf],
    opts: &BatchOptions,
    progress: &dyn Progress,
) -> Result<BatchOutcome, BatchError> {
    let rules = Rules::embedded().map_err(|e| BatchError::Rules(e.to_string()))?;
    std::fs::create_dir_all(&opts.out).map_err(|e| BatchError::Output {
        path: opts.out.clone(),
        reason: e.to_string(),
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| BatchError::Threads(e.to_string()))?;
    // Each study's paths go to a file of their own, and its headers are read again when it runs,
    // so that memory does not grow with the batch (43 k paths held 10 MiB at 200 studies). The
    // lists are in the temporary folder, not the output: file names can carry patient names.
    let lists = tempfile::Builder::new()
        .prefix("spinetriage-index-")
        .tempdir()
        .map_err(|e| BatchError::Output {
            path: std::env::temp_dir(),
            reason: format!("a folder for the study file lists: {e}"),
        })?;
    let idx = pool
        .install(|| {
            index(
                roots,
                &DiscoverOptions::with_limits(opts.limits),
                instance_bytes,
                lists.path(),
            )
        })
        .map_err(|e| BatchError::Output {
            path: lists.path().to_path_buf(),
            reason: e.to_string(),
        })?;
    // The index's transient allocations (every header parsed) are not left for the studies.
    release_freed_memory();
    let discovered = idx.studies.len();
    let mine: Vec<&StudyFiles> = idx
        .studies
        .iter()
        .filter(|s| opts.shard.is_none_or(|sh| sh.owns(&s.uid)))
        .collect();
    let mut rows = Vec::new();
    let mut todo = Vec::new();
    for st in mine {
        let name = study_dir_name(&st.uid);
        let dir = opts.out.join(&name);
        if !opts.force && is_complete(&dir) {
            let prev = std::fs::read_to_string(dir.join(DONE_MARKER))
                .ok()
                .and_then(|t| serde_json::from_str::<SummaryRow>(&t).ok());
            if let Some(row) = prev {
                rows.push(row);
                continue;
            }
        }
        todo.push((st, name, dir));
    }
    let skipped = rows.len();
    progress.start(skipped + todo.len(), skipped);
    let largest = todo.iter().map(|t| t.0.weight).max().unwrap_or(0);
    let limit = opts
        .memory_budget
        .map(|b| (b as f64 / PEAK_FACTOR) as u64)
        .unwrap_or((2.0 * largest as f64 / PEAK_FACTOR) as u64);
    let budget = Budget {
        limit,
        jobs: opts.jobs.max(1),
        state: Mutex::new((0, 0)),
        cv: Condvar::new(),
    };
    let done = Mutex::new(Vec::new());
    let unreadable = Mutex::new(idx.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>());
    pool.in_place_scope(|scope| {
        for (sf, name, dir) in &todo {
            let bytes = sf.weight;
            // The dispatcher (this thread, outside the pool) waits; workers never block.
            budget.acquire(bytes);
            let (budget, done, rules, unreadable) = (&budget, &done, &rules, &unreadable);
            scope.spawn(move |_| {
                let t0 = Instant::now();
                let row = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    process(sf, dir, name, opts, rules, unreadable)
                }))
                .unwrap_or_else(|p| {
                    SummaryRow::failed(
                        name,
                        &sf.uid,
                        sf.series,
                        format!("internal error: {}", panic_message(p.as_ref())),
                        t0.elapsed().as_secs_f64(),
                    )
                });
                release_freed_memory();
                budget.release(bytes);
                progress.done(&row);
                done.lock().unwrap_or_else(|e| e.into_inner()).push(row);
            });
        }
    });
    rows.extend(done.into_inner().unwrap_or_else(|e| e.into_inner()));
    // Studies finish in any order; the summary lists unreadable files in path order.
    let mut unreadable = unreadable.into_inner().unwrap_or_else(|e| e.into_inner());
    unreadable.sort();
    summary::sort_rows(&mut rows);
    let summary = Summary {
        summary_version: SUMMARY_VERSION.into(),
        shard: opts.shard.map(|s| [s.index, s.count]),
        studies_discovered: discovered,
        unreadable_files: unreadable,
        rows,
    };
    let summary_files = summary::write(&opts.out, &summary)?;
    Ok(BatchOutcome {
        summary,
        skipped,
        summary_files,
    })
}
