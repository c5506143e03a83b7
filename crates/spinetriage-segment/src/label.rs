//! Level names, counted from the sacrum.

use crate::Segmentation;
use nalgebra::Vector3;
use rayon::prelude::*;
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
    let v: Vec<f64> = (0..=20)
        .filter_map(|k| {
            let t = from + (to - from) * f64::from(k) / 20.0;
            let p = c + d * t;
            vol.sample_lps(LpsPoint::new(p.x, p.y, p.z)).map(f64::from)
        })
        .collect();
    if v.len() < 10 {
        return None;
    }
    median(v)
}

/// The signal in the middle of the way between bodies `i − 1` and `i` (the disc between them).
fn gap_signal(seg: &Segmentation, vol: &Volume, i: usize) -> Option<f64> {
    let (a, b) = (
        seg.bodies[i.checked_sub(1)?].centroid_lps.0.coords,
        seg.bodies[i].centroid_lps.0.coords,
    );
    let spacing = (b - a).norm();
    (spacing > 0.0).then_some(())?;
    median_along(vol, a, (b - a) / spacing, 0.45 * spacing, 0.55 * spacing)
}

/// Whether marrow and disc signal differ enough to tell bone from disc by signal: by a quarter
/// of the larger, or by [`CONTRAST_SIGMAS`] times the marrow's own spread (`sigma`, the bodies'
/// median). Degenerated discs on T2 read only 10–20 % under the marrow, but the marrow of a
/// body varies by a few percent; osteoporotic marrow on CT is as close to the discs and noisier
/// than the difference, and still fails.
fn contrasted(marrow: f64, disc: f64, sigma: f64) -> bool {
    let apart = (marrow - disc).abs();
    apart >= 0.25 * marrow.abs().max(disc.abs()) || apart >= CONTRAST_SIGMAS * sigma
}

/// Marrow–disc difference, in the marrow's robust spreads, above which the two are told apart.
const CONTRAST_SIGMAS: f64 = 3.0;

/// Largest spread of a straying body's own marrow, in the column's spreads, that still reads
/// from its own: fatty sacral marrow is homogeneous; lytic or gas-filled marrow is not.
const OWN_SPREAD_MAX: f64 = 2.0;

/// The bodies' median marrow signal and median robust spread.
fn marrow_level(seg: &Segmentation) -> Option<(f64, f64)> {
    let of = |f: fn(&crate::refine::MarrowStats) -> f32| {
        median(seg.bodies.iter().map(|b| f64::from(f(&b.marrow))).collect())
    };
    Some((of(|m| m.median)?, of(|m| m.sigma)?))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    // An order statistic, not a sort: masks give medians of ~10⁵ coordinates.
    let mid = v.len() / 2;
    (!v.is_empty()).then(|| *v.select_nth_unstable_by(mid, f64::total_cmp).1)
}

/// Drops a disc the chain took for a body (on CT a disc with its two endplates can pass the
/// shape test, and the chain accepts it when the body below it is a merged S1–S2 whose centre
/// lies low): a body less than 0.6 of the typical spacing from a neighbour, whose marrow is
/// nearer the discs' signal than the bodies'. A lytic or crushed body keeps its place in the
/// column (its neighbours stay about one interval away), so it is not dropped. Ordinals below
/// close up; the labelling says what was dropped.
pub fn drop_discs(seg: &mut Segmentation, vol: &Volume) {
    let n = seg.bodies.len();
    if n < 4 {
        return;
    }
    let c = |i: usize| seg.bodies[i].centroid_lps.0.coords;
    let spacing = |i: usize, j: usize| (c(i) - c(j)).norm();
    let Some(typical) = median((1..n).map(|i| spacing(i, i - 1)).collect()) else {
        return;
    };
    let Some((marrow, sigma)) = marrow_level(seg) else {
        return;
    };
    // The discs between bodies a full interval apart.
    let Some(disc) = median(
        (1..n)
            .filter(|&i| spacing(i, i - 1) >= 0.8 * typical)
            .filter_map(|i| gap_signal(seg, vol, i))
            .collect(),
    ) else {
        return;
    };
    if !contrasted(marrow, disc, sigma) {
        return;
    }
    let drop: Vec<(usize, f64)> = (0..n)
        .filter_map(|i| {
            let near = [i.checked_sub(1), (i + 1 < n).then_some(i + 1)]
                .into_iter()
                .flatten()
                .map(|j| spacing(i, j))
                .fold(f64::INFINITY, f64::min);
            let own = f64::from(seg.bodies[i].marrow.median);
            (near < 0.6 * typical && (own - disc).abs() < (own - marrow).abs()).then_some((i, near))
        })
        .collect();
    for &(i, near) in drop.iter().rev() {
        let b = seg.bodies.remove(i);
        let p = b.centroid_lps.0;
        seg.labelling.push(format!(
            "a disc-like region at ({:.0}, {:.0}, {:.0}) mm LPS, {:.0} mm from its neighbour against a typical {typical:.0} mm and of disc signal ({:.0}; discs {disc:.0}, bodies {marrow:.0}), was taken for a body and dropped",
            p.x, p.y, p.z, near, b.marrow.median
        ));
        close_slot(seg, b.ordinal);
    }
}

