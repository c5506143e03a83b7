//! Series classification (CT, MR STIR/T1/T2/fat-saturated T2) and imaging plane, each with the reason.

use serde::Serialize;

use crate::header::InstanceHeader;

/// What a series is, for the purposes of spine triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SeriesKind {
    /// Computed tomography; voxels in Hounsfield units.
    Ct,
    /// MR short-tau inversion recovery: fat-suppressed and fluid-sensitive (marrow oedema bright).
    MrStir,
    /// MR T1-weighted spin echo / TSE: fatty marrow bright, oedema and tumour dark.
    MrT1,
    /// MR T2-weighted without fat suppression.
    MrT2,
    /// MR T2-weighted with fat saturation: fluid-sensitive like STIR.
    MrT2FatSat,
    /// MR series of another contrast (gradient echo, FLAIR, diffusion, localiser, ...).
    MrOther,
    /// Any other modality (SR, RT, SC, ...).
    Other,
}

impl SeriesKind {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            SeriesKind::Ct => "CT",
            SeriesKind::MrStir => "MR STIR",
            SeriesKind::MrT1 => "MR T1",
            SeriesKind::MrT2 => "MR T2",
            SeriesKind::MrT2FatSat => "MR T2 FS",
            SeriesKind::MrOther => "MR other",
            SeriesKind::Other => "other",
        }
    }

    /// Fluid-sensitive, fat-suppressed series that show marrow oedema (STIR or fat-saturated T2).
    pub fn is_fluid_sensitive(self) -> bool {
        matches!(self, SeriesKind::MrStir | SeriesKind::MrT2FatSat)
    }
}

/// Anatomical plane of the image rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plane {
    /// Slice normal along left–right.
    Sagittal,
    /// Slice normal along antero-posterior.
    Coronal,
    /// Slice normal along cranio-caudal.
    Axial,
    /// More than 20° away from every cardinal plane.
    Oblique,
    /// No ImageOrientationPatient.
    Unknown,
}

/// A classification with the tags that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The class.
    pub kind: SeriesKind,
    /// Which tags and values decided, in words.
    pub reason: String,
    /// The plane.
    pub plane: Plane,
    /// Angle in degrees between the slice normal and the nearest cardinal axis.
    pub obliquity_deg: Option<f64>,
}

/// Cosine of 20°: slices tilted less than this from a cardinal plane are named after it (a CT with an
/// 18.5° gantry tilt is still axial).
const CARDINAL_COS: f64 = 0.9397;

/// Plane of an ImageOrientationPatient, with its angle from the nearest cardinal axis.
pub fn plane_of(orientation: Option<&[f64; 6]>) -> (Plane, Option<f64>) {
    let Some(o) = orientation else {
        return (Plane::Unknown, None);
    };
    let (r, c) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let n = [
        r[1] * c[2] - r[2] * c[1],
        r[2] * c[0] - r[0] * c[2],
        r[0] * c[1] - r[1] * c[0],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if len.is_nan() || len <= 1e-6 {
        return (Plane::Unknown, None);
    }
    let a = n.map(|x| (x / len).abs());
    let (axis, cos) =
        a.iter().copied().enumerate().fold(
            (0, 0.0),
            |best, (i, v)| if v > best.1 { (i, v) } else { best },
        );
    let angle = cos.clamp(-1.0, 1.0).acos().to_degrees();
    let plane = if cos < CARDINAL_COS {
        Plane::Oblique
    } else {
        [Plane::Sagittal, Plane::Coronal, Plane::Axial][axis]
    };
    (plane, Some(angle))
}

fn has(list: &[String], what: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(what))
}

/// Whole-word-ish search in an upper-cased description.
fn desc_has(desc: &str, words: &[&str]) -> Option<String> {
    let d = desc.to_ascii_uppercase();
    let tokens: Vec<&str> = d
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    words
        .iter()
        .find(|w| {
            tokens
                .iter()
                .any(|t| t == *w || (w.len() > 3 && t.contains(*w)))
        })
        .map(|w| w.to_string())
}

