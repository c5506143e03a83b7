//! `spinetriage batch` and `merge`: failure isolation, no PHI in outputs, resuming after a kill,
//! and shards that merge into exactly the single run.

use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

fn bin() -> Std {
    Std::cargo_bin("spinetriage").unwrap()
}

const CASES: [&str; 4] = ["normal", "acute-wedge-l1", "tumour-l4", "chronic-crush-l2"];

/// The batch root, built once per test binary: four small phantom studies, a study whose only
/// series has truncated pixel data, a decoy file and a truncated file.
fn root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        // Small phantoms: the batch logic, not the morphometry, is under test.
        let small = |dest: &Path, case: &str, seed: u64| {
            let ok = bin()
                .arg("phantom")
                .arg(dest)
                .args(["--case", case, "--seed", &seed.to_string()])
                .args([
                    "--ct-matrix",
                    "96",
                    "--ct-pixel-mm",
                    "2.6",
                    "--ct-slice-mm",
                    "5",
                ])
                .args(["--mr-pixel-mm", "2.5"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success());
        };
        for (i, case) in CASES.iter().enumerate() {
            small(&r.join("export"), case, 10 + i as u64);
        }
        // A fifth study with only a CT series whose pixel data are cut short: it must fail
        // alone, with a reason.
        small(&r.join("broken"), "normal", 99);
        let dicom = r.join("broken/normal/dicom");
        for e in std::fs::read_dir(&dicom).unwrap().flatten() {
            let p = e.path();
            if p.file_name().unwrap() != "02_ct" {
                std::fs::remove_dir_all(&p).unwrap();
                continue;
            }
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                let len = f.metadata().unwrap().len();
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(f.path())
                    .unwrap();
                file.set_len(len - 4000).unwrap();
            }
        }
        std::fs::write(r.join("export/notes.pdf"), b"%PDF-1.4 decoy").unwrap();
        tmp
    })
    .path()
}

/// `spinetriage batch ROOT -o OUT` with extra arguments.
fn batch(out: &Path, extra: &[&str]) -> std::process::Output {
    bin()
        .arg("batch")
        .arg(root())
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn summary(out: &Path, stem: &str) -> Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("{stem}.json"))).unwrap()).unwrap()
}

/// Rows without the timing column, for comparing runs.
fn rows_without_time(s: &Value) -> Vec<Value> {
    s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("seconds");
            r
        })
        .collect()
}

fn single_run() -> &'static (PathBuf, Value) {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf, Value)> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = batch(&out, &["--jobs", "2"]);
        // A failed study is reported in the exit code (4), and does not stop the others.
        assert_eq!(
            o.status.code(),
            Some(4),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = summary(&out, "batch-summary");
        (tmp, out, s)
    });
    // The TempDir lives in the static for the whole test binary.
    let (_, out, s) = r;
    Box::leak(Box::new((out.clone(), s.clone())))
}

