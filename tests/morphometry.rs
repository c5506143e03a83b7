//! Segmentation and morphometry against phantom ground truth and against expert masks.
//!
//! Bounds here are regression floors for the current method, looser than the targets
//! (height MAE ≤ 0.5 mm, Dice ≥ 0.90); `spinetriage bench-accuracy` and `docs/segmentation.md`
//! carry the measured figures.

use spinetriage_dicom::{discover, DiscoverOptions, Limits, SeriesKind};
use spinetriage_measure::{
    analyze_volumes, column_axis, measure_body, measure_mask, MaskSampler, Sampler, SignalLevels,
};
use spinetriage_segment::{segment_volume, Anchor, BodyMask, LEVELS};
use spinetriage_tests::{real_t2_exams, shared_data};
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
        let Some(l) = level_near(&morph, t, 6.0) else {
            continue;
        };
        found += 1;
        let m = &l.measurement;
        // No retropulsion in this case: a normal posterior wall must read near zero.
        if let Some(r) = m.retropulsion_mm {
            assert!(
                r < 1.5,
                "{}: retropulsion {r:.2} mm on a straight posterior wall",
                t.name
            );
        }
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
fn mr_t1_phantom_bodies_have_sub_millimetre_centroids_and_heights() {
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
    let mut errors = Vec::new();
    for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
        let tc = LpsPoint::new(t.centre_lps_mm[0], t.centre_lps_mm[1], t.centre_lps_mm[2]);
        let Some(b) = seg.bodies.iter().min_by(|a, b| {
            a.centroid_lps
                .distance_mm(&tc)
                .total_cmp(&b.centroid_lps.distance_mm(&tc))
        }) else {
            continue;
        };
        if b.centroid_lps.distance_mm(&tc) >= 1.5 {
            continue;
        }
        close += 1;
        // The sacrum lies below L5 in this field of view, so the labels are known.
        assert_eq!(
            b.label.as_deref(),
            Some(t.name.as_str()),
            "label at {}",
            t.name
        );
        let m = measure_body(&vol, &seg, b);
        for (h, want) in [
            (m.anterior, t.heights.anterior_mm),
            (m.middle, t.heights.middle_mm),
            (m.posterior, t.heights.posterior_mm),
        ] {
            errors.push(h.map(|h| (h.height_mm - want).abs()).unwrap_or(25.0));
        }
    }
    assert!(close >= 7, "{close} of 8 body centroids within 1.5 mm");
    let mae = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(mae < 0.8, "T1 height MAE {mae:.2} mm");
}

/// Generates a phantom study and runs the morphometry on all its series.
fn phantom_morphometry(
    cfg: &spinetriage_phantom::PhantomConfig,
) -> (
    spinetriage_phantom::Truth,
    spinetriage_measure::StudyMorphometry,
) {
    let dir = tempfile::tempdir().expect("tmp");
    let truth = spinetriage_phantom::generate(cfg, dir.path()).expect("generate");
    let inv = discover(&[dir.path().join(&cfg.name)], &DiscoverOptions::default());
    let vols: Vec<_> = inv.studies[0]
        .series
        .iter()
        .flat_map(|s| assemble(s, &Limits::default()).expect("assemble"))
        .collect();
    let morph = analyze_volumes(&vols, None)
        .expect("segment")
        .expect("shape");
    (truth, morph)
}

/// The measured level whose centre lies within `tol_mm` of a true level's.
fn level_near<'a>(
    morph: &'a spinetriage_measure::StudyMorphometry,
    t: &spinetriage_phantom::LevelTruth,
    tol_mm: f64,
) -> Option<&'a spinetriage_measure::Level> {
    let tc = LpsPoint::new(t.centre_lps_mm[0], t.centre_lps_mm[1], t.centre_lps_mm[2]);
    morph.levels.iter().find(|l| {
        let c = l.measurement.center_lps_mm;
        tc.distance_mm(&LpsPoint::new(c[0], c[1], c[2])) < tol_mm
    })
}

