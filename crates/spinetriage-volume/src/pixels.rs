//! Pixel data → f32 with the modality LUT applied (CT in HU; MR stored value × slope + intercept).

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

thread_local! {
    static TAIL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use spinetriage_dicom::{header_from_object, open_object, InstanceHeader, Limits};

use crate::VolumeError;

/// All frames of one instance, rescaled.
#[derive(Debug, Clone)]
pub struct InstancePixels {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// Frames.
    pub frames: usize,
    /// `frames × rows × columns` values, row-major within a frame, modality LUT applied.
    pub values: Vec<f32>,
    /// The header read along with the pixels.
    pub header: InstanceHeader,
}

/// Layout of stored samples.
#[derive(Debug, Clone, Copy)]
struct Layout {
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
}

impl Layout {
    /// Interprets one stored word: keeps the low `bits_stored` bits, sign-extending when signed.
    #[inline(always)]
    fn value(self, raw: u32) -> f64 {
        let bs = u32::from(self.bits_stored.clamp(1, 32));
        if bs >= 32 {
            return if self.signed {
                f64::from(raw as i32)
            } else {
                f64::from(raw)
            };
        }
        let masked = raw & ((1u32 << bs) - 1);
        if self.signed && masked & (1 << (bs - 1)) != 0 {
            f64::from(masked as i32 - (1i32 << bs))
        } else {
            f64::from(masked)
        }
    }
}

/// A voxel type the rescaled values are stored as.
pub(crate) trait Store: Copy + Send + Sync {
    /// `v` as stored (an integer for `i16`, see [`fits_i16`]).
    fn store(v: f64) -> Self;
    /// Whether `v` is stored exactly.
    fn fits(v: f64) -> bool;
    /// Rescales full 16-bit little-endian words into `out` (the common CT and MR case, in a loop
    /// the compiler vectorises); whether every value was stored exactly.
    fn words(bytes: &[u8], signed: bool, m: f64, b: f64, out: &mut [Self]) -> bool;
}

impl Store for f32 {
    #[inline(always)]
    fn store(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn fits(_: f64) -> bool {
        true
    }
    fn words(bytes: &[u8], signed: bool, m: f64, b: f64, out: &mut [f32]) -> bool {
        if signed {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = (f64::from(i16::from_le_bytes([c[0], c[1]])) * m + b) as f32;
            }
        } else {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = (f64::from(u16::from_le_bytes([c[0], c[1]])) * m + b) as f32;
            }
        }
        true
    }
}

impl Store for i16 {
    #[inline(always)]
    fn store(v: f64) -> i16 {
        v as i16
    }
    #[inline(always)]
    fn fits(v: f64) -> bool {
        (-32_768.0..=32_767.0).contains(&v)
    }
    fn words(bytes: &[u8], signed: bool, m: f64, b: f64, out: &mut [i16]) -> bool {
        if m != 1.0 || b.fract() != 0.0 || b.abs() >= 65_536.0 {
            return false;
        }
        // Integer arithmetic (slope 1, integral intercept): the same values as through f64.
        let b = b as i32;
        let (mut lo, mut hi) = (i32::MAX, i32::MIN);
        for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let raw = if signed {
                i32::from(i16::from_le_bytes([c[0], c[1]]))
            } else {
                i32::from(u16::from_le_bytes([c[0], c[1]]))
            };
            let v = raw + b;
            lo = lo.min(v);
            hi = hi.max(v);
            *o = v as i16;
        }
        lo >= i32::from(i16::MIN) && hi <= i32::from(i16::MAX)
    }
}

/// For a native little-endian transfer syntax, whether its VRs are explicit; `None` for any
/// other syntax.
fn native_le_explicit(transfer_syntax: &str) -> Option<bool> {
    match transfer_syntax {
        "1.2.840.10008.1.2.1" => Some(true),
        "1.2.840.10008.1.2" => Some(false),
        _ => None,
    }
}