/// Classifies a series from its first instance.
pub fn classify(h: &InstanceHeader) -> Classification {
    let (plane, obliquity_deg) = plane_of(h.frame_geometry(0).orientation.as_ref());
    let (kind, reason) = classify_kind(h);
    Classification {
        kind,
        reason,
        plane,
        obliquity_deg,
    }
}

fn classify_kind(h: &InstanceHeader) -> (SeriesKind, String) {
    let modality = h.modality.as_str();
    if modality == "CT" {
        return (SeriesKind::Ct, "Modality=CT".into());
    }
    let Some(mr) = h.mr.as_ref().filter(|_| modality == "MR") else {
        return (SeriesKind::Other, format!("Modality={modality}"));
    };
    let desc = h.series_description.clone().unwrap_or_default();
    let fmt = |v: Option<f64>| v.map_or("?".to_string(), |x| format!("{x:.0}"));
    let timing = format!(
        "TR={} ms, TE={} ms, TI={} ms",
        fmt(mr.repetition_time_ms),
        fmt(mr.echo_time_ms),
        fmt(mr.inversion_time_ms)
    );
    let seq = mr.scanning_sequence.join("\\");
    let ir = has(&mr.scanning_sequence, "IR") || has(&mr.scan_options, "IR");

    // STIR: inversion recovery with a short TI nulls fat: ~150–170 ms at 1.5 T, up to ~230 ms at 3 T.
    if let Some(w) = desc_has(&desc, &["STIR", "TIRM", "TIR"]) {
        return (
            SeriesKind::MrStir,
            format!("SeriesDescription contains {w:?} ({timing})"),
        );
    }
    if ir {
        match mr.inversion_time_ms {
            Some(ti) if (80.0..=250.0).contains(&ti) => {
                return (
                    SeriesKind::MrStir,
                    format!(
                        "ScanningSequence={seq} with InversionTime {ti:.0} ms in the STIR range 80–250 ms ({timing})"
                    ),
                )
            }
            Some(ti) if ti >= 1500.0 => {
                return (
                    SeriesKind::MrOther,
                    format!("inversion recovery with long TI {ti:.0} ms (FLAIR-like) ({timing})"),
                )
            }
            _ => {}
        }
    }
    let fat_sat = has(&mr.scan_options, "FS")
        || has(&mr.scan_options, "FAT")
        || desc_has(&desc, &["FS", "FATSAT", "SPAIR", "SPIR", "FSAT"]).is_some();
    let gradient = has(&mr.scanning_sequence, "GR") && !has(&mr.scanning_sequence, "SE");
    match (mr.repetition_time_ms, mr.echo_time_ms) {
        (Some(tr), Some(te)) if te >= 60.0 && tr >= 1500.0 && !gradient => {
            let k = if fat_sat {
                SeriesKind::MrT2FatSat
            } else {
                SeriesKind::MrT2
            };
            let fs = if fat_sat {
                ", fat saturation (ScanOptions/description)"
            } else {
                ""
            };
            (
                k,
                format!("ScanningSequence={seq}, long TR ≥ 1500 ms and TE ≥ 60 ms{fs} ({timing})"),
            )
        }
        (Some(tr), Some(te)) if tr < 1000.0 && te < 30.0 && !gradient => {
            let ti = if ir { " (T1 inversion recovery)" } else { "" };
            (
                SeriesKind::MrT1,
                format!("ScanningSequence={seq}, short TR < 1000 ms and TE < 30 ms{ti} ({timing})"),
            )
        }
        (Some(_), Some(_)) if gradient => (
            SeriesKind::MrOther,
            format!("gradient echo (ScanningSequence={seq}) ({timing})"),
        ),
        _ => {
            if let Some(w) = desc_has(&desc, &["T1"]) {
                (
                    SeriesKind::MrT1,
                    format!("SeriesDescription contains {w:?}; timing inconclusive ({timing})"),
                )
            } else if let Some(w) = desc_has(&desc, &["T2"]) {
                let k = if fat_sat {
                    SeriesKind::MrT2FatSat
                } else {
                    SeriesKind::MrT2
                };
                (
                    k,
                    format!("SeriesDescription contains {w:?}; timing inconclusive ({timing})"),
                )
            } else {
                (
                    SeriesKind::MrOther,
                    format!("no rule matched: ScanningSequence={seq} ({timing})"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{FrameGeometry, MrParams, Rescale};

    fn mr(
        desc: &str,
        seq: &[&str],
        opts: &[&str],
        tr: f64,
        te: f64,
        ti: Option<f64>,
    ) -> InstanceHeader {
        InstanceHeader {
            path: "x.dcm".into(),
            transfer_syntax: String::new(),
            sop_class_uid: String::new(),
            sop_instance_uid: "1".into(),
            study_uid: "1".into(),
            series_uid: "1".into(),
            synthesized: vec![],
            frame_of_reference_uid: None,
            modality: "MR".into(),
            series_description: Some(desc.into()),
            series_number: None,
            instance_number: None,
            study_date: None,
            image_type: vec![],
            rows: 1,
            columns: 1,
            frames: 1,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 16,
            pixel_representation: 0,
            photometric: None,
            has_image: true,
            frames_geometry: vec![FrameGeometry {
                position_lps_mm: None,
                orientation: Some([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]),
                pixel_spacing_mm: None,
                slice_thickness_mm: None,
                rescale: Rescale::default(),
            }],
            spacing_between_slices_mm: None,
            gantry_tilt_deg: None,
            mr: Some(MrParams {
                scanning_sequence: seq.iter().map(|s| s.to_string()).collect(),
                scan_options: opts.iter().map(|s| s.to_string()).collect(),
                repetition_time_ms: Some(tr),
                echo_time_ms: Some(te),
                inversion_time_ms: ti,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn classifies_by_tags_not_only_description() {
        let c = classify(&mr("sag", &["IR", "SE"], &[], 4000.0, 40.0, Some(160.0)));
        assert_eq!(c.kind, SeriesKind::MrStir);
        assert!(c.reason.contains("InversionTime 160"), "{}", c.reason);
        assert_eq!(c.plane, Plane::Sagittal);
        assert_eq!(
            classify(&mr("sag", &["SE"], &[], 550.0, 12.0, None)).kind,
            SeriesKind::MrT1
        );
        assert_eq!(
            classify(&mr("sag", &["SE"], &[], 3500.0, 95.0, None)).kind,
            SeriesKind::MrT2
        );
        assert_eq!(
            classify(&mr("sag", &["SE"], &["FS"], 3500.0, 80.0, None)).kind,
            SeriesKind::MrT2FatSat
        );
        assert_eq!(
            classify(&mr(
                "sag flair",
                &["IR", "SE"],
                &[],
                9000.0,
                100.0,
                Some(2500.0)
            ))
            .kind,
            SeriesKind::MrOther
        );
        assert_eq!(
            classify(&mr("t2_tirm_sag", &["SE"], &[], 4000.0, 60.0, None)).kind,
            SeriesKind::MrStir
        );
        assert_eq!(
            classify(&mr("loc", &["GR"], &[], 8.0, 4.0, None)).kind,
            SeriesKind::MrOther
        );
    }

    #[test]
    fn planes_follow_the_slice_normal() {
        assert_eq!(
            plane_of(Some(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])).0,
            Plane::Axial
        );
        assert_eq!(
            plane_of(Some(&[1.0, 0.0, 0.0, 0.0, 0.0, -1.0])).0,
            Plane::Coronal
        );
        // The GE head CT of dcm_qa_ct: 18.5° gantry tilt is still axial.
        let (p, a) = plane_of(Some(&[1.0, 0.0, 0.0, 0.0, 0.9483, -0.3173]));
        assert_eq!(p, Plane::Axial);
        assert!((a.unwrap() - 18.5).abs() < 0.1);
        let s = 0.5f64.sqrt();
        assert_eq!(
            plane_of(Some(&[1.0, 0.0, 0.0, 0.0, s, -s])).0,
            Plane::Oblique
        );
        assert_eq!(plane_of(None).0, Plane::Unknown);
    }
}
