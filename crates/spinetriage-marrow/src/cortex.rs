//! The cortex around a vertebral body: surveys of its wall on CT (an attenuation peak) and on
//! sagittal MR (a signal void between marrow and the tissue outside), and cortical destruction as
//! the longest arc of the wall without it.

use nalgebra::Vector3;
use spinetriage_measure::Level;

use spinetriage_volume::LpsPoint;

use crate::{frame, stats, to_lps, Channel};

/// Directions of the cortical survey around a body, 10° apart (0 = anterior, 90° = left).
const CORTEX_RAYS: usize = 36;

/// Arc without cortex that makes cortical destruction, degrees: three neighbouring directions,
/// about 15 mm of a lumbar body's wall; one or two can be a vessel's foramen or noise.
pub const CORTICAL_GAP_MIN_DEG: f64 = 30.0;

/// Heights of the CT survey: the centre and a quarter of the smallest height above and below it.
const CT_HEIGHT_SHARE: f64 = 0.25;

/// Heights of the MR survey: the centre and a fifth of the smallest height above and below it
/// (nearer the endplates the wall curves into them, and a sagittal read there grazes it).
const MR_HEIGHT_SHARE: f64 = 0.2;

/// Below this contrast between the cortical and the trabecular references, HU, the cortex cannot
/// be told from marrow and its destruction is not judged.
const CORTEX_MIN_CONTRAST_HU: f64 = 100.0;

/// Where a survey of a body's wall looks: the body's own frame, its wall as an ellipse of its
/// depth and width, and three heights about its centre (a share of its smallest height above and
/// below it: [`CT_HEIGHT_SHARE`], [`MR_HEIGHT_SHARE`]).
struct Rays {
    c: Vector3<f64>,
    up: Vector3<f64>,
    post: Vector3<f64>,
    left: Vector3<f64>,
    half_depth: f64,
    half_width: f64,
    h: f64,
}

impl Rays {
    fn of(l: &Level) -> Option<Rays> {
        let (c, up, post, left) = frame(l);
        let ms = &l.measurement;
        let h = [ms.anterior?, ms.middle?, ms.posterior?]
            .iter()
            .map(|x| x.height_mm)
            .fold(f64::INFINITY, f64::min);
        Some(Rays {
            c,
            up,
            post,
            left,
            half_depth: ms.depth_mm? / 2.0,
            half_width: ms.width_mm? / 2.0,
            h,
        })
    }

    /// Direction `k` (unit, in the body's axial plane) and the wall's distance along it, mm.
    fn direction(&self, k: usize) -> (Vector3<f64>, f64) {
        let th = (k as f64 * 360.0 / CORTEX_RAYS as f64).to_radians();
        let dir = -self.post * th.cos() + self.left * th.sin();
        let r = 1.0
            / ((th.cos() / self.half_depth).powi(2) + (th.sin() / self.half_width).powi(2)).sqrt();
        (dir, r)
    }

    /// The centre of height `j` (0, 1, 2: below, at and above the body's centre), `share` of the
    /// smallest height apart.
    fn origin(&self, j: usize, share: f64) -> Vector3<f64> {
        self.c + self.up * ((j as f64 - 1.0) * share * self.h)
    }
}

/// For each direction around the body in its own axial plane, at the three heights of [`Rays`],
/// the highest attenuation met on the way from the centre to 6 mm beyond the wall, averaged over
/// 1.5 mm. Every ray from inside the body leaves it through cortex, the wall's or an endplate's,
/// unless that cortex is gone.
pub(crate) fn cortex_peaks(l: &Level, ct: &Channel) -> Option<Vec<[f64; 3]>> {
    let rays = Rays::of(l)?;
    let step = 0.5;
    Some(
        (0..CORTEX_RAYS)
            .map(|k| {
                let (dir, r) = rays.direction(k);
                std::array::from_fn(|j| {
                    let p0 = rays.origin(j, CT_HEIGHT_SHARE);
                    let vals: Vec<f64> = (0..)
                        .map(|n| n as f64 * step)
                        .take_while(|t| *t <= r + 6.0)
                        .filter_map(|t| ct.at(to_lps(p0 + dir * t)))
                        .collect();
                    vals.windows(3)
                        .map(|w| w.iter().sum::<f64>() / 3.0)
                        .fold(f64::NAN, f64::max)
                })
            })
            .collect(),
    )
}

