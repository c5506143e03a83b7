//! Opening files as DICOM objects, with or without a preamble and file meta group.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::entries;

use crate::{DicomError, Limits};

/// What the first bytes of a file say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Part 10 file: "DICM" at offset 128 (or at 0 when the preamble is missing).
    Part10,
    /// A bare data set without file meta group, in the given transfer syntax.
    RawDataSet(RawSyntax),
    /// Not DICOM (PDF, PNG, text, random bytes, empty file).
    NotDicom,
}

/// Encoding of a bare data set, guessed from its first element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSyntax {
    /// Implicit VR little endian.
    ImplicitLittle,
    /// Explicit VR little endian.
    ExplicitLittle,
    /// Explicit VR big endian.
    ExplicitBig,
}

impl RawSyntax {
    fn uid(self) -> &'static str {
        match self {
            RawSyntax::ImplicitLittle => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            RawSyntax::ExplicitLittle => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            RawSyntax::ExplicitBig => "1.2.840.10008.1.2.2",
        }
    }
}

/// Classifies a file from its first 132 bytes.
pub fn sniff(head: &[u8]) -> Sniff {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return Sniff::Part10;
    }
    if head.len() >= 4 && &head[0..4] == b"DICM" {
        return Sniff::Part10;
    }
    if head.len() < 8 {
        return Sniff::NotDicom;
    }
    let vr_like = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    let group_le = u16::from_le_bytes([head[0], head[1]]);
    let elem_le = u16::from_le_bytes([head[2], head[3]]);
    let group_be = u16::from_be_bytes([head[0], head[1]]);
    // A bare data set starts with the identification group 0008 and a small element. (A leading
    // group 0002 without "DICM" is refused: parsers switch to explicit VR for it, so its lengths
    // cannot be checked the way they will be read — a fuzz find allocated 3.2 GB.)
    let plausible = |g: u16, e: u16| g == 0x0008 && e < 0x1000;
    if plausible(group_le, elem_le) {
        return Sniff::RawDataSet(if vr_like {
            RawSyntax::ExplicitLittle
        } else {
            RawSyntax::ImplicitLittle
        });
    }
    let elem_be = u16::from_be_bytes([head[2], head[3]]);
    if plausible(group_be, elem_be) && vr_like {
        return Sniff::RawDataSet(RawSyntax::ExplicitBig);
    }
    Sniff::NotDicom
}

/// Reads the first bytes of a file for [`sniff`].
pub fn sniff_file(path: &Path) -> Result<(Sniff, u64), DicomError> {
    let io = |source| DicomError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(132);
    f.by_ref().take(132).read_to_end(&mut head).map_err(io)?;
    Ok((sniff(&head), len))
}

