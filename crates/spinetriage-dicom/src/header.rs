//! The header fields of one instance that later stages need, read without Pixel Data.

use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use serde::Serialize;

use crate::{object::open_object, DicomError, Limits};

/// Modality LUT of one frame: `value = stored × slope + intercept`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rescale {
    /// Rescale Slope (0028,1053); 1 when absent.
    pub slope: f64,
    /// Rescale Intercept (0028,1052); 0 when absent.
    pub intercept: f64,
}

impl Default for Rescale {
    fn default() -> Self {
        Rescale {
            slope: 1.0,
            intercept: 0.0,
        }
    }
}

/// Geometry and rescale of one frame (a slice) in patient coordinates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameGeometry {
    /// ImagePositionPatient: LPS mm of the centre of the first transmitted pixel.
    pub position_lps_mm: Option<[f64; 3]>,
    /// ImageOrientationPatient: row direction cosines then column direction cosines (LPS).
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing: [between rows, between columns] in mm.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// SliceThickness in mm.
    pub slice_thickness_mm: Option<f64>,
    /// Modality LUT of this frame.
    pub rescale: Rescale,
}

/// MR acquisition parameters used for series classification.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MrParams {
    /// ScanningSequence (SE, IR, GR, EP, RM), one or more.
    pub scanning_sequence: Vec<String>,
    /// SequenceVariant (SK, MTC, SS, TRSS, SP, MP, OSP, NONE).
    pub sequence_variant: Vec<String>,
    /// ScanOptions (FS, SAT1, IR, ...).
    pub scan_options: Vec<String>,
    /// SequenceName, often vendor-coded (for example `*tse2d1_15`, `*tir2d1_15`).
    pub sequence_name: Option<String>,
    /// RepetitionTime in ms.
    pub repetition_time_ms: Option<f64>,
    /// EchoTime in ms.
    pub echo_time_ms: Option<f64>,
    /// InversionTime in ms.
    pub inversion_time_ms: Option<f64>,
    /// MagneticFieldStrength in tesla.
    pub field_strength_t: Option<f64>,
}

