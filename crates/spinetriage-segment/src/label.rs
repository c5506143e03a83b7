//! Level names, counted from the sacrum.

use crate::Segmentation;
use nalgebra::Vector3;
use spinetriage_volume::{LpsPoint, Volume};

/// Level names, cranial first.
pub const LEVELS: [&str; 25] = [
    "C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
    "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1",
];

/// A user-supplied label anchor (`--anchor`).
#[derive(Debug, Clone, PartialEq)]
pub enum Anchor {
    /// The most caudal body found is this level (e.g. "L5" when the sacrum is out of view).
    Lowest(String),
    /// The body nearest this head-foot position (LPS z, mm) is this level.
    At {
        /// Level name.
        level: String,
        /// LPS z, mm.
        z_mm: f64,
    },
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `L5` (the lowest body found is L5) or `L1@-312.5` (the body nearest z = −312.5 mm is L1).
    fn from_str(s: &str) -> Result<Anchor, String> {
        let known = |l: &str| LEVELS.contains(&l.to_ascii_uppercase().as_str());
        match s.split_once('@') {
            Some((l, z)) if known(l) => z
                .trim()
                .parse::<f64>()
                .map(|z_mm| Anchor::At {
                    level: l.to_ascii_uppercase(),
                    z_mm,
                })
                .map_err(|_| format!("anchor {s:?}: {z:?} is not a z position in mm")),
            None if known(s) => Ok(Anchor::Lowest(s.to_ascii_uppercase())),
            _ => Err(format!(
                "anchor {s:?}: expected a level (C1..S1), optionally @z_mm"
            )),
        }
    }
}

