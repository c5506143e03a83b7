//! `spinetriage batch` and `spinetriage merge`: progress display and wiring only; the work is in
//! `spinetriage-batch`.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use spinetriage_batch::{merge, summary, BatchOptions, Progress, SummaryRow};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How progress is shown.
pub enum Display {
    /// An indicatif bar (stderr is a terminal).
    Bar(ProgressBar),
    /// One plain line per study (logs, pipes, schedulers).
    Lines {
        /// Studies to do.
        total: AtomicUsize,
        /// Studies finished.
        done: AtomicUsize,
        /// Of which failed.
        failed: AtomicUsize,
    },
    /// Nothing (`--quiet`).
    Quiet,
}

impl Display {
    /// The display for this process: quiet, a bar on a terminal, lines otherwise.
    pub fn new(quiet: bool) -> Display {
        if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} studies, {msg}, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Display::Bar(bar)
        } else {
            Display::Lines {
                total: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
            }
        }
    }
}

impl Progress for Display {
    fn start(&self, total: usize, skipped: usize) {
        match self {
            Display::Bar(b) => {
                b.set_length(total as u64);
                b.set_position(skipped as u64);
                b.set_message(format!("{skipped} already done, 0 failed"));
            }
            Display::Lines { total: t, done, .. } => {
                t.store(total, Ordering::Relaxed);
                done.store(skipped, Ordering::Relaxed);
                eprintln!("batch: {total} studies, {skipped} already complete (skipped)");
            }
            Display::Quiet => {}
        }
    }

    fn done(&self, row: &SummaryRow) {
        match self {
            Display::Bar(b) => {
                b.inc(1);
                if row.status != "ok" {
                    b.println(format!("failed: {} — {}", row.study_dir, row.reason));
                }
            }
            Display::Lines {
                total,
                done,
                failed,
            } => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                let f = failed.load(Ordering::Relaxed) + usize::from(row.status != "ok");
                if row.status != "ok" {
                    failed.store(f, Ordering::Relaxed);
                }
                eprintln!(
                    "[{n}/{}] {} {} {:.1} s{}{}",
                    total.load(Ordering::Relaxed),
                    row.study_dir,
                    row.status,
                    row.seconds,
                    if row.reason.is_empty() { "" } else { " — " },
                    row.reason
                );
            }
            Display::Quiet => {}
        }
    }
}

impl Display {
    fn finish(&self, failed: usize) {
        if let Display::Bar(b) = self {
            b.finish_with_message(format!("{failed} failed"));
        }
    }
}

/// Runs the batch; returns whether any study was not fully analysed or any file was unreadable.
pub fn run(roots: &[PathBuf], opts: &BatchOptions, quiet: bool) -> Result<bool> {
    let display = Display::new(quiet);
    let outcome = spinetriage_batch::run_batch(roots, opts, &display)?;
    let failed = outcome
        .summary
        .rows
        .iter()
        .filter(|r| r.status != "ok")
        .count();
    display.finish(failed);
    if !quiet {
        eprintln!(
            "batch: {} studies ({} skipped as complete), {failed} failed; summary {}",
            outcome.summary.rows.len(),
            outcome.skipped,
            outcome
                .summary_files
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(outcome.any_failed())
}

/// Merges shard summaries (the given files, or every `batch-summary-shard-*.json` in `out`)
/// into `out/batch-summary.{json,csv}`; returns whether any study failed.
pub fn merge_cmd(out: &Path, files: &[PathBuf]) -> Result<bool> {
    let files: Vec<PathBuf> = if files.is_empty() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("batch-summary-shard-") && n.ends_with(".json"))
            })
            .collect();
        v.sort();
        v
    } else {
        files.to_vec()
    };
    if files.is_empty() {
        bail!(
            "no shard summaries (batch-summary-shard-*.json) in {}",
            out.display()
        );
    }
    let merged = merge(&files)?;
    let written = summary::write(out, &merged)?;
    let failed = merged.rows.iter().filter(|r| r.status != "ok").count();
    let unreadable = merged.unreadable_files.len();
    println!(
        "merged {} shard summaries: {} studies, {failed} failed -> {}",
        files.len(),
        merged.rows.len(),
        written[0].display()
    );
    Ok(failed > 0 || unreadable > 0)
}

/// Prints the batch's studies in worklist order (priority, then UID), as a table or JSON.
pub fn worklist(out: &Path, json: bool) -> Result<()> {
    let path = out.join("batch-summary.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (run `spinetriage batch` first, or `spinetriage merge` after shards)",
            path.display()
        )
    })?;
    let mut s: spinetriage_batch::Summary =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    summary::sort_rows(&mut s.rows);
    if json {
        #[derive(serde::Serialize)]
        struct Item<'a> {
            priority: u8,
            category: &'a str,
            study_dir: &'a str,
            study_uid: &'a str,
            reasons: &'a str,
            report: String,
        }
        let items: Vec<Item> = s
            .rows
            .iter()
            .map(|r| Item {
                priority: r.triage_priority,
                category: &r.triage_category,
                study_dir: &r.study_dir,
                study_uid: &r.study_uid,
                reasons: &r.triage_reasons,
                report: out
                    .join(&r.study_dir)
                    .join("report.html")
                    .display()
                    .to_string(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!("{:>3}  {:<40} {:<24} reasons", "P", "category", "study");
    for r in &s.rows {
        println!(
            "{:>3}  {:<40} {:<24} {}",
            r.triage_priority, r.triage_category, r.study_dir, r.triage_reasons
        );
    }
    Ok(())
}