/// Closes up the column's ordinals after the body at `ordinal` is gone.
fn close_slot(seg: &mut Segmentation, ordinal: usize) {
    for other in seg.bodies.iter_mut().filter(|o| o.ordinal > ordinal) {
        other.ordinal -= 1;
    }
    for m in seg.missing.iter_mut().filter(|m| m.ordinal > ordinal) {
        m.ordinal -= 1;
    }
}

/// Merges two neighbouring bodies that share one interval: a crushed lytic body on T1 can be
/// grown as two (its upper half with the disc above, and its lower half), which puts one body
/// too many between its neighbours and names every level above one too high. Bodies `i` and
/// `i + 1` are merged when they lie under 0.8 of the column's median interval apart, the way
/// from the body above them to the body below them spans under 2.4 local intervals (two
/// intervals, not three; the local interval is the median of the three above) and the merged
/// body then sits 0.8–1.25 local intervals from both. Runs after [`drop_discs`].
pub fn merge_split_bodies(seg: &mut Segmentation) {
    let voxel_mm3: f64 = seg.view.spacing_mm.iter().product();
    let c0 = |seg: &Segmentation, j: usize| seg.bodies[j].centroid_lps.0.coords;
    let Some(column) = median(
        (1..seg.bodies.len())
            .map(|j| (c0(seg, j) - c0(seg, j - 1)).norm())
            .collect(),
    ) else {
        return;
    };
    let mut i = 1;
    while i + 2 < seg.bodies.len() {
        let c = |j: usize| c0(seg, j);
        let local = median(
            (i.saturating_sub(3)..i)
                .filter(|&j| j >= 1)
                .map(|j| (c(j) - c(j - 1)).norm())
                .collect(),
        );
        let Some(local) = local.filter(|l| *l > 0.0) else {
            i += 1;
            continue;
        };
        let span = (c(i + 2) - c(i - 1)).norm();
        let (va, vb) = (seg.bodies[i].volume_mm3, seg.bodies[i + 1].volume_mm3);
        let merged = (c(i) * va + c(i + 1) * vb) / (va + vb).max(1e-9);
        let fits = |d: f64| (0.8 * local..=1.25 * local).contains(&d);
        if (c(i + 1) - c(i)).norm() >= 0.8 * column
            || span >= 2.4 * local
            || !fits((merged - c(i - 1)).norm())
            || !fits((c(i + 2) - merged).norm())
        {
            i += 1;
            continue;
        }
        let b = seg.bodies.remove(i + 1);
        let a = &mut seg.bodies[i];
        let (pa, pb) = (a.centroid_lps.0, b.centroid_lps.0);
        a.mask = a.mask.union(&b.mask);
        let (centroid, n) = a.mask.centroid_index();
        if vb > va {
            a.marrow = b.marrow;
            a.candidate = b.candidate.clone();
        }
        a.centroid_lps = seg.view.to_lps(centroid);
        a.volume_mm3 = n as f64 * voxel_mm3;
        seg.labelling.push(format!(
            "two regions at ({:.0}, {:.0}, {:.0}) and ({:.0}, {:.0}, {:.0}) mm LPS share one interval ({span:.0} mm between their neighbours against a local {local:.0} mm): merged as one body",
            pa.x, pa.y, pa.z, pb.x, pb.y, pb.z
        ));
        close_slot(seg, b.ordinal);
        i += 1;
    }
}

