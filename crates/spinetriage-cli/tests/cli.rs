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
    have_args(cmd, &[arg], cmd)
}

/// Whether `cmd args` succeeds; when not, skips (or fails in CI) naming `what`.
fn have_args(cmd: &str, args: &[&str], what: &str) -> bool {
    let ok = Std::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !peers_required(),
            "{what} is required in CI (installed by .ci/run)"
        );
        eprintln!("skipping the {what} check: not installed");
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
    // RLE is decoded to floats: four bytes a voxel.
    let voxels: u64 = (0..3)
        .map(|n| ct["dims_ijk"][n].as_u64().unwrap())
        .product();
    assert_eq!(ct["bytes"].as_u64(), Some(4 * voxels));
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

/// Analyses the acute L1 wedge phantom with clinical facts beside it; returns the output folder.
fn analyzed_acute_wedge(tmp: &Path) -> PathBuf {
    // The generator's default resolution (CT 0.7 mm, 1.5 mm slices): the coarse phantom of the
    // other tests is below the product's specified CT resolution.
    bin()
        .arg("phantom")
        .arg(tmp)
        .args(["--case", "acute-wedge-l1", "--seed", "3"])
        .assert()
        .success();
    let study = tmp.join("acute-wedge-l1");
    std::fs::write(
        study.join("clinical.toml"),
        "symptomatic = true\nhistory_of_malignancy = false\npain_duration_weeks = 8\n\
         conservative_therapy_weeks = 7\nconservative_therapies = [\"analgesics\", \"physical_therapy\"]\n",
    )
    .unwrap();
    let out = tmp.join("out");
    let assert = bin()
        .args(["analyze", "--seg"])
        .arg(&study)
        .arg("-o")
        .arg(&out)
        .assert();
    let code = assert.get_output().status.code();
    assert!(matches!(code, Some(0) | Some(4)), "exit {code:?}");
    out
}