/// Whether every rescaled value of `header` is an integer: 16-bit native samples, slope 1 and an
/// integral intercept in every frame. Such values are stored as `i16` exactly when they also lie
/// within its range, which the conversion checks value by value (a 16-bit unsigned CT with
/// intercept −1024 could reach 64 511 HU; none does in practice).
pub(crate) fn fits_i16(header: &InstanceHeader) -> bool {
    let native = native_le_explicit(&header.transfer_syntax).is_some();
    if !native || header.bits_allocated != 16 || header.samples_per_pixel != 1 {
        return false;
    }
    (0..header.frames.max(1) as usize).all(|f| {
        let r = header.frame_geometry(f).rescale;
        r.slope == 1.0 && r.intercept.fract() == 0.0 && r.intercept.abs() < 65_536.0
    })
}

/// Bytes per voxel an instance's values will take once assembled (from its header alone): 2 for
/// an integer series stored as `i16` (values out of its range, never seen in practice, would
/// take 4), else 4.
pub fn stored_bytes_per_voxel(header: &InstanceHeader) -> u64 {
    if fits_i16(header) && header.frames <= 1 {
        2
    } else {
        4
    }
}

/// Converts little-endian sample bytes into rescaled values, one frame at a time, into `out`
/// (`frames × frame_len` values); whether every value was stored exactly.
fn convert_le_bytes<O: Store>(
    bytes: &[u8],
    layout: Layout,
    frame_len: usize,
    header: &InstanceHeader,
    out: &mut [O],
) -> bool {
    let mut fits = true;
    let per = usize::from(layout.bits_allocated / 8).max(1);
    let full = layout.bits_stored == layout.bits_allocated;
    for (f, (chunk, dst)) in bytes
        .chunks(frame_len * per)
        .zip(out.chunks_mut(frame_len))
        .take(header.frames as usize)
        .enumerate()
    {
        let r = header.frame_geometry(f).rescale;
        let (m, b) = (r.slope, r.intercept);
        match (per, full, layout.signed) {
            // The common CT/MR cases get tight loops the compiler vectorises.
            (2, true, signed) => fits &= O::words(chunk, signed, m, b, dst),
            (1, _, _) => {
                for (o, &v) in dst.iter_mut().zip(chunk) {
                    let v = layout.value(u32::from(v)) * m + b;
                    fits &= O::fits(v);
                    *o = O::store(v);
                }
            }
            (2, _, _) => {
                for (o, c) in dst.iter_mut().zip(chunk.chunks_exact(2)) {
                    let v = layout.value(u32::from(u16::from_le_bytes([c[0], c[1]]))) * m + b;
                    fits &= O::fits(v);
                    *o = O::store(v);
                }
            }
            _ => {
                for (o, c) in dst.iter_mut().zip(chunk.chunks_exact(4)) {
                    let v = layout.value(u32::from_le_bytes([c[0], c[1], c[2], c[3]])) * m + b;
                    fits &= O::fits(v);
                    *o = O::store(v);
                }
            }
        }
    }
    fits
}

/// The fast path for native little-endian files whose Pixel Data is the last element (nearly all):
/// read the bytes, check the element header just before the expected pixel block, and convert
/// straight into `out`. Returns `Ok(false)` when the layout is anything else, so the caller falls
/// back to a full parse.
pub fn read_native_into(
    header: &InstanceHeader,
    limits: &Limits,
    out: &mut [f32],
) -> Result<bool, VolumeError> {
    Ok(read_native_as(header, limits, out)?.is_some())
}

