//! `--seg`: the body and posterior-element masks as a NIfTI label map on the shape series' grid, with a JSON table of
//! labels (label value → level name), for checking the segmentation in any viewer.

use crate::{write_atomic, ReportError, StudyInput};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Writes `segmentation[-n].nii.gz` and `segmentation[-n].labels.json` for one study into
/// `dir`. Label values are the levels' positions in the column, 1 = most cranial.
pub fn write(dir: &Path, s: &StudyInput, suffix: &str) -> Result<Vec<PathBuf>, ReportError> {
    let Some(m) = s.morphometry else {
        return Ok(Vec::new());
    };
    let Some(vol) = s
        .volumes
        .iter()
        .find(|v| v.series_uid == m.shape_series_uid)
    else {
        return Ok(Vec::new());
    };
    let seg = &m.segmentation;
    let [ni, nj, nk] = vol.grid.dims;
    let mut labels = vec![0u8; ni * nj * nk];
    let mut table = Vec::new();
    // Bodies are painted first and keep their voxels: a posterior element reaching into a body
    // (pedicle bases) must not take body voxels away from anyone checking the body masks.
    let mut paint = |mask: &spinetriage_segment::BodyMask, value: u8, overwrite: bool| {
        for c in mask.voxels() {
            let g = seg.view.to_grid_index(c.map(|v| v as f64)).0;
            let (i, j, k) = (
                g.x.round() as usize,
                g.y.round() as usize,
                g.z.round() as usize,
            );
            if i < ni && j < nj && k < nk {
                let l = &mut labels[(k * nj + j) * ni + i];
                if overwrite || *l == 0 {
                    *l = value;
                }
            }
        }
    };
    for b in &seg.bodies {
        let value = u8::try_from(b.ordinal + 1).unwrap_or(u8::MAX);
        paint(&b.mask, value, true);
        table.push(
            json!({"value": value, "level": b.label, "structure": "body", "voxels": b.mask.count(),
                          "volume_mm3": crate::json::round(b.volume_mm3, 1)}),
        );
    }
    // Posterior elements: 100 + 4 × position + structure (left pedicle, right pedicle, lamina,
    // spinous process).
    for l in &m.levels {
        let Some(pe) = &l.measurement.posterior_elements else {
            continue;
        };
        for (k, part) in pe.parts.iter().enumerate() {
            let Some(mask) = part.mask.as_ref().filter(|_| part.found) else {
                continue;
            };
            let value = u8::try_from(100 + 4 * l.ordinal + k).unwrap_or(u8::MAX);
            paint(mask, value, false);
            table.push(json!({"value": value, "level": l.level, "structure": part.part,
                              "voxels": mask.count(), "volume_mm3": crate::json::round(part.volume_mm3, 1)}));
        }
    }
    let nii = dir.join(format!("segmentation{suffix}.nii.gz"));
    // NIfTI is written through a temporary name like every other output.
    let tmp = dir.join(format!(
        ".segmentation{suffix}.nii.gz.tmp{}",
        std::process::id()
    ));
    spinetriage_volume::write_nifti_labels(&tmp, &vol.grid, &labels).map_err(|e| {
        ReportError::Write {
            path: nii.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    std::fs::rename(&tmp, &nii).map_err(|source| ReportError::Write {
        path: nii.clone(),
        source,
    })?;
    let side = dir.join(format!("segmentation{suffix}.labels.json"));
    let doc = json!({"study_uid": s.study_uid, "series_uid": vol.series_uid,
                     "note": "label value: body = position in the column (1 = most cranial); posterior elements = 100 + 4 × (position − 1) + 0 left pedicle, 1 right pedicle, 2 lamina, 3 spinous process; 0 = background",
                     "labels": table});
    write_atomic(
        &side,
        serde_json::to_string_pretty(&doc)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(vec![nii, side])
}
