//! The structured report of a batch of studies: `report.json` (schema in
//! `docs/report.schema.json`), `report.md`, a self-contained `report.html` with sagittal images,
//! and `levels.csv`. Every value that could not be computed is `null` (or "—"), with the reason.

#![deny(missing_docs)]

pub mod doc;
pub mod image;
pub mod json;
pub mod render;
pub mod seg;
pub mod sr;

use spinetriage_criteria::{CriteriaReport, ImagingFindings};
use spinetriage_measure::{Status, StudyMorphometry};
use spinetriage_volume::Volume;
use std::path::{Path, PathBuf};

pub use json::SCHEMA_VERSION;

/// Everything known about one study.
#[derive(Debug, Clone, Copy)]
pub struct StudyInput<'a> {
    /// Study Instance UID.
    pub study_uid: &'a str,
    /// Its volumes.
    pub volumes: &'a [Volume],
    /// Morphometry, when a CT or MR series could be measured.
    pub morphometry: Option<&'a StudyMorphometry>,
    /// Marrow signal, aligned with the morphometry's levels.
    pub marrow: Option<&'a spinetriage_marrow::MarrowReport>,
    /// Findings as the criteria engine saw them (aligned with the morphometry's levels).
    pub findings: Option<&'a ImagingFindings>,
    /// Criteria engine output.
    pub criteria: Option<&'a CriteriaReport>,
    /// Where the clinical facts came from, if anywhere.
    pub clinical_source: Option<&'a str>,
    /// Errors met on the way.
    pub errors: &'a [String],
    /// Whether the report should show a sagittal image of this study.
    pub has_image: bool,
    /// Patient identity, only with `--include-phi`; `None` keeps every output free of it.
    pub patient: Option<&'a spinetriage_dicom::Patient>,
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The DICOM SR could not be written.
    #[error(transparent)]
    Sr(#[from] sr::SrError),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes `bytes` to a temporary file in the same folder and renames it into place, so a killed
/// run never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// The per-level table as CSV.
pub fn levels_csv(studies: &[StudyInput]) -> String {
    let mut s = String::from(
        "study_uid,level,status,center_x_mm,center_y_mm,center_z_mm,anterior_mm,middle_mm,posterior_mm,left_mm,right_mm,expected_height_mm,height_loss_pct,genant_grade,morphology,kyphosis_pct,dorsal_wall_loss_pct,scoliosis_pct,wedge_angle_deg,retropulsion_mm,canal_ap_mm,canal_extent,canal_compromise_pct,acr_deformity\n",
    );
    let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_default();
    for st in studies {
        for l in st.morphometry.iter().flat_map(|m| m.levels.iter()) {
            let me = &l.measurement;
            let d = &l.derived;
            let cells = [
                st.study_uid.to_string(),
                l.level.clone().unwrap_or_default(),
                if me.status == Status::Measured {
                    "measured".into()
                } else {
                    "not_evaluable".into()
                },
                format!("{:.2}", me.center_lps_mm[0]),
                format!("{:.2}", me.center_lps_mm[1]),
                format!("{:.2}", me.center_lps_mm[2]),
                f(me.anterior.map(|h| h.height_mm)),
                f(me.middle.map(|h| h.height_mm)),
                f(me.posterior.map(|h| h.height_mm)),
                f(me.left.map(|h| h.height_mm)),
                f(me.right.map(|h| h.height_mm)),
                f(d.expected_height_mm),
                f(d.height_loss_pct),
                d.genant_grade.map(|g| g.to_string()).unwrap_or_default(),
                d.morphology
                    .map(|m| format!("{m:?}").to_lowercase())
                    .unwrap_or_default(),
                f(d.kyphosis_pct),
                f(d.dorsal_wall_loss_pct),
                f(d.scoliosis_pct),
                f(d.wedge_angle_deg),
                f(me.retropulsion_mm),
                f(me.canal.as_ref().map(|c| c.ap_mm)),
                me.canal
                    .as_ref()
                    .map(|c| match c.extent {
                        spinetriage_measure::canal::CanalExtent::BonyCanal => "bony_canal",
                        spinetriage_measure::canal::CanalExtent::ThecalSac => "thecal_sac",
                    })
                    .unwrap_or_default()
                    .to_string(),
                f(d.canal_compromise_pct),
                d.acr_deformity.map(|b| b.to_string()).unwrap_or_default(),
            ];
            s += &cells.join(",");
            s.push('\n');
        }
    }
    s
}

/// Names of the files [`write_outputs`] writes (images aside); a folder holding all of them
/// holds a complete report.
pub const OUTPUT_FILES: [&str; 4] = ["report.json", "report.md", "report.html", "levels.csv"];

/// The suffix of study `n`'s per-study files: none when the report holds one study.
fn suffix(count: usize, n: usize) -> String {
    if count == 1 {
        String::new()
    } else {
        format!("-{}", n + 1)
    }
}

/// The SR file of study `n` of `count`.
fn sr_file_name(count: usize, n: usize) -> String {
    format!("report-sr{}.dcm", suffix(count, n))
}

/// Writes the report files for `studies` into `dir` (which must exist), and with `masks` the
/// segmentation label maps. `report.json` is written last, so its presence means the others are
/// complete.
pub fn write_outputs(
    dir: &Path,
    studies: &[StudyInput],
    masks: bool,
) -> Result<Vec<PathBuf>, ReportError> {
    // The picture is most of the report's time: the documents are built beside it.
    let (images, (srs, (blocks, pretty))) = rayon::join(
        || -> Vec<Option<image::Sagittal>> {
            studies
                .iter()
                .map(|s| {
                    let m = s.morphometry?;
                    let vol = s
                        .volumes
                        .iter()
                        .find(|v| v.series_uid == m.shape_series_uid)?;
                    s.has_image.then(|| image::sagittal(vol, m)).flatten()
                })
                .collect()
        },
        || {
            rayon::join(
                // Encoded here too: serialising the SR took 4 ms per study on the calling
                // thread while the other one sat idle.
                || {
                    studies
                        .iter()
                        .enumerate()
                        .map(|(n, s)| {
                            let p = dir.join(sr_file_name(studies.len(), n));
                            sr::build(s).map(|obj| sr::encode(obj, &p).map(|b| (p, b)))
                        })
                        .collect::<Vec<_>>()
                },
                || {
                    let json = json::report_json(studies);
                    let pretty = serde_json::to_string_pretty(&json)
                        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
                    (doc::document(studies), pretty)
                },
            )
        },
    );
    // The images and SRs are written while the documents that embed the images are rendered.
    let (written, docs) = rayon::join(
        || -> Result<Vec<PathBuf>, ReportError> {
            let mut written = Vec::new();
            for (n, img) in images.iter().enumerate() {
                if let Some(img) = img {
                    let p = dir.join(format!("sagittal-{}.png", n + 1));
                    write_atomic(&p, &img.png)?;
                    written.push(p);
                }
            }
            // One SR per study: an SR document belongs to one study.
            for (n, (s, sr)) in studies.iter().zip(srs).enumerate() {
                if let Some(sr) = sr {
                    let (p, bytes) = sr?;
                    write_atomic(&p, &bytes)?;
                    written.push(p);
                }
                if masks {
                    written.extend(seg::write(dir, s, &suffix(studies.len(), n))?);
                }
            }
            Ok(written)
        },
        || {
            let (html, (md, csv)) = rayon::join(
                || render::html(&blocks, &images),
                || {
                    rayon::join(
                        || render::markdown(&blocks, &images),
                        || levels_csv(studies),
                    )
                },
            );
            [
                ("levels.csv", csv.into_bytes()),
                ("report.md", md.into_bytes()),
                ("report.html", html.into_bytes()),
                ("report.json", pretty.into_bytes()),
            ]
        },
    );
    let mut written = written?;
    // In this order: report.json last.
    for (name, bytes) in docs {
        let p = dir.join(name);
        write_atomic(&p, &bytes)?;
        written.push(p);
    }
    Ok(written)
}
