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
    for root in roots {
        if root.is_file() {
            if is_dicomdir_name(root) {
                match dicomdir_files(root, limits) {
                    Ok(list) => {
                        inv.dicomdirs.push(root.clone());
                        files.extend(list);
                    }
                    Err(e) => inv.errors.push(e),
                }
            } else {
                files.insert(root.clone());
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
                                files.extend(list.into_iter().filter(|f| f.is_file()));
                            }
                            Err(e) => inv.errors.push(e),
                        }
                    } else {
                        files.insert(p);
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
    files.into_iter().collect()
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

/// One study found by [`index`]: its files, without their headers.
#[derive(Debug, Clone, Default)]
pub struct StudyFiles {
    /// Study Instance UID (or the key made up for it, as [`discover`] makes it).
    pub uid: String,
    /// The study's image files, in path order; [`discover`] on them gives the study in full.
    pub files: Vec<PathBuf>,
    /// Number of series.
    pub series: usize,
    /// Sum of the caller's weight over the files (for example the bytes its volumes will take).
    pub weight: u64,
}

/// Everything found under the given paths, study by study, with only the files' paths kept.
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

/// Groups the image files under `roots` into studies as [`discover`] does, but keeps only each
/// file's path and `weight(header)`: a batch over thousands of studies holds a path per file, not
/// a header per file, and reads a study's headers again (with [`discover`] on
/// [`StudyFiles::files`]) only when it gets to it. Duplicate instances are left to that second
/// reading.
pub fn index(
    roots: &[PathBuf],
    opts: &DiscoverOptions,
    weight: impl Fn(&InstanceHeader) -> u64 + Sync,
) -> Index {
    let mut inv = Inventory::default();
    let files = collect_files(roots, &opts.limits, &mut inv);
    let mut idx = Index {
        files_examined: files.len(),
        dicomdirs: inv.dicomdirs,
        errors: inv.errors,
        ..Index::default()
    };
    let results = read_all(files, &opts.limits, |h| {
        let w = weight(&h);
        (h.study_uid, h.series_uid, w)
    });
    let mut grouped: BTreeMap<String, (BTreeSet<String>, StudyFiles)> = BTreeMap::new();
    for (path, r) in results {
        match r {
            Ok(Found::NotDicom) => idx.non_dicom += 1,
            Ok(Found::NoImage) => idx.non_image += 1,
            Ok(Found::Image((study, series, w))) => {
                let (all_series, st) = grouped.entry(study).or_default();
                all_series.insert(series);
                st.files.push(path);
                st.weight += w;
            }
            Err(e) => idx.errors.push(e),
        }
    }
    idx.studies = grouped
        .into_iter()
        .map(|(uid, (series, st))| StudyFiles {
            uid,
            series: series.len(),
            ..st
        })
        .collect();
    idx
}
