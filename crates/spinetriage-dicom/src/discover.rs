//! Walking files, folders and DICOMDIRs into studies → series → instances.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use rayon::prelude::*;
use serde::Serialize;

use crate::classify::{classify, Classification};
use crate::header::{read_header, InstanceHeader};
use crate::object::open_object;
use crate::{DicomError, Limits};

/// Options for [`discover`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiscoverOptions {
    /// Allocation caps applied to every header.
    pub limits: Limits,
}

impl DiscoverOptions {
    /// Options with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        DiscoverOptions { limits }
    }
}

/// One series: instances sharing a SeriesInstanceUID, with its classification.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Series Instance UID.
    pub uid: String,
    /// Modality of the first instance.
    pub modality: String,
    /// Series Description of the first instance.
    pub description: Option<String>,
    /// Series Number of the first instance.
    pub number: Option<i64>,
    /// Class and plane, with the deciding tags.
    pub classification: Classification,
    /// The instances, in file-path order (slice order is decided by geometry at assembly).
    pub instances: Vec<InstanceHeader>,
}

/// One study: series sharing a StudyInstanceUID.
#[derive(Debug, Clone, Serialize)]
pub struct Study {
    /// Study Instance UID.
    pub uid: String,
    /// Study Date (YYYYMMDD) of the first instance.
    pub date: Option<String>,
    /// The series, by series number then UID.
    pub series: Vec<Series>,
}

/// Everything found under the given paths.
#[derive(Debug, Default, Serialize)]
pub struct Inventory {
    /// Studies found, by UID.
    pub studies: Vec<Study>,
    /// Number of regular files examined.
    pub files_examined: usize,
    /// Files that are not DICOM (skipped, counted).
    pub non_dicom: Vec<PathBuf>,
    /// DICOMDIR files used to find instances.
    pub dicomdirs: Vec<PathBuf>,
    /// DICOM objects without an image that were skipped (SR, DICOMDIR itself, presentation states).
    pub non_image: usize,
    /// Files that could not be read, each with its reason.
    #[serde(serialize_with = "errors_as_strings")]
    pub errors: Vec<DicomError>,
}

