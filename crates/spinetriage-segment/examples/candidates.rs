//! Development aid: prints the candidate bodies and the chain found in a NIfTI or DICOM volume.
//!
//! `cargo run --release -p spinetriage-segment --example candidates -- FILE.nii.gz`
use spinetriage_dicom::{Limits, SeriesKind};
use spinetriage_segment::{detect, view::CanonicalView, work::Coarse};
use spinetriage_volume::read_nifti;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: candidates FILE.nii.gz");
    let vol = read_nifti(path.as_ref(), SeriesKind::MrT2, &Limits::default()).expect("read");
    let view = CanonicalView::new(&vol.grid);
    let data = view.view(&vol.data);
    let coarse = Coarse::new(data, view.spacing_mm, 1.4);
    let cands = detect::candidates(&coarse, false);
    println!(
        "coarse spacing {:?} dims {:?}",
        coarse.spacing_mm,
        coarse.data.dim()
    );
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
    }
    let chain = detect::chain(&cands, coarse.spacing_mm[2]);
    for c in &chain {
        println!(
            "CHAIN si {:6.1} ap {:6.1} lr {:6.1}  h {:5.1} stab {}",
            c.centroid_mm[0], c.centroid_mm[1], c.centroid_mm[2], c.height_mm, c.stability
        );
    }
}
