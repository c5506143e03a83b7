//! `report-sr.dcm`: a DICOM Comprehensive SR following TID 1500 (Measurement Report), one TID 1501
//! measurement group per level. Built on dicom-object: no Rust crate writes SR.
//!
//! Concepts DICOM has codes for use DCM, SNOMED CT and UCUM; the vertebral morphometry concepts
//! (heights, Genant grade, level names) have no standard codes, so they use the private coding
//! scheme [`SCHEME`] (PS3.3 8.2: designators beginning "99" are local), listed in
//! `docs/report-schema.md`.

use crate::StudyInput;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use spinetriage_measure::{Level, Status};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

/// Local coding scheme of the morphometry concepts.
pub const SCHEME: &str = "99SPTRIAGE";
/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Device Observer UID of this program (a fixed 2.25 UID).
const DEVICE_UID: &str = "2.25.255308612374846262637151429543391385346";

type Obj = InMemDicomObject;

/// A coded concept: (value, designator, meaning).
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str, pub &'static str, pub &'static str);

/// The default character repertoire (ASCII), so that every reader decodes the SR without a
/// Specific Character Set: the few non-ASCII symbols of the reasons are spelt out.
fn ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if c.is_ascii() => out.push(c),
            '–' | '—' | '−' => out.push('-'),
            '≥' => out.push_str(">="),
            '≤' => out.push_str("<="),
            '±' => out.push_str("+/-"),
            'σ' => out.push_str("sigma"),
            '×' => out.push('x'),
            '²' => out.push('2'),
            '³' => out.push('3'),
            '°' => out.push_str(" deg"),
            _ => out.push('?'),
        }
    }
    out
}

fn text(tag: Tag, vr: VR, v: impl Into<String>) -> DataElement<Obj> {
    DataElement::new(tag, vr, PrimitiveValue::from(ascii(&v.into())))
}

fn seq(tag: Tag, items: Vec<Obj>) -> DataElement<Obj> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> Obj {
    Obj::from_element_iter([
        text(tags::CODE_VALUE, VR::SH, value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        text(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

fn code(c: Code) -> Obj {
    code_item(c.0, c.1, c.2)
}

/// A content item under construction.
struct Item(Obj);

impl Item {
    fn new(rel: Option<&str>, value_type: &str, concept: Option<Code>) -> Item {
        let mut o = Obj::new_empty();
        if let Some(r) = rel {
            o.put(text(tags::RELATIONSHIP_TYPE, VR::CS, r));
        }
        o.put(text(tags::VALUE_TYPE, VR::CS, value_type));
        if let Some(c) = concept {
            o.put(seq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code(c)]));
        }
        Item(o)
    }

    fn container(rel: Option<&str>, concept: Code, children: Vec<Item>) -> Item {
        let mut i = Item::new(rel, "CONTAINER", Some(concept));
        i.0.put(text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
        i.children(children);
        i
    }

    fn children(&mut self, children: Vec<Item>) {
        if !children.is_empty() {
            self.0.put(seq(
                tags::CONTENT_SEQUENCE,
                children.into_iter().map(|c| c.0).collect(),
            ));
        }
    }

    fn code(rel: &str, concept: Code, value: Obj) -> Item {
        let mut i = Item::new(Some(rel), "CODE", Some(concept));
        i.0.put(seq(tags::CONCEPT_CODE_SEQUENCE, vec![value]));
        i
    }

    fn text(rel: &str, concept: Code, v: &str) -> Item {
        let mut i = Item::new(Some(rel), "TEXT", Some(concept));
        i.0.put(text(tags::TEXT_VALUE, VR::UT, v));
        i
    }

    fn uid(rel: &str, concept: Code, v: &str) -> Item {
        let mut i = Item::new(Some(rel), "UIDREF", Some(concept));
        i.0.put(text(tags::UID, VR::UI, v));
        i
    }

    /// A numeric measurement; without a value, the qualifier says why (CID 42).
    fn num(concept: Code, value: Option<f64>, unit: Code, missing: Code) -> Item {
        let mut i = Item::new(Some("CONTAINS"), "NUM", Some(concept));
        match value.filter(|v| v.is_finite()) {
            Some(v) => {
                let mv = Obj::from_element_iter([
                    text(tags::NUMERIC_VALUE, VR::DS, format_ds(v)),
                    seq(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![code(unit)]),
                ]);
                i.0.put(seq(tags::MEASURED_VALUE_SEQUENCE, vec![mv]));
            }
            None => {
                i.0.put(seq(tags::MEASURED_VALUE_SEQUENCE, vec![]));
                i.0.put(seq(
                    tags::NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
                    vec![code(missing)],
                ));
            }
        }
        i
    }

    fn image(class_uid: &str, instance_uid: &str) -> Item {
        let mut i = Item::new(Some("CONTAINS"), "IMAGE", None);
        i.0.put(seq(
            tags::REFERENCED_SOP_SEQUENCE,
            vec![Obj::from_element_iter([
                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class_uid),
                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance_uid),
            ])],
        ));
        i
    }
}

/// A decimal string of at most 16 characters.
fn format_ds(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.chars().take(16).collect()
    }
}

/// A fresh 2.25 UID (PS3.5 B.2) from the process's random hasher keys, the time and a counter.
pub fn new_uid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(t);
        h.write_u64(n);
        h.write_u32(std::process::id());
        h.finish()
    };
    let v = (u128::from(half(1)) << 64) | u128::from(half(2));
    format!("2.25.{v}")
}