/// [`read_native_into`] for any storage type: `None` off the fast path, else whether every value
/// was stored exactly.
pub(crate) fn read_native_as<O: Store>(
    header: &InstanceHeader,
    limits: &Limits,
    out: &mut [O],
) -> Result<Option<bool>, VolumeError> {
    let Some(explicit) = native_le_explicit(&header.transfer_syntax) else {
        return Ok(None);
    };
    let mono = header
        .photometric
        .as_deref()
        .is_none_or(|p| p.starts_with("MONOCHROME"));
    if header.samples_per_pixel != 1 || !mono || !matches!(header.bits_allocated, 8 | 16 | 32) {
        return Ok(None);
    }
    let frame_len = header.rows as usize * header.columns as usize;
    let samples = frame_len * header.frames as usize;
    let want = samples * usize::from(header.bits_allocated / 8);
    if out.len() != samples {
        return Ok(None);
    }
    let path = &header.path;
    let io = |source| spinetriage_dicom::DicomError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.metadata().map_err(io)?.len() as usize;
    let hdr = if explicit { 12 } else { 8 };
    if n as u64 > limits.max_file_bytes || n < want + hdr + 1 {
        return Ok(None);
    }
    // Read only the tail: the element header and the pixel block (plus a possible pad byte), into
    // a per-thread buffer so that hundreds of slices reuse one allocation.
    let tail = want + hdr + 1;
    let ok = TAIL.with(|buf| -> Result<Option<bool>, VolumeError> {
        let mut bytes = buf.borrow_mut();
        bytes.clear();
        file.seek(SeekFrom::Start((n - tail) as u64)).map_err(io)?;
        file.by_ref()
            .take(tail as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() != tail {
            return Ok(None);
        }
        let found = [want, want + 1].into_iter().find_map(|value_len| {
            let start = tail.checked_sub(value_len)?;
            let h = bytes.get(start.checked_sub(hdr)?..start)?;
            let tag_ok = h[0..4] == [0xE0, 0x7F, 0x10, 0x00];
            let vr_ok = !explicit || &h[4..6] == b"OW" || &h[4..6] == b"OB";
            let l = u32::from_le_bytes([h[hdr - 4], h[hdr - 3], h[hdr - 2], h[hdr - 1]]) as usize;
            (tag_ok && vr_ok && l == value_len).then_some(start)
        });
        let Some(start) = found else {
            return Ok(None);
        };
        let layout = Layout {
            bits_allocated: header.bits_allocated,
            bits_stored: header.bits_stored.min(header.bits_allocated),
            signed: header.pixel_representation == 1,
        };
        Ok(Some(convert_le_bytes(
            &bytes[start..start + want],
            layout,
            frame_len,
            header,
            out,
        )))
    })?;
    Ok(ok)
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
const JPEG_2000: &[&str] = &[
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];

/// Checks the SIZ marker of a JPEG 2000 codestream fragment (raw or inside a JP2 `jp2c` box)
/// against Rows × Columns, one grey component without subsampling. Fragments that do not start a
/// codestream (continuations of a frame) are not checked.
fn check_j2k_size(frag: &[u8], rows: u32, cols: u32) -> Result<(), String> {
    let head = &frag[..frag.len().min(4096)];
    let Some(at) = head.windows(4).position(|w| w == [0xFF, 0x4F, 0xFF, 0x51]) else {
        return Ok(());
    };
    let siz = &head[at + 4..];
    let be32 = |o: usize| -> Result<u32, String> {
        siz.get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "JPEG 2000 SIZ marker truncated".to_string())
    };
    let (x, y, x0, y0) = (be32(4)?, be32(8)?, be32(12)?, be32(16)?);
    let csiz = siz
        .get(36..38)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or("JPEG 2000 SIZ marker truncated")?;
    let (w, h) = (x.saturating_sub(x0), y.saturating_sub(y0));
    if (w, h) != (cols, rows) {
        return Err(format!(
            "JPEG 2000 codestream is {w}×{h}, the header says {cols}×{rows}"
        ));
    }
    if csiz != 1 {
        return Err(format!(
            "JPEG 2000 codestream has {csiz} components, expected 1"
        ));
    }
    match siz.get(39..41) {
        Some([1, 1]) => Ok(()),
        Some(_) => Err("JPEG 2000 component is subsampled".into()),
        None => Err("JPEG 2000 SIZ marker truncated".into()),
    }
}

/// Checks the frame header (SOF0–SOF15, or SOF55 for JPEG-LS) of a JPEG fragment against
/// Rows × Columns: the decoders size their output from the stream's own header (fuzz find: a
/// JPEG-LS header claiming 6.5 GB). Fragments that do not start with SOI are not checked.
fn check_jpeg_size(frag: &[u8], rows: u32, cols: u32) -> Result<(), String> {
    if frag.len() < 4 || frag[0..2] != [0xFF, 0xD8] {
        return Ok(());
    }
    let mut i = 2;
    while i + 4 <= frag.len() {
        if frag[i] != 0xFF {
            return Err(format!("JPEG marker expected at byte {i}"));
        }
        let m = frag[i + 1];
        if m == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([frag[i + 2], frag[i + 3]]));
        let sof = matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) || m == 0xF7;
        if sof {
            let b = frag
                .get(i + 4..i + 10)
                .ok_or("JPEG frame header truncated")?;
            let (h, w) = (
                u32::from(u16::from_be_bytes([b[1], b[2]])),
                u32::from(u16::from_be_bytes([b[3], b[4]])),
            );
            if (w, h) != (cols, rows) || b[5] == 0 || b[5] > 4 {
                return Err(format!(
                    "JPEG frame is {w}×{h} with {} components, the header says {cols}×{rows}",
                    b[5]
                ));
            }
            return Ok(());
        }
        if m == 0xDA || len < 2 {
            return Err("JPEG scan before any frame header".into());
        }
        i += 2 + len;
    }
    Err("JPEG frame header not found".into())
}

