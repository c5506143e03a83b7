//! Series assembly on hard real cases (gantry tilt, uneven spacing, JPEG 2000 CT, NIfTI) and on
//! phantom series damaged on purpose (missing slice, duplicate position).

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use nalgebra::{Point3, Vector3};
use serde_json::Value;
use spinetriage_dicom::{discover, DiscoverOptions, Limits, SeriesKind};
use spinetriage_tests::{shared_data, small_ct_phantom, workspace_root};
use spinetriage_volume::{
    assemble, read_nifti, read_pixels, GeometryProblem, IndexPoint, LpsPoint,
};

fn one_series(dir: &std::path::Path) -> spinetriage_dicom::Series {
    let inv = discover(&[dir.to_path_buf()], &DiscoverOptions::default());
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    let uids: Vec<_> = inv
        .studies
        .iter()
        .map(|s| (&s.uid, s.series.len()))
        .collect();
    assert!(uids.len() == 1 && uids[0].1 == 1, "{uids:?}");
    inv.studies[0].series[0].clone()
}

/// The GE head CT of dcm_qa_ct: 18.5° gantry tilt, slices at 4 mm then 7 mm with a 1.08 mm step
/// between. It is resampled onto an orthogonal 4 mm grid; each voxel of the result must hold what
/// the acquired slice shows at the same LPS point.
#[test]
fn tilted_unevenly_spaced_ge_ct_is_resampled_exactly() {
    let Some(dir) = shared_data("dcm_qa_ct_ge") else {
        return;
    };
    let series = one_series(&dir);
    let vols = assemble(&series, &Limits::default()).unwrap();
    assert_eq!(vols.len(), 1);
    let v = &vols[0];
    let tilt = v.problems.iter().find_map(|p| match p {
        GeometryProblem::GantryTilt { angle_deg, .. } => Some(*angle_deg),
        _ => None,
    });
    assert!(
        (tilt.expect("tilt detected") - 18.5).abs() < 0.2,
        "{tilt:?}"
    );
    assert!(v.problems.iter().any(|p| matches!(p, GeometryProblem::UnevenSpacing { resampled_to_mm, .. } if (resampled_to_mm - 4.0).abs() < 0.01)), "{:?}", v.problems);
    // Orthogonal grid: k runs along the slice normal.
    let (r, c, k) = (
        v.grid.direction(0),
        v.grid.direction(1),
        v.grid.direction(2),
    );
    assert!(r.dot(&k).abs() < 1e-9 && c.dot(&k).abs() < 1e-9);
    assert_eq!(v.grid.dims[0..2], [512, 512]);
    // The normal extent covers first to last slice: (157.78 − 5.84) × cos 18.5° = 144.1 mm.
    assert_eq!(v.grid.dims[2], 37);

    // Compare against each acquired slice at its own pixel positions, with and without tilt.
    let mut err_ok = 0.0;
    let mut err_untilted = 0.0;
    let mut n = 0.0;
    for inst in &series.instances {
        let px = read_pixels(&inst.path, &Limits::default()).unwrap();
        let g = inst.frame_geometry(0);
        let p0 = Vector3::from(g.position_lps_mm.unwrap());
        let o = g.orientation.unwrap();
        let (rr, cc) = (
            Vector3::new(o[0], o[1], o[2]),
            Vector3::new(o[3], o[4], o[5]),
        );
        let s = g.pixel_spacing_mm.unwrap();
        // Where this slice would be if the tilt shift were ignored (aligned with slice 0).
        let first = Vector3::from(
            series
                .instances
                .iter()
                .map(|i| i.frame_geometry(0).position_lps_mm.unwrap())
                .min_by(|a, b| a[2].total_cmp(&b[2]))
                .unwrap(),
        );
        let nrm = rr.cross(&cc);
        let p_untilted = first + nrm * nrm.dot(&(p0 - first));
        for j in (150..360).step_by(7) {
            for i in (150..360).step_by(7) {
                let want = f64::from(px.values[j * 512 + i]);
                let off = rr * (i as f64 * s[1]) + cc * (j as f64 * s[0]);
                let q = p0 + off;
                let got = v.sample_lps(LpsPoint(Point3::from(q))).unwrap();
                let q2 = p_untilted + off;
                let got2 = v.sample_lps(LpsPoint(Point3::from(q2))).unwrap_or(got);
                err_ok += (f64::from(got) - want).abs();
                err_untilted += (f64::from(got2) - want).abs();
                n += 1.0;
            }
        }
    }
    let (e1, e2) = (err_ok / n, err_untilted / n);
    eprintln!("mean |error| with tilt handled {e1:.2} HU, ignoring it {e2:.2} HU");
    assert!(
        e1 < 0.35 * e2,
        "tilt-corrected error {e1:.2} HU is not well below {e2:.2} HU"
    );
    // Slice 0 lies exactly on output plane 0.
    let i0 = &series
        .instances
        .iter()
        .min_by(|a, b| {
            a.frame_geometry(0).position_lps_mm.unwrap()[2]
                .total_cmp(&b.frame_geometry(0).position_lps_mm.unwrap()[2])
        })
        .unwrap();
    let px0 = read_pixels(&i0.path, &Limits::default()).unwrap();
    for (idx, want) in px0.values.iter().enumerate().step_by(997) {
        let (j, i) = (idx / 512, idx % 512);
        assert_eq!(v.data.get([0, j, i]), Some(*want));
    }
}

