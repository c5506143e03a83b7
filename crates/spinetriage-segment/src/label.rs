//! Level names, counted from the sacrum.

use crate::Segmentation;
use nalgebra::Vector3;

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

fn index_of(l: &str) -> Option<usize> {
    LEVELS.iter().position(|x| *x == l)
}

/// Names the bodies of `seg` (cranial first) from an anchor or from the sacrum.
///
/// The first sacral segment is recognised by the lumbosacral angle: its superior endplate is
/// tilted 20° or more against the lowest lumbar one, or the column turns 25° or more backwards
/// between L5 and S1 (normal lumbosacral disc angle ~10–20° in the
/// other direction of counting, sacral slope ~40°; Legaye et al., Eur Spine J 1998). Counting up
/// assumes five lumbar vertebrae: a transitional lumbosacral vertebra (L5 sacralisation, S1
/// lumbarisation; ~10–30 % of people) cannot be told from a lumbar-only view, so it is flagged and
/// the confidence lowered.
pub fn label(seg: &mut Segmentation, anchor: Option<&Anchor>) {
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
            let axis = |k: usize| Vector3::from(seg.bodies[k].axis_lps);
            let angle = |a: usize, b: usize| axis(a).angle(&axis(b)).to_degrees();
            // The column turns backwards at the lumbosacral junction: the step from L5 to S1
            // leans much further back than the steps above it.
            let step = |k: usize| {
                Vector3::from(seg.bodies[k].centroid_lps.0 - seg.bodies[k - 1].centroid_lps.0)
            };
            let turn = if n >= 3 {
                step(n - 1).angle(&step(n - 2)).to_degrees()
            } else {
                0.0
            };
            if n >= 3 && (angle(n - 1, n - 2) >= 20.0 || turn >= 25.0) {
                (
                    n - 1,
                    "S1".to_string(),
                    0.8,
                    format!(
                        "sacrum recognised at the lowest body (endplate {:.0}° against the body above, column turning {:.0}°); counted up assuming five lumbar vertebrae — transitional lumbosacral anatomy cannot be excluded on this view",
                        angle(n - 1, n - 2),
                        turn
                    ),
                )
            } else {
                seg.labelling.push(
                    "sacrum not recognised: levels left unnamed; give --anchor (e.g. L5, or L1@z_mm)".to_string(),
                );
                return;
            }
        }
    };
    seg.labelling.push(note);
    let Some(at) = index_of(&name) else { return };
    for k in 0..n {
        let li = at as i64 - (index as i64 - k as i64);
        if li >= 0 && (li as usize) < LEVELS.len() {
            seg.bodies[k].label = Some(LEVELS[li as usize].to_string());
            // Confidence falls with the distance from the anchor (a missed body shifts all above).
            seg.bodies[k].label_confidence =
                confidence * 0.97f64.powi((index as i64 - k as i64).abs() as i32);
        }
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