/// What lies under a body along its own axis.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Interface {
    /// A disc-like stretch this long, mm, then bone: a mobile segment's disc.
    Disc(f64),
    /// Bone straight away, or after a disc-like stretch this short, mm, well under the discs
    /// above (a bony plate on CT, a vestigial S1–S2 disc on MR): fused segments.
    Fused(f64),
    /// Neither (the image ends, or soft tissue follows).
    Unknown,
}

/// Share of the discs above under which a disc-like stretch is a vestigial (fused) one: the
/// S1–S2 remnant is 2–3 mm against the 8–12 mm of lumbar discs.
const VESTIGIAL_DISC_SHARE: f64 = 0.45;

/// A body's own caudal axis (the least principal axis of its mask: a body is wider and deeper
/// than tall), pointing away from the body above, half the body's height, mm, and the point
/// (LPS) to walk from. The column bends at the lumbosacral junction: the way from the body above
/// points in front of the sacrum.
fn caudal_axis(seg: &Segmentation, k: usize) -> Option<(Vector3<f64>, f64, Vector3<f64>)> {
    let b = &seg.bodies[k];
    let pts = column_core(seg, k, mask_lps(seg, k));
    if pts.len() < 50 {
        return None;
    }
    let (mean, eig) = crate::principal(&pts);
    let least = (0..3).min_by(|a, b| eig.eigenvalues[*a].total_cmp(&eig.eigenvalues[*b]))?;
    let mut axis: Vector3<f64> = eig.eigenvectors.column(least).into();
    // The walk starts from the mask's coordinate-wise median: a lowest mask leaking into the
    // sacral ala or the pelvis moves its mean, not its median, off the body. The column's way
    // comes to that point too, not to the mask's centroid.
    let med: Vec<f64> = (0..3)
        .into_par_iter()
        .map(|r| median(pts.iter().map(|p| p[r]).collect()).unwrap_or(mean[r]))
        .collect();
    let start = Vector3::new(med[0], med[1], med[2]);
    let step = k
        .checked_sub(1)
        .map(|up| start - seg.bodies[up].centroid_lps.0.coords);
    let down = step.map_or(Vector3::new(0.0, 0.0, -1.0), |s| s.normalize());
    if axis.dot(&down) < 0.0 {
        axis = -axis;
    }
    // A mask too round to have a least axis (or one leaking sideways) keeps the column's way.
    if axis.dot(&down) < 0.5f64.sqrt() {
        axis = down;
    }
    // Half the body's height: not the mask's reach, since the lowest mask can take in the
    // sacral segments below S1.
    let spacing = step.map_or(0.0, |s| s.norm());
    Some((axis, 0.5 * b.candidate.height_mm.max(0.35 * spacing), start))
}

/// Body `i`'s mask voxels as LPS points, mm.
fn mask_lps(seg: &Segmentation, i: usize) -> Vec<Vector3<f64>> {
    seg.bodies[i].mask.lps_points(&seg.view)
}

/// The points of body `k`'s mask within the column: no farther from the column's line (the
/// step from the body two above to the body above, carried on) than the body above reaches
/// from its own centre line, with a fifth to spare. A lowest mask can take in the sacral ala,
/// a plate of bone as bright as S1 reaching far to one side, which moves the mask's median and
/// its axes off the body. Without two bodies above, or with too few points kept, all points.
fn column_core(seg: &Segmentation, k: usize, pts: Vec<Vector3<f64>>) -> Vec<Vector3<f64>> {
    let Some(two_up) = k.checked_sub(2) else {
        return pts;
    };
    let c = |i: usize| seg.bodies[i].centroid_lps.0.coords;
    let step = c(k - 1) - c(two_up);
    let Some(dir) = step.try_normalize(1e-6) else {
        return pts;
    };
    let off = |p: &Vector3<f64>, on: Vector3<f64>| {
        let d = p - on;
        (d - dir * d.dot(&dir)).norm()
    };
    let mut above: Vec<f64> = mask_lps(seg, k - 1)
        .par_iter()
        .map(|p| off(p, c(k - 1)))
        .collect();
    if above.len() < 50 {
        return pts;
    }
    let at = above.len() * 95 / 100;
    let reach = 1.2 * *above.select_nth_unstable_by(at, f64::total_cmp).1;
    let expected = c(k - 1) + step;
    let core: Vec<Vector3<f64>> = pts
        .par_iter()
        .copied()
        .filter(|p| off(p, expected) <= reach)
        .collect();
    if core.len() < 50 {
        pts
    } else {
        core
    }
}

