//! NIfTI-1 input (`.nii`, `.nii.gz`) for research datasets, with RAS mapped to LPS.
//!
//! A small reader of our own rather than the `nifti` crate: it checks the header's dimensions
//! against [`Limits`] before allocating, and produces our [`Volume`] directly.

use std::io::Read;
use std::path::Path;

use nalgebra::{Matrix4, Quaternion, UnitQuaternion, Vector3};
use ndarray::Array3;
use spinetriage_dicom::{Limits, SeriesKind};

use crate::{Grid, Volume, VolumeError};

fn err(path: &Path, reason: impl Into<String>) -> VolumeError {
    VolumeError::Nifti {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes an 8-bit label map on `grid` (values indexed `[k, j, i]` like [`Volume::data`], `labels`
/// in C order) as a gzipped NIfTI-1 file, with the grid's LPS affine as an RAS sform
/// (`sform_code` 1, scanner space).
pub fn write_nifti_labels(path: &Path, grid: &Grid, labels: &[u8]) -> Result<(), VolumeError> {
    use std::io::Write;
    let [ni, nj, nk] = grid.dims;
    if labels.len() != ni * nj * nk {
        return Err(err(
            path,
            format!("{} labels for a {ni}x{nj}x{nk} grid", labels.len()),
        ));
    }
    let dim_max = i16::MAX as usize;
    if ni > dim_max || nj > dim_max || nk > dim_max {
        return Err(err(path, "grid too large for NIfTI-1"));
    }
    let mut h = vec![0u8; 352];
    let put_i16 = |h: &mut Vec<u8>, o: usize, v: i16| h[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut Vec<u8>, o: usize, v: f32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    for (n, d) in [3usize, ni, nj, nk, 1, 1, 1, 1].iter().enumerate() {
        put_i16(&mut h, 40 + 2 * n, *d as i16);
    }
    put_i16(&mut h, 70, 2); // datatype: unsigned char
    put_i16(&mut h, 72, 8); // bitpix
    let sp = grid.spacing_mm();
    put_f32(&mut h, 76, 1.0); // qfac
    for (n, v) in sp.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * n, *v as f32);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    h[123] = 10; // xyzt_units: mm, s
    put_i16(&mut h, 254, 1); // sform_code: scanner
    let a = grid.index_to_lps;
    for r in 0..3 {
        // LPS → RAS: negate the first two rows.
        let sign = if r < 2 { -1.0 } else { 1.0 };
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, (sign * a[(r, c)]) as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    let file = std::fs::File::create(path).map_err(|e| err(path, e.to_string()))?;
    let mut gz =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    gz.write_all(&h)
        .and_then(|_| gz.write_all(labels))
        .and_then(|_| gz.finish().map(|_| ()))
        .map_err(|e| err(path, e.to_string()))
}

/// Reads a NIfTI-1 file as a volume of the given kind.
///
/// The affine comes from the sform when `sform_code > 0`, else the qform when `qform_code > 0`,
/// else pixdim alone (NIfTI "method 1"). NIfTI world space is RAS+; DICOM patient space is LPS+,
/// so the first two rows of the affine are negated. Only the first 3-D volume of a 4-D file is read.
pub fn read_nifti(path: &Path, kind: SeriesKind, limits: &Limits) -> Result<Volume, VolumeError> {
    let file = std::fs::File::open(path).map_err(|e| err(path, e.to_string()))?;
    let gz = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".gz"));
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut hdr = [0u8; 348];
    reader
        .read_exact(&mut hdr)
        .map_err(|e| err(path, format!("header: {e}")))?;
    let le = match (
        i32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
        i32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]),
    ) {
        (348, _) => true,
        (_, 348) => false,
        (540, _) | (_, 540) => return Err(err(path, "NIfTI-2 is not supported")),
        _ => return Err(err(path, "sizeof_hdr is not 348: not a NIfTI-1 file")),
    };
    let i16_at = |o: usize| {
        let b = [hdr[o], hdr[o + 1]];
        if le {
            i16::from_le_bytes(b)
        } else {
            i16::from_be_bytes(b)
        }
    };
    let f32_at = |o: usize| {
        let b = [hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]];
        f64::from(if le {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        })
    };
    let dim: Vec<i64> = (0..8).map(|i| i64::from(i16_at(40 + 2 * i))).collect();
    if !(1..=7).contains(&dim[0]) {
        return Err(err(path, format!("dim[0] = {} is invalid", dim[0])));
    }
    let size = |i: usize| -> Result<usize, VolumeError> {
        if i as i64 > dim[0] {
            return Ok(1);
        }
        usize::try_from(dim[i])
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| err(path, format!("dim[{i}] = {} is invalid", dim[i])))
    };
    let (ni, nj, nk) = (size(1)?, size(2)?, size(3)?);
    let (Ok(ni32), Ok(nj32)) = (u32::try_from(ni), u32::try_from(nj)) else {
        return Err(err(path, "dimensions too large"));
    };
    limits
        .check_volume(ni32, nj32, nk)
        .map_err(|r| err(path, format!("refused before allocation: {r}")))?;
    let datatype = i16_at(70);
    let bitpix = i16_at(72);
    let pixdim: Vec<f64> = (0..8).map(|i| f32_at(76 + 4 * i)).collect();
    let vox_offset = f32_at(108);
    let scl_slope = f32_at(112);
    let scl_inter = f32_at(116);
    let qform_code = i16_at(252);
    let sform_code = i16_at(254);
    let bytes_per = match datatype {
        2 | 256 => 1,
        4 | 512 => 2,
        8 | 768 | 16 => 4,
        64 => 8,
        other => return Err(err(path, format!("datatype {other} is not supported"))),
    };
    if i32::from(bitpix) != bytes_per as i32 * 8 {
        return Err(err(
            path,
            format!("bitpix {bitpix} disagrees with datatype {datatype}"),
        ));
    }
    if !(vox_offset.is_finite() && vox_offset >= 348.0) {
        return Err(err(path, format!("vox_offset {vox_offset} is invalid")));
    }
    // Skip extensions up to the voxel data.
    let skip = vox_offset as u64 - 348;
    std::io::copy(&mut reader.by_ref().take(skip), &mut std::io::sink())
        .map_err(|e| err(path, e.to_string()))?;
    let n = ni * nj * nk;
    let mut raw = Vec::new();
    raw.try_reserve_exact(n * bytes_per)
        .map_err(|e| err(path, format!("cannot allocate: {e}")))?;
    reader
        .take((n * bytes_per) as u64)
        .read_to_end(&mut raw)
        .map_err(|e| err(path, e.to_string()))?;
    if raw.len() < n * bytes_per {
        return Err(err(
            path,
            format!(
                "voxel data has {} bytes, the header requires {}",
                raw.len(),
                n * bytes_per
            ),
        ));
    }
    let (m, b) = if scl_slope.is_finite() && scl_slope != 0.0 {
        (
            scl_slope,
            if scl_inter.is_finite() {
                scl_inter
            } else {
                0.0
            },
        )
    } else {
        (1.0, 0.0)
    };
    let values: Vec<f32> = raw
        .chunks_exact(bytes_per)
        .map(|c| {
            let v = match (datatype, le) {
                (2, _) => f64::from(c[0]),
                (256, _) => f64::from(c[0] as i8),
                (4, true) => f64::from(i16::from_le_bytes([c[0], c[1]])),
                (4, false) => f64::from(i16::from_be_bytes([c[0], c[1]])),
                (512, true) => f64::from(u16::from_le_bytes([c[0], c[1]])),
                (512, false) => f64::from(u16::from_be_bytes([c[0], c[1]])),
                (8, true) => f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                (8, false) => f64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                (768, true) => f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                (768, false) => f64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                (16, true) => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                (16, false) => f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]])),
                (_, true) => f64::from_le_bytes(std::array::from_fn(|i| c[i])),
                (_, false) => f64::from_be_bytes(std::array::from_fn(|i| c[i])),
            };
            (v * m + b) as f32
        })
        .collect();

    let ras = if sform_code > 0 {
        let mut a = Matrix4::identity();
        for r in 0..3 {
            for c in 0..4 {
                a[(r, c)] = f32_at(280 + 16 * r + 4 * c);
            }
        }
        a
    } else if qform_code > 0 {
        let (qb, qc, qd) = (f32_at(256), f32_at(260), f32_at(264));
        let qa = (1.0 - (qb * qb + qc * qc + qd * qd)).max(0.0).sqrt();
        let rot = UnitQuaternion::from_quaternion(Quaternion::new(qa, qb, qc, qd));
        let qfac = if pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let mut a = Matrix4::identity();
        let rm = rot.to_rotation_matrix();
        let scale = Vector3::new(pixdim[1], pixdim[2], pixdim[3] * qfac);
        for r in 0..3 {
            for c in 0..3 {
                a[(r, c)] = rm[(r, c)] * scale[c];
            }
        }
        a[(0, 3)] = f32_at(268);
        a[(1, 3)] = f32_at(272);
        a[(2, 3)] = f32_at(276);
        a
    } else {
        Matrix4::new_nonuniform_scaling(&Vector3::new(pixdim[1], pixdim[2], pixdim[3]))
    };
    let mut lps = ras;
    for c in 0..4 {
        lps[(0, c)] = -ras[(0, c)];
        lps[(1, c)] = -ras[(1, c)];
    }
    let grid = Grid::from_affine([ni, nj, nk], lps)
        .ok_or_else(|| err(path, "affine is singular or not finite"))?;
    let data =
        Array3::from_shape_vec((nk, nj, ni), values).map_err(|e| err(path, e.to_string()))?;
    Ok(Volume {
        study_uid: String::new(),
        series_uid: path.display().to_string(),
        frame_of_reference_uid: None,
        kind,
        description: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        data: data.into(),
        grid,
        problems: Vec::new(),
        sources: vec![path.to_path_buf()],
        instances: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_maps_round_trip_with_their_geometry() {
        let axes = [
            Vector3::new(0.9, 0.1, 0.0).normalize() * 0.8,
            Vector3::new(-0.1, 0.9, 0.0).normalize() * 0.7,
            Vector3::new(0.0, 0.0, 2.5),
        ];
        let grid = Grid::new([5, 4, 3], Vector3::new(-10.0, 20.0, -300.0), axes).unwrap();
        let labels: Vec<u8> = (0..60u8).collect();
        let dir = std::env::temp_dir().join(format!("st-nifti-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("labels.nii.gz");
        write_nifti_labels(&path, &grid, &labels).unwrap();
        let v = read_nifti(&path, SeriesKind::Other, &Limits::default()).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(v.data.dim(), (3, 4, 5));
        assert_eq!(v.data.get([2, 3, 4]), Some(59.0));
        assert_eq!(v.data.get([0, 1, 2]), Some(7.0));
        for r in 0..3 {
            for c in 0..4 {
                assert!((v.grid.index_to_lps[(r, c)] - grid.index_to_lps[(r, c)]).abs() < 1e-4);
            }
        }
        assert!(write_nifti_labels(&path, &grid, &labels[1..]).is_err());
    }
}
