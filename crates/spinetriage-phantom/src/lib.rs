//! Synthetic spine studies with known truth, for spinetriage's accuracy tests and benchmarks.
//!
//! [`generate`] writes one study — sagittal MR STIR, T1 and T2 and an axial CT, all in one frame of
//! reference — as real DICOM files in a chosen [`Syntax`], and a `truth.json` ([`Truth`]) holding
//! every level's heights, losses, flags and centre in LPS, computed from the analytic shape in
//! [`model`]. Named cases ([`case`], [`standard_suite`]) cover every finding the product reports.
//!
//! ```no_run
//! let cfg = spinetriage_phantom::case("acute-wedge-l1", 7).expect("known case");
//! let truth = spinetriage_phantom::generate(&cfg, std::path::Path::new("out"))?;
//! println!("{} levels, L1 loss {:.1} %", truth.levels.len(),
//!     truth.levels.iter().find(|l| l.name == "L1").unwrap().height_loss_pct);
//! # Ok::<(), spinetriage_phantom::PhantomError>(())
//! ```
#![deny(missing_docs)]

mod j2k;
pub mod model;
pub mod render;
mod rng;
mod truth;
mod write;

use std::path::{Path, PathBuf};

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use nalgebra::Vector3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use model::{ArchPart, Fracture, FractureKind, LevelSpec, Oedema, Side, SpineParams, Tumour};
pub use render::MrSequence;
pub use truth::{ArchTruth, Heights, LevelTruth};
pub use write::Syntax;

use model::Spine;
use render::{add_noise, apply_bias, ct_contrast, mr_contrast, render, SliceGrid};
use write::{ds, s, us, write_slice, SliceAttrs};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhantomError {
    /// The configuration is invalid.
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// Writing a file failed.
    #[error("{path}: cannot write: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Sagittal MR acquisition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MrProtocol {
    /// In-plane pixel size, mm.
    pub pixel_mm: f64,
    /// Rows (cranio-caudal).
    pub rows: usize,
    /// Columns (antero-posterior).
    pub cols: usize,
    /// Number of sagittal slices.
    pub slices: usize,
    /// Slice thickness, mm.
    pub thickness_mm: f64,
    /// Gap between slices, mm.
    pub gap_mm: f64,
    /// Signal-to-noise ratio in muscle (σ = muscle signal / SNR); 0 disables noise.
    pub snr: f64,
    /// Peak bias-field amplitude, %.
    pub bias_pct: f64,
}

impl Default for MrProtocol {
    fn default() -> Self {
        MrProtocol {
            pixel_mm: 1.0,
            rows: 400,
            cols: 288,
            slices: 17,
            thickness_mm: 3.5,
            gap_mm: 0.5,
            snr: 20.0,
            bias_pct: 10.0,
        }
    }
}

/// Axial CT acquisition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CtProtocol {
    /// In-plane pixel size, mm.
    pub pixel_mm: f64,
    /// Matrix size (rows = columns).
    pub matrix: usize,
    /// Slice spacing and thickness, mm.
    pub slice_mm: f64,
    /// Number of slices; 0 covers the whole generated column.
    pub slices: usize,
    /// Gaussian noise σ, HU; 0 disables noise.
    pub noise_hu: f64,
}

impl Default for CtProtocol {
    fn default() -> Self {
        CtProtocol {
            pixel_mm: 0.9,
            matrix: 288,
            slice_mm: 2.0,
            slices: 0,
            noise_hu: 12.0,
        }
    }
}

/// Which series to write.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SeriesSet {
    /// Axial CT.
    pub ct: bool,
    /// Sagittal STIR.
    pub stir: bool,
    /// Sagittal T1.
    pub t1: bool,
    /// Sagittal T2.
    pub t2: bool,
}

impl SeriesSet {
    /// Only the axial CT.
    pub fn ct_only() -> Self {
        SeriesSet {
            ct: true,
            stir: false,
            t1: false,
            t2: false,
        }
    }

    /// Only the given MR sequences, no CT.
    pub fn mr(stir: bool, t1: bool, t2: bool) -> Self {
        SeriesSet {
            ct: false,
            stir,
            t1,
            t2,
        }
    }
}

impl Default for SeriesSet {
    fn default() -> Self {
        SeriesSet {
            ct: true,
            stir: true,
            t1: true,
            t2: true,
        }
    }
}

