//! The `spinetriage` binary as users and scripts run it.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn bin() -> Command {
    Command::cargo_bin("spinetriage").unwrap()
}

/// A small, fast phantom study.
fn phantom(out: &Path, case: &str, syntax: &str) -> PathBuf {
    bin()
        .args(["phantom"])
        .arg(out)
        .args([
            "--case",
            case,
            "--syntax",
            syntax,
            "--ct-matrix",
            "96",
            "--ct-pixel-mm",
            "2.6",
        ])
        .args(["--ct-slice-mm", "5", "--mr-pixel-mm", "2.5", "--seed", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(case));
    out.join(case)
}

/// Runs `spinetriage CMD --json PATH`, checks the exit code when given, and parses stdout.
fn json_of(cmd: &str, path: &Path, code: Option<i32>) -> Value {
    let a = bin().args([cmd, "--json"]).arg(path).assert();
    let a = match code {
        Some(c) => a.code(c),
        None => a,
    };
    serde_json::from_slice(&a.get_output().stdout).unwrap()
}

fn peers_required() -> bool {
    std::env::var("SPINETRIAGE_REQUIRE_SHARED_DATA").as_deref() == Ok("1")
}

fn have(cmd: &str, arg: &str) -> bool {
    let ok = Std::new(cmd)
        .arg(arg)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !peers_required(),
            "{cmd} is required in CI (installed by .ci/run)"
        );
        eprintln!("skipping the {cmd} check: not installed");
    }
    ok
}

#[test]
fn scan_classifies_every_phantom_series() {
    let tmp = tempfile::tempdir().unwrap();
    let study = phantom(tmp.path(), "acute-wedge-l1", "explicit");
    let j = json_of("scan", &study, Some(0));
    assert_eq!(j["studies"].as_array().unwrap().len(), 1);
    let series = j["studies"][0]["series"].as_array().unwrap();
    let classes: Vec<(&str, &str)> = series
        .iter()
        .map(|s| (s["class"].as_str().unwrap(), s["plane"].as_str().unwrap()))
        .collect();
    assert_eq!(
        classes,
        [
            ("ct", "axial"),
            ("mr_stir", "sagittal"),
            ("mr_t1", "sagittal"),
            ("mr_t2", "sagittal")
        ]
    );
    assert!(series[1]["class_reason"].as_str().unwrap().contains("STIR"));
    assert_eq!(series[1]["slices"], 17);
    assert!((series[1]["slice_spacing_mm"].as_f64().unwrap() - 4.0).abs() < 1e-6);
    assert_eq!(j["non_dicom"], 1, "truth.json is counted as non-DICOM");
    // Human table too.
    bin()
        .arg("scan")
        .arg(&study)
        .assert()
        .success()
        .stdout(predicate::str::contains("MR STIR"));
}