#[test]
fn one_bad_study_fails_alone_and_outputs_carry_no_phi() {
    let (out, s) = single_run();
    let rows = s["rows"].as_array().unwrap();
    // The broken study's files are rejected at discovery (their pixel data are shorter than
    // the header claims), each named with its reason; the four good studies complete.
    assert_eq!(rows.len(), 4, "{s:#}");
    assert!(rows.iter().all(|r| r["status"] == "ok"), "{s:#}");
    let unreadable = s["unreadable_files"].as_array().unwrap();
    assert!(unreadable.len() >= 10, "{unreadable:?}");
    for u in unreadable {
        let u = u.as_str().unwrap();
        assert!(
            u.contains("02_ct") && u.contains(".dcm") && u.contains("truncated"),
            "{u}"
        );
    }
    for r in rows.iter().filter(|r| r["status"] == "ok") {
        let dir = out.join(r["study_dir"].as_str().unwrap());
        for f in [
            "report.json",
            "report.html",
            "report.md",
            "levels.csv",
            "done.json",
        ] {
            assert!(dir.join(f).is_file(), "{} missing {f}", dir.display());
        }
        assert!(r["study_dir"].as_str().unwrap().starts_with("study-"));
        assert!(r["levels"].as_u64().unwrap() >= 5);
    }
    // No patient name, ID or birth date anywhere in the outputs.
    let csv = std::fs::read_to_string(out.join("batch-summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    for e in walk(out) {
        let bytes = std::fs::read(&e).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for phi in ["PHANTOM^", "PH-1", "19480101"] {
            assert!(!text.contains(phi), "{} contains {phi}", e.display());
        }
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn a_killed_run_resumes_without_redoing_or_leaving_half_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut child = bin()
        .arg("batch")
        .arg(root())
        .arg("-o")
        .arg(&out)
        .args(["--jobs", "1", "--quiet"])
        .spawn()
        .unwrap();
    // Kill it as soon as the first study is complete.
    let t0 = Instant::now();
    let first_done = loop {
        let done: Vec<PathBuf> = std::fs::read_dir(&out)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path().join("done.json"))
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        if !done.is_empty() {
            break done.len();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no study finished");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was written is whole: every JSON file parses.
    for f in walk(&out) {
        if f.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&f).unwrap();
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|e| panic!("{} is half-written: {e}", f.display()));
        }
    }
    let o = batch(&out, &["--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let skipped: usize = stderr
        .split("studies, ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skipped count in: {stderr}"));
    assert!(
        skipped >= first_done,
        "{skipped} skipped, {first_done} were done: {stderr}"
    );
    let resumed = summary(&out, "batch-summary");
    assert_eq!(
        rows_without_time(&resumed),
        rows_without_time(&single_run().1)
    );
    let stale: Vec<PathBuf> = walk(&out)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(stale.is_empty(), "temporary files left behind: {stale:?}");
    // --force reprocesses everything.
    let o = batch(&out, &["--force"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 already complete"));
}

#[test]
fn shards_run_as_separate_processes_merge_into_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let n = 3;
    let children: Vec<_> = (0..n)
        .map(|k| {
            bin()
                .arg("batch")
                .arg(root())
                .arg("-o")
                .arg(&out)
                .args(["--jobs", "1", "--quiet", "--shard", &format!("{k}/{n}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    let o = bin().arg("merge").arg(&out).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "the failed study survives the merge"
    );
    let merged = summary(&out, "batch-summary");
    assert_eq!(
        rows_without_time(&merged),
        rows_without_time(&single_run().1)
    );
    // A missing shard is refused.
    std::fs::remove_file(out.join("batch-summary-shard-1-of-3.json")).unwrap();
    let o = bin().arg("merge").arg(&out).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard 1 of 3 is missing"));
}

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/scale-out")
        .join(name)
}

/// PATH with the `spinetriage` under test first, as the scripts call it by name.
fn path_with_bin() -> String {
    let exe = assert_cmd::cargo::cargo_bin("spinetriage");
    format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs the shell snippet of every shard with the given environment, merges, and compares with
/// the single run.
fn shards_via_shell(out: &Path, n: usize, script: &dyn Fn(usize) -> Std) {
    let children: Vec<_> = (0..n).map(|k| script(k).spawn().unwrap()).collect();
    for mut c in children {
        let st = c.wait().unwrap();
        assert!(st.success(), "shard script failed: {st}");
    }
    let o = bin().arg("merge").arg(out).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let merged = summary(out, "batch-summary");
    assert_eq!(
        rows_without_time(&merged),
        rows_without_time(&single_run().1)
    );
}

#[test]
fn the_documented_slurm_array_script_runs_each_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let n = 3;
    shards_via_shell(&out, n, &|k| {
        let mut c = Std::new("bash");
        c.arg(docs("spinetriage-array.sbatch"))
            .env("PATH", path_with_bin())
            .env("EXPORT", root())
            .env("OUT", &out)
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", n.to_string())
            .env("SLURM_CPUS_PER_TASK", "1")
            .stderr(Stdio::null());
        c
    });
}

#[test]
fn the_documented_kubernetes_indexed_job_runs_each_index() {
    let manifest = docs("spinetriage-indexed-job.yaml");
    // The manifest's own container command, read with an independent YAML parser.
    let script = r#"
import sys, json, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
job = docs[0]
spec = job["spec"]
assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
c = spec["template"]["spec"]["containers"][0]
env = {e["name"]: e["value"] for e in c["env"]}
assert spec["completions"] == spec["parallelism"] == int(env["SHARDS"])
print(json.dumps({"command": c["command"] + c["args"]}))
"#;
    let o = Std::new("python3")
        .args(["-c", script])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cmd: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cmd: Vec<String> = cmd["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let n = 3;
    shards_via_shell(&out, n, &|k| {
        let mut c = Std::new(&cmd[0]);
        c.args(&cmd[1..])
            .env("PATH", path_with_bin())
            .env("EXPORT", root())
            .env("OUT", &out)
            .env("SHARDS", n.to_string())
            .env("JOB_COMPLETION_INDEX", k.to_string())
            .stderr(Stdio::null());
        c
    });
}

#[test]
fn a_hostile_study_uid_cannot_place_outputs_and_phi_is_opt_in() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("inside/export");
    let ok = bin()
        .arg("phantom")
        .arg(&export)
        .args([
            "--case",
            "normal",
            "--seed",
            "40",
            "--no-ct",
            "--mr-pixel-mm",
            "2.5",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    // Every file claims a StudyInstanceUID that is a path out of any folder.
    let evil = "../../../escaped/../../x";
    for f in walk(&export)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
    {
        let mut obj = dicom_object::open_file(&f).unwrap();
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(evil),
        ));
        obj.write_to_file(&f).unwrap();
    }
    let out = tmp.path().join("inside/out");
    let o = bin()
        .arg("batch")
        .arg(&export)
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0) | Some(4)), "{o:?}");
    // Outputs only under OUT, in a hashed folder; nothing next to or above it.
    let dirs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].starts_with("study-") && !dirs[0].contains(".."));
    assert!(!tmp.path().join("escaped").exists() && !tmp.path().join("x").exists());
    let report = std::fs::read_to_string(out.join(&dirs[0]).join("report.json")).unwrap();
    assert!(!report.contains("PHANTOM^") && !report.contains("\"patient\""));
    // --include-phi copies the identity into the report and the SR.
    let out2 = tmp.path().join("inside/out-phi");
    let o = bin()
        .arg("batch")
        .arg(&export)
        .arg("-o")
        .arg(&out2)
        .args(["--quiet", "--include-phi"])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0) | Some(4)));
    let dir = out2.join(&dirs[0]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let p = &report["studies"][0]["patient"];
    assert_eq!(p["name"], "PHANTOM^NORMAL", "{p}");
    assert_eq!(p["birth_date"], "19480101");
    let sr = dicom_object::open_file(dir.join("report-sr.dcm")).unwrap();
    assert_eq!(
        sr.element(tags::PATIENT_NAME)
            .unwrap()
            .to_str()
            .unwrap()
            .trim(),
        "PHANTOM^NORMAL"
    );
}