/// A built-in case analysed twice, as CT only and as MR T1 + STIR ("CT"/"MR", truth, result).
fn phantom_ct_and_mr(
    case: &str,
    seed: u64,
) -> Vec<(
    &'static str,
    spinetriage_phantom::Truth,
    spinetriage_measure::StudyMorphometry,
)> {
    [true, false]
        .into_iter()
        .map(|ct| {
            let mut cfg = spinetriage_phantom::case(case, seed).expect("case");
            cfg.series = if ct {
                spinetriage_phantom::SeriesSet::ct_only()
            } else {
                spinetriage_phantom::SeriesSet::mr(true, true, false)
            };
            let (truth, morph) = phantom_morphometry(&cfg);
            (if ct { "CT" } else { "MR" }, truth, morph)
        })
        .collect()
}

/// The burst phantom's retropulsion, canal and canal compromise against its truth, on CT (bony
/// canal) and on MR T1 + STIR (thecal sac), with the normal levels' walls reading near zero.
#[test]
fn burst_retropulsion_and_canal_compromise_match_the_truth_on_ct_and_mr() {
    for (what, truth, morph) in phantom_ct_and_mr("burst-retropulsion-l1", 5) {
        let ct = what == "CT";
        let mut canals = 0;
        for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
            let Some(l) = level_near(&morph, t, 8.0) else {
                continue;
            };
            let m = &l.measurement;
            let r = m.retropulsion_mm.unwrap_or(f64::NAN);
            assert!(
                (r - t.retropulsion_mm).abs() < 1.0,
                "{what} {}: retropulsion {r:.2} mm, truth {}",
                t.name,
                t.retropulsion_mm
            );
            let want_ap = if ct {
                t.canal_ap_mm
            } else {
                t.thecal_sac_ap_mm
            };
            if let Some(c) = &m.canal {
                canals += 1;
                assert!(
                    (c.ap_mm - want_ap).abs() < 1.0,
                    "{what} {}: canal {:.2} mm, truth {want_ap}",
                    t.name,
                    c.ap_mm
                );
            }
            if t.retropulsion_mm > 0.0 {
                let share = if ct {
                    1.0
                } else {
                    t.thecal_sac_ap_mm / t.canal_ap_mm
                };
                let want = t.canal_compromise_pct / share;
                let got = l
                    .derived
                    .canal_compromise_pct
                    .expect("compromise at the burst");
                assert!(
                    (got - want).abs() < 6.0,
                    "{what} {}: compromise {got:.1} %, truth {want:.1} %",
                    t.name
                );
            }
        }
        assert!(canals >= 6, "{what}: canal measured at {canals} levels");
    }
}

/// Ventral epidural tumour at T12 on CT + MR: the thecal sac (STIR) and the tissue in front of
/// it against the truth, flagged at T12 only.
#[test]
fn epidural_tissue_and_sac_compression_are_found_at_the_tumour_level_only() {
    let cfg = spinetriage_phantom::case("epidural-tumour-t12", 4).expect("case");
    let (truth, morph) = phantom_morphometry(&cfg);
    let mut checked = 0;
    for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
        let Some(l) = level_near(&morph, t, 12.0) else {
            continue;
        };
        checked += 1;
        let sac = l.measurement.thecal_sac.as_ref().expect("sac measured");
        assert!(
            (sac.ap_mm - t.thecal_sac_ap_mm).abs() < 1.0,
            "{}: sac {:.2} mm, truth {:.2}",
            t.name,
            sac.ap_mm,
            t.thecal_sac_ap_mm
        );
        let tumour = t.epidural_mm > 0.0;
        assert_eq!(
            l.derived.epidural_soft_tissue,
            Some(tumour),
            "{}: epidural tissue {:?} mm",
            t.name,
            l.derived.epidural_thickness_mm
        );
        assert_eq!(l.derived.thecal_sac_compressed, Some(tumour), "{}", t.name);
    }
    assert!(checked >= 7, "{checked} levels checked");
}

