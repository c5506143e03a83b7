//! Marrow findings on phantoms against their truth, with a ±20 % bias field and Rician noise at
//! SNR 10 (the harsh end of the marrow issue's range): oedema with its pattern, oedema without
//! height loss, a cleft, sclerotic marrow replacement, and no flag on a normal spine.

use spinetriage_dicom::{discover, DiscoverOptions, Limits};
use spinetriage_marrow::{analyze_marrow, Acuity, LevelSignal, MarrowReport, Pattern};
use spinetriage_measure::{analyze_volumes, StudyMorphometry};
use spinetriage_phantom::{SeriesSet, Truth};
use spinetriage_tests::real_t2_exams;
use spinetriage_volume::assemble;

fn run(case: &str, seed: u64) -> (Truth, StudyMorphometry, MarrowReport) {
    run_with(case, seed, SeriesSet::default())
}

fn run_with(case: &str, seed: u64, series: SeriesSet) -> (Truth, StudyMorphometry, MarrowReport) {
    run_at(case, seed, series, 10.0, 20.0)
}

fn run_at(
    case: &str,
    seed: u64,
    series: SeriesSet,
    snr: f64,
    bias_pct: f64,
) -> (Truth, StudyMorphometry, MarrowReport) {
    let mut cfg = spinetriage_phantom::case(case, seed).expect("case");
    cfg.mr.snr = snr;
    cfg.mr.bias_pct = bias_pct;
    cfg.series = series;
    let tmp = tempfile::tempdir().unwrap();
    let truth = spinetriage_phantom::generate(&cfg, tmp.path()).expect("generate");
    let inv = discover(&[tmp.path().to_path_buf()], &DiscoverOptions::default());
    let vols: Vec<_> = inv.studies[0]
        .series
        .iter()
        .flat_map(|s| assemble(s, &Limits::default()).expect("assemble"))
        .collect();
    let m = analyze_volumes(&vols, None).unwrap().expect("shape series");
    let r = analyze_marrow(&vols, &m);
    (truth, m, r)
}

/// The finding at the body nearest the truth level's centre (labels are tested elsewhere).
fn at<'a>(truth: &Truth, m: &StudyMorphometry, r: &'a MarrowReport, name: &str) -> &'a LevelSignal {
    let t = truth
        .levels
        .iter()
        .find(|l| l.name == name)
        .unwrap()
        .centre_lps_mm;
    let i = (0..m.levels.len())
        .min_by(|a, b| {
            let d = |k: usize| {
                let c = m.levels[k].measurement.center_lps_mm;
                (0..3).map(|j| (c[j] - t[j]).powi(2)).sum::<f64>()
            };
            d(*a).total_cmp(&d(*b))
        })
        .unwrap();
    &r.levels[i]
}

fn others_clean(truth: &Truth, m: &StudyMorphometry, r: &MarrowReport, except: &str) {
    for t in truth.levels.iter().filter(|l| l.name != except) {
        let s = at(truth, m, r, &t.name);
        assert_ne!(
            s.edema,
            Some(true),
            "{} flagged oedema: {:?}",
            t.name,
            s.evidence
        );
        assert_ne!(
            s.cleft,
            Some(true),
            "{} flagged a cleft: {:?}",
            t.name,
            s.evidence
        );
        assert_ne!(
            s.marrow_replacement,
            Some(true),
            "{}: {:?}",
            t.name,
            s.evidence
        );
        assert_ne!(
            s.posterior.present,
            Some(true),
            "{}: {:?}",
            t.name,
            s.evidence
        );
        assert_ne!(
            s.cortical_destruction,
            Some(true),
            "{}: {:?}",
            t.name,
            s.evidence
        );
        assert_ne!(
            s.paravertebral_soft_tissue,
            Some(true),
            "{}: {:?}",
            t.name,
            s.evidence
        );
    }
}

#[test]
fn acute_wedge_has_band_oedema_at_the_fracture_only() {
    let (truth, m, r) = run("acute-wedge-l1", 4);
    let l1 = at(&truth, &m, &r, "L1");
    assert_eq!(l1.edema, Some(true), "{:?}", l1.evidence);
    assert_eq!(l1.edema_pattern, Some(Pattern::Band));
    assert!(l1.edema_extent_pct.unwrap() > 15.0);
    assert_eq!(l1.acuity, Acuity::AcuteOrSubacute);
    assert_eq!(l1.marrow_replacement, Some(false));
    others_clean(&truth, &m, &r, "L1");
    // The bias field cancels in the local reference: normal bodies stay within 10 %.
    for t in truth
        .levels
        .iter()
        .filter(|l| l.name != "L1" && l.name != "S1")
    {
        let s = at(&truth, &m, &r, &t.name);
        let ratio = s.stir_ratio.unwrap();
        assert!((0.9..1.1).contains(&ratio), "{} STIR ratio {ratio}", t.name);
    }
}

