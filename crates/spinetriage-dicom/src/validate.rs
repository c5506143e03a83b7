//! A structural pre-pass over element headers, run before dicom-object parses a file.
//!
//! dicom-parser reserves an element's declared length before reading it and recurses into nested
//! sequences; a hostile or broken header (a 674-byte file claiming gigabytes, sequences nested
//! thousands deep) would then cost gigabytes or the stack. This pass reads only element headers,
//! skips values, and refuses any length that runs past the end of its container or the file, and
//! nesting deeper than [`MAX_DEPTH`], without allocating anything proportional to the claims.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::Path;

use crate::DicomError;

/// Deepest sequence nesting accepted (real data rarely exceeds 5).
pub const MAX_DEPTH: usize = 64;

const UNDEFINED: u32 = 0xFFFF_FFFF;

struct Walker<R> {
    r: R,
    pos: u64,
    little: bool,
    explicit: bool,
    stop_at_pixel_data: bool,
    /// A bare data set: file meta elements (group 0002) inside it are refused.
    forbid_meta: bool,
}

#[derive(PartialEq)]
enum End {
    /// The container ended (its length, or end of file).
    Length,
    /// An item or sequence delimiter was read.
    Delimiter,
    /// Pixel Data reached in headers-only mode.
    PixelData,
}