/// Everything that defines one generated study.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhantomConfig {
    /// Case name (folder name).
    pub name: String,
    /// Seed of noise and UIDs.
    pub seed: u64,
    /// Shape of the spine.
    pub spine: SpineParams,
    /// Findings per level.
    pub levels: Vec<(String, LevelSpec)>,
    /// MR protocol.
    pub mr: MrProtocol,
    /// CT protocol.
    pub ct: CtProtocol,
    /// Series to write.
    pub series: SeriesSet,
    /// Transfer syntax.
    pub syntax: Syntax,
}

impl PhantomConfig {
    /// A study with default protocols and no findings.
    pub fn new(name: &str, seed: u64) -> Self {
        PhantomConfig {
            name: name.into(),
            seed,
            spine: SpineParams::default(),
            levels: Vec::new(),
            mr: MrProtocol::default(),
            ct: CtProtocol::default(),
            series: SeriesSet::default(),
            syntax: Syntax::Explicit,
        }
    }

    fn with(mut self, level: &str, spec: LevelSpec) -> Self {
        self.levels.push((level.into(), spec));
        self
    }
}

/// One written series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesTruth {
    /// Series Instance UID.
    pub uid: String,
    /// Modality.
    pub modality: String,
    /// CT, STIR, T1 or T2.
    pub contrast: String,
    /// Folder holding its files, relative to the case folder.
    pub folder: String,
    /// Rows × columns × slices.
    pub dims: [usize; 3],
    /// Pixel size, mm.
    pub pixel_mm: f64,
    /// Slice spacing, mm.
    pub spacing_mm: f64,
    /// Slice thickness, mm.
    pub thickness_mm: f64,
}

/// Contents of `truth.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    /// Case name.
    pub case: String,
    /// Seed.
    pub seed: u64,
    /// Generator name and version.
    pub generator: String,
    /// How every number is defined.
    pub conventions: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Frame of Reference UID shared by every series.
    pub frame_of_reference_uid: String,
    /// Written series.
    pub series: Vec<SeriesTruth>,
    /// Per-level truth, top to bottom (S1 last).
    pub levels: Vec<LevelTruth>,
    /// The configuration.
    pub config: PhantomConfig,
}

const CONVENTIONS: &str = "Coordinates are DICOM patient LPS, mm. Heights run between the outer surfaces of the superior and inferior endplates (cortex included) along the vertebra's own cranial axis, at 10/50/90 % of the body's AP depth at mid-height (mid-sagittal plane); left/right heights at 10 % of the width from each lateral margin at mid-depth. expected_height_mm is the pre-fracture posterior height. height_loss_pct = 100(1 - min(Ha,Hm,Hp)/expected); wedge_pct = 100(1 - Ha/Hp); dorsal_wall_loss_pct = 100(1 - Hp/expected); lateral_wedge_pct = 100(1 - min(Hl,Hr)/max(Hl,Hr)). Centre = centroid of the body, cortex included. Retropulsion = posterior-wall displacement beyond the line of the posterior corners.";

fn spec(f: impl FnOnce(&mut LevelSpec)) -> LevelSpec {
    let mut s = LevelSpec::default();
    f(&mut s);
    s
}

fn frac(kind: FractureKind, loss_pct: f64) -> Option<Fracture> {
    Some(Fracture { kind, loss_pct })
}

/// Names of the built-in cases (the standard suite), each covering findings the product reports.
pub const CASES: &[&str] = &[
    "normal",
    "acute-wedge-l1",
    "chronic-crush-l2",
    "biconcave-t12",
    "lateral-l3",
    "burst-retropulsion-l1",
    "kummell-cleft-t12",
    "tumour-l4",
    "tumour-posterior-both-l2",
    "sclerotic-l3",
    "oedema-no-collapse-l3",
    "posterior-right-t11",
    "rotated-multilevel",
    "osteoporotic-multi",
    "epidural-tumour-t12",
    "lytic-destruction-l1",
];