/// The expert's label `l` as a mask on the canonical grid.
fn expert_mask(mv: &ndarray::ArrayView3<f32>, l: usize) -> Option<BodyMask> {
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for ((a, b, c), v) in mv.indexed_iter() {
        if *v as usize == l {
            for (n, x) in [a, b, c].into_iter().enumerate() {
                lo[n] = lo[n].min(x);
                hi[n] = hi[n].max(x);
            }
        }
    }
    if lo[0] > hi[0] {
        return None;
    }
    let mut mask =
        ndarray::Array3::<u8>::zeros((hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1));
    for ((a, b, c), m) in mask.indexed_iter_mut() {
        *m = u8::from(mv[[a + lo[0], b + lo[1], c + lo[2]]] as usize == l);
    }
    Some(BodyMask { origin: lo, mask })
}

/// |difference| of the A, M and P heights both measurements have, mm.
fn amp_differences(
    a: &spinetriage_measure::LevelMeasurement,
    b: &spinetriage_measure::LevelMeasurement,
) -> Vec<f64> {
    [
        (a.anterior, b.anterior),
        (a.middle, b.middle),
        (a.posterior, b.posterior),
    ]
    .into_iter()
    .filter_map(|(x, y)| Some((x?.height_mm - y?.height_mm).abs()))
    .collect()
}

/// `mask` dilated by one voxel (6-neighbourhood).
fn grown_by_one(mask: &BodyMask) -> BodyMask {
    let (a, b, c) = mask.mask.dim();
    let origin = mask.origin.map(|o| o.saturating_sub(1));
    let shift: Vec<usize> = (0..3).map(|n| mask.origin[n] - origin[n]).collect();
    let mut out = ndarray::Array3::<u8>::zeros((a + 2, b + 2, c + 2));
    for ((i, j, k), v) in mask.mask.indexed_iter() {
        if *v == 0 {
            continue;
        }
        let (i, j, k) = (i + shift[0], j + shift[1], k + shift[2]);
        out[[i, j, k]] = 1;
        for (di, dj, dk) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
            out[[i + di, j + dj, k + dk]] = 1;
            if i >= di && j >= dj && k >= dk {
                out[[i - di, j - dj, k - dk]] = 1;
            }
        }
    }
    BodyMask { origin, mask: out }
}

