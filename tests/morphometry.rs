//! Segmentation and morphometry against phantom ground truth and against expert masks.
//!
//! Bounds here are regression floors for the current method, looser than the targets
//! (height MAE ≤ 0.5 mm, Dice ≥ 0.90); `spinetriage bench-accuracy` and `docs/segmentation.md`
//! carry the measured figures.

use spinetriage_dicom::{discover, DiscoverOptions, Limits, SeriesKind};
use spinetriage_measure::analyze_volumes;
use spinetriage_segment::{segment_volume, Anchor};
use spinetriage_tests::shared_data;
use spinetriage_volume::{assemble, read_nifti, LpsPoint};

#[test]
fn ct_phantom_bodies_are_found_and_measured_within_a_voxel_or_two() {
    let cfg = spinetriage_phantom::case("biconcave-t12", 3).expect("case");
    let mut cfg = cfg;
    cfg.series = spinetriage_phantom::SeriesSet::ct_only();
    let dir = tempfile::tempdir().expect("tmp");
    let truth = spinetriage_phantom::generate(&cfg, dir.path()).expect("generate");
    let inv = discover(&[dir.path().join(&cfg.name)], &DiscoverOptions::default());
    let vols = assemble(&inv.studies[0].series[0], &Limits::default()).expect("assemble");
    let anchor: Anchor = "L5".parse().expect("anchor");
    let morph = analyze_volumes(&vols, Some(&anchor))
        .expect("segment")
        .expect("shape series");
    let mut errors = Vec::new();
    let mut found = 0;
    for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
        let tc = LpsPoint::new(t.centre_lps_mm[0], t.centre_lps_mm[1], t.centre_lps_mm[2]);
        let Some(l) = morph.levels.iter().find(|l| {
            let c = l.measurement.center_lps_mm;
            tc.distance_mm(&LpsPoint::new(c[0], c[1], c[2])) < 6.0
        }) else {
            continue;
        };
        found += 1;
        let m = &l.measurement;
        for (h, want) in [
            (m.anterior, t.heights.anterior_mm),
            (m.middle, t.heights.middle_mm),
            (m.posterior, t.heights.posterior_mm),
        ] {
            if let Some(h) = h {
                errors.push((h.height_mm - want).abs());
            }
        }
    }
    assert!(found >= 7, "found {found} of 8 bodies T10–L5");
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(errors.len() >= 18, "{} heights measured", errors.len());
    assert!(mae < 1.5, "height MAE {mae:.2} mm");
}

#[test]
fn mr_t1_phantom_bodies_have_sub_millimetre_centroids() {
    let mut cfg = spinetriage_phantom::case("normal", 2).expect("case");
    cfg.series = spinetriage_phantom::SeriesSet::mr(false, true, false);
    let dir = tempfile::tempdir().expect("tmp");
    let truth = spinetriage_phantom::generate(&cfg, dir.path()).expect("generate");
    let inv = discover(&[dir.path().join(&cfg.name)], &DiscoverOptions::default());
    let vol = assemble(&inv.studies[0].series[0], &Limits::default())
        .expect("assemble")
        .remove(0);
    let seg = segment_volume(&vol, None).expect("segment");
    let mut close = 0;
    for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
        let tc = LpsPoint::new(t.centre_lps_mm[0], t.centre_lps_mm[1], t.centre_lps_mm[2]);
        let d = seg
            .bodies
            .iter()
            .map(|b| b.centroid_lps.distance_mm(&tc))
            .fold(f64::INFINITY, f64::min);
        if d < 1.5 {
            close += 1;
        }
    }
    assert!(close >= 6, "{close} of 8 body centroids within 1.5 mm");
}

/// Dice of our body masks against the expert masks (17 real sagittal T2 lumbar exams).
#[test]
fn real_t2_lumbar_bodies_overlap_the_expert_masks() {
    let Some(dir) = shared_data("real-mr-t2-lumbar-masks") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_t2.nii.gz"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{} exams", files.len());
    let mut per_exam = Vec::new();
    let mut per_body = Vec::new();
    for f in &files {
        let img = read_nifti(f, SeriesKind::MrT2, &Limits::default()).expect("image");
        let mp = f.to_string_lossy().replace("_t2.", "_bodies.");
        let mask = read_nifti(mp.as_ref(), SeriesKind::MrOther, &Limits::default()).expect("mask");
        let Ok(seg) = segment_volume(&img, None) else {
            per_exam.push(0.0);
            continue;
        };
        let mv = seg.view.view(&mask.data);
        let labels = mask.data.iter().fold(0f32, |a, b| a.max(*b)) as usize;
        let mut dices = Vec::new();
        for l in 1..=labels {
            let expert = mv.iter().filter(|v| **v as usize == l).count();
            let best = seg
                .bodies
                .iter()
                .map(|b| {
                    let inter = b.mask.voxels().filter(|p| mv[*p] as usize == l).count();
                    2.0 * inter as f64 / (expert + b.mask.count()) as f64
                })
                .fold(0.0, f64::max);
            dices.push(best);
        }
        per_body.extend(dices.iter().copied());
        per_exam.push(dices.iter().sum::<f64>() / dices.len() as f64);
    }
    let mean = per_exam.iter().sum::<f64>() / per_exam.len() as f64;
    per_body.sort_by(f64::total_cmp);
    let median_body = per_body[per_body.len() / 2];
    println!("mean Dice {mean:.3}, median body Dice {median_body:.3}");
    // Regression floor, not the target (0.90): see docs/segmentation.md.
    assert!(mean >= 0.60, "mean Dice {mean:.3}");
    assert!(median_body >= 0.78, "median body Dice {median_body:.3}");
}