/// Sniffs a source and checks its structure before any parser sees it: no declared length may run
/// past its container or the end of the source. Returns the kind of DICOM found, or `None` for
/// non-DICOM input. Shared by the file and in-memory entry points so both refuse the same inputs.
fn prepare<R: std::io::BufRead + Seek>(
    r: &mut R,
    len: u64,
    name: &Path,
    limits: &Limits,
    headers_only: bool,
) -> Result<Option<Sniff>, DicomError> {
    let io = |source| DicomError::Io {
        path: name.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(132);
    r.by_ref().take(132).read_to_end(&mut head).map_err(io)?;
    let kind = sniff(&head);
    if kind == Sniff::NotDicom {
        return Ok(None);
    }
    if len > limits.max_file_bytes {
        return Err(DicomError::TooLarge {
            path: name.to_path_buf(),
            reason: format!("{len} bytes exceed the limit of {}", limits.max_file_bytes),
        });
    }
    r.seek(SeekFrom::Start(0)).map_err(io)?;
    match kind {
        Sniff::Part10 => {
            let (offset, ts) =
                crate::validate::meta_end(&mut *r).ok_or_else(|| DicomError::Parse {
                    path: name.to_path_buf(),
                    reason: "file meta group is malformed".into(),
                })?;
            crate::validate::validate_reader(&mut *r, len, name, offset, &ts, headers_only)?;
        }
        Sniff::RawDataSet(syntax) => {
            crate::validate::validate_reader(&mut *r, len, name, 0, syntax.uid(), false)?;
        }
        Sniff::NotDicom => {}
    }
    Ok(Some(kind))
}

fn part10_options(headers_only: bool) -> OpenFileOptions {
    let opts = OpenFileOptions::new();
    if headers_only {
        opts.read_until(tags::PIXEL_DATA)
    } else {
        opts
    }
}

/// Opens a file as a DICOM object.
///
/// With `headers_only`, Part 10 files are parsed only up to Pixel Data, which is never read. Bare data
/// sets (no file meta group) get a synthesised meta group so that later stages see one kind of object.
/// Returns `Ok(None)` for files that are not DICOM at all.
pub fn open_object(
    path: &Path,
    limits: &Limits,
    headers_only: bool,
) -> Result<Option<DefaultDicomObject>, DicomError> {
    let io = |source| DicomError::Io {
        path: path.to_path_buf(),
        source,
    };
    // One open serves sniffing, the meta walk and the structural pre-pass.
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut r = std::io::BufReader::with_capacity(16 * 1024, file);
    match prepare(&mut r, len, path, limits, headers_only)? {
        None | Some(Sniff::NotDicom) => Ok(None),
        Some(Sniff::Part10) => part10_options(headers_only)
            .open_file(path)
            .map(Some)
            .map_err(|e| DicomError::Parse {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Some(Sniff::RawDataSet(syntax)) => {
            let mut bytes = Vec::new();
            r.seek(SeekFrom::Start(0)).map_err(io)?;
            r.read_to_end(&mut bytes).map_err(io)?;
            raw_data_set(&bytes, syntax, path).map(Some)
        }
    }
}

/// Parses a bare data set (no file meta group) and gives it a synthesised meta group, so later
/// stages see one kind of object.
fn raw_data_set(
    bytes: &[u8],
    syntax: RawSyntax,
    path: &Path,
) -> Result<DefaultDicomObject, DicomError> {
    let parse = |e: &dyn std::fmt::Display| DicomError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let ts = match syntax {
        RawSyntax::ImplicitLittle => entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        RawSyntax::ExplicitLittle => entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        RawSyntax::ExplicitBig => entries::EXPLICIT_VR_BIG_ENDIAN.erased(),
    };
    let mut obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts).map_err(|e| parse(&e))?;
    // A stray meta group inside a bare data set would confuse the writer; drop it.
    obj.retain(|e| e.header().tag.group() != 0x0002);
    let mut meta = FileMetaTableBuilder::new()
        .transfer_syntax(syntax.uid())
        .media_storage_sop_class_uid(uids::SECONDARY_CAPTURE_IMAGE_STORAGE)
        .media_storage_sop_instance_uid("2.25.0");
    if let Some(v) = obj.get(tags::SOP_CLASS_UID).and_then(|e| e.to_str().ok()) {
        meta = meta.media_storage_sop_class_uid(v.trim_end_matches('\0').to_string());
    }
    if let Some(v) = obj
        .get(tags::SOP_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
    {
        meta = meta.media_storage_sop_instance_uid(v.trim_end_matches('\0').to_string());
    }
    let meta = meta.build().map_err(|e| parse(&e))?;
    Ok(obj.with_exact_meta(meta))
}

/// [`open_object`] on bytes already in memory (fuzzing, network input); `name` labels errors.
pub fn open_object_bytes(
    bytes: &[u8],
    name: &Path,
    limits: &Limits,
    headers_only: bool,
) -> Result<Option<DefaultDicomObject>, DicomError> {
    let mut r = std::io::Cursor::new(bytes);
    match prepare(&mut r, bytes.len() as u64, name, limits, headers_only)? {
        None | Some(Sniff::NotDicom) => Ok(None),
        Some(Sniff::Part10) => part10_options(headers_only)
            .from_reader(bytes)
            .map(Some)
            .map_err(|e| DicomError::Parse {
                path: name.to_path_buf(),
                reason: e.to_string(),
            }),
        Some(Sniff::RawDataSet(syntax)) => raw_data_set(bytes, syntax, name).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_decoys_and_bare_data_sets() {
        assert_eq!(sniff(b""), Sniff::NotDicom);
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3"), Sniff::NotDicom);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n0000"), Sniff::NotDicom);
        let mut p10 = vec![0u8; 132];
        p10[128..132].copy_from_slice(b"DICM");
        assert_eq!(sniff(&p10), Sniff::Part10);
        assert_eq!(
            sniff(b"\x08\x00\x05\x00CS\x0a\x00"),
            Sniff::RawDataSet(RawSyntax::ExplicitLittle)
        );
        assert_eq!(
            sniff(b"\x08\x00\x05\x00\x0a\x00\x00\x00"),
            Sniff::RawDataSet(RawSyntax::ImplicitLittle)
        );
        assert_eq!(
            sniff(b"\x00\x08\x00\x05CS\x00\x0a"),
            Sniff::RawDataSet(RawSyntax::ExplicitBig)
        );
    }
}