#[test]
fn analyze_writes_the_report_with_its_required_keys_and_criteria() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzed_acute_wedge(tmp.path());
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
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
    // Labels from the sacrum: the fractured level is L1.
    let l1 = levels
        .iter()
        .find(|l| l["level"] == "L1")
        .expect("L1 labelled");
    assert!(l1["heights_mm"]["anterior"].as_f64().unwrap() > 5.0);
    assert!(l1["genant_grade"].as_u64().unwrap() >= 1, "{l1:#}");
    let csv = std::fs::read_to_string(out.join("levels.csv")).unwrap();
    assert!(csv.lines().count() >= 8);
    assert!(csv.starts_with("study_uid,level,status"));
    // Clinical facts beside the study were read; with a measured L1 fracture, a symptomatic
    // patient and no malignancy, ACR variant 1 applies and rates this study's modalities.
    assert!(st["clinical_facts_source"]
        .as_str()
        .unwrap()
        .ends_with("clinical.toml"));
    let variants = st["acr_variants"].as_array().unwrap();
    assert_eq!(variants.len(), 9);
    assert_eq!(
        variants[0]["applies"],
        Value::Bool(true),
        "{:#}",
        variants[0]
    );
    assert!(!variants[0]["current_study"].as_array().unwrap().is_empty());
    // The L1 fracture has band-like marrow oedema (STIR bright, T1 dark under the endplate):
    // variant 6, symptomatic osteoporotic VCF with oedema, applies.
    assert_eq!(l1["edema"]["present"], Value::Bool(true), "{l1:#}");
    assert_eq!(l1["edema"]["pattern"], "band");
    assert_eq!(l1["acuity"], "acute_or_subacute");
    for l in levels.iter().filter(|l| l["level"] != "L1") {
        assert_eq!(l["edema"]["present"], Value::Bool(false), "{}", l["level"]);
    }
    assert_eq!(
        variants[5]["applies"],
        Value::Bool(true),
        "{:#}",
        variants[5]
    );
    // Prior augmentation is not in the facts: variant 7 stays undetermined, and says why.
    assert_eq!(variants[6]["applies"], "undetermined");
    assert!(variants[6]["deciding_facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "prior_augmentation_or_surgery"));
    assert_eq!(
        st["payer_worksheets"][0]["medical_necessity"],
        "needs_documentation"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Variant 6: applies"));
    assert!(md.contains("## Marrow signal") || md.contains("### Marrow signal"));
    assert!(md.contains("| **L1** |"), "flagged level in bold");
}

#[test]
fn report_json_validates_against_the_published_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzed_acute_wedge(tmp.path());
    let schema = spinetriage_tests::workspace_root().join("docs/report.schema.json");
    let checker = "import json,sys,jsonschema\n\
        s=json.load(open(sys.argv[1])); jsonschema.Draft202012Validator.check_schema(s)\n\
        jsonschema.Draft202012Validator(s).validate(json.load(open(sys.argv[2])))\nprint('valid')";
    if !have_args(
        "python3",
        &["-c", "import jsonschema"],
        "python3 jsonschema",
    ) {
        return;
    }
    let o = Std::new("python3")
        .args(["-c", checker])
        .arg(&schema)
        .arg(out.join("report.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The schema must reject a report that drops a required key.
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    doc["studies"][0]["levels"][0]
        .as_object_mut()
        .unwrap()
        .remove("genant_grade");
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, doc.to_string()).unwrap();
    let o = Std::new("python3")
        .args(["-c", checker])
        .arg(&schema)
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a report without genant_grade validated"
    );
}

#[test]
fn report_html_renders_in_headless_chromium() {
    if !have("chromium", "--version") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzed_acute_wedge(tmp.path());
    let shot = tmp.path().join("shot.png");
    let o = Std::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    assert!(shot.is_file(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    let px: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    let white = px.iter().filter(|p| p.iter().all(|c| *c > 245)).count();
    // Not blank: the sagittal image and tables cover a real share of the page...
    assert!(
        white < px.len() * 9 / 10,
        "{white} of {} pixels white",
        px.len()
    );
    // ...and the fractured level is drawn highlighted (red outline, pink table row).
    let red = px
        .iter()
        .filter(|p| p[0] > 200 && p[1] < 90 && p[2] < 90)
        .count();
    assert!(red > 50, "{red} red pixels");
}

#[test]
fn report_sr_reads_cleanly_with_dsrdump_and_pydicom() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzed_acute_wedge(tmp.path());
    let sr = out.join("report-sr.dcm");
    assert!(sr.is_file());
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let levels = report["studies"][0]["levels"].as_array().unwrap();
    if have("dsrdump", "--version") {
        let o = Std::new("dsrdump").arg(&sr).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && stderr.trim().is_empty(),
            "dsrdump: {stderr}"
        );
        let dump = String::from_utf8_lossy(&o.stdout);
        assert!(dump.contains("Imaging Measurement Report"));
        assert_eq!(
            dump.matches("\"Measurement Group\")").count(),
            levels.len(),
            "one measurement group per level"
        );
    }
    if have("python3", "--version") {
        let script = r#"
import sys, json, pydicom
d = pydicom.dcmread(sys.argv[1])
assert d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33", d.SOPClassUID
assert d.ContentTemplateSequence[0].TemplateIdentifier == "1500"
out = {"study": d.StudyInstanceUID, "groups": {}}
meas = [i for i in d.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010"][0]
for g in meas.ContentSequence:
    name, vals = None, {}
    for i in g.ContentSequence:
        cv = i.ConceptNameCodeSequence[0].CodeValue
        if cv == "112039":
            name = i.TextValue
        if i.ValueType == "NUM" and len(i.MeasuredValueSequence) > 0:
            vals[cv] = float(i.MeasuredValueSequence[0].NumericValue)
    out["groups"][name] = vals
refs = d.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
out["referenced"] = len(refs.ReferencedSOPSequence)
print(json.dumps(out))
"#;
        let o = Std::new("python3")
            .args(["-c", script])
            .arg(&sr)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(got["study"], report["studies"][0]["study_uid"]);
        assert!(
            got["referenced"].as_u64().unwrap() > 10,
            "source images referenced"
        );
        let l1 = &got["groups"]["L1"];
        let want = levels.iter().find(|l| l["level"] == "L1").unwrap();
        let ha = want["heights_mm"]["anterior"].as_f64().unwrap();
        assert!(
            (l1["HA"].as_f64().unwrap() - ha).abs() < 0.01,
            "{l1} vs {ha}"
        );
        assert!(l1["HLOSS"].as_f64().unwrap() >= 20.0);
    }
}

/// The label map's L1 body and L1 left pedicle land where the report puts them.
#[test]
fn seg_label_map_lands_on_the_reported_centres() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyzed_acute_wedge(tmp.path());
    let labels: Value =
        serde_json::from_slice(&std::fs::read(out.join("segmentation.labels.json")).unwrap())
            .unwrap();
    let entry = |structure: &str| {
        labels["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["level"] == "L1" && l["structure"] == structure)
            .unwrap_or_else(|| panic!("L1 {structure} in the label table"))
            .clone()
    };
    if !have("python3", "--version") {
        return;
    }
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let level = report["studies"][0]["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["level"] == "L1")
        .unwrap()
        .clone();
    let pedicle = level["posterior_elements"]
        .as_array()
        .expect("L1 posterior elements")
        .iter()
        .find(|p| p["part"] == "left_pedicle")
        .unwrap()["centroid_lps_mm"]
        .clone();
    for (structure, want, tol_mm) in [
        ("body", level["center_lps_mm"].clone(), 2.0),
        ("left_pedicle", pedicle, 0.5),
    ] {
        let l1 = entry(structure);
        // nibabel reads the label map; its centroid in LPS must match the report's L1 centre.
        let script = r#"
import sys, json, numpy as np, nibabel as nb
im = nb.load(sys.argv[1]); d = np.asarray(im.dataobj)
ijk = np.argwhere(d == int(sys.argv[2])).mean(axis=0)
ras = im.affine @ np.append(ijk, 1.0)
print(json.dumps([-ras[0], -ras[1], ras[2], int((d == int(sys.argv[2])).sum())]))
"#;
        let o = Std::new("python3")
            .args(["-c", script])
            .arg(out.join("segmentation.nii.gz"))
            .arg(l1["value"].to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let c: Vec<f64> = serde_json::from_slice(&o.stdout).unwrap();
        for a in 0..3 {
            let w = want[a].as_f64().unwrap();
            assert!(
                (c[a] - w).abs() < tol_mm,
                "{structure} axis {a}: mask centroid {} vs reported {w}",
                c[a]
            );
        }
        // Every body voxel keeps its body label (posterior elements never overwrite it); a
        // posterior element may lose the voxels it shares with the body.
        let table = l1["voxels"].as_f64().unwrap();
        if structure == "body" {
            assert_eq!(c[3], table, "L1 body voxels in the map vs the table");
        } else {
            assert!(
                c[3] > 0.5 * table && c[3] <= table,
                "{structure}: {} of {table}",
                c[3]
            );
        }
    }
}

/// NIfTI carries no sequence metadata: its contrast is what `--nifti-kind` says, "MR other"
/// by default, never guessed.
#[test]
fn nifti_kind_is_given_not_guessed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let nii = root.join("real-mr-t2-lumbar-sct/t2_lumbar.nii.gz");
    if !nii.is_file() {
        assert!(!peers_required(), "shared data missing");
        eprintln!("skipping: shared data not found");
        return;
    }
    assert_eq!(
        json_of("load", &nii, Some(0))["volumes"][0]["kind"],
        "mr_other"
    );
    for (arg, kind) in [("t2", "mr_t2"), ("stir", "mr_stir"), ("ct", "ct")] {
        let a = bin()
            .args(["load", "--json", "--nifti-kind", arg])
            .arg(&nii)
            .assert()
            .code(0);
        let j: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
        assert_eq!(j["volumes"][0]["kind"], kind, "--nifti-kind {arg}");
    }
    bin()
        .args(["load", "--nifti-kind", "flair"])
        .arg(&nii)
        .assert()
        .failure();
}

#[test]
fn prior_study_comparison_finds_the_new_fracture() {
    let tmp = tempfile::tempdir().unwrap();
    // The same spine before (normal) and after (acute L1 wedge).
    for case in ["normal", "acute-wedge-l1"] {
        bin()
            .arg("phantom")
            .arg(tmp.path())
            .args(["--case", case, "--seed", "3"])
            .assert()
            .success();
    }
    let out = tmp.path().join("out");
    let a = bin()
        .arg("analyze")
        .arg(tmp.path().join("acute-wedge-l1"))
        .arg("--prior")
        .arg(tmp.path().join("normal"))
        .arg("-o")
        .arg(&out)
        .assert();
    assert!(matches!(a.get_output().status.code(), Some(0) | Some(4)));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let prior = &doc["studies"][0]["prior_comparison"];
    let l1 = prior["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["level"] == "L1")
        .expect("L1 compared");
    assert_eq!(l1["new_fracture"], true, "{l1:#}");
    assert!(l1["change_mm"].as_f64().unwrap() < -4.0, "{l1:#}");
    // Unchanged levels are neither new nor progressing.
    let l3 = prior["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["level"] == "L3")
        .unwrap();
    assert_eq!(l3["new_fracture"], false);
    assert!(l3["change_mm"].as_f64().unwrap().abs() < 1.5, "{l3:#}");
    // The practice parameter's "rapidly progressive fracture" indication sees the new fracture
    // through the new_fracture fact; the report says which study was compared.
    let facts = &doc["studies"][0]["facts"];
    assert_eq!(
        facts["new_fracture"]["value"], true,
        "{:#}",
        facts["new_fracture"]
    );
}

/// `bench-accuracy` on one variant of one seed: its JSON summary.
fn bench_variant(seed: u64, only: usize) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    bin()
        .args(["bench-accuracy", "--seed", &seed.to_string()])
        .args(["--only", &only.to_string(), "--json"])
        .arg(&json)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

/// Bench variants once labelled wrong or left unnamed: a vestigial S1–S2 disc read as the L5–S1
/// disc (seed 2 variant 3, MR), the line under L5 running into pelvic tissue (2/8, CT), a CT
/// disc taken for a body above a merged S1–S2 (3/0); a burst L1 on T1 whose gap was filled with
/// its dark oedema band and the disc above (2/5); L5 stepped over above a tall sacrum turning
/// forward, whose mask took in the sacral ala (2/12, CT rotated 10°); L5 and S1 lost below a
/// T1-dark tumour L4 (3/7).
#[test]
fn bench_variants_once_mislabelled_are_labelled_right() {
    for (seed, only) in [(2, 3), (2, 8), (3, 0), (2, 5), (2, 12), (3, 7)] {
        let j = bench_variant(seed, only);
        let run = &j["runs"][0];
        assert_eq!(
            run["labels_correct"], true,
            "seed {seed} variant {only}: {run}"
        );
    }
}

/// Bench variants whose posterior height ray on CT once slipped past the inferior endplate's
/// corner into the canal (6.7 mm too tall) and read a fracture: a normal L1 (seed 1 variant 0,
/// 2.5 mm slices) and the T11 above a Kümmell T12 (seed 2 variant 6, 2.7 mm slices). The ray is
/// now read again further in when it ends off the endplates' planes.
#[test]
fn bench_heights_once_read_past_an_endplate_are_graded_right() {
    for (seed, only, level) in [(1, 0, "L1"), (2, 6, "T11")] {
        let j = bench_variant(seed, only);
        let levels = j["runs"][0]["levels"].as_array().expect("levels");
        let l = levels
            .iter()
            .find(|l| l["truth_level"] == level)
            .expect("level in truth");
        assert_eq!(l["genant_found"], l["genant_truth"], "seed {seed}: {l}");
        let errors = l["height_errors_mm"].as_array().expect("heights");
        assert_eq!(errors.len(), 3, "{l}");
        for e in errors {
            let e = e.as_f64().expect("number");
            assert!(e.abs() < 2.5, "seed {seed} {level}: {l}");
        }
    }
}

/// A lateral-wedge L3 on a 3 mm CT (seed 3 variant 4): lateral height rays of its neighbours
/// ended off their endplates and read a false scoliosis (T12 42.8 %, L2 25.5 %, both over the
/// ACR's 10 %). Lateral heights are now read again further in when they end off the endplates'
/// planes, as the A/M/P heights are.
#[test]
fn lateral_heights_off_their_endplates_do_not_read_as_scoliosis() {
    let keep = tempfile::tempdir().unwrap();
    let json = keep.path().join("bench.json");
    bin()
        .env("SPINETRIAGE_BENCH_KEEP", keep.path())
        .args(["bench-accuracy", "--seed", "3", "--only", "4", "--json"])
        .arg(&json)
        .assert()
        .success();
    let out = keep.path().join("out");
    bin()
        .arg("analyze")
        .arg(keep.path().join("run4"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let levels = report["studies"][0]["levels"].as_array().expect("levels");
    let l2 = levels
        .iter()
        .find(|l| l["level"] == "L2")
        .expect("L2 in the report");
    let scoliosis = l2["scoliosis_pct"].as_f64().expect("scoliosis measured");
    assert!(scoliosis < 10.0, "{l2}");
}