/// The interface under body `k`: along its own axis from 3 mm inside its lower surface, each
/// sample the median of a 5-ray bundle 3 mm wide; signal classed as marrow-like bone or as disc
/// (`disc` is the discs' signal above, `marrow` the bodies').
fn interface_below(
    seg: &Segmentation,
    vol: &Volume,
    k: usize,
    disc: f64,
    (marrow, sigma): (f64, f64),
) -> Interface {
    let Some((a, reach, c)) = caudal_axis(seg, k) else {
        return Interface::Unknown;
    };
    if (disc - marrow).abs() < 1e-6 {
        return Interface::Unknown;
    }
    let e1 = a
        .cross(&Vector3::x())
        .try_normalize(1e-6)
        .unwrap_or_else(|| a.cross(&Vector3::y()).normalize());
    let e2 = a.cross(&e1);
    let bright_cortex = f64::from(seg.bodies[k].marrow.cortex_level) > marrow;
    // Marrow-like within 0.4 of the way to the discs' signal, and within the marrow's own noise:
    // a degenerated disc on T2 is only a few spreads darker than marrow, while the discs above
    // it are bright and set a wide way.
    let bone_band = (0.4 * (disc - marrow).abs()).min(BONE_SIGMAS * sigma);
    // A stretch that is neither marrow nor disc and then bone: a bony plate on CT (bright cortex,
    // up to 8 mm with its blur); on MR only the two endplates' dark cortex and a vestigial disc
    // fit, and anything longer is a disc whose signal is neither (degenerated, dark on T2).
    let plate_mm = if bright_cortex {
        CT_PLATE_MM
    } else {
        MR_PLATE_MM
    };
    let class: Vec<Class> = (0..)
        .map(|n| reach - 3.0 + f64::from(n) * STEP)
        .take_while(|t| *t <= reach + 25.0)
        .map_while(|t| {
            let v: Vec<f64> = [(0.0, 0.0), (3.0, 0.0), (-3.0, 0.0), (0.0, 3.0), (0.0, -3.0)]
                .iter()
                .filter_map(|(x, y)| {
                    let p = c + a * t + e1 * *x + e2 * *y;
                    vol.sample_lps(LpsPoint::new(p.x, p.y, p.z)).map(f64::from)
                })
                .collect();
            let enough = v.len() >= 3;
            median(v).filter(|_| enough).map(|value| {
                let x = (value - marrow) / (disc - marrow);
                // Denser than marrow, away from the disc, is cortex where cortex is bright (CT):
                // a sacral plate is bone. On MR that side is fat.
                if (value - marrow).abs() < bone_band || (bright_cortex && x <= -0.4) {
                    Class::Bone
                } else if (x - 1.0).abs() < 0.5 {
                    Class::Disc
                } else {
                    Class::Other
                }
            })
        })
        .collect();
    interface_of(&class, plate_mm)
}

/// Signal class of one sample under a body.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Class {
    /// Marrow-like.
    Bone,
    /// Disc-like.
    Disc,
    /// Neither (cortex, fat, soft tissue).
    Other,
}

/// Sampling step of the walk under a body, mm.
const STEP: f64 = 0.5;

/// Longest way from a body's marrow to the next body's, mm: a thick lumbar disc (~15 mm) with
/// the two endplates' cortex.
const MAX_DISC_MM: f64 = 20.0;

/// Bone-like signal: within this many of the marrow's robust spreads (and within 0.4 of the way
/// to the discs' signal).
const BONE_SIGMAS: f64 = 2.5;

/// Longest stretch of neither marrow nor disc signal, mm, that is a bony plate between fused
/// segments on CT: the plate with its blur.
const CT_PLATE_MM: f64 = 8.0;

/// The same on MR, where such a stretch is dark: two endplates' cortex (~1 mm each) with a
/// vestigial disc; a mobile disc with its endplates is 6–15 mm.
const MR_PLATE_MM: f64 = 4.0;