/// Dice of our body masks against the expert masks (17 real sagittal T2 lumbar exams), and A/M/P
/// heights of our masks against the same measurement code run on the expert masks: on the image
/// with the expert mask as the segmentation ("guided"), and on the expert mask itself read as
/// an image (its outline's own geometry, which ends half-way through the cortex).
#[test]
fn real_t2_lumbar_bodies_overlap_the_expert_masks() {
    let Some(files) = real_t2_exams() else {
        return;
    };
    assert!(files.len() >= 10, "{} exams", files.len());
    let mut per_exam = Vec::new();
    let mut per_body = Vec::new();
    let mut height_err = Vec::new();
    let mut guided_err = Vec::new();
    let mut per_exam_grown = Vec::new();
    let (mut labels_right, mut labels_absent, mut labels_wrong) = (0, 0, Vec::new());
    for f in &files {
        let img = read_nifti(f, SeriesKind::MrT2, &Limits::default()).expect("image");
        let mp = f.to_string_lossy().replace("_t2.", "_bodies.");
        let mask = read_nifti(mp.as_ref(), SeriesKind::MrOther, &Limits::default()).expect("mask");
        let Ok(seg) = segment_volume(&img, None) else {
            println!("{}: no column found", f.display());
            per_exam.push(0.0);
            continue;
        };
        let mask_values = mask.data.to_f32();
        let mv = seg.view.view(&mask_values);
        let labels = mask_values.iter().fold(0f32, |a, b| a.max(*b)) as usize;
        let mut dices = Vec::new();
        let mut dices_grown = Vec::new();
        // Each expert body's head-foot position and the label our best-matching body carries.
        let mut named = Vec::new();
        for l in 1..=labels {
            let Some(expert) = expert_mask(&mv, l) else {
                continue;
            };
            let n_expert = expert.count();
            let best = seg
                .bodies
                .iter()
                .map(|b| {
                    let inter = b.mask.voxels().filter(|p| mv[*p] as usize == l).count();
                    (2.0 * inter as f64 / (n_expert + b.mask.count()) as f64, b)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let Some((dice, body)) = best else {
                dices.push(0.0);
                continue;
            };
            dices.push(dice);
            named.push((
                seg.view.to_lps(expert.centroid_index().0).0.z,
                body.label.clone().filter(|_| dice >= 0.5),
            ));
            // The expert outlines end half-way through the cortex (docs/segmentation.md); the
            // same Dice against the outline moved out by one voxel (1 mm) says how much of the
            // difference that accounts for.
            let grown = grown_by_one(&expert);
            let inter_grown = body.mask.voxels().filter(|p| grown.contains(*p)).count();
            dices_grown.push(2.0 * inter_grown as f64 / (grown.count() + body.mask.count()) as f64);
            if dice < 0.5 {
                continue;
            }
            let on = |m: &BodyMask| {
                let s = MaskSampler {
                    mask: m,
                    view: &seg.view,
                };
                measure_mask(
                    &s,
                    &seg.view,
                    m,
                    SignalLevels::default(),
                    column_axis(&seg, body),
                )
            };
            // Our heights as the product reports them (profiles on the image), against the same
            // code run on the expert mask.
            let ours = measure_body(&img, &seg, body);
            let theirs = on(&expert);
            // The measurement stage fed the expert's segmentation instead of ours: heights on
            // the image, the expert mask guiding the rays (the body's signal levels are the
            // image's, read inside our mask).
            let guided = measure_mask(
                &img,
                &seg.view,
                &expert,
                img.levels(Some(body)),
                column_axis(&seg, body),
            );
            if std::env::var_os("SPINETRIAGE_VERBOSE").is_some() {
                let h = |m: &spinetriage_measure::LevelMeasurement| {
                    [m.anterior, m.middle, m.posterior]
                        .map(|x| x.map(|h| (h.height_mm * 10.0).round() / 10.0))
                };
                println!(
                    "  label {l}: ours {:?} {:?} expert {:?} {:?} guided {:?}",
                    h(&ours),
                    ours.status,
                    h(&theirs),
                    theirs.status,
                    h(&guided)
                );
            }
            height_err.extend(amp_differences(&ours, &theirs));
            guided_err.extend(amp_differences(&ours, &guided));
        }
        println!(
            "{}: {} bodies, Dice {:?}",
            f.file_name().unwrap_or_default().to_string_lossy(),
            seg.bodies.len(),
            dices
                .iter()
                .map(|d| (d * 100.0).round() as i32)
                .collect::<Vec<_>>()
        );
        // The expert bodies run T11..L5 (the sacrum lies below the lowest, unmasked): each of
        // our labels is right, or absent when the sacrum was not recognised, never another level.
        named.sort_by(|a, b| b.0.total_cmp(&a.0));
        let l5 = LEVELS.iter().position(|l| *l == "L5").unwrap_or(0);
        for (i, (_, ours)) in named.iter().enumerate() {
            let truth = LEVELS[l5 + i + 1 - named.len()];
            match ours {
                Some(o) if o == truth => labels_right += 1,
                Some(o) => labels_wrong.push(format!("{}: {truth} named {o}", f.display())),
                None => labels_absent += 1,
            }
        }
        per_body.extend(dices.iter().copied());
        per_exam_grown.push(dices_grown.iter().sum::<f64>() / dices_grown.len().max(1) as f64);
        per_exam.push(dices.iter().sum::<f64>() / dices.len().max(1) as f64);
    }
    let mean = per_exam.iter().sum::<f64>() / per_exam.len() as f64;
    per_body.sort_by(f64::total_cmp);
    let median_body = per_body[per_body.len() / 2];
    let height_mae = height_err.iter().sum::<f64>() / height_err.len().max(1) as f64;
    height_err.sort_by(f64::total_cmp);
    let height_median = height_err[height_err.len() / 2];
    println!(
        "mean Dice against the expert outlines grown by 1 mm: {:.3}",
        per_exam_grown.iter().sum::<f64>() / per_exam_grown.len().max(1) as f64
    );
    let guided_mae = guided_err.iter().sum::<f64>() / guided_err.len().max(1) as f64;
    guided_err.sort_by(f64::total_cmp);
    println!(
        "guided by the expert masks on the image: MAE {guided_mae:.2} mm, median {:.2} mm over {} heights",
        guided_err.get(guided_err.len() / 2).copied().unwrap_or(f64::NAN),
        guided_err.len()
    );
    println!(
        "mean Dice {mean:.3}, median body Dice {median_body:.3}; A/M/P heights against the expert masks: MAE {height_mae:.2} mm, median {height_median:.2} mm over {} heights",
        height_err.len()
    );
    println!(
        "labels: {labels_right} right, {labels_absent} absent (sacrum not recognised), {} wrong",
        labels_wrong.len()
    );
    // Session 20: 28 right (4 exams), 91 absent, none wrong; before it, none right and one
    // exam (vb2_19) named one level too low: a dark L5–S1 disc read as fusion.
    assert!(labels_wrong.is_empty(), "wrong labels: {labels_wrong:#?}");
    assert!(labels_right >= 21, "{labels_right} labels right");
    // Regression floors, not the targets (Dice 0.90, MAE 1.0 mm): see docs/segmentation.md.
    // Session 7 measured 0.831, 0.856, 336 heights, 4.57 and 2.80 mm; every exam has a column.
    // Session 11 (robust endplate planes and walls, height rays re-read where they end off
    // their endplates): 338 heights, 2.32 and 1.90 mm.
    assert!(mean >= 0.80, "mean Dice {mean:.3}");
    assert!(
        per_exam.iter().all(|d| *d >= 0.5),
        "an exam lost its column: {per_exam:.2?}"
    );
    assert!(median_body >= 0.83, "median body Dice {median_body:.3}");
    assert!(
        height_err.len() >= 300,
        "{} heights compared",
        height_err.len()
    );
    assert!(height_mae < 2.7, "height MAE {height_mae:.2} mm");
    // Session 13: 329 heights, MAE 0.86 mm, median 0.20 mm (1.02 mm before height rays stopped
    // by something inside the body were read again past it, and rays run past their endplate
    // were fitted at its plane).
    assert!(
        guided_err.len() >= 300,
        "{} guided heights",
        guided_err.len()
    );
    assert!(guided_mae < 1.1, "guided height MAE {guided_mae:.2} mm");
    assert!(
        height_median < 2.2,
        "median height error {height_median:.2} mm"
    );
}

/// Pedicles, lamina and spinous process against the phantom's analytic arch. On CT every
/// structure of the mobile spine is found near its true centroid with about its true volume (the
/// pedicles' centroids sit 1–2.5 mm lateral: the roots of the transverse processes are taken in).
/// On MR T1 (4 mm sagittal slices) the lumbar pedicles and laminae are found; the thinner thoracic
/// ones are partial-volumed below marrow signal and are placed where the neighbours put theirs.
/// The real 40 mm CT slab (`real-ct-j2k-t11-t12`, 3 mm slices every 2 mm, an osteoporotic
/// spine with calcified disc rims). Read by eye on the images: one whole body, its endplates'
/// outer surfaces at z ≈ −801 and −775.5 mm (heights ≈ 25 mm), its centre at x ≈ −7.3,
/// y ≈ −115 mm (cortices at image columns 226 and 270, rows 312.5 and 347.5 at mid-height);
/// the discs above and below it and 4 mm of the next body up (its inferior endplate: reported as
/// a level cut by the field of view) are in the slab too. Before
/// session 12 the body's mask ran from one slab edge to the other, took the canal and the right
/// crus, and the level read Ha 10 mm (not evaluable).
#[test]
fn real_ct_slab_body_stops_at_its_discs_and_is_measured() {
    let Some(dir) = shared_data("real-ct-j2k-t11-t12") else {
        return;
    };
    let inv = discover(&[dir], &DiscoverOptions::default());
    let vols = assemble(&inv.studies[0].series[0], &Limits::default()).expect("assemble");
    let morph = analyze_volumes(&vols, None)
        .expect("segment")
        .expect("shape series");
    assert_eq!(
        morph.levels.len(),
        2,
        "the whole body and the one cut above it"
    );
    let top = &morph.levels[0].measurement;
    assert!(
        matches!(&top.status, spinetriage_measure::Status::NotEvaluable(why) if why.contains("field of view")),
        "{:?}",
        top.status
    );
    assert!(top.center_lps_mm[2] > -772.0, "{:?}", top.center_lps_mm);
    let seg = &morph.segmentation;
    assert_eq!(seg.bodies.len(), 1);
    let body = &seg.bodies[0];
    let z: Vec<f64> = body
        .mask
        .lps_points(&seg.view)
        .iter()
        .map(|p| p.z)
        .collect();
    let (lo, hi) = z
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(
        lo >= -803.0 && hi <= -774.0,
        "mask from z {lo} to {hi}: the slab's discs (and the next body) are not the body"
    );
    for (what, p) in [
        ("canal", LpsPoint::new(-7.3, -90.8, -786.5)),
        ("right crus", LpsPoint::new(-54.2, -115.2, -786.5)),
    ] {
        assert!(
            !body.mask.contains_lps(&seg.view, p),
            "{what} inside the mask"
        );
    }
    let m = &morph.levels[1].measurement;
    assert!(
        matches!(m.status, spinetriage_measure::Status::Measured),
        "{:?}",
        m.status
    );
    let mid = m.middle.expect("Hm");
    assert!(
        (mid.height_mm - 25.5).abs() < 1.5,
        "Hm {:.1}",
        mid.height_mm
    );
    // The mid-sagittal plane is the walls' middle, not the mask's.
    let x = 0.5 * (mid.superior_lps_mm[0] + mid.inferior_lps_mm[0]);
    assert!((x + 7.3).abs() < 2.0, "mid-sagittal plane at x {x:.1}");
    for h in [m.anterior, m.posterior] {
        let h = h.expect("Ha, Hp").height_mm;
        assert!((22.0..28.0).contains(&h), "height {h:.1}");
    }
    let d = &morph.levels[1].derived;
    assert!(d.height_loss_pct.is_some_and(|l| l < 15.0), "{d:?}");
    // Its posterior wall (basivertebral foramen, posterior lips, 3 mm slices) scatters too much
    // for a displacement to be read; an "urgent" 8 mm retropulsion was read from it.
    assert!(
        m.retropulsion_mm.is_none_or(|r| r < 3.0),
        "{:?}",
        m.retropulsion_mm
    );
}

#[test]
fn posterior_elements_match_the_phantom_arch_on_ct_and_mr() {
    use spinetriage_measure::posterior::ArchPart;
    for (what, truth, morph) in phantom_ct_and_mr("posterior-right-t11", 6) {
        let ct = what == "CT";
        let (mut found, mut located, mut n) = (0, 0, 0);
        for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
            let Some(l) = level_near(&morph, t, 8.0) else {
                continue;
            };
            let pe = l
                .measurement
                .posterior_elements
                .as_ref()
                .unwrap_or_else(|| panic!("{what} {}: no posterior elements", t.name));
            let lumbar = t.name.starts_with('L');
            for a in &t.arch {
                let (part, tol_mm) = match a.part {
                    spinetriage_phantom::ArchPart::LeftPedicle => (ArchPart::LeftPedicle, 3.5),
                    spinetriage_phantom::ArchPart::RightPedicle => (ArchPart::RightPedicle, 3.5),
                    spinetriage_phantom::ArchPart::Lamina => (ArchPart::Lamina, 2.0),
                    spinetriage_phantom::ArchPart::Spinous => (ArchPart::Spinous, 5.0),
                    _ => continue,
                };
                n += 1;
                let got = pe.part(part).expect("every structure is reported");
                let p = got.centroid_lps_mm;
                let d = LpsPoint::new(p[0], p[1], p[2]).distance_mm(&LpsPoint::new(
                    a.centroid_lps_mm[0],
                    a.centroid_lps_mm[1],
                    a.centroid_lps_mm[2],
                ));
                let ratio = got.volume_mm3 / a.volume_mm3;
                let say = format!(
                    "{what} {} {part:?}: found {} located {}, {d:.1} mm off, volume {:.0} of {:.0} mm³ ({})",
                    t.name,
                    got.found,
                    got.located,
                    got.volume_mm3,
                    a.volume_mm3,
                    got.note.clone().unwrap_or_default()
                );
                eprintln!("{say}");
                let must_find = ct || (lumbar && part != ArchPart::Spinous);
                if must_find {
                    assert!(got.found, "{say}");
                }
                if got.found {
                    found += 1;
                    assert!(d <= tol_mm, "{say}");
                    // MR reads the marrow and one voxel of cortex in-plane, not across slices.
                    // CT pedicles read 0.59–0.83 of the analytic volume (the division from the
                    // body and the lamina is geometric); L5's lowest, since its slab ends
                    // half-way to S1 once the column finds S1 (session 10: 0.62 → 0.59).
                    let lo = if ct { 0.55 } else { 0.2 };
                    assert!((lo..=1.6).contains(&ratio), "{say}");
                }
                if got.located {
                    located += 1;
                    if part != ArchPart::Spinous {
                        assert!(d <= 6.0, "{say}");
                    }
                }
            }
        }
        eprintln!("{what}: {found} of {n} structures found, {located} located");
        assert!(n >= 28, "{what}: {n} structures compared");
    }
}

/// Labels are right or absent, never wrong, and no body is lost, on a crushed lytic body and on
/// an osteoporotic spine, on CT and on MR: a crushed lytic L4 on CT was once taken for S1 (all
/// levels named two too high), on T1 it was grown as two bodies (all levels named one too
/// high), and on the osteoporotic CT, whose marrow reads like disc, two crushed bodies were
/// dropped as discs.
#[test]
fn labels_are_right_or_absent_and_no_body_is_lost_on_lytic_and_osteoporotic_spines() {
    for case in ["tumour-l4", "osteoporotic-multi"] {
        for (modality, truth, morph) in phantom_ct_and_mr(case, 2) {
            let mut found = 0;
            for t in truth.levels.iter().filter(|t| !t.name.starts_with('S')) {
                let Some(l) = level_near(&morph, t, 12.0) else {
                    continue;
                };
                found += 1;
                if let Some(name) = &l.level {
                    assert_eq!(name, &t.name, "{case} {modality}");
                }
            }
            assert!(found >= 7, "{case} {modality}: {found} of 8 levels found");
        }
    }
}

/// A CT whose field of view ends inside a body (100 slices of 2 mm, centred on the column: the
/// first slice cuts the top body about halfway). That level is not evaluable because its
/// superior endplate is outside the image, and it says so; before session 26 it said "endplates
/// not found", as for a segmentation failure. The whole bodies below it are measured.
#[test]
fn a_body_cut_by_the_first_slice_is_not_evaluable_with_the_field_of_view_as_reason() {
    let mut cfg = spinetriage_phantom::case("normal", 1).expect("case");
    cfg.series = spinetriage_phantom::SeriesSet::ct_only();
    cfg.ct.slices = 100;
    cfg.ct.slice_mm = 2.0;
    let (_, morph) = phantom_morphometry(&cfg);
    let why = |l: &spinetriage_measure::Level| match &l.measurement.status {
        spinetriage_measure::Status::NotEvaluable(why) => Some(why.clone()),
        _ => None,
    };
    let top = morph.levels.first().expect("levels");
    assert_eq!(
        why(top).as_deref(),
        Some("superior endplate outside the field of view"),
        "{:?}",
        top.measurement.status
    );
    let measured = morph.levels.iter().filter(|l| why(l).is_none()).count();
    assert!(measured >= 4, "{measured} levels measured");
    for l in &morph.levels {
        if let Some(w) = why(l) {
            assert!(w.contains("field of view"), "{:?}: {w}", l.level);
        }
    }
}
