//! Per-study orchestration of the pipeline stages, and batch runs over whole exports: study
//! discovery under any folder layout, deterministic sharding by study UID, memory-bounded
//! parallel scheduling, resumable atomic outputs, summaries and the merge of shard summaries.

#![deny(missing_docs)]

pub mod run;
pub mod study;
pub mod summary;

pub use run::{bound_allocator, run_batch, BatchOptions, BatchOutcome, Progress};
pub use study::{analyze_study, StudyResult};
pub use summary::{merge, Summary, SummaryRow};

use std::path::PathBuf;

/// Why a batch could not run (a single study's failure is a row of the summary, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The embedded rules are invalid.
    #[error("rules: {0}")]
    Rules(String),
    /// The thread pool could not be built.
    #[error("threads: {0}")]
    Threads(String),
    /// The output folder is not usable.
    #[error("{path}: {reason}")]
    Output {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A summary could not be written or read.
    #[error("{path}: {reason}")]
    Summary {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Shard summaries do not fit together.
    #[error("merge: {0}")]
    Merge(String),
    /// A report file could not be written.
    #[error(transparent)]
    Report(#[from] spinetriage_report::ReportError),
}

/// FNV-1a, 64 bits: stable across platforms and versions, unlike `std`'s hasher.
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Output folder name of a study: a hash of its UID, so that the name carries no PHI and no
/// character of the UID (which is untrusted header text) can reach the file system.
pub fn study_dir_name(uid: &str) -> String {
    format!("study-{:016x}", fnv1a64(uid))
}

/// Shard `index` of `count` (0-based, as Slurm array and Kubernetes Indexed Job indices are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Whether the study belongs to this shard: deterministic in the UID alone, so that shards
    /// running on different machines over the same files partition the studies exactly.
    pub fn owns(&self, study_uid: &str) -> bool {
        // A different hash from the folder name's, mixed, so shard sizes stay even.
        let h = fnv1a64(study_uid).rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
        (h.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) % self.count as u64 == self.index as u64
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?}: expected K/N, for example 0/4"))?;
        let index: usize = k.trim().parse().map_err(|_| format!("shard index {k:?}"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {s:?}: need 0 <= K < N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_studies_evenly() {
        let uids: Vec<String> = (0..2000)
            .map(|i| format!("1.2.840.99.{i}.{}", i * 7))
            .collect();
        let n = 4;
        let shards: Vec<Shard> = (0..n).map(|k| Shard { index: k, count: n }).collect();
        let mut sizes = vec![0; n];
        for u in &uids {
            let owners: Vec<usize> = shards
                .iter()
                .filter(|s| s.owns(u))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{u} owned by {owners:?}");
            sizes[owners[0]] += 1;
        }
        for s in sizes {
            assert!((400..600).contains(&s), "{s}");
        }
    }

    #[test]
    fn shard_syntax_and_stable_names() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        // FNV-1a test vector.
        assert_eq!(fnv1a64("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(study_dir_name("a"), "study-af63dc4c8601ec8c");
        assert!(!study_dir_name("../../etc").contains('/'));
    }
}
