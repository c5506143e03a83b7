//! Hostile and malformed input mixed into a folder with a good study: every bad file ends with an
//! error naming it (or is skipped as non-DICOM), nothing panics, memory stays bounded because caps
//! are checked before allocating, and the good study still loads.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use spinetriage_dicom::{discover, index, DiscoverOptions, Limits};
use spinetriage_volume::{assemble, read_pixels};

/// A small good CT phantom; returns its series folder.
fn good_study(root: &Path) -> PathBuf {
    spinetriage_tests::small_ct_phantom(root, 21, 64, 3.0, 4.0, 10)
}

/// Writes a copy of `template` with some elements replaced and a fresh SOP Instance UID.
fn variant(template: &Path, out: &Path, n: u32, edits: &[(dicom_core::Tag, VR, &str)]) -> PathBuf {
    let mut obj = dicom_object::open_file(template).unwrap();
    let sop = format!("2.25.99{n}");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
    for (tag, vr, v) in edits {
        let value = match vr {
            VR::US => PrimitiveValue::from(v.parse::<u16>().unwrap()),
            _ => PrimitiveValue::from(*v),
        };
        obj.put(DataElement::new(*tag, *vr, value));
    }
    let p = out.join(format!("variant-{n}.dcm"));
    obj.write_to_file(&p).unwrap();
    p
}