/// The interface from the classes met walking down from 3 mm inside a body's surface; a stretch
/// of neither marrow nor disc up to `plate_mm` long before bone is a bony plate (fused), a
/// longer one a disc of unexpected signal.
fn interface_of(class: &[Class], plate_mm: f64) -> Interface {
    let mm = |x: f64| (x / STEP).round() as usize;
    // Bone for 3 mm from sample `i`: the next body's marrow, not a disc's marrow-like core (a
    // degenerated disc on T2 can hold a 2 mm slit of marrow-like signal).
    let bone_at = |i: usize| {
        i + mm(3.0) <= class.len() && class[i..i + mm(3.0)].iter().all(|c| *c == Class::Bone)
    };
    // The body's own marrow first (the walk starts 3 mm inside its surface); 6 mm of bone past
    // the surface is no interface at all. One odd sample inside is noise, not the surface.
    let other = |i: usize| class.get(i).is_none_or(|c| *c != Class::Bone);
    let lead = (0..class.len())
        .find(|&i| other(i) && other(i + 1))
        .unwrap_or(class.len());
    if lead >= mm(9.0) {
        return Interface::Fused(0.0);
    }
    // The stretch from the body's marrow to the next bone: the two endplates' cortex and what
    // lies between them. Disc-like signal in it, or a stretch longer than a plate (a
    // degenerated disc, dark on T2), is a mobile segment's disc; a plate alone is fusion.
    let Some(end) = (lead..class.len()).find(|&i| bone_at(i)) else {
        return Interface::Unknown;
    };
    let gap = (end - lead) as f64 * STEP;
    let disc_like = class[lead..end].contains(&Class::Disc);
    if gap > MAX_DISC_MM {
        // Longer than any disc: the walk left the column (in front of the sacrum).
        Interface::Unknown
    } else if !disc_like && gap <= plate_mm {
        Interface::Fused(0.0)
    } else {
        Interface::Disc(gap)
    }
}

/// Recognises the sacrum from the interfaces under the lowest bodies, each along the body's own
/// axis: S1 is a body with fused bone under it (no disc, or a vestigial one well under the
/// discs above) and a disc above it; otherwise a lowest body with a full disc and then bone
/// under it is L5 (the sacrum below was not taken as a body). The chain can take S2 and S3,
/// whose central sections are body-like, below S1: the three lowest bodies are looked at.
fn sacrum(seg: &Segmentation, vol: &Volume) -> Option<(usize, &'static str, String)> {
    let n = seg.bodies.len();
    if n < 3 {
        return None;
    }
    // The discs' signal: the median of the three lowest gaps above the lowest body.
    let mut gaps: Vec<f64> = ((n - 1).saturating_sub(3).max(1)..n - 1)
        .filter_map(|i| gap_signal(seg, vol, i))
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median_gap = *gaps.get(gaps.len() / 2)?;
    let lowest = n.saturating_sub(5).max(1);
    // Each body's marrow, or the median of its own and the three above when it strays towards
    // disc signal (a lowest mask that took in pelvic tissue).
    let (typical_marrow, sigma) = marrow_level(seg)?;
    // On T2 the lowest discs mix bright (healthy) and dark (degenerated) ones, and their median
    // can read like marrow: the clearest of the three then sets the disc signal (a disc of
    // other signal is told by its length). Where even that reads like marrow (osteoporotic
    // marrow on CT) neither can be told from the other, and nothing is named.
    let clearest = gaps.iter().copied().max_by(|a, b| {
        (a - typical_marrow)
            .abs()
            .total_cmp(&(b - typical_marrow).abs())
    })?;
    let disc = [median_gap, clearest]
        .into_iter()
        .find(|d| contrasted(typical_marrow, *d, sigma))?;
    // A body whose marrow strays towards disc signal (lytic, gas-filled) cannot be read from
    // inside: the interface under it is unknown. The lowest body is judged on the marrow of
    // the bodies above instead: its mask can take in pelvic tissue beside S1.
    // Each walk reads its body's full-resolution mask (the sacrum's is the largest): one task
    // per body.
    let iface: Vec<(usize, Interface)> = (lowest..n)
        .into_par_iter()
        .map(|k| {
            let own = f64::from(seg.bodies[k].marrow.median);
            let strays = (own - typical_marrow).abs() > 0.3 * (typical_marrow - disc).abs();
            // Sacral marrow on T2 is fattier, brighter than the lumbar bodies' (and than their
            // discs): a homogeneous body whose own marrow still stands apart from the discs
            // reads from its own.
            let own_sigma = f64::from(seg.bodies[k].marrow.sigma);
            let readable = contrasted(own, disc, own_sigma) && own_sigma <= OWN_SPREAD_MAX * sigma;
            let f = match (strays, readable, k + 1 == n) {
                (false, _, _) | (true, true, false) => {
                    interface_below(seg, vol, k, disc, (own, sigma))
                }
                (true, _, true) => interface_below(seg, vol, k, disc, (typical_marrow, sigma)),
                (true, false, false) => Interface::Unknown,
            };
            (k, f)
        })
        .collect();
    sacral_level(n, &iface)
}