/// Cortical destruction from a body's cortex survey: a direction lacks cortex when its peak
/// stays below half-way from the trabecular (`trabecular_hu`) to the cortical (`cortex_hu`)
/// reference at two of its three heights. The posterior midline (±15°) is not judged: the
/// basivertebral veins leave the body there through a foramen in the cortex.
pub(crate) fn cortical_gap(
    peaks: &[[f64; 3]],
    trabecular_hu: f64,
    cortex_hu: f64,
    ev: &mut Vec<String>,
) -> (Option<bool>, Option<f64>) {
    let contrast = cortex_hu - trabecular_hu;
    if contrast < CORTEX_MIN_CONTRAST_HU {
        ev.push(format!(
            "CT cortex: not judged (cortical reference {cortex_hu:.0} HU is within {CORTEX_MIN_CONTRAST_HU:.0} HU of the trabecular {trabecular_hu:.0} HU)"
        ));
        return (None, None);
    }
    let cut = trabecular_hu + 0.5 * contrast;
    let lacks: Vec<bool> = peaks
        .iter()
        .enumerate()
        .map(|(k, p)| {
            !posterior_midline(k) && p.iter().filter(|x| x.is_finite() && **x < cut).count() >= 2
        })
        .collect();
    let (gap, side) = longest_arc(&lacks);
    let flag = gap >= CORTICAL_GAP_MIN_DEG;
    ev.push(format!(
        "CT cortex: {gap:.0}° of the wall without cortex{} (a direction lacks it when its peak stays below {cut:.0} HU, half-way from the trabecular {trabecular_hu:.0} HU to the cortical {cortex_hu:.0} HU reference, at two of three heights; cortical destruction from {CORTICAL_GAP_MIN_DEG:.0}°)",
        side.map_or(String::new(), |s| format!(", centred {s}"))
    ));
    (Some(flag), Some(gap))
}

/// Largest angle between a survey direction and a sagittal series' slice plane at which the
/// series resolves the wall, degrees: beyond it the wall crosses a 3–4 mm slice obliquely enough
/// (more than ≈ 2.5 mm of it in one slice) to fill the cortex's thin void with marrow and tissue.
pub const MR_WALL_PLANE_DEG: f64 = 45.0;

/// A body's wall read across on one MR series: per direction, the reads at three heights.
pub(crate) type WallSurvey = Vec<[Option<WallDip>; 3]>;

/// How far from the ellipse of the body's depth and width the mask's edge may lie, mm.
const WALL_SEARCH_MM: f64 = 6.0;

/// How far from the mask's edge the void is looked for, mm: a mask ends within a voxel or two of
/// the cortex.
const VOID_SEARCH_MM: f64 = 2.5;

/// A wall read across on MR: the signal at the void (the point near the body mask's edge that
/// lies deepest below the lower of its two sides), and the signal 2–6 mm inside and 2–5 mm
/// outside it (medians).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallDip {
    min: f64,
    inside: f64,
    outside: f64,
}

/// The smoothed signal outside a body's wall along one ray, every 0.5 mm from 0.5 mm beyond the
/// ellipse of the body's measured depth and width (NaN past the profile's end).
pub(crate) type Outward = [f32; OUTWARD_N];

/// Samples of [`Outward`]: 8 mm, 0.5 mm apart.
const OUTWARD_N: usize = 16;

/// A body's wall read on one MR series: per direction and height, the wall's void (where the
/// body's mask ends near the wall) and the signal outside the wall.
pub(crate) struct Survey {
    /// The void reads, for the cortex.
    pub dips: WallSurvey,
    /// What lies outside, for paravertebral soft tissue.
    pub outside: Vec<[Option<Outward>; 3]>,
}

/// Where soft tissue outside the wall is read, mm beyond the body mask's edge: past the cortex
/// and its partial volume (2 mm), to 6 mm, so that tissue following the wall's line for at least
/// 4 mm beyond its cortex counts.
const PARAVERTEBRAL_READ_MM: (f64, f64) = (2.0, 6.0);

/// Arc of the wall beside which paravertebral soft tissue makes the finding, degrees: as for
/// cortical destruction, three neighbouring directions.
pub const PARAVERTEBRAL_MIN_DEG: f64 = 30.0;

/// How much brighter than the tissue outside the reference levels' walls a body's STIR signal
/// must be for tissue like it to be followed outside the wall: tumour or oedema, not normal
/// marrow, which reads like muscle on STIR.
pub const PARAVERTEBRAL_MIN_CONTRAST: f64 = 2.0;

impl WallDip {
    /// The lower of the two sides: what the cortex must be darker than to be seen.
    fn flank(&self) -> f64 {
        self.inside.min(self.outside)
    }

    /// The void's depth below the darker side, as a share of it (`None` for a dark side at or
    /// below zero).
    fn depth(&self) -> Option<f64> {
        let f = self.flank();
        (f > 0.0).then(|| (f - self.min) / f)
    }
}