#[test]
fn diffuse_oedema_without_collapse_is_a_microfracture_finding() {
    let (truth, m, r) = run("oedema-no-collapse-l3", 5);
    let l3 = at(&truth, &m, &r, "L3");
    assert_eq!(l3.edema, Some(true), "{:?}", l3.evidence);
    assert_eq!(l3.edema_pattern, Some(Pattern::Diffuse));
    assert_eq!(l3.acuity, Acuity::OedemaWithoutFracture);
    assert!(l3.stir_ratio.unwrap() > 3.0, "{:?}", l3.stir_ratio);
    others_clean(&truth, &m, &r, "L3");
}

#[test]
fn kummell_cleft_is_found() {
    let (truth, m, r) = run("kummell-cleft-t12", 6);
    let t12 = at(&truth, &m, &r, "T12");
    assert_eq!(t12.cleft, Some(true), "{:?}", t12.evidence);
    assert!(t12.cleft_mm3.unwrap() >= 30.0);
    assert_eq!(t12.kummell, Some(true), "{:?}", t12.evidence);
    others_clean(&truth, &m, &r, "T12");
}

#[test]
fn sclerotic_marrow_is_replacement_not_oedema() {
    let (truth, m, r) = run("sclerotic-l3", 7);
    let l3 = at(&truth, &m, &r, "L3");
    assert_eq!(l3.marrow_replacement, Some(true), "{:?}", l3.evidence);
    assert_ne!(l3.edema, Some(true));
    assert!(l3.t1_disc_ratio.unwrap() <= 1.0);
    assert_eq!(l3.ct_pattern, Some("sclerotic"));
    others_clean(&truth, &m, &r, "L3");
}

#[test]
fn pedicle_involvement_is_found_on_its_side() {
    let (truth, m, r) = run("posterior-right-t11", 8);
    let t11 = at(&truth, &m, &r, "T11");
    assert_eq!(t11.posterior.present, Some(true), "{:?}", t11.evidence);
    assert_eq!(t11.posterior.side, Some("right"));
    others_clean(&truth, &m, &r, "T11");
}

#[test]
fn a_tumour_pedicle_as_bright_as_the_canal_is_read_where_it_is_expected() {
    // `bench-marrow` seed 3's `tumour-l4` on MR: the lytic left pedicle of L4 is not segmented
    // (neither marrow-like nor bone-dense) and its region, placed where L3's and L5's lie, reads
    // as bright on STIR and as dark on T1 as the canal's fluid. It was dropped as a CSF hit.
    let (truth, m, r) = run_at("tumour-l4", 3, SeriesSet::mr(true, true, true), 24.0, 12.0);
    let l4 = at(&truth, &m, &r, "L4");
    assert_eq!(
        l4.posterior.located[0],
        Some("expected"),
        "{:?}",
        l4.evidence
    );
    assert_eq!(l4.posterior.left, Some(true), "{:?}", l4.evidence);
    assert_eq!(l4.posterior.present, Some(true));
    assert_eq!(l4.marrow_replacement, Some(true), "{:?}", l4.evidence);
    others_clean(&truth, &m, &r, "L4");
}

#[test]
fn lytic_destruction_on_mr_alone_is_replacement_through_the_missing_cortex() {
    // No CT, no convex wall, no pedicle or epidural tissue: only the wall's missing signal void
    // tells this STIR-bright, T1-dark body from diffuse oedema.
    let (truth, m, r) = run_with("lytic-destruction-l1", 9, SeriesSet::mr(true, true, true));
    let l1 = at(&truth, &m, &r, "L1");
    assert_eq!(l1.cortical_destruction, Some(true), "{:?}", l1.evidence);
    assert!(l1.cortical_gap_deg.unwrap() >= 30.0);
    assert_eq!(l1.marrow_replacement, Some(true), "{:?}", l1.evidence);
    assert_ne!(l1.edema, Some(true));
    others_clean(&truth, &m, &r, "L1");
}

#[test]
fn paravertebral_tissue_is_found_beside_the_tumour_level_only() {
    // A lytic T12 with a soft-tissue mass in front of it and to its left, with and without CT
    // (on CT without contrast the mass cannot be told from muscle: the STIR finds it).
    for series in [SeriesSet::default(), SeriesSet::mr(true, true, true)] {
        let (truth, m, r) = run_with("epidural-tumour-t12", 3, series);
        let t12 = at(&truth, &m, &r, "T12");
        assert_eq!(
            t12.paravertebral_soft_tissue,
            Some(true),
            "{:?}",
            t12.evidence
        );
        assert!(t12.paravertebral_arc_deg.unwrap() >= 30.0);
        assert_eq!(t12.marrow_replacement, Some(true), "{:?}", t12.evidence);
        others_clean(&truth, &m, &r, "T12");
    }
    // A STIR-bright body whose tumour stays inside its (partly destroyed) wall has none.
    let (truth, m, r) = run_with("lytic-destruction-l1", 9, SeriesSet::mr(true, true, true));
    let l1 = at(&truth, &m, &r, "L1");
    assert_eq!(
        l1.paravertebral_soft_tissue,
        Some(false),
        "{:?}",
        l1.evidence
    );
}