#[test]
fn hostile_files_fail_alone_and_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let series_dir = good_study(tmp.path());
    let template = std::fs::read_dir(&series_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let bytes = std::fs::read(&template).unwrap();

    // Truncated at every 10 % of its length.
    let mut expect_error: Vec<PathBuf> = Vec::new();
    for pct in 1..10 {
        let p = bad.join(format!("truncated-{pct}0.dcm"));
        std::fs::write(&p, &bytes[..bytes.len() * pct / 10]).unwrap();
        expect_error.push(p);
    }
    // Headers claiming absurd matrices, bad geometry, short pixel data.
    let claims = [
        vec![
            (tags::ROWS, VR::US, "65535"),
            (tags::COLUMNS, VR::US, "65535"),
            (tags::NUMBER_OF_FRAMES, VR::IS, "1000"),
        ],
        vec![(tags::PIXEL_SPACING, VR::DS, "0\\0")],
        vec![(tags::PIXEL_SPACING, VR::DS, "-0.5\\-0.5")],
        vec![(tags::IMAGE_POSITION_PATIENT, VR::DS, "NaN\\0\\0")],
        vec![(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "0\\0\\0\\0\\0\\0")],
    ];
    let mut geometry_bad = Vec::new();
    for (n, edits) in claims.iter().enumerate() {
        let p = variant(&template, &bad, n as u32, edits);
        if n == 0 {
            expect_error.push(p);
        } else {
            geometry_bad.push(p);
        }
    }
    // Pixel data shorter than the header claims (same header, half the pixel bytes, fixed length).
    {
        let mut obj = dicom_object::open_file(&template).unwrap();
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("2.25.777"),
        ));
        obj.update_meta(|m| m.media_storage_sop_instance_uid = "2.25.777".into());
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![7u16; 64 * 32].into()),
        ));
        let p = bad.join("short-pixels.dcm");
        obj.write_to_file(&p).unwrap();
        let e = read_pixels(&p, &Limits::default()).unwrap_err().to_string();
        assert!(
            e.contains("short-pixels.dcm") && e.contains("4096 bytes, the header requires 8192"),
            "{e}"
        );
    }
    // A wrong length in an element header: PatientName's 16-bit length set to 0xFFF0.
    {
        let mut b = bytes.clone();
        let pos = b
            .windows(4)
            .position(|w| w == [0x10, 0x00, 0x10, 0x00])
            .unwrap();
        b[pos + 6] = 0xF0;
        b[pos + 7] = 0xFF;
        let p = bad.join("wrong-vr-length.dcm");
        std::fs::write(&p, b).unwrap();
        expect_error.push(p);
    }
    // Sequences nested 10,000 deep after a valid meta group.
    {
        let meta_end = bytes
            .windows(4)
            .position(|w| w == [0x08, 0x00, 0x05, 0x00])
            .unwrap_or(usize::MAX)
            .min(
                bytes
                    .windows(4)
                    .position(|w| w == [0x08, 0x00, 0x08, 0x00])
                    .unwrap_or(usize::MAX),
            );
        let mut b = bytes[..meta_end].to_vec();
        for _ in 0..10_000 {
            b.extend_from_slice(&[
                0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let p = bad.join("nested-10000.dcm");
        std::fs::write(&p, b).unwrap();
        expect_error.push(p);
    }
    // Decoys, a duplicate SOP Instance UID, a symlink loop.
    std::fs::write(bad.join("report.pdf"), b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n").unwrap();
    std::fs::write(bad.join("scout.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    std::fs::write(bad.join("empty"), b"").unwrap();
    std::fs::write(
        bad.join("random.bin"),
        (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::copy(&template, bad.join("duplicate-sop.dcm")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&bad, bad.join("loop")).unwrap();

    let inv = discover(&[tmp.path().to_path_buf()], &DiscoverOptions::default());
    let errors: Vec<String> = inv.errors.iter().map(|e| e.to_string()).collect();
    for p in &expect_error {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            errors.iter().any(|e| e.contains(&name)),
            "no error names {name}: {errors:#?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("refused before allocation") && e.contains("65535")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("nested deeper than 64")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("duplicate SOPInstanceUID")),
        "{errors:#?}"
    );
    #[cfg(unix)]
    assert!(
        errors.iter().any(|e| e.contains("loop")),
        "symlink loop reported: {errors:#?}"
    );
    assert_eq!(
        inv.non_dicom.len(),
        5,
        "4 decoys + truth.json: {:?}",
        inv.non_dicom
    );

    // The batch's index of the same tree keeps paths only, and reading the headers of one study's
    // paths again gives that study exactly; the duplicate instance is reported then.
    let lists = tempfile::tempdir().unwrap();
    let idx = index(
        &[tmp.path().to_path_buf()],
        &DiscoverOptions::default(),
        |h| u64::from(h.rows),
        lists.path(),
    )
    .unwrap();
    assert_eq!(idx.non_dicom, inv.non_dicom.len());
    assert_eq!(idx.files_examined, inv.files_examined);
    let uids: Vec<&str> = idx.studies.iter().map(|s| s.uid.as_str()).collect();
    let want: Vec<&str> = inv.studies.iter().map(|s| s.uid.as_str()).collect();
    assert_eq!(uids, want);
    let index_errors: Vec<String> = idx.errors.iter().map(|e| e.to_string()).collect();
    let not_duplicates: Vec<&String> = errors
        .iter()
        .filter(|e| !e.contains("duplicate SOPInstanceUID"))
        .collect();
    assert_eq!(index_errors.iter().collect::<Vec<_>>(), not_duplicates);
    for (sf, st) in idx.studies.iter().zip(&inv.studies) {
        assert_eq!(sf.series, st.series.len());
        let instances: usize = st.series.iter().map(|s| s.instances.len()).sum();
        let rows: u64 = st
            .series
            .iter()
            .flat_map(|s| &s.instances)
            .map(|h| u64::from(h.rows))
            .sum();
        let again = discover(&sf.files().unwrap(), &DiscoverOptions::default());
        assert_eq!(again.studies.len(), 1);
        let re = &again.studies[0];
        assert_eq!(re.uid, st.uid);
        let paths = |s: &spinetriage_dicom::Study| -> Vec<PathBuf> {
            s.series
                .iter()
                .flat_map(|s| s.instances.iter().map(|h| h.path.clone()))
                .collect()
        };
        assert_eq!(paths(re), paths(st));
        let dup = again
            .errors
            .iter()
            .filter(|e| e.to_string().contains("duplicate SOPInstanceUID"))
            .count();
        // The index counts the duplicate file once more than the study holds.
        assert_eq!(sf.file_count, instances + dup);
        assert_eq!(sf.files().unwrap().len(), sf.file_count);
        assert!(sf.weight >= rows && sf.weight <= rows + 64 * dup as u64);
    }
    assert_eq!(
        idx.studies.iter().map(|s| s.file_count).sum::<usize>(),
        inv.studies
            .iter()
            .flat_map(|s| &s.series)
            .map(|s| s.instances.len())
            .sum::<usize>()
            + 1,
        "the duplicate is one more file"
    );

    // The good series still assembles; the geometry-broken instances fail with their file named.
    let study = &inv.studies[0];
    let series = &study.series[0];
    let mut clean = series.clone();
    clean.instances.retain(|i| !geometry_bad.contains(&i.path));
    let v = assemble(&clean, &Limits::default()).unwrap();
    assert_eq!(v[0].grid.dims, [64, 64, 10]);
    for bad_path in &geometry_bad {
        let mut one = series.clone();
        one.instances.retain(|i| &i.path == bad_path);
        if one.instances.is_empty() {
            // Discovery already refused it (NaN positions are not numbers): also fine, and named.
            let name = bad_path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                errors.iter().any(|e| e.contains(&name)),
                "{name} neither grouped nor reported"
            );
            continue;
        }
        let e = assemble(&one, &Limits::default()).unwrap_err().to_string();
        assert!(e.contains(&*bad_path.to_string_lossy()), "{e}");
    }
}

#[test]
fn two_studies_in_one_folder_are_kept_apart() {
    let tmp = tempfile::tempdir().unwrap();
    for (seed, name) in [(31, "a"), (32, "b")] {
        let mut cfg = spinetriage_phantom::case("normal", seed).unwrap();
        cfg.name = name.into();
        cfg.series = spinetriage_phantom::SeriesSet::ct_only();
        cfg.ct.matrix = 32;
        cfg.ct.pixel_mm = 6.0;
        cfg.ct.slice_mm = 8.0;
        cfg.ct.slices = 5;
        spinetriage_phantom::generate(&cfg, tmp.path()).unwrap();
    }
    // Flatten both studies into one folder.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    for name in ["a", "b"] {
        for f in std::fs::read_dir(tmp.path().join(name).join("dicom/02_ct")).unwrap() {
            let p = f.unwrap().path();
            std::fs::copy(
                &p,
                mixed.join(format!(
                    "{name}-{}",
                    p.file_name().unwrap().to_string_lossy()
                )),
            )
            .unwrap();
        }
    }
    let inv = discover(std::slice::from_ref(&mixed), &DiscoverOptions::default());
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    assert_eq!(inv.studies.len(), 2);
    let lists = tempfile::tempdir().unwrap();
    let idx = index(&[mixed], &DiscoverOptions::default(), |_| 2, lists.path()).unwrap();
    assert!(idx.errors.is_empty(), "{:?}", idx.errors);
    let found: Vec<(&str, usize, usize, u64)> = idx
        .studies
        .iter()
        .map(|s| (s.uid.as_str(), s.series, s.file_count, s.weight))
        .collect();
    let want: Vec<(&str, usize, usize, u64)> = inv
        .studies
        .iter()
        .map(|s| (s.uid.as_str(), 1, 5, 10))
        .collect();
    assert_eq!(found, want);
    for st in &inv.studies {
        assert_eq!(st.series.len(), 1);
        assert_eq!(st.series[0].instances.len(), 5);
    }
}
