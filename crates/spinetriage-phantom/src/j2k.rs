//! JPEG 2000 lossless encoding of one 16-bit grey frame through OpenJPEG (the `openjp2` port).
//!
//! dicom-rs decodes JPEG 2000 but does not encode it, so the generator drives the codec itself.

use std::sync::atomic::{AtomicU64, Ordering};

use openjp2::image::opj_image_cmptparm_t;
use openjp2::image::{opj_image_create, opj_image_destroy};
use openjp2::openjpeg::{
    opj_create_compress, opj_destroy_codec, opj_encode, opj_end_compress,
    opj_set_default_encoder_parameters, opj_setup_encoder, opj_start_compress,
    opj_stream_create_default_file_stream, opj_stream_destroy,
};
use openjp2::{opj_cparameters_t, CODEC_FORMAT, COLOR_SPACE};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Encodes `px` (rows × cols, row-major, unsigned 16-bit) as a reversible (5/3) J2K codestream.
pub fn encode_u16_lossless(px: &[u16], rows: usize, cols: usize) -> Result<Vec<u8>, String> {
    if px.len() != rows * cols || rows == 0 || cols == 0 {
        return Err("frame size mismatch".into());
    }
    let tmp = std::env::temp_dir().join(format!(
        "spinetriage-j2k-{}-{}.j2k",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let cpath = std::ffi::CString::new(tmp.to_string_lossy().as_bytes().to_vec())
        .map_err(|e| e.to_string())?;
    // SAFETY: every pointer comes from the codec's own constructors, is checked for null, and is
    // destroyed exactly once below; the image buffer is written within its allocated length.
    let ok = unsafe {
        let mut parm = opj_image_cmptparm_t {
            dx: 1,
            dy: 1,
            w: cols as u32,
            h: rows as u32,
            x0: 0,
            y0: 0,
            prec: 16,
            bpp: 16,
            sgnd: 0,
        };
        let img = opj_image_create(1, &mut parm, COLOR_SPACE::OPJ_CLRSPC_GRAY);
        if img.is_null() {
            return Err("cannot create image".into());
        }
        (*img).x1 = cols as u32;
        (*img).y1 = rows as u32;
        if let Some(data) = (*img)
            .comps_mut()
            .and_then(|c| c.first_mut())
            .and_then(|c| c.data_mut())
        {
            for (d, s) in data.iter_mut().zip(px) {
                *d = i32::from(*s);
            }
        }
        let codec = opj_create_compress(CODEC_FORMAT::OPJ_CODEC_J2K);
        let mut params = opj_cparameters_t::default();
        opj_set_default_encoder_parameters(&mut params);
        // Defaults are reversible 5/3 with one lossless layer.
        params.tcp_numlayers = 1;
        params.tcp_rates[0] = 0.0;
        params.cp_disto_alloc = 1;
        // Each resolution level halves the image; small images allow fewer than the default 6.
        let min_side = rows.min(cols) as u32;
        params.numresolution = (32 - min_side.leading_zeros()).clamp(1, 6) as i32;
        let mut ok = !codec.is_null() && opj_setup_encoder(codec, &mut params, img) != 0;
        let stream = if ok {
            opj_stream_create_default_file_stream(cpath.as_ptr(), 0)
        } else {
            std::ptr::null_mut()
        };
        ok = ok && !stream.is_null();
        ok = ok && opj_start_compress(codec, img, stream) != 0;
        ok = ok && opj_encode(codec, stream) != 0;
        ok = ok && opj_end_compress(codec, stream) != 0;
        if !stream.is_null() {
            opj_stream_destroy(stream);
        }
        if !codec.is_null() {
            opj_destroy_codec(codec);
        }
        opj_image_destroy(img);
        ok
    };
    let bytes = std::fs::read(&tmp).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&tmp);
    if !ok {
        return Err("OpenJPEG encoding failed".into());
    }
    let mut b = bytes?;
    if b.len() % 2 == 1 {
        b.push(0);
    }
    Ok(b)
}