#[test]
fn real_jpeg2000_ct_slab_loads_in_hu() {
    let Some(dir) = shared_data("real-ct-j2k-t11-t12") else {
        return;
    };
    let series = one_series(&dir);
    assert_eq!(series.classification.kind, SeriesKind::Ct);
    assert!(series.instances[0]
        .synthesized
        .contains(&"SeriesInstanceUID"));
    let v = &assemble(&series, &Limits::default()).unwrap()[0];
    assert_eq!(v.grid.dims, [512, 512, 20]);
    let sp = v.grid.spacing_mm();
    assert!(
        (sp[2] - 2.0).abs() < 0.01,
        "spacing from positions, not the 3 mm thickness: {sp:?}"
    );
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let max = v.data.to_f32().iter().copied().fold(f32::MIN, f32::max);
    let min = v.data.to_f32().iter().copied().fold(f32::MAX, f32::min);
    assert!(min <= -1000.0 && max > 700.0, "HU range {min}..{max}");
}

#[test]
fn nifti_affines_match_nibabel() {
    let Some(data) = shared_data("") else { return };
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("fixtures/nifti-reference.json")).unwrap(),
    )
    .unwrap();
    let files = reference["files"].as_object().unwrap();
    assert!(files.len() >= 18);
    for (rel, r) in files {
        let v = read_nifti(&data.join(rel), SeriesKind::MrT2, &Limits::default()).unwrap();
        let shape: Vec<usize> = r["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(v.grid.dims.to_vec(), shape, "{rel}");
        for row in 0..4 {
            for col in 0..4 {
                let want = r["affine_lps"][row][col].as_f64().unwrap();
                let got = v.grid.index_to_lps[(row, col)];
                assert!(
                    (want - got).abs() < 1e-3,
                    "{rel}: affine[{row}][{col}] {got} vs nibabel {want}"
                );
            }
        }
        let sum: f64 = v.data.to_f32().iter().map(|&x| f64::from(x)).sum();
        let want = r["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{rel}: sum {sum} vs {want}"
        );
        let at = &r["value_at"];
        let ijk: Vec<usize> = at[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            f64::from(v.data.get([ijk[2], ijk[1], ijk[0]]).expect("inside")),
            at[1].as_f64().unwrap(),
            "{rel}"
        );
        // The affine maps index to LPS and back.
        let p = v.grid.to_lps(IndexPoint(Point3::new(3.0, 4.0, 5.0)));
        assert!((v.grid.to_index(p).0 - Point3::new(3.0, 4.0, 5.0)).norm() < 1e-9);
    }
}