/// The outward samples of a read within [`PARAVERTEBRAL_READ_MM`] of the wall.
fn outward_read(d: &Outward) -> impl Iterator<Item = f64> + '_ {
    let (lo, hi) = PARAVERTEBRAL_READ_MM;
    d.iter()
        .enumerate()
        .filter(move |(k, _)| (lo..=hi).contains(&(0.5 * (*k as f64 + 1.0))))
        .map(|(_, v)| *v as f64)
}

/// Whether tissue at least as bright as `cut` fills a read from 2 to 6 mm beyond the wall.
fn extends(d: &Outward, cut: f64) -> bool {
    outward_read(d).all(|v| v.is_finite() && v >= cut)
}

/// Typical signal outside a level's wall in front (2–6 mm beyond it, median over its reads).
pub(crate) fn outside_level(dips: &[[Option<Outward>; 3]]) -> Option<f64> {
    let v: Vec<f64> = dips
        .iter()
        .enumerate()
        .filter(|(k, _)| front(*k))
        .flat_map(|(_, h)| h.iter().flatten())
        .flat_map(outward_read)
        .filter(|v| v.is_finite())
        .collect();
    stats(&v).map(|s| s.median)
}

/// Paravertebral (or prevertebral) soft tissue beside a body with abnormal marrow, on a
/// STIR-like series: tissue as bright as the body's own signal following its wall outwards, in
/// front of the body (behind it lie the canal's CSF and the epidural space, judged apart).
/// `body` is the body's interior STIR median, `outside` the reference levels' typical signal
/// outside their walls (`outside_level`), and `references` their surveys. A read extends when
/// its signal from 2 to 6 mm beyond the wall (the ellipse of the body's measured depth and width:
/// a mask may have taken in tissue like the marrow beyond it) stays above half-way from `outside` to
/// `body`; a direction extends at two of its three heights; the finding is an arc of at least
/// [`PARAVERTEBRAL_MIN_DEG`]. Judged only when the body is at least
/// [`PARAVERTEBRAL_MIN_CONTRAST`] times as bright as the tissue outside (normal marrow on STIR
/// reads like muscle: there is nothing to follow), and only when the reference levels' walls
/// extend at no more than [`MR_FALSE_LACK_MAX`] of their reads with the same threshold.
pub(crate) fn paravertebral(
    dips: &[[Option<Outward>; 3]],
    body: f64,
    outside: f64,
    references: &[&[[Option<Outward>; 3]]],
    ev: &mut Vec<String>,
) -> (Option<bool>, Option<f64>) {
    if body < PARAVERTEBRAL_MIN_CONTRAST * outside {
        ev.push(format!(
            "paravertebral soft tissue: not judged (body STIR {body:.0} is not {PARAVERTEBRAL_MIN_CONTRAST:.0}× the {outside:.0} outside the reference levels' walls: nothing to follow)"
        ));
        return (None, None);
    }
    let cut = 0.5 * (body + outside);
    let reads: Vec<&Outward> = references
        .iter()
        .flat_map(|r| r.iter().enumerate().filter(|(k, _)| front(*k)))
        .flat_map(|(_, h)| h.iter().flatten())
        .collect();
    let false_share =
        reads.iter().filter(|d| extends(d, cut)).count() as f64 / reads.len().max(1) as f64;
    if reads.is_empty() || false_share > MR_FALSE_LACK_MAX {
        ev.push(format!(
            "paravertebral soft tissue: not judged ({:.0} % of the reference levels' wall reads ({}) show tissue above {cut:.0} outside; at most {:.0} % for the series to be trusted)",
            100.0 * false_share,
            reads.len(),
            100.0 * MR_FALSE_LACK_MAX
        ));
        return (None, None);
    }
    let mut judged = 0;
    let ext: Vec<bool> = dips
        .iter()
        .enumerate()
        .map(|(k, h)| {
            if !front(k) {
                return false;
            }
            let r: Vec<bool> = h.iter().flatten().map(|d| extends(d, cut)).collect();
            if r.len() >= 2 {
                judged += 1;
            }
            r.iter().filter(|x| **x).count() >= 2
        })
        .collect();
    if judged == 0 {
        ev.push(
            "paravertebral soft tissue: not judged (no direction of the wall read at two heights)"
                .into(),
        );
        return (None, None);
    }
    let (arc, side) = longest_arc(&ext);
    ev.push(format!(
        "paravertebral soft tissue: {arc:.0}° of the wall with tissue above {cut:.0} (half-way from {outside:.0} outside the reference levels' walls to the body's {body:.0}) from 2 to 6 mm beyond it{} ({judged} directions judged, within {MR_WALL_PLANE_DEG:.0}° of the slices; finding from {PARAVERTEBRAL_MIN_DEG:.0}°)",
        side.map_or(String::new(), |s| format!(", centred {s}"))
    ));
    (Some(arc >= PARAVERTEBRAL_MIN_DEG), Some(arc))
}