/// A built-in case by name.
pub fn case(name: &str, seed: u64) -> Option<PhantomConfig> {
    use FractureKind::*;
    let c = PhantomConfig::new(name, seed);
    Some(match name {
        "normal" => c,
        "acute-wedge-l1" => c.with(
            "L1",
            spec(|s| {
                s.fracture = frac(Wedge, 30.0);
                s.oedema = Oedema::Band;
            }),
        ),
        "chronic-crush-l2" => c.with("L2", spec(|s| s.fracture = frac(Crush, 35.0))),
        "biconcave-t12" => c.with(
            "T12",
            spec(|s| {
                s.fracture = frac(Biconcave, 28.0);
                s.oedema = Oedema::Diffuse;
            }),
        ),
        "lateral-l3" => c.with(
            "L3",
            spec(|s| {
                s.fracture = frac(Lateral, 15.0);
                s.oedema = Oedema::Band;
            }),
        ),
        "burst-retropulsion-l1" => c.with(
            "L1",
            spec(|s| {
                s.fracture = frac(Crush, 35.0);
                s.oedema = Oedema::Band;
                s.retropulsion_mm = 5.0;
            }),
        ),
        "kummell-cleft-t12" => c.with(
            "T12",
            spec(|s| {
                s.fracture = frac(Wedge, 40.0);
                s.oedema = Oedema::Band;
                s.cleft = true;
            }),
        ),
        "tumour-l4" => c.with(
            "L4",
            spec(|s| {
                s.fracture = frac(Crush, 25.0);
                s.tumour = Tumour::Lytic;
                s.posterior = Side::Left;
                s.convex_posterior_mm = 2.5;
            }),
        ),
        "tumour-posterior-both-l2" => c.with(
            "L2",
            spec(|s| {
                s.tumour = Tumour::Lytic;
                s.posterior = Side::Both;
            }),
        ),
        "sclerotic-l3" => c.with("L3", spec(|s| s.tumour = Tumour::Sclerotic)),
        "oedema-no-collapse-l3" => c.with("L3", spec(|s| s.oedema = Oedema::Diffuse)),
        "posterior-right-t11" => c.with("T11", spec(|s| s.posterior = Side::Right)),
        "rotated-multilevel" => {
            let mut c = c
                .with(
                    "T11",
                    spec(|s| {
                        s.fracture = frac(Wedge, 22.0);
                        s.oedema = Oedema::Band;
                    }),
                )
                .with("L3", spec(|s| s.fracture = frac(Biconcave, 26.0)));
            c.spine.rotation_deg = [6.0, 8.0, 10.0];
            c.spine.scoliosis_deg = 8.0;
            c
        }
        "osteoporotic-multi" => {
            let mut c = c
                .with("T12", spec(|s| s.fracture = frac(Wedge, 45.0)))
                .with(
                    "L1",
                    spec(|s| {
                        s.fracture = frac(Crush, 25.0);
                        s.oedema = Oedema::Band;
                    }),
                )
                .with("L2", spec(|s| s.fracture = frac(Biconcave, 21.0)));
            c.spine.trabecular_hu = 80.0;
            c
        }
        "lytic-destruction-l1" => c.with(
            "L1",
            spec(|s| {
                s.fracture = frac(Crush, 20.0);
                s.tumour = Tumour::Lytic;
                s.cortical_gap_deg = 70.0;
            }),
        ),
        "epidural-tumour-t12" => c.with(
            "T12",
            spec(|s| {
                s.fracture = frac(Crush, 22.0);
                s.tumour = Tumour::Lytic;
                s.epidural_mm = 6.0;
                s.paravertebral_mm = 12.0;
            }),
        ),
        _ => return None,
    })
}

/// Every built-in case.
pub fn standard_suite(seed: u64) -> Vec<PhantomConfig> {
    CASES
        .iter()
        .enumerate()
        .filter_map(|(i, n)| case(n, seed.wrapping_add(i as u64)))
        .collect()
}

/// LPS bounding box (min, max) of the vertebral bodies and arches.
fn spine_bounds(spine: &Spine) -> (Vector3<f64>, Vector3<f64>) {
    let mut lo = Vector3::repeat(f64::INFINITY);
    let mut hi = Vector3::repeat(f64::NEG_INFINITY);
    for vb in &spine.vertebrae {
        for (u, v, w) in [
            (vb.hm / 2.0, -vb.depth / 2.0, 0.0),
            (-vb.hm / 2.0, -vb.depth / 2.0, 0.0),
            (vb.hm / 2.0, vb.depth / 2.0 + 50.0, 0.0),
            (-vb.hm / 2.0, vb.depth / 2.0 + 50.0, 0.0),
            (0.0, 0.0, vb.width / 2.0),
            (0.0, 0.0, -vb.width / 2.0),
        ] {
            let p = vb.to_lps(u, v, w);
            lo = lo.inf(&p);
            hi = hi.sup(&p);
        }
    }
    (lo, hi)
}