fn small_phantom(dir: &std::path::Path) -> std::path::PathBuf {
    small_ct_phantom(dir, 4, 64, 3.0, 4.0, 12)
}

#[test]
fn missing_slice_is_detected_and_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_phantom(tmp.path());
    let before = one_series(&dir);
    // Remove the 5th slice along the normal.
    let mut by_z: Vec<_> = before.instances.iter().collect();
    by_z.sort_by(|a, b| {
        a.frame_geometry(0).position_lps_mm.unwrap()[2]
            .total_cmp(&b.frame_geometry(0).position_lps_mm.unwrap()[2])
    });
    std::fs::remove_file(&by_z[4].path).unwrap();
    let v = &assemble(&one_series(&dir), &Limits::default()).unwrap()[0];
    assert!(
        v.problems
            .contains(&GeometryProblem::MissingSlices { count: 1 }),
        "{:?}",
        v.problems
    );
    assert_eq!(v.grid.dims[2], 12);
    assert!((v.grid.spacing_mm()[2] - 4.0).abs() < 1e-6);
}

#[test]
fn duplicate_position_is_reported_not_stacked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_phantom(tmp.path());
    let series = one_series(&dir);
    let src = &series.instances[3].path;
    let mut obj = dicom_object::open_file(src).unwrap();
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from("2.25.1234567"),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = "2.25.1234567".into());
    obj.write_to_file(dir.join("copy.dcm")).unwrap();
    let v = assemble(&one_series(&dir), &Limits::default()).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].grid.dims[2], 12);
    assert!(
        matches!(
            v[0].problems[0],
            GeometryProblem::DuplicatePositions { positions: 1, .. }
        ),
        "{:?}",
        v[0].problems
    );
}

#[test]
fn oversized_volume_is_refused_before_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = small_phantom(tmp.path());
    let series = one_series(&dir);
    let mut limits = Limits::default();
    limits.max_voxels = 64 * 64 * 11;
    let err = assemble(&series, &limits).unwrap_err().to_string();
    assert!(
        err.contains("refused before allocation") && err.contains(&series.uid),
        "{err}"
    );
}