/// The plane of a series' finest sampling: the unit normal of the grid planes across its
/// coarsest axis (the slices of a sagittal stack), or, for a near-isotropic grid (a stack
/// resampled to cubes), of the planes across the axis closest to the patient's left-right axis:
/// a spine's MR is acquired sagittally, and resampling does not add the resolution it lacked.
fn slice_axis(vol: &spinetriage_volume::Volume) -> usize {
    let sp = vol.grid.spacing_mm();
    let (coarse, fine) = (
        (0..3).max_by(|a, b| sp[*a].total_cmp(&sp[*b])).unwrap_or(2),
        sp.iter().copied().fold(f64::INFINITY, f64::min),
    );
    if sp[coarse] >= 1.5 * fine {
        return coarse;
    }
    (0..3)
        .max_by(|a, b| {
            let x = |c: usize| vol.grid.direction(c).x.abs();
            x(*a).total_cmp(&x(*b))
        })
        .unwrap_or(2)
}

/// For each direction around the body (as [`cortex_peaks`]) that lies within
/// [`MR_WALL_PLANE_DEG`] of the series' slice plane, and at three heights (the centre and a fifth
/// of the smallest height above and below it: nearer the endplates the wall curves into them),
/// the wall read across within the nearest slice. The ray is moved onto that slice and turned
/// into its plane (through-plane interpolation would blend the wall of two slices 3–4 mm apart);
/// three parallel rays 1 mm apart along the body's axis are averaged. For the void, the wall is
/// where the body's mask (`inside`) ends along the ray: the body's section is no ellipse, and a
/// wall without cortex has nothing else to find it by; the signal outside is read beyond the
/// ellipse of the body's measured depth and width, which the mask may overrun. `None` for a
/// direction the series cannot resolve, the posterior midline, a ray leaving the image, or (the
/// void only) a mask that does not end near the wall.
pub(crate) fn mr_wall_survey(
    l: &Level,
    ch: &Channel,
    inside: &dyn Fn(LpsPoint) -> bool,
) -> Option<Survey> {
    let rays = Rays::of(l)?;
    let grid = &ch.vol.grid;
    let axis = slice_axis(ch.vol);
    let (b, c) = ((axis + 1) % 3, (axis + 2) % 3);
    let normal = grid.direction(b).cross(&grid.direction(c)).normalize();
    let in_plane = |d: Vector3<f64>| {
        let p = d - normal * d.dot(&normal);
        (p.norm() > 1e-6).then(|| p.normalize())
    };
    let up = in_plane(rays.up)?;
    let max_off = MR_WALL_PLANE_DEG.to_radians().sin();
    let step = 0.5;
    // Profiles run from `reach` inside the ellipse to `reach` outside it: room for the mask's
    // edge to lie `WALL_SEARCH_MM` either way, the void within `VOID_SEARCH_MM` of it, and the
    // outer side's 5 mm beyond.
    let reach = WALL_SEARCH_MM + VOID_SEARCH_MM + 6.5;
    let n = (2.0 * reach / step) as usize + 1;
    let t = |s: usize| s as f64 * step - reach;
    // Per direction and height: the void (if the mask ends near the wall) and what lies outside.
    type Read = Option<(Option<WallDip>, Outward)>;
    let reads: Vec<[Read; 3]> = (0..CORTEX_RAYS)
        .map(|k| {
            let (dir, r) = rays.direction(k);
            if posterior_midline(k) || dir.dot(&normal).abs() > max_off {
                return [None; 3];
            }
            let Some(d) = in_plane(dir) else {
                return [None; 3];
            };
            std::array::from_fn(|j| {
                let origin = rays.origin(j, MR_HEIGHT_SHARE);
                let mut q = grid.to_index(to_lps(origin + dir * r)).0;
                q[axis] = q[axis].round();
                let wall = grid.to_lps(spinetriage_volume::IndexPoint(q)).0.coords;
                let point = |s: usize| to_lps(wall + d * t(s));
                let mut profile = vec![0.0; n];
                for o in [-1.0, 0.0, 1.0] {
                    for (s, acc) in profile.iter_mut().enumerate() {
                        *acc += ch.at(to_lps(point(s).0.coords + up * o))? / 3.0;
                    }
                }
                let smooth: Vec<f64> = profile
                    .windows(3)
                    .map(|w| w.iter().sum::<f64>() / 3.0)
                    .collect();
                // smooth[s] is centred on the profile's point s + 1.
                let at = |s: usize| t(s + 1);
                let side = |from: f64, lo: f64, hi: f64| {
                    let v: Vec<f64> = smooth
                        .iter()
                        .enumerate()
                        .filter(|(s, _)| (lo..=hi).contains(&(at(*s) - from)))
                        .map(|(_, v)| *v)
                        .collect();
                    stats(&v).map(|s| s.median)
                };
                let outward = std::array::from_fn(|k| {
                    let from = 0.5 * (k as f64 + 1.0);
                    smooth
                        .iter()
                        .enumerate()
                        .find(|(s, _)| at(*s) >= from - 1e-9)
                        .map_or(f32::NAN, |(_, v)| *v as f32)
                });
                // The mask's edge: the first point outside it, going out from inside.
                let first_out = (0..n).find(|s| !inside(point(*s)));
                let edge = first_out
                    .filter(|f| *f > 0)
                    .map(|f| t(f) - step / 2.0)
                    .filter(|e| e.abs() <= WALL_SEARCH_MM);
                let Some(edge) = edge else {
                    return Some((None, outward));
                };
                // The void: the point near the mask's edge lying deepest below the lower of
                // its two sides (a wall without cortex is a plain step, with no such point);
                // or near the ellipse, where the mask took in tissue like the marrow beyond an
                // intact wall (a paravertebral mass against it).
                let dip = smooth
                    .iter()
                    .enumerate()
                    .filter(|(s, _)| {
                        (at(*s) - edge).abs() <= VOID_SEARCH_MM || at(*s).abs() <= VOID_SEARCH_MM
                    })
                    .filter_map(|(s, v)| {
                        Some(WallDip {
                            min: *v,
                            inside: side(at(s), -6.0, -2.0)?,
                            outside: side(at(s), 2.0, 5.0)?,
                        })
                    })
                    .max_by(|x, y| {
                        let k = |d: &WallDip| d.depth().unwrap_or(f64::NEG_INFINITY);
                        k(x).total_cmp(&k(y))
                    });
                Some((dip, outward))
            })
        })
        .collect();
    Some(Survey {
        dips: reads
            .iter()
            .map(|h| h.map(|r| r.and_then(|r| r.0)))
            .collect(),
        outside: reads.iter().map(|h| h.map(|r| r.map(|r| r.1))).collect(),
    })
}