#[test]
fn decoys_are_counted_and_skipped_and_exit_codes_are_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let study = phantom(tmp.path(), "normal", "implicit");
    std::fs::write(
        study.join("report.pdf"),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    )
    .unwrap();
    std::fs::write(study.join("image.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    std::fs::write(study.join("empty"), b"").unwrap();
    std::fs::write(
        study.join("noise.bin"),
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let j = json_of("scan", &study, Some(0));
    assert_eq!(j["non_dicom"], 5);
    assert_eq!(j["studies"][0]["series"].as_array().unwrap().len(), 4);
    let empty = tempfile::tempdir().unwrap();
    bin().arg("scan").arg(empty.path()).assert().code(3);
    bin()
        .arg("scan")
        .arg(tmp.path().join("does-not-exist"))
        .assert()
        .code(3);
    bin()
        .args(["phantom", "x", "--case", "no-such-case"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown case"));
    bin().args(["scan"]).assert().code(2);
}

#[test]
fn load_prints_geometry_of_every_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let study = phantom(tmp.path(), "normal", "rle");
    let j = json_of("load", &study, Some(0));
    let vols = j["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 4);
    let ct = vols.iter().find(|v| v["kind"] == "ct").unwrap();
    assert_eq!(ct["dims_ijk"][0], 96);
    assert!(ct["min"].as_f64().unwrap() < -900.0 && ct["max"].as_f64().unwrap() > 500.0);
}

/// Independent readers: every phantom file, in every syntax, reads cleanly with dcmtk's dcmdump
/// and decodes with pydicom to the same pixel sums spinetriage reads.
#[test]
fn phantom_files_read_cleanly_with_pydicom_and_dcmdump() {
    let tmp = tempfile::tempdir().unwrap();
    let dcmdump = have("dcmdump", "--version");
    let pydicom = Std::new("python3")
        .args(["-c", "import pydicom, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !pydicom {
        assert!(
            !peers_required(),
            "pydicom is required in CI (installed by .ci/run)"
        );
        eprintln!("skipping the pydicom check: not installed");
    }
    for syntax in ["explicit", "implicit", "rle", "jpeg-ls", "j2k"] {
        let out = tmp.path().join(syntax);
        let study = phantom(&out, "tumour-l4", syntax);
        let files: Vec<PathBuf> = spinetriage_tests::files_under(&study)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .collect();
        assert!(files.len() > 50);
        if dcmdump {
            for f in files.iter().step_by(7) {
                let o = Std::new("dcmdump").arg(f).output().unwrap();
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    o.status.success() && !err.contains("E:") && !err.contains("W:"),
                    "dcmdump {}: {err}",
                    f.display()
                );
            }
        }
        if pydicom {
            let script = "import sys, pydicom\nfor p in sys.argv[1:]:\n    d = pydicom.dcmread(p)\n    print(int(d.pixel_array.astype('int64').sum()))";
            let sample: Vec<&PathBuf> = files.iter().step_by(11).collect();
            let o = Std::new("python3")
                .arg("-c")
                .arg(script)
                .args(&sample)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "pydicom failed on {syntax}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let sums: Vec<i64> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().parse().unwrap())
                .collect();
            for (f, want) in sample.iter().zip(sums) {
                let px = spinetriage_volume::read_pixels(f, &spinetriage_dicom::Limits::default())
                    .unwrap();
                let h = &px.header;
                let r = h.frame_geometry(0).rescale;
                // Undo the modality LUT to compare stored values, as pydicom's pixel_array holds.
                let ours: i64 = px
                    .values
                    .iter()
                    .map(|&v| ((f64::from(v) - r.intercept) / r.slope).round() as i64)
                    .sum();
                assert_eq!(ours, want, "{syntax} {}", f.display());
            }
        }
    }
}

#[test]
fn dicomdir_and_nifti_inputs() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if !root.is_dir() {
        assert!(!peers_required(), "shared data missing");
        eprintln!("skipping: shared data not found");
        return;
    }
    let dicomdir = root.join("pydicom-test-files/dicomdirtests/DICOMDIR");
    let j = json_of("scan", &dicomdir, None);
    assert_eq!(j["dicomdirs"].as_array().unwrap().len(), 1);
    assert!(
        !j["studies"].as_array().unwrap().is_empty(),
        "studies found through the DICOMDIR"
    );
    let nii = root.join("real-mr-t2-lumbar-sct/t2_lumbar.nii.gz");
    let j = json_of("load", &nii, Some(0));
    assert_eq!(
        j["volumes"][0]["dims_ijk"],
        serde_json::json!([38, 257, 201])
    );
}

#[test]
fn analyze_writes_the_level_table_with_report_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let study = phantom(tmp.path(), "acute-wedge-l1", "explicit");
    let out = tmp.path().join("out");
    let assert = bin()
        .args(["analyze", "--anchor", "L5"])
        .arg(&study)
        .arg("-o")
        .arg(&out)
        .assert();
    let code = assert.get_output().status.code();
    assert!(matches!(code, Some(0) | Some(4)), "exit {code:?}");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("levels.json")).unwrap()).unwrap();
    assert!(doc["schema_version"].is_string());
    let st = &doc["studies"][0];
    for key in [
        "study_uid",
        "series",
        "levels",
        "acr_variants",
        "not_evaluable",
    ] {
        assert!(!st[key].is_null(), "study key {key}");
    }
    let levels = st["levels"].as_array().unwrap();
    assert!(levels.len() >= 7, "{} levels", levels.len());
    for l in levels {
        for key in [
            "level",
            "center_lps_mm",
            "status",
            "heights_mm",
            "height_loss_pct",
            "genant_grade",
            "kyphosis_pct",
            "dorsal_wall_loss_pct",
            "scoliosis_pct",
            "acr_deformity",
            "edema",
            "posterior_element_involvement",
            "marrow_replacement",
            "cleft",
            "retropulsion_mm",
            "evidence",
        ] {
            assert!(l.get(key).is_some(), "level key {key}");
        }
        let c = l["center_lps_mm"].as_array().unwrap();
        assert_eq!(c.len(), 3);
    }
    // The lowest body is anchored as L5, so the one four above is L1: the fractured level.
    let l1 = levels
        .iter()
        .find(|l| l["level"] == "L1")
        .expect("L1 labelled");
    assert!(l1["heights_mm"]["anterior"].as_f64().unwrap() > 5.0);
    let csv = std::fs::read_to_string(out.join("levels.csv")).unwrap();
    assert!(csv.lines().count() >= 8);
    assert!(csv.starts_with("study_uid,level,status"));
}