/// Median of the volume along a segment `from`..`to` mm of the line `c + t·d`.
fn median_along(vol: &Volume, c: Vector3<f64>, d: Vector3<f64>, from: f64, to: f64) -> Option<f64> {
    let mut v: Vec<f64> = (0..=20)
        .filter_map(|k| {
            let t = from + (to - from) * f64::from(k) / 20.0;
            let p = c + d * t;
            vol.sample_lps(LpsPoint::new(p.x, p.y, p.z)).map(f64::from)
        })
        .collect();
    if v.len() < 10 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Recognises the sacrum from what lies below the lowest body, along the column: bone straight
/// away (no disc: S1 fused to S2, so the lowest body is S1), or a disc and then bone that the
/// chain did not take as a body (the sacrum, so the lowest body is L5). The disc's own signal is
/// read between the two lowest bodies; "bone" means closer to the body's marrow than to that.
fn sacrum(seg: &Segmentation, vol: &Volume) -> Option<(usize, &'static str, String)> {
    let n = seg.bodies.len();
    // The lowest body first; if nothing is recognised under it (it may be a pelvic structure or
    // a lower sacral segment the chain took as a body), the ones above it: the chain can take
    // S2 and S3, whose central sections are body-like, below S1.
    (0..3)
        .filter_map(|up| n.checked_sub(1 + up).filter(|k| *k >= 2))
        .find_map(|k| sacrum_under(seg, vol, k))
}

/// The sacrum test under body `k`: bone straight away means `k` is S1; disc-like signal and then
/// bone means `k` is L5.
fn sacrum_under(
    seg: &Segmentation,
    vol: &Volume,
    k: usize,
) -> Option<(usize, &'static str, String)> {
    let c = |i: usize| seg.bodies[i].centroid_lps.0.coords;
    let gap = |i: usize| {
        let step = c(i) - c(i - 1);
        let spacing = step.norm();
        median_along(
            vol,
            c(i - 1),
            step / spacing,
            0.45 * spacing,
            0.55 * spacing,
        )
    };
    let step = c(k) - c(k - 1);
    let spacing = step.norm();
    let d = step / spacing;
    let marrow = f64::from(seg.bodies[k].marrow.median);
    let disc = gap(k)?;
    if (disc - marrow).abs() < 1e-6 {
        return None;
    }
    // The chain can take a fused lower sacral segment (S2) as a body: then nothing disc-like
    // separates it from the body above, which is S1. Disc signal is judged from the discs
    // higher up (the median of the three gaps above), and only where discs differ clearly from
    // marrow.
    let mut above: Vec<f64> = (k.saturating_sub(3).max(1)..k).filter_map(gap).collect();
    above.sort_by(f64::total_cmp);
    if let Some(&disc_ref) = above.get(above.len() / 2) {
        let contrast = (disc_ref - marrow).abs();
        // Fused only if no stretch of the way between them reads disc-like: a lowest "body"
        // that merges several sacral segments puts its centroid far down, and the disc above
        // it away from the middle of the way.
        let most_disc_like = (0..)
            .map(|mm| 0.2 * spacing + f64::from(mm))
            .take_while(|a| *a + 4.0 <= 0.8 * spacing)
            .filter_map(|a| median_along(vol, c(k - 1), d, a, a + 4.0))
            .map(|v| (v - marrow).abs())
            .fold(0.0, f64::max);
        let fused = (disc - marrow).abs() < 0.3 * contrast && most_disc_like < 0.3 * contrast;
        if above.len() >= 2 && contrast > 0.25 * marrow.abs().max(1.0) && fused {
            return Some((
                k - 1,
                "S1",
                format!(
                    "sacrum recognised above the lowest body: it is fused to the body above (the gap between them reads {:.2} of the way from marrow to the disc signal above), so the body above is S1",
                    (disc - marrow) / (disc_ref - marrow)
                ),
            ));
        }
    }
    // 0 = marrow-like, 1 = disc-like; fat or air beyond either end is neither.
    let discness = |v: f64| (v - marrow) / (disc - marrow);
    let bone = |x: f64| x.abs() < 0.4;
    let disc_like = |x: f64| (x - 1.0).abs() < 0.5;
    // Half the body's height along the column.
    let half = 0.5 * seg.bodies[k].candidate.height_mm.max(0.35 * spacing);
    let just_below = discness(median_along(vol, c(k), d, half + 2.0, half + 6.0)?);
    let further =
        median_along(vol, c(k), d, half + 0.45 * spacing, half + 0.9 * spacing).map(discness);
    let which = if k + 1 == seg.bodies.len() {
        "the lowest body"
    } else {
        "the body above the lowest"
    };
    let evidence = format!(
        "under {which} the signal is {just_below:.2} of the way from its marrow to disc signal, {} further down",
        further.map(|f| format!("{f:.2}")).unwrap_or_else(|| "outside the image".into())
    );
    if bone(just_below) {
        return Some((
            k,
            "S1",
            format!("sacrum recognised at {which}: no disc below it, S1 fused to S2 ({evidence})"),
        ));
    }
    if disc_like(just_below) && further.is_some_and(bone) {
        return Some((
            k,
            "L5",
            format!(
                "sacrum recognised below {which}, across its disc: that body is L5 ({evidence})"
            ),
        ));
    }
    None
}

fn index_of(l: &str) -> Option<usize> {
    LEVELS.iter().position(|x| *x == l)
}

/// Names the bodies of `seg` (cranial first) from an anchor or from the sacrum.
///
/// The sacrum is recognised from what lies below the lowest body ([`sacrum`]): S1 is the first
/// segment without a disc below it (fused to S2). Counting up (missed levels included) assumes
/// five lumbar vertebrae: a transitional lumbosacral vertebra (L5 sacralisation, S1
/// lumbarisation; ~10–30 % of people) cannot be told from a lumbar-only view, so it is flagged and
/// the confidence lowered.
pub fn label(seg: &mut Segmentation, vol: &Volume, anchor: Option<&Anchor>) {
    let n = seg.bodies.len();
    if n == 0 {
        return;
    }
    let (index, name, confidence, note) = match anchor {
        Some(Anchor::Lowest(l)) => (
            n - 1,
            l.clone(),
            0.95,
            format!("lowest body set to {l} by the user"),
        ),
        Some(Anchor::At { level, z_mm }) => {
            let k = (0..n)
                .min_by(|a, b| {
                    let da = (seg.bodies[*a].centroid_lps.0.z - z_mm).abs();
                    let db = (seg.bodies[*b].centroid_lps.0.z - z_mm).abs();
                    da.total_cmp(&db)
                })
                .unwrap_or(0);
            (
                k,
                level.clone(),
                0.95,
                format!("body nearest z = {z_mm} mm set to {level} by the user"),
            )
        }
        None => {
            match sacrum(seg, vol) {
                Some((k, name, why)) => (
                    k,
                    name.to_string(),
                    0.8,
                    format!(
                        "{why}; counted up assuming five lumbar vertebrae — transitional lumbosacral anatomy cannot be excluded on this view"
                    ),
                ),
                None => {
                    seg.labelling.push(
                        "sacrum not recognised below the lowest body: levels left unnamed; give --anchor (e.g. L5, or L1@z_mm)"
                            .to_string(),
                    );
                    return;
                }
            }
        }
    };
    seg.labelling.push(note);
    let Some(at) = index_of(&name) else { return };
    let anchor_ordinal = seg.bodies[index].ordinal as i64;
    let name_of = |ordinal: usize| {
        let li = at as i64 - (anchor_ordinal - ordinal as i64);
        (li >= 0 && (li as usize) < LEVELS.len()).then(|| LEVELS[li as usize].to_string())
    };
    for b in seg.bodies.iter_mut() {
        b.label = name_of(b.ordinal);
        if b.label.is_some() {
            // Confidence falls with the distance from the anchor (a missed body shifts all above).
            b.label_confidence = confidence
                * 0.97f64.powi((anchor_ordinal - b.ordinal as i64).unsigned_abs() as i32);
        }
    }
    for m in seg.missing.iter_mut() {
        m.label = name_of(m.ordinal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse() {
        assert_eq!("l5".parse::<Anchor>(), Ok(Anchor::Lowest("L5".into())));
        assert_eq!(
            "L1@-312.5".parse::<Anchor>(),
            Ok(Anchor::At {
                level: "L1".into(),
                z_mm: -312.5
            })
        );
        assert!("L9".parse::<Anchor>().is_err());
        assert!("L1@abc".parse::<Anchor>().is_err());
    }
}