/// Decodes one RLE Lossless frame (PS3.5 Annex G) of grey samples `bps` bytes wide into
/// little-endian sample bytes. Segment 0 holds the most significant byte of every sample.
fn rle_decode_frame(frag: &[u8], bps: usize, n: usize, out: &mut [u8]) -> Result<(), String> {
    if frag.len() < 64 {
        return Err("RLE header shorter than 64 bytes".into());
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            frag[4 * i],
            frag[4 * i + 1],
            frag[4 * i + 2],
            frag[4 * i + 3],
        ]) as usize
    };
    let nseg = word(0);
    if nseg != bps {
        return Err(format!("{nseg} segments for {bps}-byte grey samples"));
    }
    for seg in 0..nseg {
        let start = word(seg + 1);
        let end = if seg + 1 < nseg {
            word(seg + 2)
        } else {
            frag.len()
        };
        if start < 64 || start > end || end > frag.len() {
            return Err(format!("segment {seg} offsets {start}..{end} out of range"));
        }
        let src = &frag[start..end];
        let byte = bps - 1 - seg;
        let (mut i, mut o) = (0, 0);
        while o < n && i < src.len() {
            let c = src[i] as i8;
            i += 1;
            if c >= 0 {
                let len = c as usize + 1;
                if i + len > src.len() {
                    return Err(format!("segment {seg} literal run past its end"));
                }
                for &b in &src[i..i + len] {
                    if o < n {
                        out[o * bps + byte] = b;
                        o += 1;
                    }
                }
                i += len;
            } else if c != -128 {
                let len = (1 - i32::from(c)) as usize;
                let b = *src
                    .get(i)
                    .ok_or_else(|| format!("segment {seg} replicate run past its end"))?;
                i += 1;
                for _ in 0..len {
                    if o < n {
                        out[o * bps + byte] = b;
                        o += 1;
                    }
                }
            }
        }
        if o < n {
            return Err(format!("segment {seg} decodes to {o} of {n} samples"));
        }
    }
    Ok(())
}

/// Reads and rescales every frame of one instance.
///
/// Native transfer syntaxes are converted straight from the parsed element (the fast path);
/// encapsulated ones go through dicom-pixeldata's decoders (RLE, JPEG, JPEG-LS, JPEG 2000).
pub fn read_pixels(path: &Path, limits: &Limits) -> Result<InstancePixels, VolumeError> {
    let obj = open_object(path, limits, false)?.ok_or_else(|| VolumeError::NotDicom {
        path: path.to_path_buf(),
    })?;
    pixels_from_object(&obj, path, limits)
}