const MM: Code = Code("mm", "UCUM", "millimeter");
const PCT: Code = Code("%", "UCUM", "percent");
const NOT_ATTEMPTED: Code = Code("114007", "DCM", "Measurement not attempted");
const FAILURE: Code = Code("114006", "DCM", "Measurement failure");

fn level_group(l: &Level, marrow: Option<&spinetriage_marrow::LevelSignal>) -> Item {
    let m = &l.measurement;
    let d = &l.derived;
    let name = l
        .level
        .clone()
        .unwrap_or_else(|| format!("level {}", l.ordinal + 1));
    let miss = if m.status == Status::Measured {
        FAILURE
    } else {
        NOT_ATTEMPTED
    };
    let h = |x: &Option<spinetriage_measure::Height>| x.map(|h| h.height_mm);
    let mut children = vec![
        Item::text(
            "HAS OBS CONTEXT",
            Code("112039", "DCM", "Tracking Identifier"),
            &name,
        ),
        Item::uid(
            "HAS OBS CONTEXT",
            Code("112040", "DCM", "Tracking Unique Identifier"),
            &new_uid(),
        ),
        Item::code(
            "CONTAINS",
            Code("121071", "DCM", "Finding"),
            code_item("VBMORPH", SCHEME, "Vertebral body morphometry"),
        ),
        Item::code(
            "HAS CONCEPT MOD",
            Code("363698007", "SCT", "Finding Site"),
            code_item(&name, SCHEME, &format!("{name} vertebra")),
        ),
    ];
    // The morphometry of the level, in report order: concept, value, unit.
    let numbers: [(Code, Option<f64>, Code); 11] = [
        (
            Code("HA", SCHEME, "Anterior vertebral body height"),
            h(&m.anterior),
            MM,
        ),
        (
            Code("HM", SCHEME, "Middle vertebral body height"),
            h(&m.middle),
            MM,
        ),
        (
            Code("HP", SCHEME, "Posterior vertebral body height"),
            h(&m.posterior),
            MM,
        ),
        (
            Code("HEXP", SCHEME, "Expected vertebral body height"),
            d.expected_height_mm,
            MM,
        ),
        (
            Code("HLOSS", SCHEME, "Vertebral body height loss"),
            d.height_loss_pct,
            PCT,
        ),
        (
            Code("KYPH", SCHEME, "Anterior wedge (kyphosis) ratio"),
            d.kyphosis_pct,
            PCT,
        ),
        (
            Code("DORSAL", SCHEME, "Dorsal wall height reduction"),
            d.dorsal_wall_loss_pct,
            PCT,
        ),
        (
            Code("SCOL", SCHEME, "Lateral wedge (scoliosis) ratio"),
            d.scoliosis_pct,
            PCT,
        ),
        (
            Code("RETRO", SCHEME, "Posterior wall retropulsion"),
            m.retropulsion_mm,
            MM,
        ),
        (
            Code("CANALAP", SCHEME, "Spinal canal antero-posterior diameter"),
            m.canal.as_ref().map(|c| c.ap_mm),
            MM,
        ),
        (
            Code("CANALCMP", SCHEME, "Spinal canal compromise"),
            d.canal_compromise_pct,
            PCT,
        ),
    ];
    children.extend(
        numbers
            .into_iter()
            .map(|(c, v, u)| Item::num(c, v, u, miss)),
    );
    children.extend([Item::num(
        Code("STIRR", SCHEME, "STIR marrow oedema ratio"),
        marrow.and_then(|mr| mr.stir_ratio),
        Code("{ratio}", "UCUM", "ratio"),
        if marrow.is_some_and(|mr| mr.stir.is_some()) {
            FAILURE
        } else {
            NOT_ATTEMPTED
        },
    )]);
    if let Some(g) = d.genant_grade {
        let meaning = ["normal", "mild", "moderate", "severe"][usize::from(g.min(3))];
        children.push(Item::code(
            "CONTAINS",
            Code("GENANT", SCHEME, "Genant semiquantitative grade"),
            code_item(
                &format!("GENANT{g}"),
                SCHEME,
                &format!("Genant grade {g} ({meaning})"),
            ),
        ));
    }
    if let Some(e) = marrow.and_then(|mr| mr.edema) {
        children.push(Item::code(
            "CONTAINS",
            Code("OEDEMA", SCHEME, "Marrow oedema"),
            if e {
                code_item("373066001", "SCT", "Yes")
            } else {
                code_item("373067005", "SCT", "No")
            },
        ));
    }
    if let Some(def) = d.acr_deformity {
        children.push(Item::code(
            "CONTAINS",
            Code("ACRDEF", SCHEME, "ACR spinal deformity criterion met"),
            if def {
                code_item("373066001", "SCT", "Yes")
            } else {
                code_item("373067005", "SCT", "No")
            },
        ));
    }
    if let Status::NotEvaluable(why) = &m.status {
        children.push(Item::text(
            "CONTAINS",
            Code("NOTEVAL", SCHEME, "Not evaluable because"),
            why,
        ));
    }
    Item::container(
        Some("CONTAINS"),
        Code("125007", "DCM", "Measurement Group"),
        children,
    )
}