/// The sacrum's decision on the interfaces `iface` under the lowest of `n` bodies (body index,
/// interface below it): which body is S1 or L5, and why.
fn sacral_level(n: usize, iface: &[(usize, Interface)]) -> Option<(usize, &'static str, String)> {
    let at = |k: usize| iface.iter().find(|(j, _)| *j == k).map(|x| x.1);
    // A typical mobile disc's thickness: the discs found under the bodies above the lowest.
    let mut discs: Vec<f64> = iface
        .iter()
        .filter(|(k, _)| *k + 1 < n)
        .filter_map(|(_, f)| match f {
            Interface::Disc(l) => Some(*l),
            _ => None,
        })
        .collect();
    discs.sort_by(f64::total_cmp);
    let typical = discs.get(discs.len() / 2).copied();
    // Re-class a thin disc-like stretch as vestigial once the typical disc is known.
    let class = |f: Interface| match (f, typical) {
        (Interface::Disc(l), Some(t)) if l < VESTIGIAL_DISC_SHARE * t => Interface::Fused(l),
        _ => f,
    };
    let describe = |f: Interface| match f {
        Interface::Disc(l) => format!("a {l:.1} mm disc (with the endplates' cortex), then bone"),
        Interface::Fused(l) if l > 0.0 => format!(
            "a {l:.1} mm remnant (with its cortex; the discs above: {}), then bone",
            typical.map_or("—".into(), |t| format!("{t:.1} mm"))
        ),
        Interface::Fused(_) => "bone straight away".into(),
        Interface::Unknown => "neither disc then bone nor bone".into(),
    };
    let name = |k: usize| {
        if k + 1 == n {
            "the lowest body".to_string()
        } else {
            format!("the body {} above the lowest", n - 1 - k)
        }
    };
    for k in (n.saturating_sub(3).max(2)..n).rev() {
        let (Some(below), Some(above)) = (at(k).map(class), at(k - 1).map(class)) else {
            continue;
        };
        // The bodies this would drop as sacral segments, the lowest's own walk aside (a remnant
        // disc may lie under S2 or S3), stand on no mobile disc: a narrowed degenerated lumbar
        // disc (6 mm against 15 mm above, vb2_18's L4–L5) reads as a remnant, and L5 under it
        // stands on the L5–S1 disc.
        let sacral_below = (k + 1..n.saturating_sub(1))
            .all(|j| !matches!(at(j).map(class), Some(Interface::Disc(_))));
        if matches!(below, Interface::Fused(_))
            && matches!(above, Interface::Disc(_))
            && sacral_below
        {
            return Some((
                k,
                "S1",
                format!(
                    "sacrum recognised at {}: under it {} along its own axis (S1 fused to S2), above it {}",
                    name(k),
                    describe(below),
                    describe(above)
                ),
            ));
        }
    }
    // The lowest body is L5 only where the body above it stands on a mobile disc too: the
    // chain can run on into the sacrum, whose lowest segment may keep a remnant disc as long as
    // a lumbar one, and then the interface above it is fused or unreadable.
    let disc_above = matches!(at(n - 2).map(class), Some(Interface::Disc(_)));
    match at(n - 1).map(class) {
        Some(f @ Interface::Disc(_)) if disc_above => Some((
            n - 1,
            "L5",
            format!(
                "sacrum recognised below the lowest body: under it {} along its own axis, so it is L5",
                describe(f)
            ),
        )),
        _ => None,
    }
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
                    drop_forward_tail(seg);
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
    // The chain can run on into S2 and S3, whose central sections are body-like: they are no
    // vertebrae to grade (a sacral segment is shorter than a lumbar body and would read as a
    // fracture), so they leave the column once S1 is placed.
    let below_s1 =
        |ordinal: usize| at as i64 - (anchor_ordinal - ordinal as i64) >= LEVELS.len() as i64;
    let before = seg.bodies.len();
    seg.bodies.retain(|b| !below_s1(b.ordinal));
    seg.missing.retain(|m| !below_s1(m.ordinal));
    let sacral = before - seg.bodies.len();
    if sacral > 0 {
        seg.labelling.push(format!(
            "{sacral} sacral segment{} below S1 taken by the column: not measured",
            if sacral == 1 { "" } else { "s" }
        ));
    }
}