/// [`read_pixels`] on a parsed object (from memory, for instance); `path` labels errors.
pub fn pixels_from_object(
    obj: &DefaultDicomObject,
    path: &Path,
    limits: &Limits,
) -> Result<InstancePixels, VolumeError> {
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let header = header_from_object(path, obj)?;
    let pd = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| VolumeError::NoPixelData {
            path: path.to_path_buf(),
        })?;
    let unsupported = |reason: String| VolumeError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    limits
        .check_instance(header.rows, header.columns, header.frames)
        .map_err(|reason| spinetriage_dicom::DicomError::TooLarge {
            path: path.to_path_buf(),
            reason,
        })?;
    if header.samples_per_pixel != 1 {
        return Err(unsupported(format!(
            "{} samples per pixel ({}): colour images are not grey-level volumes",
            header.samples_per_pixel,
            header.photometric.as_deref().unwrap_or("?")
        )));
    }
    if let Some(p) = header.photometric.as_deref() {
        if !p.starts_with("MONOCHROME") {
            return Err(unsupported(format!("photometric interpretation {p}")));
        }
    }
    if !matches!(header.bits_allocated, 8 | 16 | 32) {
        return Err(unsupported(format!(
            "BitsAllocated {}",
            header.bits_allocated
        )));
    }
    let layout = Layout {
        bits_allocated: header.bits_allocated,
        bits_stored: header.bits_stored.min(header.bits_allocated),
        signed: header.pixel_representation == 1,
    };
    let (rows, columns, frames) = (
        header.rows as usize,
        header.columns as usize,
        header.frames as usize,
    );
    let frame_len = rows * columns;
    let want_samples = frame_len * frames;
    let want_bytes = want_samples * usize::from(header.bits_allocated / 8);
    let mut values = Vec::new();
    values
        .try_reserve_exact(want_samples)
        .map_err(|e| unsupported(format!("cannot allocate {want_samples} samples: {e}")))?;
    values.resize(want_samples, 0.0);

    let too_short = |got| VolumeError::PixelDataTooShort {
        path: path.to_path_buf(),
        got,
        want: want_bytes,
    };
    match pd.value() {
        Value::Primitive(p) => {
            let big_endian = ts == "1.2.840.10008.1.2.2";
            match (p, header.bits_allocated) {
                // Fast path: 16-bit words already decoded by the parser, any byte order.
                (PrimitiveValue::U16(w), 16) => {
                    if w.len() < want_samples {
                        return Err(too_short(w.len() * 2));
                    }
                    for f in 0..frames {
                        let r = header.frame_geometry(f).rescale;
                        let (m, b) = (r.slope, r.intercept);
                        let words = &w[f * frame_len..(f + 1) * frame_len];
                        let dst = &mut values[f * frame_len..(f + 1) * frame_len];
                        for (o, &v) in dst.iter_mut().zip(words) {
                            *o = (layout.value(u32::from(v)) * m + b) as f32;
                        }
                    }
                }
                (PrimitiveValue::I16(w), 16) => {
                    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
                    if bytes.len() < want_bytes {
                        return Err(too_short(bytes.len()));
                    }
                    convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
                }
                (PrimitiveValue::U16(w), 32) => {
                    // OW words of 32-bit samples: word order follows the byte order of the syntax.
                    let bytes: Vec<u8> = w
                        .chunks_exact(2)
                        .flat_map(|p| {
                            let (lo, hi) = if big_endian {
                                (p[1], p[0])
                            } else {
                                (p[0], p[1])
                            };
                            let mut b = [0u8; 4];
                            b[..2].copy_from_slice(&lo.to_le_bytes());
                            b[2..].copy_from_slice(&hi.to_le_bytes());
                            b
                        })
                        .collect();
                    if bytes.len() < want_bytes {
                        return Err(too_short(bytes.len()));
                    }
                    convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
                }
                (PrimitiveValue::U8(b), _) => {
                    if big_endian && header.bits_allocated > 8 {
                        return Err(unsupported(
                            "big-endian pixel data stored as OB with more than 8 bits".into(),
                        ));
                    }
                    if b.len() < want_bytes {
                        return Err(too_short(b.len()));
                    }
                    convert_le_bytes(b, layout, frame_len, &header, &mut values);
                }
                (PrimitiveValue::U32(w), 32) | (PrimitiveValue::U32(w), _) => {
                    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
                    if bytes.len() < want_bytes {
                        return Err(too_short(bytes.len()));
                    }
                    convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
                }
                (PrimitiveValue::I32(w), _) => {
                    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
                    if bytes.len() < want_bytes {
                        return Err(too_short(bytes.len()));
                    }
                    convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
                }
                (other, bits) => {
                    return Err(unsupported(format!(
                        "native pixel data of type {:?} with BitsAllocated {bits}",
                        other.value_type()
                    )))
                }
            }
        }
        Value::PixelSequence(seq) if ts == RLE_LOSSLESS => {
            // Our own RLE decoder: dicom-rs's fails on 32-bit and multi-segment data (rtdose_rle).
            let frags = seq.fragments();
            if frags.len() < frames {
                return Err(too_short(frags.iter().map(Vec::len).sum()));
            }
            let bps = usize::from(header.bits_allocated / 8);
            let mut bytes = vec![0u8; want_bytes];
            for (f, frag) in frags.iter().take(frames).enumerate() {
                let out = &mut bytes[f * frame_len * bps..(f + 1) * frame_len * bps];
                rle_decode_frame(frag, bps, frame_len, out).map_err(|reason| {
                    VolumeError::Decode {
                        path: path.to_path_buf(),
                        transfer_syntax: ts.clone(),
                        reason: format!("frame {f}: {reason}"),
                    }
                })?;
            }
            convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
        }
        Value::PixelSequence(seq) => {
            let decode = |e: &dyn std::fmt::Display| VolumeError::Decode {
                path: path.to_path_buf(),
                transfer_syntax: ts.clone(),
                reason: e.to_string(),
            };
            if JPEG_2000.contains(&ts.as_str()) {
                // The JPEG 2000 adapter writes the codestream's own size into a buffer sized from
                // Rows × Columns (fuzz find: index past the end). Check the SIZ marker first.
                for frag in seq.fragments() {
                    check_j2k_size(frag, header.rows, header.columns).map_err(|e| decode(&e))?;
                }
            } else {
                for frag in seq.fragments() {
                    check_jpeg_size(frag, header.rows, header.columns).map_err(|e| decode(&e))?;
                }
            }
            // Decoders may panic on hostile input; contain it to this file.
            let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                obj.decode_pixel_data().map(|d| {
                    (
                        d.data().to_vec(),
                        d.bits_allocated(),
                        d.bits_stored(),
                        d.pixel_representation() as u16,
                        d.samples_per_pixel(),
                    )
                })
            }))
            .map_err(|_| decode(&"decoder panicked"))?
            .map_err(|e| decode(&e))?;
            let (bytes, ba, bs, pr, spp) = decoded;
            if spp != 1 {
                return Err(unsupported(format!(
                    "{spp} samples per pixel after decoding"
                )));
            }
            let layout = Layout {
                bits_allocated: ba,
                bits_stored: bs.min(ba),
                signed: pr == 1,
            };
            let want = want_samples * usize::from(ba / 8).max(1);
            if bytes.len() < want {
                return Err(too_short(bytes.len()));
            }
            convert_le_bytes(&bytes, layout, frame_len, &header, &mut values);
        }
        Value::Sequence(_) => return Err(unsupported("Pixel Data is a sequence".into())),
    }
    Ok(InstancePixels {
        rows,
        columns,
        frames,
        values,
        header,
    })
}