/// Per-level typical reading of the wall on one series, from a level's survey: the darker side's
/// signal and the void's relative depth below it (medians over its reads), and the share of its
/// reads whose void is shallower than [`MR_VOID_SHARE`] of that median (reads that would say
/// "no cortex" on a wall that has it, where the level is intact).
pub(crate) fn wall_summary(dips: &[[Option<WallDip>; 3]]) -> Option<[f64; 3]> {
    let all: Vec<&WallDip> = dips.iter().flatten().flatten().collect();
    let flank: Vec<f64> = all.iter().map(|d| d.flank()).collect();
    let depth: Vec<f64> = all.iter().filter_map(|d| d.depth()).collect();
    let median = stats(&depth)?.median;
    let shallow = depth
        .iter()
        .filter(|x| **x < MR_VOID_SHARE * median)
        .count();
    Some([
        stats(&flank)?.median,
        median,
        shallow as f64 / depth.len() as f64,
    ])
}

/// One series' survey of a body with that series' references (at the unaffected levels).
pub(crate) struct MrWall<'a> {
    /// Series role ("stir", "t1", or the shape series').
    pub role: &'static str,
    /// The survey.
    pub dips: &'a [[Option<WallDip>; 3]],
    /// Typical signal of the darker side.
    pub flank: f64,
    /// Typical relative depth of the void.
    pub depth: f64,
    /// Typical share of reads without a void on intact walls.
    pub false_lack: f64,
}

/// Smallest typical depth of the cortex's void at the reference levels, as a share of the darker
/// side, for a series to be trusted to find the cortex gone: a void much shallower is barely
/// resolved (a thin cortex, partial volume), and the share of it that tells cortex from none
/// drowns in noise and in dark tissue outside. The phantoms' STIR and T1 read 0.31–0.38; real T2
/// exams 0.13–0.27.
pub const MR_MIN_VOID_DEPTH: f64 = 0.25;

/// Largest share of an intact wall's reads without a void (at the reference levels) for which a
/// series is trusted to find the wall's cortex gone: with it, three neighbouring directions, each
/// lacking at two of three heights, are about 10⁻⁵ likely on an intact wall. A real T2 of
/// normal bodies reads 10–20 % (a thin cortex, dark vessels outside); the phantoms' STIR and T1
/// read none.
pub const MR_FALSE_LACK_MAX: f64 = 0.05;