/// Forward turn, degrees, between two consecutive steps of the column at its caudal end beyond
/// which the lower step has left the column ([`drop_forward_tail`]).
const TAIL_FORWARD_TURN_DEG: f64 = 20.0;

/// How many of an unnamed column's caudal bodies [`drop_forward_tail`] looks at.
const TAIL_BODIES: usize = 3;

/// Shortest column [`drop_forward_tail`] applies to: a lumbar spine and what lies below it.
const TAIL_MIN_BODIES: usize = 6;

/// On a column left unnamed, removes the caudal bodies from the first of its last
/// [`TAIL_BODIES`] whose step from the body above turns forward (sagittally) by more than
/// [`TAIL_FORWARD_TURN_DEG`] from the step above it; they are not measured, and the labelling
/// notes say so.
///
/// Down the lumbar spine each step turns a little backwards (the lordosis: 0–19° per level on
/// 17 real T2 exams), from L5 to S1 by 16–35°. Below the sacral promontory what lies in front
/// of the sacrum (a bowel loop, the bladder, the uterus: grey and body-sized on T2) is the next
/// candidate straight down, and the chain took it on 10 of those exams: a 22–76° forward turn,
/// and a "vertebra" graded Genant 3 with a convex wall and 30 mm of retropulsion. A kyphotic
/// fracture turns the column forward too, but over the two steps around it and within the
/// column. Only where the sacrum was not recognised: there such a body is graded as a level;
/// where it was, the bodies below S1 have already left the column, and the pelvic ones kept
/// the lowest-body rules from firing on S1 (cutting them before the labels named two of those
/// exams wrongly, `docs/segmentation.md`).
fn drop_forward_tail(seg: &mut Segmentation) {
    let n = seg.bodies.len();
    let at: Vec<[f64; 3]> = seg
        .bodies
        .iter()
        .map(|b| seg.view.to_canonical(b.centroid_lps))
        .map(|c| std::array::from_fn(|k| c[k] * seg.view.spacing_mm[k]))
        .collect();
    let Some((k, turn)) = forward_tail(&at) else {
        return;
    };
    let cut = seg.bodies[k].ordinal;
    seg.bodies.truncate(k);
    seg.missing.retain(|m| m.ordinal < cut);
    let dropped = n - k;
    seg.labelling.push(format!(
        "{dropped} bod{} below the column's caudal end not measured: the column turns {:.0}° forward there, off its course into what lies in front of the sacrum",
        if dropped == 1 { "y" } else { "ies" },
        turn
    ));
}