/// An enhanced multi-frame CT: frames stored out of order, positions and rescale per frame in the
/// functional groups; the volume must follow the per-frame positions and intercepts.
#[test]
fn enhanced_multiframe_uses_per_frame_positions_and_rescale() {
    use dicom_core::value::DataSetSequence;
    use dicom_object::meta::FileMetaTableBuilder;
    use dicom_object::InMemDicomObject;
    let tmp = tempfile::tempdir().unwrap();
    let ds = |tag, v: &str| DataElement::new(tag, VR::DS, PrimitiveValue::from(v));
    let seq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    };
    let item =
        |elems: Vec<DataElement<InMemDicomObject>>| InMemDicomObject::from_element_iter(elems);
    // Frame f sits at z = order[f] × 1.5 mm, with intercept −1000 − f.
    let order = [3.0, 1.0, 0.0, 2.0];
    let per_frame: Vec<InMemDicomObject> = order
        .iter()
        .enumerate()
        .map(|(f, z)| {
            item(vec![
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![ds(
                        tags::IMAGE_POSITION_PATIENT,
                        &format!("-2\\-2\\{}", z * 1.5),
                    )])],
                ),
                seq(
                    tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                    vec![item(vec![
                        ds(tags::RESCALE_INTERCEPT, &format!("{}", -1000 - f as i32)),
                        ds(tags::RESCALE_SLOPE, "1"),
                    ])],
                ),
            ])
        })
        .collect();
    let shared = vec![item(vec![
        seq(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                ds(tags::PIXEL_SPACING, "0.5\\0.5"),
                ds(tags::SLICE_THICKNESS, "1.5"),
            ])],
        ),
        seq(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![ds(
                tags::IMAGE_ORIENTATION_PATIENT,
                "1\\0\\0\\0\\1\\0",
            )])],
        ),
    ])];
    let pixels: Vec<u16> = (0..4u16)
        .flat_map(|f| (0..64u16).map(move |p| 100 * f + p))
        .collect();
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let us = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let obj = InMemDicomObject::from_element_iter(vec![
        s(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2.1"),
        s(tags::SOP_INSTANCE_UID, VR::UI, "2.25.42"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.43"),
        s(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.44"),
        s(tags::MODALITY, VR::CS, "CT"),
        s(tags::NUMBER_OF_FRAMES, VR::IS, "4"),
        us(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        us(tags::ROWS, 8),
        us(tags::COLUMNS, 8),
        us(tags::BITS_ALLOCATED, 16),
        us(tags::BITS_STORED, 16),
        us(tags::HIGH_BIT, 15),
        us(tags::PIXEL_REPRESENTATION, 0),
        seq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, shared),
        seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())),
    ]);
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .unwrap()
        .write_to_file(tmp.path().join("enhanced.dcm"))
        .unwrap();
    let series = one_series(tmp.path());
    assert_eq!(series.classification.kind, SeriesKind::Ct);
    let v = &assemble(&series, &Limits::default()).unwrap()[0];
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.grid.dims, [8, 8, 4]);
    assert!((v.grid.spacing_mm()[2] - 1.5).abs() < 1e-9);
    for (k, z) in [0.0, 1.0, 2.0, 3.0].iter().enumerate() {
        let f = order.iter().position(|o| o == z).unwrap();
        let want = f32::from(100 * f as u16 + 9) - 1000.0 - f as f32;
        assert_eq!(
            v.data.get([k, 1, 1]),
            Some(want),
            "slice {k} comes from frame {f}"
        );
        let p = v.grid.to_lps(IndexPoint(Point3::new(1.0, 1.0, k as f64))).0;
        assert!((p - Point3::new(-1.5, -1.5, z * 1.5)).norm() < 1e-9);
    }
}

/// Two matrices under one SeriesInstanceUID (a reconstruction appended to a series): split into two
/// volumes, each flagged, never stacked together.
#[test]
fn mixed_sizes_in_one_series_are_split() {
    let tmp = tempfile::tempdir().unwrap();
    let a = small_phantom(&tmp.path().join("a"));
    small_ct_phantom(&tmp.path().join("b"), 5, 48, 4.0, 4.0, 6);
    let first = one_series(&a);
    let (uid, study) = (first.uid.clone(), first.instances[0].study_uid.clone());
    for f in std::fs::read_dir(tmp.path().join("b/normal/dicom/02_ct")).unwrap() {
        let p = f.unwrap().path();
        let mut obj = dicom_object::open_file(&p).unwrap();
        for (tag, v) in [
            (tags::SERIES_INSTANCE_UID, &uid),
            (tags::STUDY_INSTANCE_UID, &study),
        ] {
            obj.put(DataElement::new(
                tag,
                VR::UI,
                PrimitiveValue::from(v.as_str()),
            ));
        }
        obj.write_to_file(a.join(format!("b-{}", p.file_name().unwrap().to_string_lossy())))
            .unwrap();
    }
    let vols = assemble(&one_series(&a), &Limits::default()).unwrap();
    assert_eq!(vols.len(), 2);
    let mut dims: Vec<_> = vols.iter().map(|v| v.grid.dims).collect();
    dims.sort();
    assert_eq!(dims, [[48, 48, 6], [64, 64, 12]]);
    for v in &vols {
        assert!(
            v.problems
                .contains(&GeometryProblem::MixedStacks { stacks: 2 }),
            "{:?}",
            v.problems
        );
    }
}