/// Everything about one instance that discovery, classification and assembly need.
///
/// Patient identifiers are deliberately not read: nothing downstream needs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceHeader {
    /// The file this instance came from.
    pub path: PathBuf,
    /// Transfer Syntax UID of the file meta group.
    pub transfer_syntax: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// Identifiers that were absent and had to be made up (anonymised exports drop them): the
    /// SOP Instance UID comes from the file meta group, study and series keys from the folder.
    pub synthesized: Vec<&'static str>,
    /// Frame of Reference UID, shared by series acquired in one patient position.
    pub frame_of_reference_uid: Option<String>,
    /// Modality (CT, MR, ...).
    pub modality: String,
    /// Series Description.
    pub series_description: Option<String>,
    /// Series Number.
    pub series_number: Option<i64>,
    /// Instance Number (never used for ordering slices).
    pub instance_number: Option<i64>,
    /// Study Date (YYYYMMDD).
    pub study_date: Option<String>,
    /// Image Type values.
    pub image_type: Vec<String>,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// Number of Frames (1 when absent).
    pub frames: u32,
    /// Samples per Pixel.
    pub samples_per_pixel: u16,
    /// Bits Allocated.
    pub bits_allocated: u16,
    /// Bits Stored.
    pub bits_stored: u16,
    /// Pixel Representation: 0 unsigned, 1 two's complement.
    pub pixel_representation: u16,
    /// Photometric Interpretation.
    pub photometric: Option<String>,
    /// Whether the data set has a Pixel Data element (only known after a full read; headers-only reads
    /// infer it from Rows/Columns).
    pub has_image: bool,
    /// Per-frame geometry: one entry per frame for enhanced multi-frame objects, else one entry.
    pub frames_geometry: Vec<FrameGeometry>,
    /// SpacingBetweenSlices in mm (informative only: slice spacing is computed from positions).
    pub spacing_between_slices_mm: Option<f64>,
    /// GantryDetectorTilt in degrees (CT).
    pub gantry_tilt_deg: Option<f64>,
    /// MR parameters, for MR instances.
    pub mr: Option<MrParams>,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn texts(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| {
            v.iter()
                .map(|s| {
                    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                        .to_string()
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let v = obj.get(tag)?.to_multi_float64().ok()?;
    v.iter().all(|x| x.is_finite()).then_some(v)
}

fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    floats(obj, tag)?.first().copied()
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

fn arr<const N: usize>(v: Option<Vec<f64>>) -> Option<[f64; N]> {
    let v = v?;
    (v.len() >= N).then(|| std::array::from_fn(|i| v[i]))
}

/// Reads geometry attributes from a data set or a functional-group item, each of which may hold them
/// directly or inside its macro sequence.
fn geometry_from(item: &InMemDicomObject, base: &FrameGeometry) -> FrameGeometry {
    let mut g = base.clone();
    let pos_src = first_item(item, tags::PLANE_POSITION_SEQUENCE).unwrap_or(item);
    if let Some(p) = arr::<3>(floats(pos_src, tags::IMAGE_POSITION_PATIENT)) {
        g.position_lps_mm = Some(p);
    }
    let ori_src = first_item(item, tags::PLANE_ORIENTATION_SEQUENCE).unwrap_or(item);
    if let Some(o) = arr::<6>(floats(ori_src, tags::IMAGE_ORIENTATION_PATIENT)) {
        g.orientation = Some(o);
    }
    let pm_src = first_item(item, tags::PIXEL_MEASURES_SEQUENCE).unwrap_or(item);
    if let Some(s) = arr::<2>(floats(pm_src, tags::PIXEL_SPACING)) {
        g.pixel_spacing_mm = Some(s);
    }
    if let Some(t) = float(pm_src, tags::SLICE_THICKNESS) {
        g.slice_thickness_mm = Some(t);
    }
    let rs_src = first_item(item, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE).unwrap_or(item);
    if let Some(s) = float(rs_src, tags::RESCALE_SLOPE) {
        g.rescale.slope = s;
    }
    if let Some(i) = float(rs_src, tags::RESCALE_INTERCEPT) {
        g.rescale.intercept = i;
    }
    g
}

fn mr_params(obj: &InMemDicomObject) -> MrParams {
    let mut p = MrParams {
        scanning_sequence: texts(obj, tags::SCANNING_SEQUENCE),
        sequence_variant: texts(obj, tags::SEQUENCE_VARIANT),
        scan_options: texts(obj, tags::SCAN_OPTIONS),
        sequence_name: text(obj, tags::SEQUENCE_NAME)
            .or_else(|| text(obj, tags::PULSE_SEQUENCE_NAME)),
        repetition_time_ms: float(obj, tags::REPETITION_TIME),
        echo_time_ms: float(obj, tags::ECHO_TIME),
        inversion_time_ms: float(obj, tags::INVERSION_TIME),
        field_strength_t: float(obj, tags::MAGNETIC_FIELD_STRENGTH),
    };
    // Enhanced MR keeps timing in functional groups.
    for group in [
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
    ] {
        let Some(fg) = first_item(obj, group) else {
            continue;
        };
        if let Some(t) = first_item(fg, tags::MR_TIMING_AND_RELATED_PARAMETERS_SEQUENCE) {
            p.repetition_time_ms = p.repetition_time_ms.or(float(t, tags::REPETITION_TIME));
        }
        if let Some(e) = first_item(fg, tags::MR_ECHO_SEQUENCE) {
            p.echo_time_ms = p.echo_time_ms.or(float(e, tags::EFFECTIVE_ECHO_TIME));
        }
        if let Some(m) = first_item(fg, tags::MR_MODIFIER_SEQUENCE) {
            p.inversion_time_ms = p.inversion_time_ms.or(float(m, tags::INVERSION_TIMES));
        }
    }
    if p.scanning_sequence.is_empty() {
        // Enhanced MR: EchoPulseSequence (SPIN, GRADIENT, BOTH) and InversionRecovery (YES/NO).
        if let Some(e) = text(obj, tags::ECHO_PULSE_SEQUENCE) {
            p.scanning_sequence.push(match e.as_str() {
                "SPIN" => "SE".into(),
                "GRADIENT" => "GR".into(),
                other => other.into(),
            });
        }
        if text(obj, tags::INVERSION_RECOVERY).as_deref() == Some("YES") {
            p.scanning_sequence.push("IR".into());
        }
    }
    p
}

/// Extracts an [`InstanceHeader`] from a parsed object.
pub fn header_from_object(
    path: &Path,
    file: &DefaultDicomObject,
) -> Result<InstanceHeader, DicomError> {
    let obj: &InMemDicomObject = file;
    let transfer_syntax = file.meta().transfer_syntax();
    let mut synthesized = Vec::new();
    let meta_sop = file
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let sop_instance_uid = match text(obj, tags::SOP_INSTANCE_UID) {
        Some(u) => u,
        None if !meta_sop.is_empty() => {
            synthesized.push("SOPInstanceUID");
            meta_sop
        }
        None => {
            return Err(DicomError::MissingAttribute {
                path: path.to_path_buf(),
                attribute: "SOPInstanceUID",
            })
        }
    };
    let modality = text(obj, tags::MODALITY).unwrap_or_else(|| "OT".to_string());
    let folder = path
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let study_uid = text(obj, tags::STUDY_INSTANCE_UID).unwrap_or_else(|| {
        synthesized.push("StudyInstanceUID");
        format!("missing-study:{folder}")
    });
    let series_uid = text(obj, tags::SERIES_INSTANCE_UID).unwrap_or_else(|| {
        synthesized.push("SeriesInstanceUID");
        // Without a UID, files of one folder, modality and series number form one series.
        format!(
            "missing-series:{folder}:{modality}:{}",
            int(obj, tags::SERIES_NUMBER).map_or("-".to_string(), |n| n.to_string())
        )
    });
    let u32_of = |tag| int(obj, tag).and_then(|v| u32::try_from(v).ok());
    let u16_of = |tag| int(obj, tag).and_then(|v| u16::try_from(v).ok());
    let rows = u32_of(tags::ROWS).unwrap_or(0);
    let columns = u32_of(tags::COLUMNS).unwrap_or(0);
    let frames = u32_of(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let bits_allocated = u16_of(tags::BITS_ALLOCATED).unwrap_or(0);

    let top = geometry_from(
        obj,
        &FrameGeometry {
            position_lps_mm: None,
            orientation: None,
            pixel_spacing_mm: None,
            slice_thickness_mm: None,
            rescale: Rescale::default(),
        },
    );
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .map(|s| geometry_from(s, &top))
        .unwrap_or(top);
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let frames_geometry = match per_frame {
        Some(items) if items.len() == frames as usize => {
            items.iter().map(|it| geometry_from(it, &shared)).collect()
        }
        _ => vec![shared],
    };

    Ok(InstanceHeader {
        path: path.to_path_buf(),
        transfer_syntax: transfer_syntax.trim_end_matches('\0').to_string(),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID).unwrap_or_default(),
        sop_instance_uid,
        study_uid,
        series_uid,
        synthesized,
        frame_of_reference_uid: text(obj, tags::FRAME_OF_REFERENCE_UID),
        mr: (modality == "MR").then(|| mr_params(obj)),
        modality,
        series_description: text(obj, tags::SERIES_DESCRIPTION),
        series_number: int(obj, tags::SERIES_NUMBER),
        instance_number: int(obj, tags::INSTANCE_NUMBER),
        study_date: text(obj, tags::STUDY_DATE),
        image_type: texts(obj, tags::IMAGE_TYPE),
        rows,
        columns,
        frames,
        samples_per_pixel: u16_of(tags::SAMPLES_PER_PIXEL).unwrap_or(1),
        bits_allocated,
        bits_stored: u16_of(tags::BITS_STORED).unwrap_or(bits_allocated),
        pixel_representation: u16_of(tags::PIXEL_REPRESENTATION).unwrap_or(0),
        photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION),
        has_image: rows > 0 && columns > 0,
        frames_geometry,
        spacing_between_slices_mm: float(obj, tags::SPACING_BETWEEN_SLICES),
        gantry_tilt_deg: float(obj, tags::GANTRY_DETECTOR_TILT),
    })
}

/// Reads one file's header (never its Pixel Data) and checks it against `limits`.
///
/// Returns `Ok(None)` for non-DICOM files.
pub fn read_header(path: &Path, limits: &Limits) -> Result<Option<InstanceHeader>, DicomError> {
    match open_object(path, limits, true)? {
        Some(obj) => checked_header(path, &obj, limits).map(Some),
        None => Ok(None),
    }
}

/// [`read_header`] on bytes in memory; `name` labels the result and its errors.
pub fn read_header_bytes(
    bytes: &[u8],
    name: &Path,
    limits: &Limits,
) -> Result<Option<InstanceHeader>, DicomError> {
    match crate::object::open_object_bytes(bytes, name, limits, true)? {
        Some(obj) => checked_header(name, &obj, limits).map(Some),
        None => Ok(None),
    }
}

fn checked_header(
    path: &Path,
    obj: &DefaultDicomObject,
    limits: &Limits,
) -> Result<InstanceHeader, DicomError> {
    let h = header_from_object(path, obj)?;
    if h.has_image {
        limits
            .check_instance(h.rows, h.columns, h.frames)
            .map_err(|reason| DicomError::TooLarge {
                path: path.to_path_buf(),
                reason,
            })?;
    }
    Ok(h)
}

impl InstanceHeader {
    /// Geometry of frame `frame` (0-based); single-frame objects and objects without per-frame groups
    /// share one entry.
    pub fn frame_geometry(&self, frame: usize) -> &FrameGeometry {
        self.frames_geometry
            .get(frame)
            .or_else(|| self.frames_geometry.first())
            .expect("frames_geometry always has at least one entry")
    }
}

/// Patient identity of a study: read only on request (`--include-phi`), never by discovery, so
/// that logs and default outputs cannot hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// Patient's Name (0010,0010).
    pub name: Option<String>,
    /// Patient ID (0010,0020).
    pub id: Option<String>,
    /// Patient's Birth Date (0010,0030), YYYYMMDD.
    pub birth_date: Option<String>,
}

/// Reads the patient identity of one file (headers only).
pub fn read_patient(path: &Path, limits: &Limits) -> Result<Patient, DicomError> {
    let Some(obj) = open_object(path, limits, true)? else {
        return Err(DicomError::Parse {
            path: path.to_path_buf(),
            reason: "not a DICOM file".into(),
        });
    };
    Ok(Patient {
        name: text(&obj, tags::PATIENT_NAME),
        id: text(&obj, tags::PATIENT_ID),
        birth_date: text(&obj, tags::PATIENT_BIRTH_DATE),
    })
}
