//! A sagittal picture of the column for the report: a curved reformat that follows the bodies'
//! left–right position, so a scoliotic spine stays in plane; body outlines burnt in, height
//! lines and labels returned as vector overlays in pixel coordinates.

use ndarray::ArrayView3;
use rayon::prelude::*;
use spinetriage_measure::StudyMorphometry;
use spinetriage_volume::Sample;
use spinetriage_volume::{LpsPoint, Volume};

/// Picture height, pixels: readable on a laptop screen whatever the voxel size.
const MAX_HEIGHT_PX: f64 = 720.0;

/// Overlay of one level.
#[derive(Debug, Clone)]
pub struct LevelOverlay {
    /// Level name or "?".
    pub label: String,
    /// "flagged" (fracture or ACR deformity), "normal" or "not_evaluable".
    pub state: &'static str,
    /// Body centre, pixels (x, y).
    pub center_px: [f64; 2],
    /// Anterior, middle, posterior height lines, pixels.
    pub lines_px: Vec<[[f64; 2]; 2]>,
}

/// The picture and its overlays.
#[derive(Debug, Clone)]
pub struct Sagittal {
    /// PNG bytes (outlines burnt in).
    pub png: Vec<u8>,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Pixel size, mm.
    pub pixel_mm: f64,
    /// Per level.
    pub levels: Vec<LevelOverlay>,
}

fn state(l: &spinetriage_measure::Level) -> &'static str {
    if !l.measured() {
        "not_evaluable"
    } else if l.derived.acr_deformity == Some(true) || l.derived.genant_grade.unwrap_or(0) >= 1 {
        "flagged"
    } else {
        "normal"
    }
}

fn rgb(state: &str) -> [u8; 3] {
    match state {
        "flagged" => [230, 40, 40],
        "not_evaluable" => [240, 170, 0],
        _ => [40, 200, 90],
    }
}

/// Bilinear sample of the canonical array at fractional (si, ap) and integer lr.
fn sample<T: Sample>(a: &ArrayView3<T>, si: f64, ap: f64, lr: usize) -> Option<f32> {
    let d = a.dim();
    if si < 0.0 || ap < 0.0 || si > (d.0 - 1) as f64 || ap > (d.1 - 1) as f64 || lr >= d.2 {
        return None;
    }
    let (i0, j0) = (si.floor() as usize, ap.floor() as usize);
    let (i1, j1) = ((i0 + 1).min(d.0 - 1), (j0 + 1).min(d.1 - 1));
    let (fi, fj) = ((si - i0 as f64) as f32, (ap - j0 as f64) as f32);
    let v = |i, j| a[[i, j, lr]].value();
    Some(
        v(i0, j0) * (1.0 - fi) * (1.0 - fj)
            + v(i1, j0) * fi * (1.0 - fj)
            + v(i0, j1) * (1.0 - fi) * fj
            + v(i1, j1) * fi * fj,
    )
}

/// The picture's grey values, rows in parallel; a row's left-right position is one lookup.
fn grey_rows<T: Sample>(
    a: &ArrayView3<T>,
    (w, h): (u32, u32),
    to_idx: &(dyn Fn(u32, u32) -> (f64, f64) + Sync),
    lr_at: &(dyn Fn(f64) -> usize + Sync),
) -> Vec<f32> {
    let mut grey = vec![0f32; (w * h) as usize];
    grey.par_chunks_mut(w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let lr = lr_at(to_idx(0, y as u32).0);
            for (x, g) in row.iter_mut().enumerate() {
                let (si, ap) = to_idx(x as u32, y as u32);
                *g = sample(a, si, ap, lr).unwrap_or(0.0);
            }
        });
    grey
}