/// Generates one study under `out/<name>/` and returns its truth (also written as `truth.json`).
pub fn generate(cfg: &PhantomConfig, out: &Path) -> Result<Truth, PhantomError> {
    let spine = Spine::build(&cfg.spine, &cfg.levels)?;
    let dir = out.join(&cfg.name);
    let mkdir = |p: &Path| {
        std::fs::create_dir_all(p).map_err(|e| PhantomError::Write {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })
    };
    mkdir(&dir)?;
    let study_uid = rng::uid(cfg.seed, &format!("{}/study", cfg.name));
    let for_uid = rng::uid(cfg.seed, &format!("{}/frame", cfg.name));
    let (lo, hi) = spine_bounds(&spine);
    let centre = (lo + hi) / 2.0;
    let mut series = Vec::new();

    let mut base = InMemDicomObject::new_empty();
    for e in [
        s(
            tags::PATIENT_NAME,
            VR::PN,
            format!("PHANTOM^{}", cfg.name.to_uppercase()),
        ),
        s(tags::PATIENT_ID, VR::LO, format!("PH-{}", cfg.seed)),
        s(tags::PATIENT_BIRTH_DATE, VR::DA, "19480101"),
        s(tags::PATIENT_SEX, VR::CS, "F"),
        s(tags::PATIENT_AGE, VR::AS, "078Y"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.clone()),
        s(tags::STUDY_DATE, VR::DA, "20260115"),
        s(tags::STUDY_TIME, VR::TM, "101500"),
        s(tags::STUDY_ID, VR::SH, "1"),
        s(tags::ACCESSION_NUMBER, VR::SH, ""),
        s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        s(tags::STUDY_DESCRIPTION, VR::LO, "SPINE PHANTOM"),
        s(tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid.clone()),
        s(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""),
        s(tags::MANUFACTURER, VR::LO, "spinetriage"),
        s(tags::MANUFACTURER_MODEL_NAME, VR::LO, "phantom"),
        s(tags::BODY_PART_EXAMINED, VR::CS, "SPINE"),
        s(tags::PATIENT_POSITION, VR::CS, "HFS"),
        s(tags::CONTENT_DATE, VR::DA, "20260115"),
        s(tags::CONTENT_TIME, VR::TM, "101500"),
        us(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        us(tags::BITS_ALLOCATED, 16),
        us(tags::BITS_STORED, 16),
        us(tags::HIGH_BIT, 15),
        us(tags::PIXEL_REPRESENTATION, 0),
    ] {
        base.put(e);
    }

    // Sagittal MR: i → posterior, j → inferior, slices from left to right.
    let want_mr: Vec<(MrSequence, &str, u16)> = [
        (cfg.series.stir, MrSequence::Stir, "SAG STIR", 3u16),
        (cfg.series.t1, MrSequence::T1, "SAG T1 TSE", 4),
        (cfg.series.t2, MrSequence::T2, "SAG T2 TSE", 5),
    ]
    .into_iter()
    .filter(|w| w.0)
    .map(|w| (w.1, w.2, w.3))
    .collect();
    if !want_mr.is_empty() {
        let p = &cfg.mr;
        let spacing = p.thickness_mm + p.gap_mm;
        let row_dir = Vector3::new(0.0, 1.0, 0.0);
        let col_dir = Vector3::new(0.0, 0.0, -1.0);
        let normal = row_dir.cross(&col_dir);
        let mid = Vector3::new(centre.x, centre.y + 10.0, centre.z);
        let origin = mid
            - row_dir * (p.cols as f64 - 1.0) / 2.0 * p.pixel_mm
            - col_dir * (p.rows as f64 - 1.0) / 2.0 * p.pixel_mm
            - normal * (p.slices as f64 - 1.0) / 2.0 * spacing;
        let g = SliceGrid {
            cols: p.cols,
            rows: p.rows,
            slices: p.slices,
            origin,
            row_dir,
            col_dir,
            normal,
            pixel_mm: p.pixel_mm,
            spacing_mm: spacing,
            thickness_mm: p.thickness_mm,
        };
        let contrasts: Vec<_> = want_mr.iter().map(|w| mr_contrast(w.0)).collect();
        let imgs = render(&spine, &g, &contrasts, 2, 4);
        for ((seq, desc, number), mut img) in want_mr.into_iter().zip(imgs) {
            apply_bias(&mut img, &g, mid, p.bias_pct);
            if p.snr > 0.0 {
                let sigma = f64::from(mr_contrast(seq)[model::Tissue::Muscle as usize]) / p.snr;
                add_noise(
                    &mut img,
                    p.rows * p.cols,
                    sigma,
                    true,
                    cfg.seed ^ u64::from(number),
                );
            }
            let mut b = base.clone();
            let (scan, variant, options, name, tr, te, ti) = match seq {
                MrSequence::Stir => (
                    "SE\\IR",
                    "SK\\SP\\MP",
                    "IR",
                    "*tir2d1_13",
                    4000.0,
                    40.0,
                    Some(160.0),
                ),
                MrSequence::T1 => ("SE", "SK\\SP\\OSP", "", "*tse2d1_3", 550.0, 11.0, None),
                MrSequence::T2 => ("SE", "SK\\SP\\OSP", "", "*tse2d1_17", 3500.0, 95.0, None),
            };
            for e in [
                s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.4"),
                s(tags::MODALITY, VR::CS, "MR"),
                s(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\M\\ND"),
                s(tags::SCANNING_SEQUENCE, VR::CS, scan),
                s(tags::SEQUENCE_VARIANT, VR::CS, variant),
                s(tags::SCAN_OPTIONS, VR::CS, options),
                s(tags::MR_ACQUISITION_TYPE, VR::CS, "2D"),
                s(tags::SEQUENCE_NAME, VR::SH, name),
                ds(tags::REPETITION_TIME, &[tr]),
                ds(tags::ECHO_TIME, &[te]),
                ds(tags::MAGNETIC_FIELD_STRENGTH, &[1.5]),
                ds(tags::IMAGING_FREQUENCY, &[63.676]),
                s(tags::ECHO_TRAIN_LENGTH, VR::IS, "13"),
                ds(tags::FLIP_ANGLE, &[150.0]),
                ds(tags::SPACING_BETWEEN_SLICES, &[spacing]),
            ] {
                b.put(e);
            }
            if let Some(ti) = ti {
                b.put(ds(tags::INVERSION_TIME, &[ti]));
            }
            let st = write_series(
                cfg,
                &dir,
                b,
                &g,
                &img,
                number,
                desc,
                "MR",
                seq_label(seq),
                |v| v.round().clamp(0.0, 65535.0) as u16,
            )?;
            series.push(st);
        }
    }

    if cfg.series.ct {
        let p = &cfg.ct;
        let (z0, z1) = (lo.z - 8.0, hi.z + 8.0);
        let slices = if p.slices > 0 {
            p.slices
        } else {
            ((z1 - z0) / p.slice_mm).ceil() as usize + 1
        };
        let row_dir = Vector3::new(1.0, 0.0, 0.0);
        let col_dir = Vector3::new(0.0, 1.0, 0.0);
        let normal = Vector3::new(0.0, 0.0, 1.0);
        let mid = Vector3::new(centre.x, centre.y + 15.0, (z0 + z1) / 2.0);
        let half = (p.matrix as f64 - 1.0) / 2.0 * p.pixel_mm;
        let origin = mid
            - row_dir * half
            - col_dir * half
            - normal * (slices as f64 - 1.0) / 2.0 * p.slice_mm;
        let g = SliceGrid {
            cols: p.matrix,
            rows: p.matrix,
            slices,
            origin,
            row_dir,
            col_dir,
            normal,
            pixel_mm: p.pixel_mm,
            spacing_mm: p.slice_mm,
            thickness_mm: p.slice_mm,
        };
        let mut img = render(&spine, &g, &[ct_contrast(spine.trabecular_hu)], 2, 2)
            .pop()
            .unwrap_or_default();
        add_noise(
            &mut img,
            p.matrix * p.matrix,
            p.noise_hu,
            false,
            cfg.seed ^ 2,
        );
        let mut b = base.clone();
        for e in [
            s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
            s(tags::MODALITY, VR::CS, "CT"),
            s(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL"),
            ds(tags::KVP, &[120.0]),
            s(tags::CONVOLUTION_KERNEL, VR::SH, "BONE"),
            ds(tags::GANTRY_DETECTOR_TILT, &[0.0]),
            ds(tags::RESCALE_INTERCEPT, &[-1024.0]),
            ds(tags::RESCALE_SLOPE, &[1.0]),
            s(tags::RESCALE_TYPE, VR::LO, "HU"),
            ds(tags::WINDOW_CENTER, &[400.0]),
            ds(tags::WINDOW_WIDTH, &[1800.0]),
        ] {
            b.put(e);
        }
        let st = write_series(
            cfg,
            &dir,
            b,
            &g,
            &img,
            2,
            "AX CT SPINE BONE",
            "CT",
            "CT",
            |v| (v + 1024.0).round().clamp(0.0, 65535.0) as u16,
        )?;
        series.push(st);
    }

    let truth = Truth {
        case: cfg.name.clone(),
        seed: cfg.seed,
        generator: format!("spinetriage-phantom {}", env!("CARGO_PKG_VERSION")),
        conventions: CONVENTIONS.into(),
        study_uid,
        frame_of_reference_uid: for_uid,
        series,
        levels: truth::truth(&spine),
        config: cfg.clone(),
    };
    let path = dir.join("truth.json");
    let json = serde_json::to_string_pretty(&truth).map_err(|e| PhantomError::Write {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&path, json).map_err(|e| PhantomError::Write {
        path,
        reason: e.to_string(),
    })?;
    Ok(truth)
}

fn seq_label(s: MrSequence) -> &'static str {
    match s {
        MrSequence::Stir => "STIR",
        MrSequence::T1 => "T1",
        MrSequence::T2 => "T2",
    }
}

#[allow(clippy::too_many_arguments)]
fn write_series(
    cfg: &PhantomConfig,
    dir: &Path,
    mut base: InMemDicomObject,
    g: &SliceGrid,
    img: &[f32],
    number: u16,
    desc: &str,
    modality: &str,
    contrast: &str,
    store: impl Fn(f32) -> u16 + Sync,
) -> Result<SeriesTruth, PhantomError> {
    let uid = rng::uid(cfg.seed, &format!("{}/series/{number}", cfg.name));
    let folder = format!("dicom/{number:02}_{}", contrast.to_lowercase());
    let sdir = dir.join(&folder);
    std::fs::create_dir_all(&sdir).map_err(|e| PhantomError::Write {
        path: sdir.clone(),
        reason: e.to_string(),
    })?;
    let o = [g.row_dir, g.col_dir];
    for e in [
        s(tags::SERIES_INSTANCE_UID, VR::UI, uid.clone()),
        s(tags::SERIES_NUMBER, VR::IS, number.to_string()),
        s(tags::SERIES_DESCRIPTION, VR::LO, desc),
        ds(
            tags::IMAGE_ORIENTATION_PATIENT,
            &[o[0].x, o[0].y, o[0].z, o[1].x, o[1].y, o[1].z],
        ),
        ds(tags::PIXEL_SPACING, &[g.pixel_mm, g.pixel_mm]),
        ds(tags::SLICE_THICKNESS, &[g.thickness_mm]),
        us(tags::ROWS, g.rows as u16),
        us(tags::COLUMNS, g.cols as u16),
    ] {
        base.put(e);
    }
    let plane = g.rows * g.cols;
    (0..g.slices).into_par_iter().try_for_each(|k| {
        let pos = g.at(0.0, 0.0, k as f64);
        let sop = rng::uid(cfg.seed, &format!("{}/{number}/{k}", cfg.name));
        // Names carry no order: readers must sort by geometry, never by file name.
        let name = &sop[sop.len() - 12..];
        let attrs = SliceAttrs {
            sop_instance_uid: sop.clone(),
            // Numbered against the slice normal, as many scanners do.
            instance_number: (g.slices - k) as i32,
            position: [pos.x, pos.y, pos.z],
            slice_location: pos.dot(&g.normal),
        };
        let px: Vec<u16> = img[k * plane..(k + 1) * plane]
            .iter()
            .map(|&v| store(v))
            .collect();
        write_slice(
            &sdir.join(format!("IM{name}.dcm")),
            &base,
            &attrs,
            &px,
            g.rows,
            g.cols,
            cfg.syntax,
        )
        .map(|_| ())
    })?;
    Ok(SeriesTruth {
        uid,
        modality: modality.into(),
        contrast: contrast.into(),
        folder,
        dims: [g.rows, g.cols, g.slices],
        pixel_mm: g.pixel_mm,
        spacing_mm: g.spacing_mm,
        thickness_mm: g.thickness_mm,
    })
}
