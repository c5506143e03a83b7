//! Phantom → DICOM files → discovery → assembly: every level's body is where the truth says, in
//! LPS, to within 0.5 mm, on CT and on sagittal MR, in every transfer syntax the generator writes.

use nalgebra::Vector3;
use spinetriage_dicom::{discover, DiscoverOptions, Limits, SeriesKind};
use spinetriage_phantom::{case, generate, LevelTruth, Syntax, Truth};
use spinetriage_volume::{assemble, LpsPoint, Volume};

/// Centroid of the body as the image shows it: voxels near the truth body, each weighted by how
/// bone-like it is between the local soft-tissue and bone levels (read from the image itself).
fn image_centroid(vol: &Volume, l: &LevelTruth, h_mm: f64) -> Vector3<f64> {
    let c = Vector3::from(l.centre_lps_mm);
    let (u, v, w) = (
        Vector3::from(l.axis_cranial),
        Vector3::from(l.axis_posterior),
        Vector3::from(l.axis_left),
    );
    let (hd, hw) = (l.depth_mm / 2.0, l.width_mm / 2.0);
    let margin = 3.0;
    // Index-space bounding box of the region, from its corners.
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for su in [-1.0, 1.0] {
        for sv in [-1.0, 1.0] {
            for sw in [-1.0, 1.0] {
                let p = c
                    + u * su * (h_mm / 2.0 + margin)
                    + v * sv * (hd + margin)
                    + w * sw * (hw + margin);
                let q = vol.grid.to_index(LpsPoint(nalgebra::Point3::from(p))).0;
                for a in 0..3 {
                    lo[a] = lo[a].min(q[a]);
                    hi[a] = hi[a].max(q[a]);
                }
            }
        }
    }
    let range = |a: usize| {
        let n = vol.grid.dims[a] as f64;
        (lo[a].floor().clamp(0.0, n) as usize)..(hi[a].ceil().clamp(-1.0, n - 1.0) as usize + 1)
    };
    let mut inside = Vec::new();
    let mut shell = Vec::new();
    let mut pts = Vec::new();
    for k in range(2) {
        for j in range(1) {
            for i in range(0) {
                let p = vol
                    .grid
                    .to_lps(spinetriage_volume::IndexPoint(nalgebra::Point3::new(
                        i as f64, j as f64, k as f64,
                    )))
                    .0
                    .coords;
                let d = p - c;
                let (du, dv, dw) = (d.dot(&u), d.dot(&v), d.dot(&w));
                if du.abs() > h_mm / 2.0 + margin
                    || dv.abs() > hd + margin
                    || dw.abs() > hw + margin
                {
                    continue;
                }
                // Behind the body the pedicles join it: keep the margin there to one voxel.
                let hv = if dv > 0.0 { hd + 1.0 } else { hd + margin };
                let e = (dv / hv).powi(2) + (dw / (hw + margin)).powi(2);
                if e > 1.0 {
                    continue;
                }
                let val = f64::from(vol.data.get([k, j, i]).expect("inside"));
                let ei = (dv / (hd - 3.0)).powi(2) + (dw / (hw - 3.0)).powi(2);
                if ei < 1.0 && du.abs() < h_mm / 2.0 - 4.0 {
                    inside.push(val);
                } else if du.abs() > h_mm / 2.0 + 1.5 {
                    shell.push(val);
                }
                pts.push((p, val));
            }
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (bone, soft) = (med(&mut inside), med(&mut shell));
    let (mut sw, mut sp) = (0.0, Vector3::zeros());
    for (p, val) in pts {
        let wgt = ((val - soft) / (bone - soft)).clamp(0.0, 1.0);
        sw += wgt;
        sp += p * wgt;
    }
    sp / sw
}

fn load(dir: &std::path::Path) -> Vec<Volume> {
    let inv = discover(&[dir.to_path_buf()], &DiscoverOptions::default());
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    assert_eq!(inv.studies.len(), 1);
    inv.studies[0]
        .series
        .iter()
        .flat_map(|s| assemble(s, &Limits::default()).expect("assembles"))
        .collect()
}

fn check_centres(truth: &Truth, vols: &[Volume], kind: SeriesKind, levels: &[&str]) {
    let vol = vols
        .iter()
        .find(|v| v.kind == kind)
        .expect("series present");
    for name in levels {
        let l = truth.levels.iter().find(|l| l.name == *name).unwrap();
        let h = l
            .heights
            .middle_mm
            .max(l.heights.posterior_mm)
            .max(l.heights.anterior_mm);
        let got = image_centroid(vol, l, h);
        let err = (got - Vector3::from(l.centre_lps_mm)).norm();
        eprintln!("{:?} {name}: centroid error {err:.3} mm", kind);
        assert!(
            err < 0.5,
            "{kind:?} {name}: image centroid {got:?} is {err:.2} mm from truth"
        );
        // The truth centre is bone on the image.
        let c = l.centre_lps_mm;
        assert!(vol.sample_lps(LpsPoint::new(c[0], c[1], c[2])).is_some());
    }
}

#[test]
fn level_centres_match_truth_on_ct_and_mr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = case("acute-wedge-l1", 11).unwrap();
    cfg.series.stir = false;
    cfg.series.t2 = false;
    cfg.ct.noise_hu = 0.0;
    cfg.mr.snr = 0.0;
    cfg.mr.bias_pct = 0.0;
    let truth = generate(&cfg, dir.path()).unwrap();
    let vols = load(&dir.path().join(&cfg.name));
    check_centres(&truth, &vols, SeriesKind::Ct, &["T11", "L1", "L3", "L5"]);
    check_centres(&truth, &vols, SeriesKind::MrT1, &["T12", "L2", "L4"]);
}

#[test]
fn rotated_curved_spine_centres_match_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = case("rotated-multilevel", 5).unwrap();
    cfg.series = spinetriage_phantom::SeriesSet::ct_only();
    cfg.ct.noise_hu = 0.0;
    let truth = generate(&cfg, dir.path()).unwrap();
    let vols = load(&dir.path().join(&cfg.name));
    check_centres(&truth, &vols, SeriesKind::Ct, &["T11", "L1", "L3"]);
}