fn errors_as_strings<S: serde::Serializer>(e: &[DicomError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(e.iter().map(|e| e.to_string()))
}

/// Media Storage Directory Storage: a DICOMDIR.
const DICOMDIR_SOP_CLASS: &str = "1.2.840.10008.1.3.10";

/// Lists the files a DICOMDIR references (ReferencedFileID, relative to its folder).
fn dicomdir_files(path: &Path, limits: &Limits) -> Result<Vec<PathBuf>, DicomError> {
    let obj = open_object(path, limits, false)?.ok_or_else(|| DicomError::Parse {
        path: path.to_path_buf(),
        reason: "named DICOMDIR but not DICOM".into(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let records = obj
        .get(tags::DIRECTORY_RECORD_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for rec in records {
        let Some(parts) = rec
            .get(tags::REFERENCED_FILE_ID)
            .and_then(|e| e.to_multi_str().ok())
        else {
            continue;
        };
        let mut p = base.to_path_buf();
        let mut ok = true;
        for part in parts.iter() {
            let part = part.trim();
            // A file ID is a list of path components; refuse anything that would leave the folder.
            if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\']) {
                ok = false;
                break;
            }
            p.push(part);
        }
        if ok {
            out.push(p);
        }
    }
    Ok(out)
}

fn is_dicomdir_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
}

/// Collects candidate files from files, folder trees and DICOMDIRs.
fn collect_files(roots: &[PathBuf], limits: &Limits, inv: &mut Inventory) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    walk_files(roots, limits, inv, |p, _| {
        files.insert(p);
    });
    files.into_iter().collect()
}

/// Hands every candidate file under `roots` to `visit`, in walk order, with whether it is a file
/// that a DICOMDIR inside a walked tree lists: the walk visits every file, so it finds that one
/// as well. Errors and DICOMDIRs go into `inv`.
fn walk_files(
    roots: &[PathBuf],
    limits: &Limits,
    inv: &mut Inventory,
    mut visit: impl FnMut(PathBuf, bool),
) {
    for root in roots {
        if root.is_file() {
            if is_dicomdir_name(root) {
                match dicomdir_files(root, limits) {
                    Ok(list) => {
                        inv.dicomdirs.push(root.clone());
                        list.into_iter().for_each(|p| visit(p, false));
                    }
                    Err(e) => inv.errors.push(e),
                }
            } else {
                visit(root.clone(), false);
            }
            continue;
        }
        if !root.exists() {
            inv.errors.push(DicomError::Walk {
                path: root.clone(),
                reason: "no such file or folder".into(),
            });
            continue;
        }
        // Following links lets exports made of symlinks work; walkdir detects loops and reports them.
        for entry in walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    let p = e.into_path();
                    if is_dicomdir_name(&p) {
                        match dicomdir_files(&p, limits) {
                            Ok(list) => {
                                inv.dicomdirs.push(p.clone());
                                // Referenced files are inside the tree being walked; the extra
                                // entries only matter for files under unusual names.
                                list.into_iter()
                                    .filter(|f| f.is_file())
                                    .for_each(|f| visit(f, true));
                            }
                            Err(e) => inv.errors.push(e),
                        }
                    } else {
                        visit(p, false);
                    }
                }
                Ok(_) => {}
                Err(e) => inv.errors.push(DicomError::Walk {
                    path: e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| root.clone()),
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// What one file holds, as far as grouping into studies is concerned.
enum Found<T> {
    /// Not a DICOM file.
    NotDicom,
    /// DICOM without an image: SR, a DICOMDIR itself, presentation states.
    NoImage,
    /// An image instance, as the caller keeps it.
    Image(T),
}

/// Reads every file's header in parallel and keeps of each image instance what `keep` makes of it,
/// so that a caller that needs little of the header never holds all of them at once.
fn read_all<T: Send>(
    files: Vec<PathBuf>,
    limits: &Limits,
    keep: impl Fn(InstanceHeader) -> T + Sync,
) -> Vec<(PathBuf, Result<Found<T>, DicomError>)> {
    files
        .into_par_iter()
        .map(|p| {
            let found = read_header(&p, limits).map(|h| match h {
                None => Found::NotDicom,
                Some(h) if h.sop_class_uid == DICOMDIR_SOP_CLASS || !h.has_image => Found::NoImage,
                Some(h) => Found::Image(keep(h)),
            });
            (p, found)
        })
        .collect()
}

/// Finds every DICOM instance under `roots` (files, folders, DICOMDIRs), reads headers only, in
/// parallel, and groups them into studies and series.
///
/// Non-DICOM files are counted and skipped; unreadable ones are listed in [`Inventory::errors`] with
/// their path; nothing here panics or aborts on bad input.
pub fn discover(roots: &[PathBuf], opts: &DiscoverOptions) -> Inventory {
    let mut inv = Inventory::default();
    let files = collect_files(roots, &opts.limits, &mut inv);
    inv.files_examined = files.len();
    let results = read_all(files, &opts.limits, |h| h);

    let mut grouped: BTreeMap<String, BTreeMap<String, Vec<InstanceHeader>>> = BTreeMap::new();
    let mut seen_sop: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, r) in results {
        match r {
            Ok(Found::NotDicom) => inv.non_dicom.push(path),
            Ok(Found::NoImage) => inv.non_image += 1,
            Ok(Found::Image(h)) => {
                if let Some(first) = seen_sop.get(&h.sop_instance_uid) {
                    inv.errors.push(DicomError::Parse {
                        path: h.path.clone(),
                        reason: format!(
                            "duplicate SOPInstanceUID {} (already read from {}); skipped",
                            h.sop_instance_uid,
                            first.display()
                        ),
                    });
                    continue;
                }
                seen_sop.insert(h.sop_instance_uid.clone(), h.path.clone());
                grouped
                    .entry(h.study_uid.clone())
                    .or_default()
                    .entry(h.series_uid.clone())
                    .or_default()
                    .push(h);
            }
            Err(e) => inv.errors.push(e),
        }
    }
    inv.studies = grouped
        .into_iter()
        .map(|(uid, series)| {
            let mut series: Vec<Series> = series
                .into_iter()
                .map(|(suid, instances)| {
                    let first = &instances[0];
                    Series {
                        uid: suid,
                        modality: first.modality.clone(),
                        description: first.series_description.clone(),
                        number: first.series_number,
                        classification: classify(first),
                        instances,
                    }
                })
                .collect();
            series.sort_by(|a, b| (a.number, &a.uid).cmp(&(b.number, &b.uid)));
            let date = series
                .first()
                .and_then(|s| s.instances.first())
                .and_then(|i| i.study_date.clone());
            Study { uid, date, series }
        })
        .collect();
    inv
}

/// One study found by [`index`]: where its file list is, without the list or the headers.
#[derive(Debug, Clone, Default)]
pub struct StudyFiles {
    /// Study Instance UID (or the key made up for it, as [`discover`] makes it).
    pub uid: String,
    /// The file, in the folder given to [`index`], that holds the study's paths
    /// ([`StudyFiles::files`] reads them).
    pub list: PathBuf,
    /// Number of image files.
    pub file_count: usize,
    /// Number of series.
    pub series: usize,
    /// Sum of the caller's weight over the files (for example the bytes its volumes will take).
    pub weight: u64,
}

impl StudyFiles {
    /// The study's image files, in path order; [`discover`] on them gives the study in full.
    pub fn files(&self) -> Result<Vec<PathBuf>, DicomError> {
        let bytes = std::fs::read(&self.list).map_err(|source| DicomError::Io {
            path: self.list.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = bytes
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(path_from_bytes)
            .collect();
        files.sort();
        Ok(files)
    }
}

/// A path's bytes in a file list, NUL-terminated (the one byte no Unix path holds).
fn push_path(list: &mut Vec<u8>, p: &Path) {
    #[cfg(unix)]
    list.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()));
    #[cfg(not(unix))]
    list.extend_from_slice(p.to_string_lossy().as_bytes());
    list.push(0);
}

fn path_from_bytes(b: &[u8]) -> PathBuf {
    #[cfg(unix)]
    return PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b));
    #[cfg(not(unix))]
    return PathBuf::from(String::from_utf8_lossy(b).into_owned());
}

/// Everything found under the given paths, study by study, with each study's paths in a file.
#[derive(Debug, Default)]
pub struct Index {
    /// Studies found, by UID.
    pub studies: Vec<StudyFiles>,
    /// Number of regular files examined.
    pub files_examined: usize,
    /// Files that are not DICOM (skipped).
    pub non_dicom: usize,
    /// DICOMDIR files used to find instances.
    pub dicomdirs: Vec<PathBuf>,
    /// DICOM objects without an image that were skipped (SR, DICOMDIR itself, presentation states).
    pub non_image: usize,
    /// Files that could not be read, each with its reason.
    pub errors: Vec<DicomError>,
}

/// Files whose headers [`index`] reads at a time: enough to keep every core busy, few enough that
/// the index holds a few hundred kB however large the tree.
const INDEX_CHUNK_FILES: usize = 2048;

/// Groups the image files under `roots` into studies as [`discover`] does, for a batch over
/// thousands of studies: the tree is walked and its headers read a chunk at a time, and each
/// study's paths are appended to a file of its own in `lists` (a folder the caller owns and
/// removes), so that memory holds a few hundred bytes per study and nothing per file. A batch
/// reads a study's headers again (with [`discover`] on [`StudyFiles::files`]) only when it gets
/// to it; duplicate instances are left to that second reading. Fails only when a list cannot
/// be written.
pub fn index(
    roots: &[PathBuf],
    opts: &DiscoverOptions,
    weight: impl Fn(&InstanceHeader) -> u64 + Sync,
    lists: &Path,
) -> Result<Index, DicomError> {
    let mut inv = Inventory::default();
    let mut idx = Index::default();
    let mut grouped: BTreeMap<String, (BTreeSet<String>, StudyFiles)> = BTreeMap::new();
    let mut chunk = Vec::new();
    let mut failed = None;
    let mut flush = |chunk: &mut Vec<PathBuf>, idx: &mut Index| {
        if failed.is_some() || chunk.is_empty() {
            chunk.clear();
            return;
        }
        idx.files_examined += chunk.len();
        let results = read_all(std::mem::take(chunk), &opts.limits, |h| {
            let w = weight(&h);
            (h.study_uid, h.series_uid, w)
        });
        let mut appended: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for (path, r) in results {
            match r {
                Ok(Found::NotDicom) => idx.non_dicom += 1,
                Ok(Found::NoImage) => idx.non_image += 1,
                Ok(Found::Image((study, series, w))) => {
                    let n = grouped.len();
                    let (all_series, st) = grouped.entry(study).or_insert_with(|| {
                        // Numbered, not named by the UID: header text never reaches a file name.
                        let list = lists.join(format!("{n}.paths"));
                        (
                            BTreeSet::new(),
                            StudyFiles {
                                list,
                                ..StudyFiles::default()
                            },
                        )
                    });
                    all_series.insert(series);
                    st.file_count += 1;
                    st.weight += w;
                    push_path(appended.entry(st.list.clone()).or_default(), &path);
                }
                Err(e) => idx.errors.push(e),
            }
        }
        for (list, bytes) in appended {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&list)
                .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes));
            if let Err(source) = written {
                failed = Some(DicomError::Io { path: list, source });
                return;
            }
        }
    };
    walk_files(roots, &opts.limits, &mut inv, |p, listed_in_walk| {
        // The walk finds these itself; keeping both would count the file twice.
        if !listed_in_walk {
            chunk.push(p);
        }
        if chunk.len() >= INDEX_CHUNK_FILES {
            flush(&mut chunk, &mut idx);
        }
    });
    flush(&mut chunk, &mut idx);
    if let Some(e) = failed {
        return Err(e);
    }
    idx.dicomdirs = inv.dicomdirs;
    // The walk's errors first, as `discover` lists them.
    inv.errors.append(&mut idx.errors);
    idx.errors = inv.errors;
    idx.studies = grouped
        .into_iter()
        .map(|(uid, (series, st))| StudyFiles {
            uid,
            series: series.len(),
            ..st
        })
        .collect();
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_list_gives_back_every_path_byte_for_byte() {
        let mut names: Vec<PathBuf> = vec![
            "/exports/a b/IM 0001".into(),
            "/exports/line\nbreak/IM1".into(),
            "relative/ünïcode/IM2".into(),
        ];
        #[cfg(unix)]
        names.push(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/latin1/\xe9t\xe9/IM3"),
        ));
        let dir = std::env::temp_dir().join(format!("spinetriage-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("0.paths");
        let mut bytes = Vec::new();
        // Written in two appends, as two chunks of an index would.
        for half in names.chunks(2) {
            bytes.clear();
            half.iter().for_each(|p| push_path(&mut bytes, p));
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&list)
                .unwrap();
            std::io::Write::write_all(&mut f, &bytes).unwrap();
        }
        let sf = StudyFiles {
            list: list.clone(),
            file_count: names.len(),
            ..StudyFiles::default()
        };
        let mut want = names.clone();
        want.sort();
        assert_eq!(sf.files().unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
        let gone = sf.files().unwrap_err().to_string();
        assert!(gone.contains("0.paths"), "{gone}");
    }
}