fn now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let t = secs % 86_400;
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", t / 3600, (t / 60) % 60, t % 60),
    )
}

/// Builds the SR dataset of one study; `None` when nothing was measured.
pub fn build(s: &StudyInput) -> Option<Obj> {
    let m = s.morphometry?;
    let shape = s
        .volumes
        .iter()
        .find(|v| v.series_uid == m.shape_series_uid)?;
    let (date, time) = now();
    let procedure = if shape.kind == spinetriage_volume::SeriesKind::Ct {
        Code("77477000", "SCT", "Computed tomography")
    } else {
        Code("113091000", "SCT", "Magnetic resonance imaging")
    };
    let library = Item::container(
        Some("CONTAINS"),
        Code("111028", "DCM", "Image Library"),
        vec![Item::container(
            Some("CONTAINS"),
            Code("126200", "DCM", "Image Library Group"),
            shape
                .instances
                .iter()
                .map(|r| Item::image(&r.class_uid, &r.instance_uid))
                .collect(),
        )],
    );
    let measurements = Item::container(
        Some("CONTAINS"),
        Code("126010", "DCM", "Imaging Measurements"),
        m.levels
            .iter()
            .enumerate()
            .map(|(i, l)| level_group(l, s.marrow.and_then(|mr| mr.levels.get(i))))
            .collect(),
    );
    let mut evaluations = Vec::new();
    if let Some(c) = s.criteria {
        evaluations.push(Item::text(
            "CONTAINS",
            Code("TRIAGE", SCHEME, "Triage category"),
            &format!("{} (priority {})", c.triage.label, c.triage.priority),
        ));
        for r in &c.triage.reasons {
            evaluations.push(Item::text(
                "CONTAINS",
                Code("TRIAGER", SCHEME, "Triage reason"),
                &format!(
                    "{}: {} = {} ({})",
                    r.level.as_deref().unwrap_or("study"),
                    r.finding,
                    r.value,
                    r.rule
                ),
            ));
        }
        evaluations.push(Item::text(
            "CONTAINS",
            Code("ACRVAR", SCHEME, "ACR Appropriateness Criteria variants"),
            &c.acr_summary,
        ));
    }
    let mut root = Item::container(
        None,
        Code("126000", "DCM", "Imaging Measurement Report"),
        Vec::new(),
    );
    root.0.put(seq(
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![Obj::from_element_iter([
            text(tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
            text(tags::TEMPLATE_IDENTIFIER, VR::CS, "1500"),
        ])],
    ));
    let mut children = vec![
        Item::code(
            "HAS CONCEPT MOD",
            Code("121049", "DCM", "Language of Content Item and Descendants"),
            code_item("en-US", "RFC5646", "English (United States)"),
        ),
        Item::code(
            "HAS OBS CONTEXT",
            Code("121005", "DCM", "Observer Type"),
            code_item("121007", "DCM", "Device"),
        ),
        Item::uid(
            "HAS OBS CONTEXT",
            Code("121012", "DCM", "Device Observer UID"),
            DEVICE_UID,
        ),
        Item::text(
            "HAS OBS CONTEXT",
            Code("121013", "DCM", "Device Observer Name"),
            "spinetriage",
        ),
        Item::code(
            "HAS CONCEPT MOD",
            Code("121058", "DCM", "Procedure reported"),
            code(procedure),
        ),
        library,
        measurements,
    ];
    if !evaluations.is_empty() {
        children.push(Item::container(
            Some("CONTAINS"),
            Code("C0034375", "UMLS", "Qualitative Evaluations"),
            evaluations,
        ));
    }
    root.children(children);
    let mut o = root.0;
    let sop_uid = new_uid();
    let evidence = Obj::from_element_iter([
        text(tags::STUDY_INSTANCE_UID, VR::UI, s.study_uid),
        seq(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![Obj::from_element_iter([
                text(tags::SERIES_INSTANCE_UID, VR::UI, &shape.series_uid),
                seq(
                    tags::REFERENCED_SOP_SEQUENCE,
                    shape
                        .instances
                        .iter()
                        .map(|r| {
                            Obj::from_element_iter([
                                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &r.class_uid),
                                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &r.instance_uid),
                            ])
                        })
                        .collect(),
                ),
            ])],
        ),
    ]);
    for e in [
        text(tags::SOP_CLASS_UID, VR::UI, COMPREHENSIVE_SR),
        text(tags::SOP_INSTANCE_UID, VR::UI, &sop_uid),
        text(tags::STUDY_DATE, VR::DA, ""),
        text(tags::STUDY_TIME, VR::TM, ""),
        text(tags::CONTENT_DATE, VR::DA, &date),
        text(tags::CONTENT_TIME, VR::TM, &time),
        text(tags::ACCESSION_NUMBER, VR::SH, ""),
        text(tags::MODALITY, VR::CS, "SR"),
        text(tags::MANUFACTURER, VR::LO, "spinetriage"),
        text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        text(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            "spinetriage measurement report",
        ),
        seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]),
        // Patient identity only with `--include-phi`; otherwise the Type 2 attributes are
        // present and empty (no PHI in default outputs).
        text(
            tags::PATIENT_NAME,
            VR::PN,
            s.patient.and_then(|p| p.name.clone()).unwrap_or_default(),
        ),
        text(
            tags::PATIENT_ID,
            VR::LO,
            s.patient.and_then(|p| p.id.clone()).unwrap_or_default(),
        ),
        text(
            tags::PATIENT_BIRTH_DATE,
            VR::DA,
            s.patient
                .and_then(|p| p.birth_date.clone())
                .unwrap_or_default(),
        ),
        text(tags::PATIENT_SEX, VR::CS, ""),
        text(tags::STUDY_INSTANCE_UID, VR::UI, s.study_uid),
        text(tags::SERIES_INSTANCE_UID, VR::UI, new_uid()),
        text(tags::STUDY_ID, VR::SH, ""),
        text(tags::SERIES_NUMBER, VR::IS, "9901"),
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        text(tags::COMPLETION_FLAG, VR::CS, "PARTIAL"),
        text(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"),
        seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]),
        seq(
            tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![evidence],
        ),
    ] {
        o.put(e);
    }
    Some(o)
}