impl<R: BufRead + Seek> Walker<R> {
    fn read<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| format!("truncated element header at byte {}", self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.read::<2>()?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.read::<4>()?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    /// Whether the next four bytes are an item tag (FFFE,E000), without consuming them.
    fn peek_item_tag(&mut self) -> Result<bool, String> {
        let item = if self.little {
            [0xFE, 0xFF, 0x00, 0xE0]
        } else {
            [0xFF, 0xFE, 0xE0, 0x00]
        };
        let buf = self.r.fill_buf().map_err(|e| e.to_string())?;
        if buf.len() >= 4 {
            return Ok(buf[..4] == item);
        }
        // The buffer ends mid-tag: read and step back (rare, costs a refill).
        let mut b = [0u8; 4];
        if self.r.read_exact(&mut b).is_err() {
            return Ok(false);
        }
        self.r
            .seek(SeekFrom::Current(-4))
            .map_err(|e| e.to_string())?;
        Ok(b == item)
    }

    fn skip(&mut self, n: u64, end: u64, tag: (u16, u16)) -> Result<(), String> {
        if self.pos + n > end {
            return Err(format!(
                "element ({:04X},{:04X}) at byte {} claims {n} bytes, only {} remain",
                tag.0,
                tag.1,
                self.pos,
                end.saturating_sub(self.pos)
            ));
        }
        // Short values are read through the buffer; a seek would make BufReader drop it and
        // refill, one syscall per element (measured: 2.5× slower discovery).
        if n <= 64 * 1024 {
            let copied = std::io::copy(&mut self.r.by_ref().take(n), &mut std::io::sink())
                .map_err(|e| e.to_string())?;
            if copied != n {
                return Err(format!("truncated value of ({:04X},{:04X})", tag.0, tag.1));
            }
        } else {
            self.r
                .seek(SeekFrom::Current(n as i64))
                .map_err(|e| e.to_string())?;
        }
        self.pos += n;
        Ok(())
    }

    /// Walks elements until `end`, a delimiter, or Pixel Data (headers-only).
    fn elements(&mut self, end: u64, depth: usize, implicit_here: bool) -> Result<End, String> {
        if depth > MAX_DEPTH {
            return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
        }
        while self.pos < end {
            if end - self.pos < 8 {
                // Trailing padding shorter than an element header.
                let rest = end - self.pos;
                return self.skip(rest, end, (0, 0)).map(|_| End::Length);
            }
            let tag = (self.u16()?, self.u16()?);
            if tag.0 == 0xFFFE {
                let _ = self.u32()?;
                match tag.1 {
                    0xE00D | 0xE0DD => return Ok(End::Delimiter),
                    _ => return Err(format!("unexpected item tag at byte {}", self.pos - 8)),
                }
            }
            if tag.0 == 0x0002 && self.forbid_meta {
                return Err(format!(
                    "file meta element (0002,{:04X}) inside a data set at byte {}",
                    tag.1,
                    self.pos - 4
                ));
            }
            // Only top-level Pixel Data ends a headers-only read: the parser's `read_until` stops
            // there and nowhere else, so a Pixel Data tag nested in a sequence item must be
            // walked past like any element (fuzzing found the parser reading on, unvalidated,
            // into an 800 MB length).
            if tag == (0x7FE0, 0x0010) && self.stop_at_pixel_data && depth == 0 {
                // Headers only: still check that a native Pixel Data block fits in the file, so a
                // truncated export is reported at discovery, not halfway through a batch.
                if self.explicit && !implicit_here {
                    let _vr = self.read::<2>()?;
                    self.read::<2>()?;
                }
                let len = self.u32()?;
                if len != UNDEFINED && self.pos + u64::from(len) > end {
                    return Err(format!(
                        "Pixel Data claims {len} bytes, only {} remain (truncated file)",
                        end - self.pos
                    ));
                }
                return Ok(End::PixelData);
            }
            let explicit = self.explicit && !implicit_here;
            let (vr, len) = if explicit {
                let vr = self.read::<2>()?;
                if short_length_vr(&vr) {
                    (Some(vr), u32::from(self.u16()?))
                } else {
                    // Long form, as for any unknown VR (dcmtk and dicom-parser do the same).
                    self.read::<2>()?;
                    (Some(vr), self.u32()?)
                }
            } else {
                (None, self.u32()?)
            };
            // A binary value whose length is not a whole number of its items is read short by
            // the parser, which then takes value bytes for the next element header (fuzz find:
            // an FD of 26 bytes led to an 800 MB allocation). In implicit VR the dictionary
            // gives the VR, as it does for the parser.
            let unit_vr = vr.or_else(|| dictionary_vr(tag));
            if let Some(unit) = unit_vr.and_then(|v| binary_unit(&v)) {
                if len != UNDEFINED && len % unit != 0 {
                    return Err(format!(
                        "element ({:04X},{:04X}) at byte {}: {len} bytes is not a whole number of {}-byte {} values",
                        tag.0,
                        tag.1,
                        self.pos,
                        unit,
                        String::from_utf8_lossy(&unit_vr.unwrap_or(*b"??"))
                    ));
                }
            }
            // In implicit VR the dictionary, not the stream, says SQ; parsers then read the items,
            // so a defined-length value that starts with an item tag is walked as a sequence too.
            let is_sq = match &vr {
                Some(v) => v == b"SQ",
                None => len != UNDEFINED && len >= 8 && self.peek_item_tag()?,
            };
            if len == UNDEFINED && vr.as_ref().is_some_and(|v| v == b"UN") {
                // A sequence re-encoded as UN (CP-246). dicom-parser 0.10 reserves 4 GiB for it
                // (measured on pydicom's UN_sequence.dcm: 3.6 GB resident for a 674-byte file).
                return Err(format!(
                    "element ({:04X},{:04X}) at byte {} is UN with undefined length (a CP-246 sequence), which the parser cannot read safely",
                    tag.0,
                    tag.1,
                    self.pos - 12
                ));
            } else if len == UNDEFINED {
                // Undefined length: a sequence or encapsulated Pixel Data. Walk its items.
                self.items(end, depth + 1, implicit_here, tag, false)?;
            } else if is_sq {
                let inner_end = self.pos + u64::from(len);
                if inner_end > end {
                    return Err(format!(
                        "sequence ({:04X},{:04X}) at byte {} claims {len} bytes, only {} remain",
                        tag.0,
                        tag.1,
                        self.pos,
                        end - self.pos
                    ));
                }
                self.items(inner_end, depth + 1, implicit_here, tag, true)?;
                if self.pos < inner_end {
                    let rest = inner_end - self.pos;
                    self.skip(rest, inner_end, tag)?;
                }
            } else {
                self.skip(u64::from(len), end, tag)?;
            }
        }
        Ok(End::Length)
    }

    /// Walks the items of a sequence (or fragments of encapsulated pixel data).
    /// `defined`: the sequence has a defined length ending at `end`; otherwise it must end with a
    /// sequence delimiter before `end`.
    fn items(
        &mut self,
        end: u64,
        depth: usize,
        implicit: bool,
        seq: (u16, u16),
        defined: bool,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
        }
        while self.pos + 8 <= end {
            let tag = (self.u16()?, self.u16()?);
            let len = self.u32()?;
            match tag {
                (0xFFFE, 0xE0DD) => return Ok(()),
                (0xFFFE, 0xE000) if len == UNDEFINED => {
                    if self.elements(end, depth + 1, implicit)? == End::Length {
                        return Err(format!(
                            "item of ({:04X},{:04X}) has no delimiter",
                            seq.0, seq.1
                        ));
                    }
                }
                (0xFFFE, 0xE000) => {
                    let item_end = self.pos + u64::from(len);
                    if item_end > end {
                        return Err(format!(
                            "item of ({:04X},{:04X}) at byte {} claims {len} bytes, only {} remain",
                            seq.0,
                            seq.1,
                            self.pos,
                            end - self.pos
                        ));
                    }
                    if seq == (0x7FE0, 0x0010) {
                        self.skip(u64::from(len), end, seq)?;
                    } else {
                        self.elements(item_end, depth + 1, implicit)?;
                        if self.pos < item_end {
                            let rest = item_end - self.pos;
                            self.skip(rest, item_end, seq)?;
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "expected an item in ({:04X},{:04X}) at byte {}, found ({:04X},{:04X})",
                        seq.0,
                        seq.1,
                        self.pos - 8,
                        tag.0,
                        tag.1
                    ))
                }
            }
        }
        if defined {
            Ok(())
        } else {
            Err(format!(
                "sequence ({:04X},{:04X}) is not terminated",
                seq.0, seq.1
            ))
        }
    }
}