/// Real sagittal T2 lumbar exams of normal-appearing bodies (no STIR, no T1): every signal flag
/// the T2 can support is a false positive here. The cortex survey runs on the T2 itself; the
/// flags that need STIR or T1 stay unknown (checked: never flagged).
#[test]
fn real_t2_bodies_raise_no_signal_flag() {
    let Some(files) = real_t2_exams() else {
        return;
    };
    let (mut judged, mut untrusted, mut flagged, mut levels) = (0, 0, Vec::new(), 0);
    let (mut lateral_wedges, mut severe, mut graded) = (0, Vec::new(), Vec::new());
    for f in &files {
        let img = spinetriage_volume::read_nifti(
            f,
            spinetriage_dicom::SeriesKind::MrT2,
            &Limits::default(),
        )
        .expect("image");
        let vols = vec![img];
        let Ok(Some(m)) = analyze_volumes(&vols, None) else {
            continue;
        };
        let r = analyze_marrow(&vols, &m);
        for (l, s) in m.levels.iter().zip(&r.levels) {
            if spinetriage_measure::is_sacral(l.level.as_deref()) {
                continue;
            }
            levels += 1;
            lateral_wedges += usize::from(l.derived.acr_scoliosis.met == Some(true));
            if l.derived.genant_grade == Some(3) {
                severe.push(format!("{} {:?}", f.display(), l.measurement.center_lps_mm));
            }
            if l.derived.genant_grade.is_some_and(|g| g > 0) {
                graded.push(format!(
                    "{} {:?}: Genant {:?}, loss {:?} %",
                    f.display(),
                    l.measurement.center_lps_mm,
                    l.derived.genant_grade,
                    l.derived.height_loss_pct
                ));
            }
            judged += usize::from(s.cortical_destruction.is_some());
            // An unknown cortex says why: the T2 not trusted (its intact walls' reads without a
            // void at the reference levels), or nothing to judge.
            if s.cortical_destruction.is_none() {
                let why = s.evidence.iter().find(|e| e.starts_with("MR cortex"));
                assert!(why.is_some(), "{:?}: {:?}", l.level, s.evidence);
                untrusted += usize::from(why.is_some_and(|e| e.contains("not used")));
            }
            // The convex posterior border is a sign of a compressed body (Jung 2003): an
            // intact body's wall bulging on T2 (43 of 124 walls here before session 19) is no
            // pathological fracture.
            if l.derived.genant_grade == Some(0)
                && s.posterior_bulge_mm.is_some()
                && s.convex_posterior_wall != Some(false)
            {
                flagged.push(format!(
                    "{} {:?}: convex wall {:?} on an intact body, bulge {:?}",
                    f.display(),
                    l.level,
                    s.convex_posterior_wall,
                    s.posterior_bulge_mm
                ));
            }
            for (name, v) in [
                ("oedema", s.edema),
                ("marrow replacement", s.marrow_replacement),
                ("posterior elements", s.posterior.present),
                ("cleft", s.cleft),
                ("cortical destruction", s.cortical_destruction),
                ("paravertebral soft tissue", s.paravertebral_soft_tissue),
            ] {
                if v == Some(true) {
                    flagged.push(format!(
                        "{} {:?}: {name} {:?}",
                        f.display(),
                        l.level,
                        s.evidence
                    ));
                }
            }
        }
    }
    println!(
        "real T2: {levels} levels; cortex judged at {judged}, the T2 not trusted for it at {untrusted}; {} flags",
        flagged.len()
    );
    assert!(flagged.is_empty(), "{flagged:#?}");
    assert!(levels >= 60, "{levels} levels");
    // Not a signal flag either: on these normal spines a "severe" (Genant 3) grade is a body
    // that is not one. Session 21: 3 (8 before the bodies an unnamed column takes in front of
    // the sacrum, bowel and bladder, were left unmeasured; `docs/segmentation.md`).
    println!("real T2: Genant 3 at {} levels", severe.len());
    assert!(severe.len() <= 1, "{severe:#?}");
    // Any grade on these normal spines is a false one. Session 27: 4 levels in 4 exams, all
    // unnamed levels read at 21–28 % loss; session 28: 3 (vb2_13, 14, 20), once neighbouring
    // levels whose height lines overlap by more than 1.5 mm are not graded
    // (`docs/measurements.md`). A change that moves the false grades around (session 28's
    // detection variants did: 5 and 9 levels) shows here, where the Dice and the labels of the
    // morphometry test do not.
    println!("real T2: Genant ≥ 1 at {} levels", graded.len());
    assert!(graded.len() <= 3, "{graded:#?}");
    // Not a signal flag, but the same normal spines: a lateral height read in the margins'
    // partial volume, off both endplates' planes, is left unmeasured (session 19: the ACR
    // scoliosis criterion was met at 41 of these levels before, 24 after).
    println!("real T2: lateral wedge ≥ 10 % at {lateral_wedges} of {levels} levels");
    assert!(
        lateral_wedges <= 30,
        "{lateral_wedges} lateral wedges on normal spines"
    );
}
