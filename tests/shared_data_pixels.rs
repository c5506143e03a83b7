//! Every file of the real shared data either decodes to what pydicom reads (after the modality LUT)
//! or fails with an error naming the file; nothing panics.
//!
//! The reference is `fixtures/pydicom-reference.json`, written by `scripts/pydicom_reference.py`.

use std::collections::BTreeMap;

use serde_json::Value;
use spinetriage_dicom::Limits;
use spinetriage_tests::{shared_data, workspace_root};
use spinetriage_volume::read_pixels;

/// Files we refuse although pydicom reads them, each with the reason (kept short on purpose).
const KNOWN_REFUSALS: &[(&str, &str)] = &[
    (
        "examples_palette.dcm",
        "PALETTE COLOR is not a grey-level image",
    ),
    (
        "liver_1frame.dcm",
        "1-bit segmentation masks are not images to measure",
    ),
    (
        "liver_expb_1frame.dcm",
        "1-bit segmentation masks are not images to measure",
    ),
    (
        "JPGExtended.dcm",
        "12-bit JPEG extended (process 4): jpeg-decoder refuses it",
    ),
];

#[test]
fn shared_files_match_pydicom_or_fail_clearly() {
    let Some(data) = shared_data("") else { return };
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("fixtures/pydicom-reference.json"))
            .expect("fixtures/pydicom-reference.json"),
    )
    .expect("valid reference JSON");
    let files = reference["files"].as_object().expect("files map");
    let limits = Limits::default();
    let mut matched = 0;
    let mut refused = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (rel, r) in files {
        let path = data.join(rel);
        let got = std::panic::catch_unwind(|| read_pixels(&path, &limits));
        let got = match got {
            Ok(g) => g,
            Err(_) => {
                mismatches.push(format!("{rel}: PANIC"));
                continue;
            }
        };
        match (r["status"].as_str(), got) {
            (Some("ok"), Ok(px)) => {
                let lossy = r["lossy"].as_bool().unwrap_or(false);
                let tol = if lossy { 2.0 } else { 1e-3 };
                let vals = &px.values;
                let count = r["count"].as_u64().unwrap_or(0) as usize;
                if vals.len() != count {
                    mismatches.push(format!("{rel}: {} values, pydicom {count}", vals.len()));
                    continue;
                }
                let mut bad = None;
                for (i, want) in r["samples_at"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(r["samples"].as_array().unwrap())
                {
                    let (i, want) = (i.as_u64().unwrap() as usize, want.as_f64().unwrap());
                    if (f64::from(vals[i]) - want).abs() > tol {
                        bad = Some(format!("value[{i}] = {} vs pydicom {want}", vals[i]));
                        break;
                    }
                }
                let sum: f64 = vals.iter().map(|&v| f64::from(v)).sum();
                let want_sum = r["sum"].as_f64().unwrap();
                let sum_tol = if lossy {
                    0.5 * count as f64
                } else {
                    1e-6 * want_sum.abs().max(1.0)
                };
                if bad.is_none() && (sum - want_sum).abs() > sum_tol {
                    bad = Some(format!("sum {sum} vs pydicom {want_sum}"));
                }
                match bad {
                    Some(b) => mismatches.push(format!("{rel}: {b}")),
                    None => matched += 1,
                }
            }
            (Some("ok"), Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&path.display().to_string()),
                    "{rel}: error does not name the file: {msg}"
                );
                refused.insert(rel.clone(), msg);
            }
            (_, Err(e)) => {
                // pydicom could not read it either, or it has no grey-level image: our error must
                // still name the file.
                let msg = e.to_string();
                assert!(
                    msg.contains(&path.display().to_string()),
                    "{rel}: error does not name the file: {msg}"
                );
            }
            (_, Ok(_)) => {}
        }
    }
    for (f, why) in &refused {
        eprintln!("refused (pydicom reads it): {f}: {why}");
    }
    let unexpected: Vec<_> = refused
        .keys()
        .filter(|f| !KNOWN_REFUSALS.iter().any(|(k, _)| f.ends_with(k)))
        .collect();
    eprintln!(
        "{matched} files match pydicom, {} refused, {} mismatches",
        refused.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "values differ from pydicom:\n{}",
        mismatches.join("\n")
    );
    assert!(unexpected.is_empty(), "unexpected refusals: {unexpected:?}");
    assert!(matched >= 100, "only {matched} files matched");
}

/// Regression: pydicom's 674-byte `UN_sequence.dcm` (a sequence re-encoded as UN with undefined
/// length) made dicom-parser reserve 3.6 GB. It is now refused by the structural pre-pass.
#[test]
fn un_sequence_is_refused_before_the_parser_allocates() {
    let Some(data) = shared_data("pydicom-test-files") else {
        return;
    };
    let e = read_pixels(&data.join("UN_sequence.dcm"), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("UN_sequence.dcm") && e.contains("CP-246"), "{e}");
}