/// Share of the reference levels' void depth from which a read shows cortex. The void of an
/// intact wall reads 0.4–0.6 of it beside STIR-bright, T1-dark tumour (the blur mixes the bright
/// side into it) and about 1 beside normal marrow; a wall without cortex reads a few hundredths
/// (noise below a plain step), up to ≈ 0.3 where the read grazes the gap's edge.
pub const MR_VOID_SHARE: f64 = 0.3;

/// Cortical destruction from sagittal MR surveys of a body. A read of the wall on a series is
/// judged when its darker side is at least half as bright as at the reference levels (a void can
/// stand out there: not in sclerotic bone, nor against dark fat or a flow void outside); it shows
/// cortex when its void is at least [`MR_VOID_SHARE`] of the reference depth. A read lacks cortex
/// when some series judged it and none showed cortex; a direction lacks it at two of its three
/// heights, and counts as judged when two heights were. The longest run of lacking directions
/// is the gap, as on CT.
pub(crate) fn mr_cortical_gap(
    walls: &[MrWall],
    ev: &mut Vec<String>,
) -> (Option<bool>, Option<f64>) {
    let (walls, untrusted): (Vec<&MrWall>, Vec<&MrWall>) = walls
        .iter()
        .partition(|w| w.depth >= MR_MIN_VOID_DEPTH && w.false_lack <= MR_FALSE_LACK_MAX);
    for w in &untrusted {
        ev.push(format!(
            "MR cortex: {} not used (at the reference levels its void reads {:.0} % below the darker side, and {:.0} % of the intact walls' reads show none; at least {:.0} % and at most {:.0} % for the series to be trusted)",
            w.role,
            100.0 * w.depth,
            100.0 * w.false_lack,
            100.0 * MR_MIN_VOID_DEPTH,
            100.0 * MR_FALSE_LACK_MAX
        ));
    }
    let Some(n) = walls.first().map(|w| w.dips.len()) else {
        return (None, None);
    };
    let mut judged_dirs = 0;
    let lacks: Vec<bool> = (0..n)
        .map(|k| {
            let reads: Vec<Option<bool>> = (0..3)
                .map(|j| {
                    let mut judged = false;
                    for w in &walls {
                        let Some(d) = w.dips.get(k).and_then(|h| h[j]) else {
                            continue;
                        };
                        if d.flank() < 0.5 * w.flank {
                            continue;
                        }
                        judged = true;
                        if d.depth().is_some_and(|x| x >= MR_VOID_SHARE * w.depth) {
                            return Some(false);
                        }
                    }
                    judged.then_some(true)
                })
                .collect();
            if reads.iter().flatten().count() >= 2 {
                judged_dirs += 1;
            }
            reads.iter().filter(|r| **r == Some(true)).count() >= 2
        })
        .collect();
    let roles: Vec<&str> = walls.iter().map(|w| w.role).collect();
    if judged_dirs == 0 {
        ev.push(format!(
            "MR cortex: not judged ({}: no direction within {MR_WALL_PLANE_DEG:.0}° of the slices with tissue bright enough on both sides of the wall for its void to show)",
            roles.join(", ")
        ));
        return (None, None);
    }
    let (gap, side) = longest_arc(&lacks);
    let flag = gap >= CORTICAL_GAP_MIN_DEG;
    ev.push(format!(
        "MR cortex ({}): {gap:.0}° of the wall without its signal void{} ({judged_dirs} directions judged, within {MR_WALL_PLANE_DEG:.0}° of the slices; a read lacks cortex when on no series its void reaches {:.0} % of the reference levels' depth; cortical destruction from {CORTICAL_GAP_MIN_DEG:.0}°)",
        roles.join(", "),
        side.map_or(String::new(), |s| format!(", centred {s}")),
        100.0 * MR_VOID_SHARE
    ));
    (Some(flag), Some(gap))
}

/// Whether direction `k` points into the front half of the body (anterior to its centre).
fn front(k: usize) -> bool {
    (k as f64 * 360.0 / CORTEX_RAYS as f64).to_radians().cos() > 1e-9
}

/// Whether direction `k` lies within 15° of the posterior midline, where the basivertebral veins
/// leave the body through a foramen in the cortex: no survey judges it.
fn posterior_midline(k: usize) -> bool {
    (k as f64 * 360.0 / CORTEX_RAYS as f64 - 180.0).abs() <= 15.0
}