/// Renders the shape volume of a study with its levels. `None` when there is nothing to show.
pub fn sagittal(vol: &Volume, m: &StudyMorphometry) -> Option<Sagittal> {
    let seg = &m.segmentation;
    let view = &seg.view;
    let d = (view.dims[0], view.dims[1], view.dims[2]);
    if d.0 < 2 || d.1 < 2 || d.2 == 0 {
        return None;
    }
    // Left-right position of the column along si: the bodies' centroids, interpolated.
    let mut anchors: Vec<(f64, f64)> = seg
        .bodies
        .iter()
        .map(|b| {
            let c = view.to_canonical(b.centroid_lps);
            (c[0], c[2])
        })
        .collect();
    anchors.sort_by(|x, y| x.0.total_cmp(&y.0));
    let lr_at = |si: f64| -> usize {
        let lr = match anchors.as_slice() {
            [] => (d.2 as f64 - 1.0) / 2.0,
            [one] => one.1,
            v => {
                let k = v.partition_point(|p| p.0 < si).clamp(1, v.len() - 1);
                let (p, q) = (v[k - 1], v[k]);
                let t = ((si - p.0) / (q.0 - p.0).max(1e-9)).clamp(0.0, 1.0);
                p.1 + t * (q.1 - p.1)
            }
        };
        (lr.round().max(0.0) as usize).min(d.2 - 1)
    };
    let [s_si, s_ap, _] = view.spacing_mm;
    let (ext_si, ext_ap) = (d.0 as f64 * s_si, d.1 as f64 * s_ap);
    let pixel_mm = (ext_si / MAX_HEIGHT_PX).max(0.2);
    let (h, w) = (
        (ext_si / pixel_mm).round().max(1.0) as u32,
        (ext_ap / pixel_mm).round().max(1.0) as u32,
    );
    let to_idx = |x: u32, y: u32| {
        (
            (y as f64 + 0.5) * pixel_mm / s_si - 0.5,
            (x as f64 + 0.5) * pixel_mm / s_ap - 0.5,
        )
    };
    let grey = spinetriage_volume::with_voxels!(&vol.data, |a| grey_rows(
        &view.view(a),
        (w, h),
        &to_idx,
        &lr_at
    ));
    // Window from the picture's own histogram (1st–99.5th percentile): two order statistics,
    // not a sort.
    let mut finite: Vec<f32> = grey.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    let n = finite.len();
    // The two selections side by side, each on its own copy (a picture is a few MB at most).
    let mut upper = finite.clone();
    let (lo, hi) = rayon::join(
        || *finite.select_nth_unstable_by(n / 100, f32::total_cmp).1,
        || {
            *upper
                .select_nth_unstable_by((n * 995 / 1000).min(n - 1), f32::total_cmp)
                .1
        },
    );
    let span = (hi - lo).max(1e-6);
    let mut pixels = vec![0u8; grey.len() * 3];
    pixels
        .par_chunks_mut(3)
        .zip(grey.par_iter())
        .for_each(|(px, v)| px.fill((((v - lo) / span).clamp(0.0, 1.0) * 255.0) as u8));
    let mut rgb_img = image::RgbImage::from_raw(w, h, pixels)?;
    // Outlines: picture pixels inside a body whose 4-neighbours are not all inside; found per
    // body in parallel (each pixel's inside test once), painted in body order.
    let levels_by_ordinal = |o: usize| m.levels.iter().find(|l| l.ordinal == o);
    type Outline = (Vec<(u32, u32)>, [u8; 3]);
    let outlines: Vec<Outline> = seg
        .bodies
        .par_iter()
        .map(|b| {
            let colour = rgb(levels_by_ordinal(b.ordinal).map_or("not_evaluable", state));
            let o = b.mask.origin;
            let md = b.mask.mask.dim();
            let y0 = ((o[0] as f64 - 1.0) * s_si / pixel_mm).floor().max(0.0) as i64;
            let y1 = ((((o[0] + md.0) as f64 + 1.0) * s_si / pixel_mm).ceil() as i64).min(h as i64);
            let x0 = ((o[1] as f64 - 1.0) * s_ap / pixel_mm).floor().max(0.0) as i64;
            let x1 = ((((o[1] + md.1) as f64 + 1.0) * s_ap / pixel_mm).ceil() as i64).min(w as i64);
            // The box with a one-pixel frame, which is outside the picture or the body.
            let (bw, bh) = ((x1 - x0 + 2).max(0) as usize, (y1 - y0 + 2).max(0) as usize);
            let mut inside = vec![false; bw * bh];
            for y in y0.max(0)..y1 {
                let (si, _) = to_idx(0, y as u32);
                let lr = lr_at(si);
                for x in x0.max(0)..x1 {
                    let (si, ap) = to_idx(x as u32, y as u32);
                    inside[(y - y0 + 1) as usize * bw + (x - x0 + 1) as usize] =
                        b.mask
                            .contains([si.round() as usize, ap.round() as usize, lr]);
                }
            }
            let mut px = Vec::new();
            for y in 1..bh.saturating_sub(1) {
                for x in 1..bw.saturating_sub(1) {
                    let at = |x: usize, y: usize| inside[y * bw + x];
                    if at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1)) {
                        px.push(((x as i64 + x0 - 1) as u32, (y as i64 + y0 - 1) as u32));
                    }
                }
            }
            (px, colour)
        })
        .collect();
    for (px, colour) in outlines {
        for (x, y) in px {
            rgb_img.put_pixel(x, y, image::Rgb(colour));
        }
    }
    let to_px = |p: [f64; 3]| {
        let c = view.to_canonical(LpsPoint::new(p[0], p[1], p[2]));
        [
            (c[1] + 0.5) * s_ap / pixel_mm - 0.5,
            (c[0] + 0.5) * s_si / pixel_mm - 0.5,
        ]
    };
    let levels = m
        .levels
        .iter()
        .map(|l| {
            let me = &l.measurement;
            LevelOverlay {
                label: l.level.clone().unwrap_or_else(|| "?".into()),
                state: state(l),
                center_px: to_px(me.center_lps_mm),
                lines_px: [&me.anterior, &me.middle, &me.posterior]
                    .iter()
                    .filter_map(|h| h.map(|h| [to_px(h.superior_lps_mm), to_px(h.inferior_lps_mm)]))
                    .collect(),
            }
        })
        .collect();
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(rgb_img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(Sagittal {
        png,
        width: w,
        height: h,
        pixel_mm,
        levels,
    })
}

/// Standard base64 (RFC 4648) of `bytes`, for `data:` URIs.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                s.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