#[test]
fn every_syntax_decodes_to_the_same_voxels() {
    let dir = tempfile::tempdir().unwrap();
    let mut reference: Option<Vec<f32>> = None;
    for syntax in [
        Syntax::Explicit,
        Syntax::Implicit,
        Syntax::Rle,
        Syntax::JpegLs,
        Syntax::J2k,
    ] {
        let mut cfg = case("normal", 3).unwrap();
        cfg.name = format!("normal-{syntax:?}");
        cfg.syntax = syntax;
        cfg.series = spinetriage_phantom::SeriesSet::mr(true, false, false);
        cfg.mr.rows = 160;
        cfg.mr.cols = 120;
        cfg.mr.slices = 5;
        cfg.mr.pixel_mm = 2.0;
        generate(&cfg, dir.path()).unwrap();
        let vols = load(&dir.path().join(&cfg.name));
        assert_eq!(vols.len(), 1);
        // Native syntaxes take the fast path, which stores this integer series as i16; the
        // compressed ones are decoded to floats. Both must read the same values.
        let native = matches!(syntax, Syntax::Explicit | Syntax::Implicit);
        assert_eq!(
            matches!(vols[0].data, spinetriage_volume::Voxels::I16(_)),
            native,
            "{syntax:?}"
        );
        let data: Vec<f32> = vols[0].data.to_f32().iter().copied().collect();
        match &reference {
            None => reference = Some(data),
            Some(r) => assert!(
                r == &data,
                "{syntax:?} decodes differently from explicit VR"
            ),
        }
    }
}

#[test]
fn output_is_deterministic_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut cfg = case("kummell-cleft-t12", 9).unwrap();
    cfg.series = spinetriage_phantom::SeriesSet::mr(true, false, false);
    cfg.mr.rows = 120;
    cfg.mr.cols = 90;
    cfg.mr.pixel_mm = 3.0;
    generate(&cfg, a.path()).unwrap();
    generate(&cfg, b.path()).unwrap();
    let files = |d: &std::path::Path| {
        let mut v: Vec<_> = spinetriage_tests::files_under(d)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(d).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(a.path()), files(b.path()));
}
