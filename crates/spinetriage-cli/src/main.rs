//! The `spinetriage` command: argument parsing and wiring of the pipeline stages only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use spinetriage_dicom::{discover, DiscoverOptions, Inventory, Limits, SeriesKind};
use spinetriage_phantom::{PhantomConfig, Syntax};
use spinetriage_volume::{assemble, read_nifti, GeometryProblem, LpsPoint, Volume};

mod accuracy;
mod analyze;
mod batch;
mod marrow_bench;

fn analyze_cmd(
    paths: &[PathBuf],
    out: &Path,
    anchor: Option<&str>,
    clinical: Option<&Path>,
    prior: Option<&Path>,
    (masks, include_phi): (bool, bool),
    input: &Input,
) -> Result<u8> {
    let limits = &input.limits;
    let anchor = anchor
        .map(|a| a.parse::<spinetriage_segment::Anchor>())
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let clinical = analyze::clinical_for(clinical, paths)?;
    let prior = match prior {
        Some(p) => {
            let (pv, perr, _) = load_all(&[p.to_path_buf()], input);
            for e in &perr {
                eprintln!("error (prior): {e}");
            }
            if pv.is_empty() {
                bail!("no readable series in the prior study {}", p.display());
            }
            Some(analyze::findings_of(&pv)?)
        }
        None => None,
    };
    let (vols, errors, inv) = load_all(paths, input);
    for e in &errors {
        eprintln!("error: {e}");
    }
    if vols.is_empty() {
        return Ok(exit::NO_INPUT);
    }
    // Patient identity is read only on request, from each study's first instance.
    let patients: std::collections::BTreeMap<String, spinetriage_dicom::Patient> = if include_phi {
        inv.studies
            .iter()
            .filter_map(|st| {
                let h = st.series.iter().flat_map(|s| s.instances.first()).next()?;
                let p = spinetriage_dicom::read_patient(&h.path, limits).ok()?;
                Some((st.uid.clone(), p))
            })
            .collect()
    } else {
        Default::default()
    };
    let results = analyze::run(
        vols,
        out,
        anchor.as_ref(),
        clinical.as_ref(),
        prior.as_ref(),
        masks,
        &patients,
    )?;
    analyze::print(&results);
    println!("wrote {}", out.join("report.html").display());
    let failed = results.iter().any(analyze::StudyResult::failed);
    Ok(if errors.is_empty() && !failed {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

/// The phantom suite of a benchmark.
#[derive(clap::Args)]
struct SuiteArgs {
    /// Cases (default: every built-in case).
    #[arg(long, value_delimiter = ',')]
    cases: Option<Vec<String>>,
    /// Passes over the cases, each with new random settings.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// Seed of the settings.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Exit codes, documented in the README.
mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An error stopped the command.
    pub const FAILURE: u8 = 1;
    /// Bad arguments (clap's own code).
    pub const USAGE: u8 = 2;
    /// The input held no readable DICOM study.
    pub const NO_INPUT: u8 = 3;
    /// The command completed, but some files or series could not be read.
    pub const PARTIAL: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "spinetriage",
    version,
    about = "Triage of DICOM spine studies for vertebral compression fractures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inventory of studies and series under files, folders or DICOMDIRs.
    Scan {
        /// Files, folders or DICOMDIR files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Assemble every series into volumes and print their geometry (DICOM or NIfTI input).
    Load {
        /// Files, folders, DICOMDIRs, or .nii/.nii.gz files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        nifti: NiftiArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Generate synthetic studies with ground truth (`truth.json`).
    Phantom(Box<PhantomArgs>),
    /// Find, label and measure the vertebrae of each study; write OUT/levels.json and levels.csv.
    Analyze {
        /// Study folders or files (DICOM or NIfTI).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long)]
        out: PathBuf,
        /// Label anchor: `L5` (the lowest body found is L5) or `L1@-312.5` (nearest to LPS z).
        #[arg(long)]
        anchor: Option<String>,
        /// Clinical facts (TOML or JSON; default: `clinical.toml` or `clinical.json` beside the
        /// study). Absent facts are unknown, never assumed.
        #[arg(long)]
        clinical: Option<PathBuf>,
        /// An earlier study of the same patient, for height change, new fractures and
        /// progression.
        #[arg(long)]
        prior: Option<PathBuf>,
        /// Also write the body masks as a NIfTI label map (`segmentation.nii.gz`).
        #[arg(long)]
        seg: bool,
        /// Copy the patient's name, ID and birth date into the reports (off by default: no PHI
        /// in any output).
        #[arg(long)]
        include_phi: bool,
        #[command(flatten)]
        nifti: NiftiArgs,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Every study under ROOT (any layout, with or without DICOMDIR), in parallel within a
    /// memory budget; one output folder per study, named by a hash of its UID;
    /// `batch-summary.{csv,json}`. Resumable: complete studies are skipped.
    Batch {
        /// Root folders.
        #[arg(required = true)]
        roots: Vec<PathBuf>,
        /// Output root.
        #[arg(short, long)]
        out: PathBuf,
        /// Clinical facts per study: `<StudyInstanceUID>.toml|json` or `<study-dir>.toml|json`.
        #[arg(long)]
        clinical_dir: Option<PathBuf>,
        /// Worker threads.
        #[arg(long, default_value_t = default_jobs())]
        jobs: usize,
        /// Only shard K of N (0-based: Slurm array / Kubernetes Indexed Job index).
        #[arg(long)]
        shard: Option<spinetriage_batch::Shard>,
        /// Reprocess studies that are already complete.
        #[arg(long)]
        force: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Also write segmentation label maps.
        #[arg(long)]
        seg: bool,
        /// Memory budget, MB (default: twice the largest study's volumes).
        #[arg(long)]
        max_memory_mb: Option<u64>,
        /// Copy the patient's name, ID and birth date into the reports (off by default).
        #[arg(long)]
        include_phi: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Marrow findings (oedema, replacement, posterior elements, cleft) against phantom truth,
    /// with bias fields up to ±20 % and SNR 10–30: sensitivity and specificity per finding.
    BenchMarrow {
        #[command(flatten)]
        suite: SuiteArgs,
        /// Print each run's settings.
        #[arg(short, long)]
        verbose: bool,
    },
    /// The batch's studies as a worklist, most urgent first (from OUT/batch-summary.json).
    Worklist {
        /// Output root of a batch.
        out: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Merges shard summaries in OUT (or the given files) into `OUT/batch-summary.{csv,json}`.
    Merge {
        /// Output root of the shards.
        out: PathBuf,
        /// Shard summary files (default: every `batch-summary-shard-*.json` in OUT).
        files: Vec<PathBuf>,
    },
    /// Morphometry accuracy against phantom ground truth (varied noise, resolution, curvature,
    /// rotation): height MAE, height-loss MAE, Genant agreement, label accuracy.
    BenchAccuracy {
        #[command(flatten)]
        suite: SuiteArgs,
        /// Run only the variant with this index (0-based), to reproduce one run.
        #[arg(long)]
        only: Option<usize>,
        /// Write every run's per-level errors here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Print each run.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Generate a phantom study in a temporary folder and run every stage on it.
    Demo {
        /// Keep the generated study in this folder instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct LimitArgs {
    /// Largest accepted voxel count of one image or volume (refused before allocation).
    #[arg(long, default_value_t = Limits::default().max_voxels)]
    max_voxels: u64,
    /// Largest accepted file, bytes.
    #[arg(long, default_value_t = Limits::default().max_file_bytes)]
    max_file_bytes: u64,
}

/// The contrast of NIfTI inputs, which carry no sequence metadata.
#[derive(clap::Args)]
struct NiftiArgs {
    /// Contrast of .nii/.nii.gz inputs (NIfTI has no sequence metadata, so it is never
    /// guessed): ct, t1, t2, stir, t2-fat-sat or mr-other.
    #[arg(long, value_enum, default_value_t = NiftiKind::MrOther)]
    nifti_kind: NiftiKind,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NiftiKind {
    Ct,
    T1,
    T2,
    Stir,
    T2FatSat,
    MrOther,
}

impl NiftiArgs {
    /// The input options of a command with these arguments and `limits`.
    fn input(&self, limits: &LimitArgs) -> Input {
        Input {
            limits: limits.limits(),
            nifti_kind: self.kind(),
        }
    }

    fn kind(&self) -> SeriesKind {
        match self.nifti_kind {
            NiftiKind::Ct => SeriesKind::Ct,
            NiftiKind::T1 => SeriesKind::MrT1,
            NiftiKind::T2 => SeriesKind::MrT2,
            NiftiKind::Stir => SeriesKind::MrStir,
            NiftiKind::T2FatSat => SeriesKind::MrT2FatSat,
            NiftiKind::MrOther => SeriesKind::MrOther,
        }
    }
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let mut l = Limits::default();
        l.max_voxels = self.max_voxels;
        l.max_file_bytes = self.max_file_bytes;
        l
    }
}

#[derive(clap::Args)]
struct PhantomArgs {
    /// Output folder; each case goes in OUT/<case>/.
    out: PathBuf,
    /// One named case (see --list).
    #[arg(long, conflicts_with = "suite")]
    case: Option<String>,
    /// A named suite: `standard` covers every finding.
    #[arg(long)]
    suite: Option<String>,
    /// List the case names and exit.
    #[arg(long)]
    list: bool,
    /// Seed of noise and UIDs; output is identical for a seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Transfer syntax: explicit, implicit, rle, jpeg-ls, j2k.
    #[arg(long, default_value = "explicit")]
    syntax: String,
    /// CT in-plane pixel size, mm.
    #[arg(long)]
    ct_pixel_mm: Option<f64>,
    /// CT matrix (rows = columns).
    #[arg(long)]
    ct_matrix: Option<usize>,
    /// CT slice spacing and thickness, mm.
    #[arg(long)]
    ct_slice_mm: Option<f64>,
    /// CT slice count (default: cover the column).
    #[arg(long)]
    ct_slices: Option<usize>,
    /// CT noise σ, HU.
    #[arg(long)]
    ct_noise_hu: Option<f64>,
    /// MR in-plane pixel size, mm.
    #[arg(long)]
    mr_pixel_mm: Option<f64>,
    /// MR slice thickness, mm.
    #[arg(long)]
    mr_slice_mm: Option<f64>,
    /// MR SNR in muscle (0: no noise).
    #[arg(long)]
    snr: Option<f64>,
    /// MR bias-field peak amplitude, %.
    #[arg(long)]
    bias_pct: Option<f64>,
    /// Scale of lordosis and kyphosis (0 straight, 1 normal).
    #[arg(long)]
    curvature: Option<f64>,
    /// Lateral curve amplitude, degrees.
    #[arg(long)]
    scoliosis_deg: Option<f64>,
    /// Whole-spine rotation about L,P,S axes, degrees, e.g. `5,0,10`.
    #[arg(long, value_delimiter = ',', num_args = 3)]
    rotate_deg: Option<Vec<f64>>,
    /// Write no CT.
    #[arg(long)]
    no_ct: bool,
    /// Write no MR.
    #[arg(long)]
    no_mr: bool,
}

fn main() -> ExitCode {
    // `spinetriage scan … | head` must end quietly like other Unix tools, not panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition before any thread or output exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    spinetriage_batch::bound_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("spinetriage: error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Scan {
            paths,
            json,
            limits,
        } => {
            let inv = discover(&paths, &DiscoverOptions::with_limits(limits.limits()));
            if json {
                println!("{}", serde_json::to_string_pretty(&ScanJson::from(&inv))?);
            } else {
                print_inventory(&inv);
            }
            Ok(inventory_code(&inv))
        }
        Command::Load {
            paths,
            json,
            nifti,
            limits,
        } => load(&paths, json, &nifti.input(&limits)),
        Command::Phantom(args) => phantom(*args),
        Command::Demo { keep } => demo(keep),
        Command::Analyze {
            paths,
            out,
            anchor,
            clinical,
            prior,
            seg,
            include_phi,
            nifti,
            limits,
        } => analyze_cmd(
            &paths,
            &out,
            anchor.as_deref(),
            clinical.as_deref(),
            prior.as_deref(),
            (seg, include_phi),
            &nifti.input(&limits),
        ),
        Command::Batch {
            roots,
            out,
            clinical_dir,
            jobs,
            shard,
            force,
            quiet,
            seg,
            max_memory_mb,
            include_phi,
            limits,
        } => {
            let opts = spinetriage_batch::BatchOptions {
                out,
                clinical_dir,
                jobs,
                shard,
                force,
                limits: limits.limits(),
                memory_budget: max_memory_mb.map(|m| m << 20),
                anchor: None,
                masks: seg,
                include_phi,
            };
            let failed = batch::run(&roots, &opts, quiet)?;
            Ok(if failed { exit::PARTIAL } else { exit::OK })
        }
        Command::BenchMarrow { suite, verbose } => {
            let s = marrow_bench::bench(suite.cases, suite.repeats, suite.seed, verbose)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(exit::OK)
        }
        Command::Worklist { out, json } => {
            batch::worklist(&out, json)?;
            Ok(exit::OK)
        }
        Command::Merge { out, files } => {
            let failed = batch::merge_cmd(&out, &files)?;
            Ok(if failed { exit::PARTIAL } else { exit::OK })
        }
        Command::BenchAccuracy {
            suite,
            only,
            json,
            verbose,
        } => {
            let s = accuracy::bench(
                suite.cases,
                suite.repeats,
                suite.seed,
                only,
                json.as_deref(),
                verbose,
            )?;
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(exit::OK)
        }
    }
}

fn inventory_code(inv: &Inventory) -> u8 {
    if inv.studies.is_empty() {
        exit::NO_INPUT
    } else if !inv.errors.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

/// `scan --json` output: the inventory without per-instance headers.
#[derive(Serialize)]
struct ScanJson {
    files_examined: usize,
    non_dicom: usize,
    non_image: usize,
    dicomdirs: Vec<PathBuf>,
    errors: Vec<String>,
    studies: Vec<StudyJson>,
}

#[derive(Serialize)]
struct StudyJson {
    study_uid: String,
    date: Option<String>,
    series: Vec<SeriesJson>,
}

#[derive(Serialize)]
struct SeriesJson {
    series_uid: String,
    number: Option<i64>,
    description: Option<String>,
    modality: String,
    class: spinetriage_dicom::SeriesKind,
    class_reason: String,
    plane: spinetriage_dicom::Plane,
    obliquity_deg: Option<f64>,
    instances: usize,
    slices: usize,
    rows: u32,
    columns: u32,
    pixel_spacing_mm: Option<[f64; 2]>,
    slice_spacing_mm: Option<f64>,
    transfer_syntax: String,
    frame_of_reference_uid: Option<String>,
    problems: Vec<String>,
}

impl From<&Inventory> for ScanJson {
    fn from(inv: &Inventory) -> Self {
        ScanJson {
            files_examined: inv.files_examined,
            non_dicom: inv.non_dicom.len(),
            non_image: inv.non_image,
            dicomdirs: inv.dicomdirs.clone(),
            errors: inv.errors.iter().map(|e| e.to_string()).collect(),
            studies: inv
                .studies
                .iter()
                .map(|st| StudyJson {
                    study_uid: st.uid.clone(),
                    date: st.date.clone(),
                    series: st.series.iter().map(series_json).collect(),
                })
                .collect(),
        }
    }
}

fn series_json(s: &spinetriage_dicom::Series) -> SeriesJson {
    let first = &s.instances[0];
    // Geometry from headers only: the same plan assembly follows, without reading pixels.
    let (slices, spacing, problems) = match spinetriage_volume::plan(s, &Limits::default()) {
        Ok(plans) => (
            plans.iter().map(|p| p.source_slices()).sum(),
            plans.first().map(|p| p.grid.spacing_mm()[2]),
            plans
                .iter()
                .flat_map(|p| p.problems.iter())
                .map(problem_text)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        ),
        Err(e) => (0, None, vec![e.to_string()]),
    };
    SeriesJson {
        series_uid: s.uid.clone(),
        number: s.number,
        description: s.description.clone(),
        modality: s.modality.clone(),
        class: s.classification.kind,
        class_reason: s.classification.reason.clone(),
        plane: s.classification.plane,
        obliquity_deg: s.classification.obliquity_deg,
        instances: s.instances.len(),
        slices,
        rows: first.rows,
        columns: first.columns,
        pixel_spacing_mm: first.frame_geometry(0).pixel_spacing_mm,
        slice_spacing_mm: spacing,
        transfer_syntax: first.transfer_syntax.clone(),
        frame_of_reference_uid: first.frame_of_reference_uid.clone(),
        problems,
    }
}

/// One line describing a geometry problem and what was done about it.
fn problem_text(p: &GeometryProblem) -> String {
    match p {
        GeometryProblem::MixedStacks { stacks } => {
            format!("mixed sizes/orientations: split into {stacks} stacks")
        }
        GeometryProblem::DuplicatePositions { positions, action } => {
            format!("{positions} duplicate slice positions: {action}")
        }
        GeometryProblem::UnevenSpacing {
            min_gap_mm,
            max_gap_mm,
            resampled_to_mm,
        } => format!(
            "uneven spacing {min_gap_mm:.2}–{max_gap_mm:.2} mm: resampled to {resampled_to_mm:.2} mm"
        ),
        GeometryProblem::MissingSlices { count } => {
            format!("{count} missing slices: filled by interpolation")
        }
        GeometryProblem::GantryTilt {
            angle_deg,
            shift_per_slice_mm,
        } => format!(
            "gantry tilt {angle_deg:.1}° ({shift_per_slice_mm:.2} mm shift per slice): resampled to an orthogonal grid"
        ),
        GeometryProblem::SingleSlice { thickness_mm } => {
            format!("single slice (2-D image, {thickness_mm:.1} mm thick)")
        }
        other => format!("{other:?}"),
    }
}

fn print_inventory(inv: &Inventory) {
    println!(
        "{} files examined: {} studies, {} non-DICOM skipped, {} non-image objects, {} errors",
        inv.files_examined,
        inv.studies.len(),
        inv.non_dicom.len(),
        inv.non_image,
        inv.errors.len()
    );
    for st in &inv.studies {
        println!(
            "\nstudy {} ({})",
            st.uid,
            st.date.as_deref().unwrap_or("no date")
        );
        println!(
            "  {:>4}  {:<9} {:<9} {:>6} {:>9}  {:>11}  {:<24} reason / problems",
            "#", "class", "plane", "slices", "matrix", "spacing mm", "description"
        );
        for s in &st.series {
            let j = series_json(s);
            let spacing = match (j.pixel_spacing_mm, j.slice_spacing_mm) {
                (Some(p), Some(z)) => format!("{:.2}×{:.2}×{:.2}", p[0], p[1], z),
                (Some(p), None) => format!("{:.2}×{:.2}", p[0], p[1]),
                _ => "?".into(),
            };
            println!(
                "  {:>4}  {:<9} {:<9} {:>6} {:>9}  {:>11}  {:<24} {}",
                j.number.map_or("-".into(), |n| n.to_string()),
                j.class.label(),
                format!("{:?}", j.plane).to_lowercase(),
                j.slices,
                format!("{}×{}", j.rows, j.columns),
                spacing,
                j.description
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(24)
                    .collect::<String>(),
                j.class_reason
            );
            for p in &j.problems {
                println!("  {:>4}  ! {p}", "");
            }
        }
    }
    for e in &inv.errors {
        println!("error: {e}");
    }
}

#[derive(Serialize)]
struct VolumeJson {
    source: String,
    study_uid: String,
    series_uid: String,
    kind: spinetriage_dicom::SeriesKind,
    description: Option<String>,
    dims_ijk: [usize; 3],
    /// Bytes the values take in memory (2 per voxel for integer series, else 4).
    bytes: usize,
    spacing_mm: [f64; 3],
    index_to_lps: [[f64; 4]; 4],
    min: f32,
    max: f32,
    mean: f64,
    problems: Vec<GeometryProblem>,
}

fn volume_json(v: &Volume) -> VolumeJson {
    let a = &v.grid.index_to_lps;
    let stats = v.value_stats();
    VolumeJson {
        source: v
            .sources
            .first()
            .and_then(|p| p.parent())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        study_uid: v.study_uid.clone(),
        series_uid: v.series_uid.clone(),
        kind: v.kind,
        description: v.description.clone(),
        dims_ijk: v.grid.dims,
        bytes: v.data.bytes(),
        spacing_mm: v.grid.spacing_mm(),
        index_to_lps: std::array::from_fn(|r| std::array::from_fn(|c| a[(r, c)])),
        min: stats.min,
        max: stats.max,
        mean: stats.mean,
        problems: v.problems.clone(),
    }
}

fn is_nifti(p: &Path) -> bool {
    let n = p.to_string_lossy().to_ascii_lowercase();
    n.ends_with(".nii") || n.ends_with(".nii.gz")
}

/// What reading the inputs needs: the allocation limits, and the contrast of NIfTI files.
struct Input {
    limits: Limits,
    nifti_kind: SeriesKind,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            limits: Limits::default(),
            nifti_kind: SeriesKind::MrOther,
        }
    }
}

/// Loads every volume under `paths`: NIfTI files directly (as `input.nifti_kind`), everything
/// else through discovery.
fn load_all(paths: &[PathBuf], input: &Input) -> (Vec<Volume>, Vec<String>, Inventory) {
    let (limits, nifti_kind) = (&input.limits, input.nifti_kind);
    let (nifti, dicom): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| is_nifti(p));
    let mut vols = Vec::new();
    let mut errors = Vec::new();
    for p in &nifti {
        match read_nifti(p, nifti_kind, limits) {
            Ok(v) => vols.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let inv = if dicom.is_empty() {
        Inventory::default()
    } else {
        discover(&dicom, &DiscoverOptions::with_limits(*limits))
    };
    errors.extend(inv.errors.iter().map(|e| e.to_string()));
    for st in &inv.studies {
        for s in &st.series {
            match assemble(s, limits) {
                Ok(v) => vols.extend(v),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    (vols, errors, inv)
}

fn load(paths: &[PathBuf], json: bool, input: &Input) -> Result<u8> {
    let (vols, errors, _) = load_all(paths, input);
    if json {
        #[derive(Serialize)]
        struct Out {
            volumes: Vec<VolumeJson>,
            errors: Vec<String>,
        }
        let out = Out {
            volumes: vols.iter().map(volume_json).collect(),
            errors: errors.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for v in &vols {
            print_volume(v);
        }
        for e in &errors {
            println!("error: {e}");
        }
    }
    Ok(if vols.is_empty() {
        exit::NO_INPUT
    } else if errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

fn print_volume(v: &Volume) {
    let j = volume_json(v);
    println!(
        "{} {:<9} {}×{}×{} voxels, {:.3}×{:.3}×{:.3} mm, values {:.1}…{:.1} (mean {:.1})  {}",
        j.series_uid,
        j.kind.label(),
        j.dims_ijk[0],
        j.dims_ijk[1],
        j.dims_ijk[2],
        j.spacing_mm[0],
        j.spacing_mm[1],
        j.spacing_mm[2],
        j.min,
        j.max,
        j.mean,
        j.description.unwrap_or_default()
    );
    let o = v.grid.to_lps(spinetriage_volume::IndexPoint(nalgebra_point(
        0.0, 0.0, 0.0,
    )));
    println!(
        "    voxel (0,0,0) at LPS ({:.2}, {:.2}, {:.2}) mm; axes i {:?} j {:?} k {:?}",
        o.0.x,
        o.0.y,
        o.0.z,
        round3(v.grid.direction(0)),
        round3(v.grid.direction(1)),
        round3(v.grid.direction(2))
    );
    for p in &v.problems {
        println!("    ! {}", problem_text(p));
    }
}

fn nalgebra_point(x: f64, y: f64, z: f64) -> spinetriage_volume::Point3<f64> {
    spinetriage_volume::Point3::new(x, y, z)
}

fn round3(v: spinetriage_volume::Vector3<f64>) -> [f64; 3] {
    [v.x, v.y, v.z].map(|x| (x * 1000.0).round() / 1000.0)
}

/// `override_with!(a.flag => c.field, ...)`: assigns every flag that was given.
macro_rules! override_with {
    ($($src:expr => $dst:expr),* $(,)?) => {
        $(if let Some(v) = $src {
            $dst = v;
        })*
    };
}

fn phantom(a: PhantomArgs) -> Result<u8> {
    if a.list {
        for c in spinetriage_phantom::CASES {
            println!("{c}");
        }
        return Ok(exit::OK);
    }
    let syntax = Syntax::parse(&a.syntax).with_context(|| {
        format!(
            "unknown --syntax {:?}: explicit, implicit, rle, jpeg-ls, j2k",
            a.syntax
        )
    })?;
    let mut cfgs: Vec<PhantomConfig> = match (&a.case, a.suite.as_deref()) {
        (Some(c), _) => vec![spinetriage_phantom::case(c, a.seed)
            .with_context(|| format!("unknown case {c:?}; --list shows the cases"))?],
        (None, Some("standard")) => spinetriage_phantom::standard_suite(a.seed),
        (None, Some(other)) => bail!("unknown suite {other:?}: the suite is `standard`"),
        (None, None) => vec![spinetriage_phantom::case("normal", a.seed)
            .context("built-in case `normal` missing")?],
    };
    for c in &mut cfgs {
        c.syntax = syntax;
        // Each flag given on the command line overrides the case's protocol.
        override_with!(
            a.ct_pixel_mm => c.ct.pixel_mm,
            a.ct_matrix => c.ct.matrix,
            a.ct_slice_mm => c.ct.slice_mm,
            a.ct_slices => c.ct.slices,
            a.ct_noise_hu => c.ct.noise_hu,
            a.mr_pixel_mm => c.mr.pixel_mm,
            a.mr_slice_mm => c.mr.thickness_mm,
            a.snr => c.mr.snr,
            a.bias_pct => c.mr.bias_pct,
            a.curvature => c.spine.curvature,
            a.scoliosis_deg => c.spine.scoliosis_deg,
        );
        if let Some(r) = &a.rotate_deg {
            c.spine.rotation_deg = [r[0], r[1], r[2]];
        }
        if a.no_ct {
            c.series.ct = false;
        }
        if a.no_mr {
            c.series.stir = false;
            c.series.t1 = false;
            c.series.t2 = false;
        }
    }
    for c in &cfgs {
        let t = spinetriage_phantom::generate(c, &a.out)
            .with_context(|| format!("generating case {}", c.name))?;
        println!(
            "{}: {} series, {} levels → {}",
            c.name,
            t.series.len(),
            t.levels.len(),
            a.out.join(&c.name).display()
        );
    }
    Ok(exit::OK)
}

fn demo(keep: Option<PathBuf>) -> Result<u8> {
    let tmp;
    let kept = keep.is_some();
    let out = match keep {
        Some(p) => p,
        None => {
            tmp = tempfile::tempdir().context("creating a temporary folder")?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = spinetriage_phantom::case("acute-wedge-l1", 1).context("built-in case missing")?;
    println!(
        "1. phantom: generating case {} in {}",
        cfg.name,
        out.display()
    );
    let truth = spinetriage_phantom::generate(&cfg, &out)?;
    let study = out.join(&cfg.name);
    println!("\n2. scan: discovery and series classification");
    let limits = Limits::default();
    let inv = discover(
        std::slice::from_ref(&study),
        &DiscoverOptions::with_limits(limits),
    );
    print_inventory(&inv);
    println!("\n3. load: volume assembly in patient LPS coordinates");
    let (vols, errors, _) = load_all(&[study], &Input::default());
    for v in &vols {
        print_volume(v);
    }
    for e in &errors {
        println!("error: {e}");
    }
    println!("\n4. ground truth of the phantom, with each volume sampled at the level centres");
    print!(
        "  {:<5} {:>26} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "level", "centre LPS mm", "Ha mm", "Hm mm", "Hp mm", "loss %", "wedge %"
    );
    for v in &vols {
        print!(" {:>9}", v.kind.label());
    }
    println!();
    for l in &truth.levels {
        let c = l.centre_lps_mm;
        print!(
            "  {:<5} {:>26} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1}",
            l.name,
            format!("({:.1}, {:.1}, {:.1})", c[0], c[1], c[2]),
            l.heights.anterior_mm,
            l.heights.middle_mm,
            l.heights.posterior_mm,
            l.height_loss_pct,
            l.wedge_pct
        );
        for v in &vols {
            match v.sample_lps(LpsPoint::new(c[0], c[1], c[2])) {
                Some(x) => print!(" {x:>9.0}"),
                None => print!(" {:>9}", "outside"),
            }
        }
        println!();
    }
    println!("\n5. analyze: vertebrae found, labelled and measured from the images alone");
    let results = analyze::run(
        vols,
        &out.join("analysis"),
        None,
        None,
        None,
        true,
        &Default::default(),
    )?;
    analyze::print(&results);
    println!(
        "\nReport (JSON, Markdown, HTML with the sagittal image, DICOM SR, CSV, NIfTI masks) in {}{}",
        out.join("analysis").display(),
        if kept {
            ""
        } else {
            " (a temporary folder, removed on exit: use --keep DIR to keep it)"
        }
    );
    Ok(if errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}
