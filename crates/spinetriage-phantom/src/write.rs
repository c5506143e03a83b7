//! Writing rendered slices as DICOM files in the requested transfer syntax.

use std::path::{Path, PathBuf};

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use dicom_pixeldata::Transcode;
use serde::{Deserialize, Serialize};

use crate::PhantomError;

/// Transfer syntax of the written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Syntax {
    /// Explicit VR little endian.
    #[default]
    Explicit,
    /// Implicit VR little endian.
    Implicit,
    /// RLE lossless (our own PackBits encoder; dicom-rs decodes but does not encode RLE).
    Rle,
    /// JPEG-LS lossless (CharLS through dicom-pixeldata).
    JpegLs,
    /// JPEG 2000 lossless (OpenJPEG, reversible 5/3 wavelet).
    J2k,
}

impl Syntax {
    /// The transfer syntax UID.
    pub fn uid(self) -> &'static str {
        match self {
            Syntax::Explicit => "1.2.840.10008.1.2.1",
            Syntax::Implicit => "1.2.840.10008.1.2",
            Syntax::Rle => "1.2.840.10008.1.2.5",
            Syntax::JpegLs => "1.2.840.10008.1.2.4.80",
            Syntax::J2k => "1.2.840.10008.1.2.4.90",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Syntax> {
        Some(match s {
            "explicit" => Syntax::Explicit,
            "implicit" => Syntax::Implicit,
            "rle" => Syntax::Rle,
            "jpeg-ls" | "jpegls" => Syntax::JpegLs,
            "j2k" | "jpeg2000" => Syntax::J2k,
            _ => return None,
        })
    }
}

/// Attributes of one slice besides the shared series attributes.
#[derive(Debug, Clone)]
pub struct SliceAttrs {
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Instance Number.
    pub instance_number: i32,
    /// ImagePositionPatient, LPS mm.
    pub position: [f64; 3],
    /// SliceLocation (position along the normal), mm.
    pub slice_location: f64,
}

/// A string element.
pub fn s(tag: Tag, vr: VR, v: impl Into<String>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(v.into()))
}

/// A decimal-string element from numbers (backslash-separated).
pub fn ds(tag: Tag, v: &[f64]) -> DataElement<InMemDicomObject> {
    let txt = v
        .iter()
        .map(|x| {
            let t = format!("{x:.6}");
            let t = t.trim_end_matches('0').trim_end_matches('.').to_string();
            if t == "-0" {
                "0".to_string()
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join("\\");
    s(tag, VR::DS, txt)
}

/// An unsigned-short element.
pub fn us(tag: Tag, v: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

/// Encodes one 16-bit frame as DICOM RLE (PS3.5 Annex G): two byte segments (high then low
/// bytes), each PackBits-coded row by row.
pub fn rle_encode_u16(px: &[u16], rows: usize, cols: usize) -> Vec<u8> {
    let mut segs: Vec<Vec<u8>> = Vec::with_capacity(2);
    for shift in [8u32, 0] {
        let mut seg = Vec::new();
        for r in 0..rows {
            let row: Vec<u8> = px[r * cols..(r + 1) * cols]
                .iter()
                .map(|v| (v >> shift) as u8)
                .collect();
            packbits(&row, &mut seg);
        }
        if seg.len() % 2 == 1 {
            seg.push(0);
        }
        segs.push(seg);
    }
    let mut out = Vec::with_capacity(64 + segs.iter().map(Vec::len).sum::<usize>());
    let mut header = [0u32; 16];
    header[0] = segs.len() as u32;
    let mut off = 64u32;
    for (i, sg) in segs.iter().enumerate() {
        header[i + 1] = off;
        off += sg.len() as u32;
    }
    for h in header {
        out.extend_from_slice(&h.to_le_bytes());
    }
    for sg in segs {
        out.extend_from_slice(&sg);
    }
    out
}

fn packbits(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let mut i = 0;
    while i < n {
        // Run of identical bytes (2..=128) → replicate run.
        let mut run = 1;
        while i + run < n && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        // Literal run until the next pair of identical bytes (1..=128).
        let start = i;
        let mut len = 0;
        while i < n && len < 128 {
            if i + 1 < n && row[i] == row[i + 1] {
                break;
            }
            i += 1;
            len += 1;
        }
        out.push((len - 1) as u8);
        out.extend_from_slice(&row[start..start + len]);
    }
}

/// Writes one slice. `base` holds the series-level attributes; `pixels` are stored 16-bit values.
pub fn write_slice(
    path: &Path,
    base: &InMemDicomObject,
    attrs: &SliceAttrs,
    pixels: &[u16],
    rows: usize,
    cols: usize,
    syntax: Syntax,
) -> Result<PathBuf, PhantomError> {
    let mut obj = base.clone();
    obj.put(s(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        attrs.sop_instance_uid.clone(),
    ));
    obj.put(s(
        tags::INSTANCE_NUMBER,
        VR::IS,
        attrs.instance_number.to_string(),
    ));
    obj.put(ds(tags::IMAGE_POSITION_PATIENT, &attrs.position));
    obj.put(ds(tags::SLICE_LOCATION, &[attrs.slice_location]));
    let werr = |e: &dyn std::fmt::Display| PhantomError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let write_ts = match syntax {
        Syntax::Rle => {
            let frag = rle_encode_u16(pixels, rows, cols);
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), vec![frag])),
            ));
            Syntax::Rle
        }
        Syntax::J2k => {
            let frag = crate::j2k::encode_u16_lossless(pixels, rows, cols).map_err(|e| werr(&e))?;
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), vec![frag])),
            ));
            Syntax::J2k
        }
        _ => {
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(pixels.to_vec().into()),
            ));
            if syntax == Syntax::JpegLs {
                Syntax::Explicit
            } else {
                syntax
            }
        }
    };
    let mut file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(write_ts.uid())
                .implementation_class_uid("2.25.255308612374846262637151429543391385345")
                .implementation_version_name("SPINETRIAGE01"),
        )
        .map_err(|e| werr(&e))?;
    if syntax == Syntax::JpegLs {
        file.transcode(
            &dicom_transfer_syntax_registry::entries::JPEG_LS_LOSSLESS_IMAGE_COMPRESSION.erased(),
        )
        .map_err(|e| werr(&e))?;
    }
    file.write_to_file(path).map_err(|e| werr(&e))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(seg: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < n && i < seg.len() {
            let c = seg[i] as i8;
            i += 1;
            if c >= 0 {
                let l = c as usize + 1;
                out.extend_from_slice(&seg[i..i + l]);
                i += l;
            } else if c != -128 {
                let l = (1 - c as i16) as usize;
                out.extend(std::iter::repeat_n(seg[i], l));
                i += 1;
            }
        }
        out
    }

    #[test]
    fn packbits_round_trips() {
        let row: Vec<u8> = (0..700)
            .map(|i| {
                if (100..400).contains(&i) {
                    7
                } else {
                    (i * 37 % 251) as u8
                }
            })
            .collect();
        let mut seg = Vec::new();
        packbits(&row, &mut seg);
        assert!(seg.len() < row.len());
        assert_eq!(unpack(&seg, row.len()), row);
    }
}