/// Why the SR could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SrError {
    /// dicom-object refused the dataset or the file.
    #[error("{path}: {message}")]
    Dicom {
        /// The file.
        path: std::path::PathBuf,
        /// What dicom-object said.
        message: String,
    },
}

/// The Part 10 file bytes of `obj` (explicit VR little endian); `path` only names errors.
pub fn encode(obj: Obj, path: &Path) -> Result<Vec<u8>, SrError> {
    let err = |e: &dyn std::fmt::Display| SrError::Dicom {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_LE)
                .implementation_class_uid("2.25.255308612374846262637151429543391385345")
                .implementation_version_name("SPINETRIAGE01"),
        )
        .map_err(|e| err(&e))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).map_err(|e| err(&e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_ds() {
        assert_eq!(format_ds(21.5), "21.5");
        assert_eq!(format_ds(-0.0001), "0");
        assert_eq!(format_ds(12345678.123456), "12345678.123");
        assert!(format_ds(-1.0e15).len() <= 16);
    }

    #[test]
    fn uids_are_unique_and_valid() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        assert!(a.len() <= 64 && a.starts_with("2.25."));
        assert!(!a[5..].starts_with('0'));
    }

    #[test]
    fn civil_date_is_plausible() {
        let (d, t) = now();
        assert_eq!(d.len(), 8);
        assert!(d.as_str() >= "20240101");
        assert_eq!(t.len(), 6);
    }
}