/// The first of the last [`TAIL_BODIES`] of `at` (canonical mm, `[si, ap, lr]`, cranial first)
/// whose step turns forward by more than [`TAIL_FORWARD_TURN_DEG`], and that forward turn, degrees.
fn forward_tail(at: &[[f64; 3]]) -> Option<(usize, f64)> {
    let n = at.len();
    if n < TAIL_MIN_BODIES {
        return None;
    }
    let direction = |k: usize| (at[k][1] - at[k - 1][1]).atan2(at[k][0] - at[k - 1][0]);
    (n - TAIL_BODIES..n)
        .map(|k| (k, (direction(k) - direction(k - 1)).to_degrees()))
        .find(|(_, turn)| *turn < -TAIL_FORWARD_TURN_DEG)
        .map(|(k, turn)| (k, -turn))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lordotic column (steps turning 4° back per level, L5 to S1 30° more), and what follows.
    #[test]
    fn the_column_ends_where_its_caudal_end_turns_forward() {
        let column = |tail: &[(f64, f64)]| {
            let mut at = vec![[0.0, 0.0, 0.0]];
            let mut dir = -20.0f64;
            for k in 0..7 {
                dir += if k == 6 { 30.0 } else { 4.0 };
                let [si, ap, lr] = at[at.len() - 1];
                let r = dir.to_radians();
                at.push([si + 36.0 * r.cos(), ap + 36.0 * r.sin(), lr]);
            }
            let s1 = at[at.len() - 1];
            at.extend(
                tail.iter()
                    .map(|(dsi, dap)| [s1[0] + dsi, s1[1] + dap, s1[2]]),
            );
            forward_tail(&at).map(|(k, turn)| (k, turn.round()))
        };
        assert_eq!(column(&[]), None);
        // Straight down from S1, whose step ran 34° back: a 34° forward turn.
        assert_eq!(column(&[(36.0, 0.0)]), Some((8, 34.0)));
        // Down and forward into the pelvis, and a second body beyond it: both go.
        assert_eq!(
            column(&[(30.0, -25.0), (60.0, -30.0)]).map(|x| x.0),
            Some(8)
        );
        // On along the sacrum's backward course: kept.
        assert_eq!(column(&[(30.0, 17.0)]), None);
        // A forward kink higher up (a kyphotic fracture) is not the column's end.
        let mut kinked: Vec<[f64; 3]> = (0..9).map(|k| [36.0 * k as f64, 0.0, 0.0]).collect();
        kinked[4][1] = -20.0;
        kinked.iter_mut().skip(5).for_each(|p| p[1] = -20.0);
        assert_eq!(forward_tail(&kinked), None);
    }

    fn classes(s: &str) -> Vec<Class> {
        s.chars()
            .map(|c| match c {
                'B' => Class::Bone,
                'D' => Class::Disc,
                _ => Class::Other,
            })
            .collect()
    }

    #[test]
    fn interfaces_under_a_body() {
        // Walks at 0.5 mm, as read under phantom bodies (MR T1: L4 over its disc, S1 over its
        // vestigial S1–S2 disc; CT: S1 over a bony plate).
        let (mr, ct) = (MR_PLATE_MM, CT_PLATE_MM);
        use Interface::{Disc, Fused, Unknown};
        #[rustfmt::skip]
        let cases = [
            ("BBBBD.DDDDDDDDDDDDDDDDDDDDDDDDDDBBBBBBBBBBBBBBBBBBBBBBBBB", mr, Disc(14.0)),
            ("B.D.DDBBBBBBBBBBBBBBBBBBBBBBBBBBBB", mr, Disc(2.5)),
            ("........BBBBBBBBBBBBBBBBBBBBBBBBBBBB", ct, Fused(0.0)),
            // On MR a stretch that long is a degenerated (dark) disc, not a plate; an
            // endplate's cortex is.
            ("BB................BBBBBBBBBBBBBBBBBB", mr, Disc(8.0)),
            ("BB......BBBBBBBBBBBBBBBBBB", mr, Fused(0.0)),
            ("BBBBBBBBBBBBBBBBBBBBBBBBBBBB", mr, Fused(0.0)),
            // One noisy sample in the body's own marrow is not its surface.
            ("B.BBBBBBBBBDDDDDDDDDDDDDDDDDBBBBBBBB", mr, Disc(8.5)),
            // A disc and then soft tissue (the way in front of the sacrum): not an answer.
            ("BBBDDDDDDDDDDDDDDDD..................", mr, Unknown),
        ];
        for (walk, plate_mm, expected) in cases {
            assert_eq!(interface_of(&classes(walk), plate_mm), expected, "{walk}");
        }
    }

    /// The decision on the interfaces under the lowest bodies of an 8-body column (indices 3–7):
    /// which body is S1 or L5.
    #[test]
    fn the_sacrum_is_named_from_the_interfaces_under_the_lowest_bodies() {
        use Interface::{Disc, Fused, Unknown};
        let d = Disc(14.0);
        #[rustfmt::skip]
        let cases = [
            // S1 fused to S2, on a disc: S1 is the lowest.
            ([d, d, d, d, Fused(0.0)], Some((7usize, "S1"))),
            // S1 and S2 both taken by the chain.
            ([d, d, d, Fused(3.0), Unknown], Some((6, "S1"))),
            // A lowest body on a full disc under another on a disc: L5.
            ([d, d, d, d, d], Some((7, "L5"))),
            // S2 on a remnant disc, fused to S1 above it: S1 is the one above, not L5.
            ([d, d, d, Fused(0.0), d], Some((6, "S1"))),
            // A narrowed lumbar disc reads as a remnant two above the lowest, but the body under
            // it stands on a disc: not S1 (it was L4 over L5 and S1).
            ([d, d, Disc(6.0), d, Unknown], None),
            ([d, d, Fused(6.0), d, Unknown], None),
        ];
        for (under, expected) in cases {
            let iface: Vec<(usize, Interface)> = (3..8).zip(under).collect();
            let got = sacral_level(8, &iface).map(|(k, name, _)| (k, name));
            assert_eq!(got, expected, "{under:?}");
        }
    }

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