/// Checks the element structure of a data set read from `r` (of `len` bytes) starting at
/// `dataset_offset` in transfer syntax `syntax`. Deflated data sets are not walked (their structure
/// exists only after inflation). `path` only names the source in errors.
pub fn validate_reader<R: BufRead + Seek>(
    r: R,
    len: u64,
    path: &Path,
    dataset_offset: u64,
    syntax: &str,
    headers_only: bool,
) -> Result<(), DicomError> {
    let (little, explicit) = match syntax {
        "1.2.840.10008.1.2" => (true, false),
        "1.2.840.10008.1.2.2" => (false, true),
        "1.2.840.10008.1.2.1.99" => {
            return validate_deflated(r, len, path, dataset_offset, headers_only);
        }
        _ => (true, true),
    };
    let parse = |reason: String| DicomError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = r;
    r.seek(SeekFrom::Start(dataset_offset))
        .map_err(|e| parse(e.to_string()))?;
    let mut w = Walker {
        r,
        pos: dataset_offset,
        little,
        explicit,
        stop_at_pixel_data: headers_only,
        forbid_meta: dataset_offset == 0,
    };
    match w.elements(len, 0, false).map_err(parse)? {
        End::Delimiter => Err(parse(format!("stray delimiter at byte {}", w.pos - 8))),
        _ => Ok(()),
    }
}

/// Largest inflated data set walked, bytes: a deflated header set is kilobytes; a larger claim is
/// refused before the parser would inflate it.
const MAX_INFLATED: u64 = 256 << 20;

/// A deflated data set: inflated here (capped) and walked as explicit VR little endian, since the
/// parser would otherwise trust whatever lengths the inflated bytes claim (fuzz find: 2.2 GB).
fn validate_deflated<R: BufRead + Seek>(
    mut r: R,
    len: u64,
    path: &Path,
    dataset_offset: u64,
    headers_only: bool,
) -> Result<(), DicomError> {
    let parse = |reason: String| DicomError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    r.seek(SeekFrom::Start(dataset_offset))
        .map_err(|e| parse(e.to_string()))?;
    let cap = MAX_INFLATED.min(len.saturating_mul(64).max(1 << 20));
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(r.take(len.saturating_sub(dataset_offset)))
        .take(cap + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| parse(format!("deflated data set does not inflate: {e}")))?;
    if inflated.len() as u64 > cap {
        return Err(parse(format!(
            "deflated data set inflates beyond {cap} bytes"
        )));
    }
    let n = inflated.len() as u64;
    validate_reader(
        std::io::Cursor::new(inflated),
        n,
        path,
        0,
        "1.2.840.10008.1.2.1",
        headers_only,
    )
    .map_err(|e| match e {
        DicomError::Parse { path, reason } => DicomError::Parse {
            path,
            reason: format!("deflated data set: {reason}"),
        },
        other => other,
    })
}