/// The longest run of neighbouring directions lacking cortex around the circle, degrees, and the
/// side of the body it is centred on (`None` when no direction lacks it).
fn longest_arc(lacks: &[bool]) -> (f64, Option<&'static str>) {
    let n = lacks.len();
    let deg = 360.0 / n.max(1) as f64;
    let (mut best, mut best_end, mut run) = (0usize, 0usize, 0usize);
    for k in 0..2 * n {
        if lacks[k % n] {
            run += 1;
            if run > best {
                best = run.min(n);
                best_end = k % n;
            }
        } else {
            run = 0;
        }
    }
    let centre_deg = (best_end as f64 - (best as f64 - 1.0) / 2.0) * deg;
    const SIDES: [&str; 8] = [
        "anterior",
        "anterolateral left",
        "left",
        "posterolateral left",
        "posterior",
        "posterolateral right",
        "right",
        "anterolateral right",
    ];
    let side = SIDES[((centre_deg.rem_euclid(360.0) + 22.5) / 45.0) as usize % 8];
    (best as f64 * deg, (best > 0).then_some(side))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outward reads of a wall read in front only (as on sagittal MR): `bright_mm` of tissue at
    /// 600 beyond the wall in the given directions, then (and elsewhere) 120.
    fn outside(bright: &[usize], bright_mm: f64) -> Vec<[Option<Outward>; 3]> {
        (0..CORTEX_RAYS)
            .map(|k| {
                if !front(k) {
                    return [None; 3];
                }
                let mm = if bright.contains(&k) { bright_mm } else { 0.0 };
                let read: Outward = std::array::from_fn(|s| {
                    if 0.5 * (s as f64 + 1.0) <= mm {
                        600.0
                    } else {
                        120.0
                    }
                });
                [Some(read); 3]
            })
            .collect()
    }

    #[test]
    fn tissue_like_the_body_beyond_its_wall_is_paravertebral_only_over_an_arc() {
        let clean = outside(&[], 0.0);
        let refs: Vec<&[[Option<Outward>; 3]]> = vec![&clean, &clean];
        let mut ev = Vec::new();
        // Three directions (20°, 30°, 40° left of anterior) with 8 mm of it: 30°.
        let (flag, arc) = paravertebral(&outside(&[2, 3, 4], 8.0), 600.0, 120.0, &refs, &mut ev);
        assert_eq!((flag, arc), (Some(true), Some(30.0)), "{ev:?}");
        // Two directions are not enough, nor is tissue ending 4 mm beyond the wall.
        let (flag, _) = paravertebral(&outside(&[2, 3], 8.0), 600.0, 120.0, &refs, &mut ev);
        assert_eq!(flag, Some(false));
        let (flag, _) = paravertebral(&outside(&[2, 3, 4], 4.0), 600.0, 120.0, &refs, &mut ev);
        assert_eq!(flag, Some(false));
        // A body that reads like the tissue outside has nothing to follow.
        let (flag, _) = paravertebral(&outside(&[2, 3, 4], 8.0), 200.0, 120.0, &refs, &mut ev);
        assert_eq!(flag, None);
        // Reference walls with bright tissue outside (vessels, fluid) make the series untrusted.
        let noisy = outside(&[0, 1, 2], 8.0);
        let refs: Vec<&[[Option<Outward>; 3]]> = vec![&noisy, &clean];
        let (flag, _) = paravertebral(&outside(&[2, 3, 4], 8.0), 600.0, 120.0, &refs, &mut ev);
        assert_eq!(flag, None, "{ev:?}");
    }

    /// A survey with cortex (600 HU) everywhere but the given directions (60 HU at two heights).
    fn survey(lacking: &[usize]) -> Vec<[f64; 3]> {
        (0..CORTEX_RAYS)
            .map(|k| {
                if lacking.contains(&k) {
                    [60.0, 600.0, 60.0]
                } else {
                    [600.0; 3]
                }
            })
            .collect()
    }

    #[test]
    fn an_arc_without_cortex_is_measured_and_placed() {
        let mut ev = Vec::new();
        // 30° to 60° from anterior towards the left: four directions, 40°.
        let (flag, gap) = cortical_gap(&survey(&[3, 4, 5, 6]), 170.0, 600.0, &mut ev);
        assert_eq!((flag, gap), (Some(true), Some(40.0)));
        assert!(ev[0].contains("anterolateral left"), "{ev:?}");
        // Across anterior (350°, 0°, 10°): the circle wraps.
        let (flag, gap) = cortical_gap(&survey(&[35, 0, 1]), 170.0, 600.0, &mut ev);
        assert_eq!((flag, gap), (Some(true), Some(30.0)));
        assert!(ev[1].contains("centred anterior "), "{ev:?}");
    }

    #[test]
    fn short_gaps_the_basivertebral_foramen_and_low_contrast_are_not_destruction() {
        let mut ev = Vec::new();
        assert_eq!(
            cortical_gap(&survey(&[10, 11]), 170.0, 600.0, &mut ev),
            (Some(false), Some(20.0))
        );
        // The posterior midline (170°–190°) is not judged.
        assert_eq!(
            cortical_gap(&survey(&[17, 18, 19]), 170.0, 600.0, &mut ev),
            (Some(false), Some(0.0))
        );
        // One height alone lacking is not enough.
        let mut one: Vec<[f64; 3]> = survey(&[]);
        for p in one.iter_mut().take(8).skip(3) {
            p[0] = 60.0;
        }
        assert_eq!(
            cortical_gap(&one, 170.0, 600.0, &mut ev),
            (Some(false), Some(0.0))
        );
        // Cortex and marrow references too close to tell apart.
        assert_eq!(
            cortical_gap(&survey(&[3, 4, 5]), 170.0, 240.0, &mut ev),
            (None, None)
        );
    }

    /// An MR survey of the anterior arc (330°–30°, as a sagittal series resolves it): a void
    /// 35 % deep beside marrow at 100 everywhere but the given directions, where the wall is a
    /// plain step (tumour at 600 inside, muscle at 120 outside).
    fn mr_survey(lacking: &[usize]) -> WallSurvey {
        (0..CORTEX_RAYS)
            .map(|k| {
                if !(k <= 3 || k >= 33) {
                    return [None; 3];
                }
                let d = if lacking.contains(&k) {
                    WallDip {
                        min: 118.0,
                        inside: 600.0,
                        outside: 120.0,
                    }
                } else {
                    WallDip {
                        min: 65.0,
                        inside: 100.0,
                        outside: 110.0,
                    }
                };
                [Some(d); 3]
            })
            .collect()
    }

    fn wall<'a>(role: &'static str, dips: &'a WallSurvey) -> MrWall<'a> {
        let [flank, depth, false_lack] = wall_summary(&mr_survey(&[])).expect("summary");
        MrWall {
            role,
            dips,
            flank,
            depth,
            false_lack,
        }
    }

    #[test]
    fn an_mr_arc_without_the_cortical_void_is_destruction() {
        let mut ev = Vec::new();
        // 10°–30° towards the left: three directions, 30°.
        let s = mr_survey(&[1, 2, 3]);
        assert_eq!(
            mr_cortical_gap(&[wall("stir", &s)], &mut ev),
            (Some(true), Some(30.0))
        );
        assert!(ev[0].contains("centred anterior"), "{ev:?}");
        // Two directions are a foramen or noise.
        let s = mr_survey(&[1, 2]);
        assert_eq!(
            mr_cortical_gap(&[wall("stir", &s)], &mut ev),
            (Some(false), Some(20.0))
        );
    }

    #[test]
    fn any_series_that_shows_the_void_keeps_the_cortex() {
        let mut ev = Vec::new();
        let gap = mr_survey(&[1, 2, 3]);
        let intact = mr_survey(&[]);
        assert_eq!(
            mr_cortical_gap(&[wall("stir", &gap), wall("t1", &intact)], &mut ev),
            (Some(false), Some(0.0))
        );
        // A read whose darker side is under half the reference's (dark fat or a flow void
        // outside, sclerotic bone inside) is not judged: the other series decides.
        let mut dark = mr_survey(&[]);
        for d in dark.iter_mut().flatten().flatten() {
            d.outside = 20.0;
            d.min = 19.0;
        }
        assert_eq!(
            mr_cortical_gap(&[wall("t1", &dark), wall("stir", &gap)], &mut ev),
            (Some(true), Some(30.0))
        );
        // Nothing judged anywhere: unknown, and said so.
        ev.clear();
        assert_eq!(mr_cortical_gap(&[wall("t1", &dark)], &mut ev), (None, None));
        assert!(ev[0].contains("not judged"), "{ev:?}");
    }

    #[test]
    fn a_series_with_a_shallow_or_unreliable_void_is_not_trusted() {
        let mut ev = Vec::new();
        let gap = mr_survey(&[1, 2, 3]);
        let mut shallow = wall("t2", &gap);
        shallow.depth = 0.13;
        assert_eq!(mr_cortical_gap(&[shallow], &mut ev), (None, None));
        assert!(ev[0].contains("t2 not used"), "{ev:?}");
        let mut noisy = wall("t2", &gap);
        noisy.false_lack = 0.12;
        assert_eq!(mr_cortical_gap(&[noisy], &mut ev), (None, None));
        // The references of an intact survey: its void's depth, and no read without one.
        let [flank, depth, false_lack] = wall_summary(&mr_survey(&[])).expect("summary");
        assert_eq!(flank, 100.0);
        assert!((depth - 0.35).abs() < 1e-9, "{depth}");
        assert_eq!(false_lack, 0.0);
    }
}
