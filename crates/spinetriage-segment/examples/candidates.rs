//! Development aid: prints the candidate bodies and the chain found in a NIfTI or DICOM volume.
//!
//! `cargo run --release -p spinetriage-segment --example candidates -- FILE.nii.gz|DICOM_DIR`;
//! `ALLSECTIONS=1` also prints every candidate's sections, `SECTIONS=1` the chained ones'.
use spinetriage_dicom::{discover, DiscoverOptions, Limits, SeriesKind};
use spinetriage_segment::{detect, view::CanonicalView, work::Coarse};
use spinetriage_volume::{assemble, read_nifti};

/// One line per section of a candidate.
fn print_sections(c: &detect::Candidate) {
    for s in &c.sections {
        println!(
            "    plane {:3} si {:6.1} ap {:6.1} len {:5.1} x {:5.1} area {:6.0} band {:?}",
            s.plane,
            s.centroid_mm.0,
            s.centroid_mm.1,
            s.lengths_mm.0,
            s.lengths_mm.1,
            s.area_mm2,
            s.band
        );
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: candidates FILE.nii.gz");
    let limits = Limits::default();
    // A folder: its first CT, else its first series.
    let vol = if std::path::Path::new(&path).is_dir() {
        let inv = discover(
            &[path.clone().into()],
            &DiscoverOptions::with_limits(limits),
        );
        let mut vols: Vec<_> = inv
            .studies
            .iter()
            .flat_map(|st| st.series.iter())
            .filter_map(|s| assemble(s, &limits).ok())
            .flatten()
            .collect();
        vols.sort_by_key(|v| v.kind != SeriesKind::Ct);
        vols.into_iter().next().expect("no volume")
    } else {
        read_nifti(path.as_ref(), SeriesKind::MrT2, &limits).expect("read")
    };
    let view = CanonicalView::new(&vol.grid);
    // As `segment_volume` does.
    let physical_mm3: f64 = (0..3)
        .map(|n| view.dims[n] as f64 * view.spacing_mm[n])
        .product();
    let target_mm = 1.4f64.max((physical_mm3 / 8.0e6).cbrt()).min(2.5);
    let coarse = spinetriage_volume::with_voxels!(&vol.data, |a| Coarse::new(
        view.view(a),
        view.spacing_mm,
        target_mm
    ));
    println!(
        "coarse spacing {:?} dims {:?}",
        coarse.spacing_mm,
        coarse.data.dim()
    );
    let spacing_mm = coarse.spacing_mm;
    let cands = detect::candidates(coarse, vol.kind == SeriesKind::Ct);
    let mut sorted: Vec<_> = cands.iter().collect();
    sorted.sort_by(|a, b| a.centroid_mm[0].total_cmp(&b.centroid_mm[0]));
    for c in &sorted {
        if c.stability < 5 {
            continue;
        }
        println!(
            "cand si {:6.1} ap {:6.1} lr {:6.1}  h {:5.1} vol {:7.0} stab {:4} planes {}",
            c.centroid_mm[0],
            c.centroid_mm[1],
            c.centroid_mm[2],
            c.height_mm,
            c.volume_mm3,
            c.stability,
            c.sections.len()
        );
        if std::env::var_os("ALLSECTIONS").is_some() {
            print_sections(c);
        }
    }
    let chain = detect::chain(&cands, spacing_mm[2]);
    for c in &chain {
        println!(
            "CHAIN si {:6.1} ap {:6.1} lr {:6.1}  h {:5.1} stab {}",
            c.centroid_mm[0], c.centroid_mm[1], c.centroid_mm[2], c.height_mm, c.stability
        );
        if std::env::var_os("SECTIONS").is_some() {
            print_sections(c);
        }
    }
}