/// [`validate_reader`] over a file (the tests' entry point).
#[cfg(test)]
fn validate_file(
    path: &Path,
    dataset_offset: u64,
    syntax: &str,
    headers_only: bool,
) -> Result<(), DicomError> {
    let file = std::fs::File::open(path).map_err(|source| DicomError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let r = std::io::BufReader::with_capacity(16 * 1024, file);
    validate_reader(r, len, path, dataset_offset, syntax, headers_only)
}

/// VRs with a 16-bit length field in explicit VR encodings (PS3.5 Table 7.1-2).
fn short_length_vr(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// Item size of the binary VRs the parser reads as arrays of numbers.
fn binary_unit(vr: &[u8; 2]) -> Option<u32> {
    match vr {
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => Some(8),
        b"FL" | b"OF" | b"UL" | b"SL" | b"AT" | b"OL" => Some(4),
        b"US" | b"SS" | b"OW" => Some(2),
        _ => None,
    }
}

/// The VR the parser gives a tag in implicit VR: the standard dictionary's, with the ambiguous
/// ones relaxed as the parser relaxes them (US or SS → US; OB or OW, Pixel Data → OW).
fn dictionary_vr(tag: (u16, u16)) -> Option<[u8; 2]> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    let e = dicom_dictionary_std::StandardDataDictionary.by_tag(dicom_core::Tag(tag.0, tag.1))?;
    Some(e.vr().relaxed().to_bytes())
}

fn vr_ok(vr: &[u8; 2]) -> bool {
    vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase()
}

/// Finds where the data set starts after the preamble and file meta group, and its transfer
/// syntax; `None` when the meta group cannot be walked (then the file is refused: dicom-object
/// would trust the same broken lengths, found by fuzzing to cost 3.5 GB).
pub fn meta_end<R: Read + Seek>(mut r: R) -> Option<(u64, String)> {
    let mut head = Vec::with_capacity(132);
    r.by_ref().take(132).read_to_end(&mut head).ok()?;
    let n = head.len();
    let start: u64 = if n >= 132 && &head[128..132] == b"DICM" {
        132
    } else if n >= 4 && &head[0..4] == b"DICM" {
        4
    } else {
        return None;
    };
    r.seek(SeekFrom::Start(start)).ok()?;
    // The meta group is read exactly as dicom-object reads it: (0002,0000) first, then elements
    // until their sizes reach its value, whatever their tags; the data set starts right after.
    // Walking on while the group is 0002 would take a second meta group inside the data set
    // (and its transfer syntax) for the real one (fuzz find: 1.2 GB allocation).
    let mut h = [0u8; 12];
    r.read_exact(&mut h).ok()?;
    if h[0..4] != [0x02, 0x00, 0x00, 0x00] || &h[4..6] != b"UL" || h[6..8] != [4, 0] {
        return None;
    }
    let group_length = u64::from(u32::from_le_bytes([h[8], h[9], h[10], h[11]]));
    let mut pos = start + 12;
    let mut ts = String::new();
    let mut read = 0u64;
    while read < group_length {
        let mut h = [0u8; 8];
        r.read_exact(&mut h).ok()?;
        let tag = (
            u16::from_le_bytes([h[0], h[1]]),
            u16::from_le_bytes([h[2], h[3]]),
        );
        let (len, hdr) = if short_length_vr(&[h[4], h[5]]) {
            (u64::from(u16::from_le_bytes([h[6], h[7]])), 8)
        } else {
            let mut l = [0u8; 4];
            r.read_exact(&mut l).ok()?;
            (u64::from(u32::from_le_bytes(l)), 12)
        };
        // Meta elements are short; a long one (or an undefined length) means this is not a
        // meta group we can walk.
        if len > 64 * 1024 || !vr_ok(&[h[4], h[5]]) {
            return None;
        }
        let mut v = vec![0u8; len as usize];
        r.read_exact(&mut v).ok()?;
        if tag == (0x0002, 0x0010) {
            ts = String::from_utf8_lossy(&v)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        pos += hdr + len;
        read += hdr + len;
    }
    Some((pos, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "spinetriage-validate-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&p, body).unwrap();
        p
    }

    fn el(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&group.to_le_bytes());
        v.extend_from_slice(&elem.to_le_bytes());
        v.extend_from_slice(vr);
        v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn length_past_the_end_is_refused() {
        let mut body = el(0x0008, 0x0060, b"CS", b"CT");
        // PatientName claiming 200 bytes with 4 present.
        body.extend_from_slice(&[
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 200, 0, b'A', b'B', b'C', b'D',
        ]);
        let p = write("len", &body);
        let e = validate_file(&p, 0, "1.2.840.10008.1.2.1", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(0010,0010)") && e.contains("claims 200 bytes"),
            "{e}"
        );
        std::fs::remove_file(p).ok();
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_overflow() {
        let mut body = Vec::new();
        for _ in 0..10_000 {
            // SQ with undefined length, then an item with undefined length.
            body.extend_from_slice(&[
                0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ]);
            body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let p = write("deep", &body);
        let e = validate_file(&p, 0, "1.2.840.10008.1.2.1", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested deeper than 64"), "{e}");
        std::fs::remove_file(p).ok();
    }

    #[test]
    fn well_formed_nested_sequence_passes() {
        let mut body = el(0x0008, 0x0060, b"CS", b"MR");
        body.extend_from_slice(&[
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        body.extend(el(0x0008, 0x1150, b"UI", b"1.2\0"));
        body.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        body.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        body.extend(el(0x0020, 0x0013, b"IS", b"1 "));
        let p = write("ok", &body);
        validate_file(&p, 0, "1.2.840.10008.1.2.1", false).unwrap();
        std::fs::remove_file(p).ok();
    }
}
