//! The anatomical model: a curved thoraco-lumbar spine with sacrum, in patient LPS millimetres.
//!
//! Every vertebra has a local frame (u: cranial along the column, v: posterior, w: left). Its body is
//! an elliptic cylinder in (v, w) between an inferior and a superior endplate surface; fractures
//! depress those surfaces, so every height in the truth is an exact function of the shape.

use nalgebra::{Rotation3, Vector3};
use serde::{Deserialize, Serialize};

/// Fracture morphology (Genant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FractureKind {
    /// Anterior height loss (anterior wedge).
    Wedge,
    /// Central depression of both endplates.
    Biconcave,
    /// Uniform loss of the whole body height.
    Crush,
    /// Lateral wedge: the left side lower than the right.
    Lateral,
}

/// A fracture: its morphology and how much height it takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fracture {
    /// Morphology.
    pub kind: FractureKind,
    /// Target loss in %: height loss for wedge, biconcave and crush; lateral-wedge % for lateral.
    pub loss_pct: f64,
}

/// Marrow oedema pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oedema {
    /// Normal fatty marrow.
    #[default]
    None,
    /// A band under the superior endplate (acute fracture).
    Band,
    /// The whole body.
    Diffuse,
}

/// A structure of a vertebra's posterior elements (neural arch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchPart {
    /// Left pedicle.
    LeftPedicle,
    /// Right pedicle.
    RightPedicle,
    /// Laminae (the arch behind the canal).
    Lamina,
    /// Spinous process.
    Spinous,
    /// Left transverse process.
    LeftTransverse,
    /// Right transverse process.
    RightTransverse,
}

/// Which posterior elements carry abnormal (tumour-like) signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// None.
    #[default]
    None,
    /// Left pedicle.
    Left,
    /// Right pedicle.
    Right,
    /// Both pedicles and the posterior arch.
    Both,
}

/// Tumour marrow pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tumour {
    /// None.
    #[default]
    None,
    /// Lytic marrow replacement (CT soft-tissue attenuation, T1 at or below disc).
    Lytic,
    /// Sclerotic marrow replacement (CT dense, dark on every MR sequence).
    Sclerotic,
}

/// What to put at one level.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LevelSpec {
    /// Fracture, if any.
    pub fracture: Option<Fracture>,
    /// Marrow oedema.
    pub oedema: Oedema,
    /// Tumour marrow replacement.
    pub tumour: Tumour,
    /// Posterior-element involvement.
    pub posterior: Side,
    /// Intravertebral cleft (fluid on MR, gas on CT) under the superior endplate.
    pub cleft: bool,
    /// Retropulsion of the postero-superior wall into the canal, mm.
    pub retropulsion_mm: f64,
    /// Convex bulge of the whole posterior wall (tumour expansion), mm.
    pub convex_posterior_mm: f64,
    /// Ventral epidural soft tissue (tumour extension) behind the body, midline thickness, mm:
    /// it fills the anterior canal over the body's height, tapering to the sides, and effaces
    /// the dural sac and the cord in front.
    pub epidural_mm: f64,
    /// Arc of the body's outer cortex destroyed (replaced by the marrow tissue), degrees, centred
    /// antero-laterally on the left (45° from anterior), over the middle 60 % of the height.
    pub cortical_gap_deg: f64,
    /// Paravertebral soft tissue (tumour extension) outside the body's wall, greatest
    /// thickness, mm: an arc of [`PARAVERTEBRAL_HALF_ARC_DEG`] either side of
    /// [`PARAVERTEBRAL_CENTRE_DEG`], tapering to its ends, over the middle 60 % of the height.
    pub paravertebral_mm: f64,
}

/// Centre of the destroyed cortical arc: degrees from anterior towards the left.
pub const CORTICAL_GAP_CENTRE_DEG: f64 = 45.0;

/// Centre of the paravertebral soft tissue: degrees from anterior towards the left
/// (anterolateral, where a mass breaking through the wall lies beside the psoas).
pub const PARAVERTEBRAL_CENTRE_DEG: f64 = 20.0;

/// Half the arc the paravertebral soft tissue covers, degrees.
pub const PARAVERTEBRAL_HALF_ARC_DEG: f64 = 50.0;

/// Tissue classes; intensities per modality live in [`crate::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tissue {
    /// Outside the patient.
    Air,
    /// Subcutaneous fat.
    Fat,
    /// Muscle and abdominal soft tissue.
    Muscle,
    /// Cerebrospinal fluid.
    Csf,
    /// Spinal cord.
    Cord,
    /// Epidural fat around the dural sac.
    EpiduralFat,
    /// Nucleus pulposus.
    DiscNucleus,
    /// Annulus fibrosus.
    DiscAnnulus,
    /// Cortical bone and endplates.
    Cortex,
    /// Normal fatty marrow.
    Marrow,
    /// Oedematous marrow.
    Oedema,
    /// Lytic tumour.
    TumourLytic,
    /// Sclerotic tumour.
    TumourSclerotic,
    /// Intravertebral cleft (fluid on MR, gas on CT).
    Cleft,
    /// Marrow of an involved posterior element.
    PeInvolved,
}

/// Number of tissue classes.
pub const TISSUES: usize = 15;

/// Nominal anatomy of one level, from published morphometry (Panjabi 1991/1992 thoracic and lumbar
/// vertebral dimensions; rounded).
#[derive(Debug, Clone, Copy)]
struct Anatomy {
    name: &'static str,
    /// Body height at mid-depth, mm.
    height: f64,
    /// AP depth, mm.
    depth: f64,
    /// Width, mm.
    width: f64,
    /// Disc below, mm (0: fused).
    disc_below: f64,
    /// Physiologic anterior/posterior height ratio.
    ha_hp: f64,
    /// Sagittal tangent angle at the body centre, degrees, before the curvature factor.
    tangent_deg: f64,
}

const ANATOMY: &[Anatomy] = &[
    a("T1", 14.5, 16.0, 26.0, 3.5, 0.96, -25.0),
    a("T2", 15.5, 17.0, 27.0, 3.5, 0.95, -22.0),
    a("T3", 16.0, 18.0, 28.0, 3.5, 0.94, -18.0),
    a("T4", 16.5, 19.5, 29.0, 3.5, 0.93, -15.0),
    a("T5", 17.0, 21.0, 30.0, 4.0, 0.92, -11.0),
    a("T6", 17.5, 22.5, 31.0, 4.0, 0.92, -7.0),
    a("T7", 18.0, 24.0, 32.0, 4.0, 0.92, -3.0),
    a("T8", 19.0, 25.0, 33.5, 4.5, 0.92, 1.0),
    a("T9", 19.5, 26.5, 35.0, 4.5, 0.92, 5.0),
    a("T10", 20.5, 28.0, 37.0, 5.0, 0.93, 9.0),
    a("T11", 21.5, 29.5, 40.0, 6.0, 0.92, 12.0),
    a("T12", 23.0, 31.0, 42.0, 7.0, 0.92, 14.0),
    a("L1", 24.5, 32.5, 44.0, 8.0, 0.93, 12.0),
    a("L2", 25.5, 34.0, 46.0, 9.0, 0.96, 5.0),
    a("L3", 26.0, 35.0, 48.0, 10.0, 1.0, -5.0),
    a("L4", 26.0, 35.0, 50.0, 10.5, 1.02, -15.0),
    a("L5", 25.5, 35.0, 51.0, 11.0, 1.08, -26.0),
    a("S1", 28.0, 38.0, 50.0, 0.0, 1.0, -38.0),
    a("S2", 22.0, 30.0, 40.0, 0.0, 1.0, -50.0),
    a("S3", 18.0, 24.0, 32.0, 0.0, 1.0, -62.0),
];

const fn a(
    name: &'static str,
    height: f64,
    depth: f64,
    width: f64,
    disc_below: f64,
    ha_hp: f64,
    tangent_deg: f64,
) -> Anatomy {
    Anatomy {
        name,
        height,
        depth,
        width,
        disc_below,
        ha_hp,
        tangent_deg,
    }
}

/// Names of the levels the generator can build, top to bottom.
pub fn level_names() -> impl Iterator<Item = &'static str> {
    ANATOMY.iter().map(|a| a.name)
}

/// Global shape parameters of the spine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SpineParams {
    /// Highest level generated (T1..T12; the column always ends with S1–S3).
    pub top_level: String,
    /// Scale of the sagittal curves (lordosis and kyphosis); 0 is a straight column.
    pub curvature: f64,
    /// Lateral (scoliotic) tangent amplitude, degrees.
    pub scoliosis_deg: f64,
    /// Whole-spine rotation about the L (x), P (y) and S (z) axes, degrees, applied in that order.
    pub rotation_deg: [f64; 3],
    /// LPS position of the L2 body centre before rotation, mm.
    pub l2_centre_lps_mm: [f64; 3],
    /// Trabecular bone attenuation, HU.
    pub trabecular_hu: f64,
}

impl Default for SpineParams {
    fn default() -> Self {
        SpineParams {
            top_level: "T10".into(),
            curvature: 1.0,
            scoliosis_deg: 0.0,
            rotation_deg: [0.0; 3],
            l2_centre_lps_mm: [2.5, 22.0, -350.0],
            trabecular_hu: 170.0,
        }
    }
}

/// One built vertebra.
#[derive(Debug, Clone)]
pub struct Vertebra {
    /// Level name.
    pub name: &'static str,
    /// Frame origin in LPS mm (centre of the nominal body).
    pub origin: Vector3<f64>,
    /// Cranial axis.
    pub u: Vector3<f64>,
    /// Posterior axis.
    pub v: Vector3<f64>,
    /// Left axis.
    pub w: Vector3<f64>,
    /// Nominal height at mid-depth, mm.
    pub hm: f64,
    /// AP depth, mm.
    pub depth: f64,
    /// Width, mm.
    pub width: f64,
    /// Physiologic slope of the superior endplate, mm of height per mm of v.
    pub slope: f64,
    /// Disc thickness below, mm (0: fused to the next).
    pub disc_below: f64,
    /// What is put at this level.
    pub spec: LevelSpec,
    sup_dep: Depression,
    inf_dep: Depression,
    /// Sacral segment.
    pub sacral: bool,
    /// Thoracic segment (carries ribs).
    pub thoracic: bool,
    /// Cord present in the canal at this level (conus medullaris at L1).
    pub cord: CordExtent,
    pub(crate) canal_ap: f64,
    pub(crate) canal_w: f64,
    pub(crate) ped_w: f64,
    lamina_t: f64,
    rib_len: f64,
    bound_r2: f64,
}

/// How far the spinal cord reaches at a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CordExtent {
    /// Full length.
    Full,
    /// Upper half only (conus).
    UpperHalf,
    /// Below the conus: cauda equina in CSF.
    None,
}

#[derive(Debug, Clone, Copy, Default)]
enum Depression {
    #[default]
    Flat,
    /// Linear in v: `amount` at v = -0.4 D, zero at v = +0.4 D and behind.
    Anterior { amount: f64 },
    /// Central: amount × (1 − r²)².
    Central { amount: f64 },
    /// Uniform.
    Uniform { amount: f64 },
    /// Linear in w: `amount` at w = +0.4 W (left), zero at w = −0.4 W and to the right.
    LeftSide { amount: f64 },
}

/// Signed distance-like value of "outside" for an axis-aligned 2-D ellipse test.
#[inline]
fn ell(x: f64, y: f64, ax: f64, ay: f64) -> f64 {
    (x / ax) * (x / ax) + (y / ay) * (y / ay)
}

/// Thickness of cortical bone and endplates, mm.
pub const CORTEX_MM: f64 = 1.0;

impl Vertebra {
    fn depression(&self, d: Depression, v: f64, w: f64) -> f64 {
        match d {
            Depression::Flat => 0.0,
            Depression::Anterior { amount } => {
                let (va, vp) = (-0.4 * self.depth, 0.4 * self.depth);
                amount * ((vp - v) / (vp - va)).max(0.0)
            }
            Depression::Central { amount } => {
                let r2 = ell(v, w, self.depth / 2.0, self.width / 2.0);
                amount * (1.0 - r2).max(0.0).powi(2)
            }
            Depression::Uniform { amount } => amount,
            Depression::LeftSide { amount } => {
                let (wr, wl) = (-0.4 * self.width, 0.4 * self.width);
                amount * ((w - wr) / (wl - wr)).max(0.0)
            }
        }
    }

    /// Superior endplate (outer surface) height in the local frame.
    pub fn u_top(&self, v: f64, w: f64) -> f64 {
        let top = self.hm / 2.0 + self.slope * v - self.depression(self.sup_dep, v, w);
        top.max(self.u_bot(v, w) + 3.0 * CORTEX_MM)
    }

    /// Inferior endplate (outer surface) height in the local frame.
    pub fn u_bot(&self, v: f64, w: f64) -> f64 {
        -self.hm / 2.0 + self.depression(self.inf_dep, v, w)
    }

    /// Posterior semi-depth at (u, w): the nominal D/2 plus retropulsion and convexity bumps.
    fn posterior_extent(&self, u: f64, w: f64) -> f64 {
        let half = self.depth / 2.0;
        let lat = if w.abs() < self.width / 2.0 {
            (std::f64::consts::PI * w / self.width).cos().powi(2)
        } else {
            0.0
        };
        let mut e = half;
        if self.spec.retropulsion_mm > 0.0 {
            // Postero-superior fragment: zero at mid-height and at the endplate corner, peak at 3/4.
            let top = self.u_top(half, 0.0);
            let t = (u / top).clamp(0.0, 1.0);
            e += self.spec.retropulsion_mm * (std::f64::consts::PI * t).sin().powi(2) * lat;
        }
        if self.spec.convex_posterior_mm > 0.0 {
            let (b, t) = (self.u_bot(half, 0.0), self.u_top(half, 0.0));
            let x = ((u - b) / (t - b)).clamp(0.0, 1.0);
            e += self.spec.convex_posterior_mm * (std::f64::consts::PI * x).sin().powi(2) * lat;
        }
        e
    }

    /// Whether a local point lies in the body (cortex included), and if so whether in the cortex.
    pub fn body_at(&self, u: f64, v: f64, w: f64) -> Option<bool> {
        let bot = self.u_bot(v, w);
        let top = self.u_top(v, w);
        if u < bot || u > top {
            return None;
        }
        let av = if v > 0.0 {
            self.posterior_extent(u, w)
        } else {
            self.depth / 2.0
        };
        let aw = self.width / 2.0;
        if ell(v, w, av, aw) > 1.0 {
            return None;
        }
        let inner = u >= bot + CORTEX_MM
            && u <= top - CORTEX_MM
            && ell(v, w, av - CORTEX_MM, aw - CORTEX_MM) <= 1.0;
        if !inner && self.spec.cortical_gap_deg > 0.0 {
            // The destroyed arc of the wall (not the endplates): tumour through the cortex.
            let (lo, hi) = (bot + 0.2 * (top - bot), top - 0.2 * (top - bot));
            let azimuth = w.atan2(-v).to_degrees();
            if (lo..=hi).contains(&u)
                && (azimuth - CORTICAL_GAP_CENTRE_DEG).abs() <= self.spec.cortical_gap_deg / 2.0
            {
                return Some(false);
            }
        }
        Some(!inner)
    }

    fn local(&self, p: &Vector3<f64>) -> (f64, f64, f64) {
        let d = p - self.origin;
        (d.dot(&self.u), d.dot(&self.v), d.dot(&self.w))
    }

    /// LPS position of a local point.
    pub fn to_lps(&self, u: f64, v: f64, w: f64) -> Vector3<f64> {
        self.origin + self.u * u + self.v * v + self.w * w
    }

    fn marrow_tissue(&self, u: f64, v: f64, w: f64) -> Tissue {
        match self.spec.tumour {
            Tumour::Lytic => return Tissue::TumourLytic,
            Tumour::Sclerotic => return Tissue::TumourSclerotic,
            Tumour::None => {}
        }
        let top = self.u_top(v, w);
        if self.spec.cleft {
            // A fluid/gas slit under the superior endplate in the central body.
            let c = top - CORTEX_MM - 4.0;
            if (u - c).abs() < 1.5 && ell(v, w, 0.3 * self.depth, 0.3 * self.width) < 1.0 {
                return Tissue::Cleft;
            }
        }
        match self.spec.oedema {
            Oedema::Diffuse => Tissue::Oedema,
            Oedema::Band if u > top - 9.0 => Tissue::Oedema,
            _ => Tissue::Marrow,
        }
    }

    /// Whether a local point lies in the paravertebral soft tissue outside the body's wall.
    fn paravertebral_at(&self, u: f64, v: f64, w: f64) -> bool {
        let thick = self.spec.paravertebral_mm;
        if thick <= 0.0 || v > 0.0 {
            return false;
        }
        let (bot, top) = (self.u_bot(0.0, 0.0), self.u_top(0.0, 0.0));
        if u < bot + 0.2 * (top - bot) || u > top - 0.2 * (top - bot) {
            return false;
        }
        let azimuth = w.atan2(-v);
        let off = (azimuth.to_degrees() - PARAVERTEBRAL_CENTRE_DEG).abs();
        if off > PARAVERTEBRAL_HALF_ARC_DEG {
            return false;
        }
        let taper = (std::f64::consts::FRAC_PI_2 * off / PARAVERTEBRAL_HALF_ARC_DEG)
            .cos()
            .powi(2);
        // The wall at this azimuth: the front half of the body's ellipse.
        let wall = 1.0
            / ((azimuth.cos() / (self.depth / 2.0)).powi(2)
                + (azimuth.sin() / (self.width / 2.0)).powi(2))
            .sqrt();
        let r = v.hypot(w);
        r > wall && r <= wall + thick * taper
    }

    /// Classifies a local point against this level's own structures; higher priority wins.
    pub(crate) fn classify(&self, u: f64, v: f64, w: f64) -> Option<(Tissue, u8)> {
        if let Some(cortex) = self.body_at(u, v, w) {
            return Some(if cortex {
                (Tissue::Cortex, 10)
            } else {
                (self.marrow_tissue(u, v, w), 10)
            });
        }
        if self.paravertebral_at(u, v, w) {
            return Some((Tissue::TumourLytic, 9));
        }
        let hm = self.hm;
        // Canal: an elliptic tube behind the body; dural sac inside it, cord inside the sac.
        let vcc = self.depth / 2.0 + self.canal_ap / 2.0;
        let seg_lo = -hm / 2.0 - self.disc_below / 2.0 - 2.0;
        let seg_hi = hm / 2.0 + 8.0;
        if u < seg_lo || u > seg_hi {
            return self.rib(u, v, w);
        }
        let (ca, cw) = (self.canal_ap / 2.0, self.canal_w / 2.0);
        let e_canal = ell(v - vcc, w, ca, cw);
        if e_canal <= 1.0 {
            if self.spec.epidural_mm > 0.0 && w.abs() < cw {
                let lat = (std::f64::consts::PI * w / (2.0 * cw)).cos().powi(2);
                let front = v - self.depth / 2.0;
                if front <= self.spec.epidural_mm * lat
                    && u >= self.u_bot(self.depth / 2.0, w)
                    && u <= self.u_top(self.depth / 2.0, w)
                {
                    return Some((Tissue::TumourLytic, 6));
                }
            }
            let cord = match self.cord {
                CordExtent::Full => true,
                CordExtent::UpperHalf => u > 0.0,
                CordExtent::None => false,
            };
            let t = if cord && ell(v - vcc, w, 4.0, 4.5) <= 1.0 {
                Tissue::Cord
            } else if ell(v - vcc, w, ca * 0.8, cw * 0.85) <= 1.0 {
                Tissue::Csf
            } else {
                Tissue::EpiduralFat
            };
            return Some((t, 6));
        }
        if let Some((part, inside)) = self.arch_part(u, v, w) {
            if !inside {
                return Some((Tissue::Cortex, 8));
            }
            let involved = match part {
                ArchPart::LeftPedicle | ArchPart::LeftTransverse => {
                    matches!(self.spec.posterior, Side::Both | Side::Left)
                }
                ArchPart::RightPedicle | ArchPart::RightTransverse => {
                    matches!(self.spec.posterior, Side::Both | Side::Right)
                }
                ArchPart::Lamina | ArchPart::Spinous => self.spec.posterior == Side::Both,
            };
            return Some(if involved {
                (Tissue::PeInvolved, 8)
            } else {
                (Tissue::Marrow, 8)
            });
        }
        // Sacral ala: wide lateral masses at S1.
        if self.name == "S1"
            && w.abs() <= self.width / 2.0 + 38.0
            && v >= -0.3 * self.depth
            && v <= vcc + 6.0
            && u.abs() <= hm / 2.0
        {
            let inside = w.abs() <= self.width / 2.0 + 36.8 && u.abs() <= hm / 2.0 - 1.2;
            return Some(if inside {
                (Tissue::Marrow, 7)
            } else {
                (Tissue::Cortex, 7)
            });
        }
        self.rib(u, v, w)
    }

    /// The posterior-element structure at a local point, and whether the point is inside its
    /// cortex (marrow) rather than in it.
    pub fn arch_part(&self, u: f64, v: f64, w: f64) -> Option<(ArchPart, bool)> {
        let hm = self.hm;
        let vcc = self.depth / 2.0 + self.canal_ap / 2.0;
        let (ca, cw) = (self.canal_ap / 2.0, self.canal_w / 2.0);
        let left = w > 0.0;
        // Neural arch: a ring around the canal; pedicles in front of the canal centre, the lamina
        // behind it; spinous and transverse processes attached.
        let (oa, ow) = (ca + self.lamina_t, cw + self.ped_w);
        let in_ring = ell(v - vcc, w, oa, ow) <= 1.0 && v > self.depth / 2.0 - 3.0;
        let ring_inner = |m: f64| {
            ell(v - vcc, w, ca + m, cw + m) > 1.0 && ell(v - vcc, w, oa - m, ow - m) <= 1.0
        };
        let (ped_lo, ped_hi) = (-0.05 * hm, 0.40 * hm);
        let (lam_lo, lam_hi) = (-0.35 * hm, 0.45 * hm);
        if in_ring && ell(v - vcc, w, ca, cw) > 1.0 {
            let m = CORTEX_MM * 1.2;
            if v <= vcc + 2.0 && u >= ped_lo && u <= ped_hi {
                let inside = ring_inner(m) && u >= ped_lo + m && u <= ped_hi - m;
                let part = if left {
                    ArchPart::LeftPedicle
                } else {
                    ArchPart::RightPedicle
                };
                return Some((part, inside));
            }
            if v > vcc + 2.0 && u >= lam_lo && u <= lam_hi {
                let inside = ring_inner(m) && u >= lam_lo + m && u <= lam_hi - m;
                return Some((ArchPart::Lamina, inside));
            }
        }
        // Spinous process: a plate running back and down from the lamina.
        let v0 = vcc + ca + self.lamina_t - 2.0;
        let sp_len = if self.thoracic { 34.0 } else { 30.0 };
        let sp_tan = if self.thoracic { 0.8 } else { 0.25 };
        let sp_h = if self.thoracic { 9.0 } else { 16.0 };
        if !self.sacral && v >= v0 && v <= v0 + sp_len && w.abs() <= 3.0 {
            let uc = 0.1 * hm - (v - v0) * sp_tan;
            if (u - uc).abs() <= sp_h / 2.0 {
                let inside =
                    (u - uc).abs() <= sp_h / 2.0 - 1.2 && w.abs() <= 1.8 && v <= v0 + sp_len - 1.2;
                return Some((ArchPart::Spinous, inside));
            }
        }
        // Transverse processes.
        let tp_len = if self.thoracic { 18.0 } else { 22.0 };
        let w0 = cw + self.ped_w - 2.0;
        if !self.sacral && w.abs() >= w0 && w.abs() <= w0 + tp_len && (v - vcc).abs() <= 4.0 {
            let uc = 0.2 * hm;
            if (u - uc).abs() <= 4.5 {
                let inside =
                    (u - uc).abs() <= 3.3 && (v - vcc).abs() <= 2.8 && w.abs() <= w0 + tp_len - 1.2;
                let part = if left {
                    ArchPart::LeftTransverse
                } else {
                    ArchPart::RightTransverse
                };
                return Some((part, inside));
            }
        }
        None
    }

    /// Ribs of thoracic levels: a neck from the body to the transverse process tip, then an arc
    /// curving anteriorly, sloping down; the twelfth rib is short (floating).
    fn rib(&self, u: f64, v: f64, w: f64) -> Option<(Tissue, u8)> {
        if !self.thoracic || self.rib_len <= 0.0 {
            return None;
        }
        let vcc = self.depth / 2.0 + self.canal_ap / 2.0;
        let wa = w.abs();
        let u0 = 0.3 * self.hm;
        let tip = (vcc, self.canal_w / 2.0 + self.ped_w + 16.0);
        let centre = (self.depth / 2.0 - 55.0, 18.0);
        let (dv, dw) = (tip.0 - centre.0, tip.1 - centre.1);
        let r = (dv * dv + dw * dw).sqrt();
        let th0 = dw.atan2(dv);
        let (pv, pw) = (v - centre.0, wa - centre.1);
        let rho = (pv * pv + pw * pw).sqrt();
        let th = pw.atan2(pv);
        let along = (th - th0) * r;
        let tube = 4.5;
        let mut d = f64::INFINITY;
        if along >= 0.0 && along <= self.rib_len {
            let uc = u0 - along * 0.35;
            d = ((rho - r).powi(2) + (u - uc).powi(2)).sqrt();
        }
        // Neck: capsule from the body's postero-lateral margin to the tip.
        let a = (self.depth * 0.25, self.width * 0.42);
        let (sx, sy) = (tip.0 - a.0, tip.1 - a.1);
        let t = (((v - a.0) * sx + (wa - a.1) * sy) / (sx * sx + sy * sy)).clamp(0.0, 1.0);
        let (qx, qy) = (a.0 + t * sx, a.1 + t * sy);
        let dn = ((v - qx).powi(2) + (wa - qy).powi(2) + (u - u0).powi(2)).sqrt();
        d = d.min(dn);
        if d <= tube {
            Some(if d <= tube - 1.2 {
                (Tissue::Marrow, 5)
            } else {
                (Tissue::Cortex, 5)
            })
        } else {
            None
        }
    }
}

/// The whole model: vertebrae top to bottom, plus the torso.
#[derive(Debug, Clone)]
pub struct Spine {
    /// Vertebrae from the top level down to S3.
    pub vertebrae: Vec<Vertebra>,
    /// Torso ellipse centre (x, y) in LPS mm.
    pub torso_centre: (f64, f64),
    /// Torso semi-axes (x, y), mm.
    pub torso_axes: (f64, f64),
    /// Subcutaneous fat thickness, mm.
    pub fat_mm: f64,
    /// Trabecular bone attenuation, HU.
    pub trabecular_hu: f64,
}

/// Error building a spine from parameters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The top level is not one the generator knows.
    #[error("unknown top level {0:?}: use T1..T12")]
    UnknownTopLevel(String),
    /// A level spec names a level outside the generated range.
    #[error("level {0:?} is not among the generated levels")]
    UnknownLevel(String),
    /// A parameter is out of its valid range.
    #[error("invalid parameter: {0}")]
    Invalid(String),
}

impl Spine {
    /// Builds the spine from global parameters and per-level specs.
    pub fn build(params: &SpineParams, specs: &[(String, LevelSpec)]) -> Result<Spine, ModelError> {
        let top = ANATOMY
            .iter()
            .position(|a| a.name == params.top_level && a.name.starts_with('T'))
            .ok_or_else(|| ModelError::UnknownTopLevel(params.top_level.clone()))?;
        let anat = &ANATOMY[top..];
        for (name, spec) in specs {
            if !anat.iter().any(|a| a.name == name) {
                return Err(ModelError::UnknownLevel(name.clone()));
            }
            if let Some(f) = spec.fracture {
                if !(0.0..=80.0).contains(&f.loss_pct) {
                    return Err(ModelError::Invalid(format!(
                        "{name}: loss {}% outside 0–80%",
                        f.loss_pct
                    )));
                }
            }
            if !(0.0..=15.0).contains(&spec.retropulsion_mm)
                || !(0.0..=10.0).contains(&spec.convex_posterior_mm)
                || !(0.0..=12.0).contains(&spec.epidural_mm)
                || !(0.0..=180.0).contains(&spec.cortical_gap_deg)
                || !(0.0..=20.0).contains(&spec.paravertebral_mm)
            {
                return Err(ModelError::Invalid(format!("{name}: bump outside 0–15 mm")));
            }
        }
        if !(0.0..=3.0).contains(&params.curvature) || params.scoliosis_deg.abs() > 30.0 {
            return Err(ModelError::Invalid("curvature 0–3, scoliosis ±30°".into()));
        }

        // Arc length of each body centre, measured upward from the bottom of the lowest segment.
        let n = anat.len();
        let mut s_centre = vec![0.0; n];
        let mut s = 0.0;
        for i in (0..n).rev() {
            s += anat[i].height / 2.0;
            s_centre[i] = s;
            s += anat[i].height / 2.0 + if i > 0 { anat[i - 1].disc_below } else { 0.0 };
        }
        let s_top = s;
        let k = params.curvature;
        // Sagittal tangent angle φ(s): piecewise linear through the level knots (lordosis, kyphosis).
        let phi = |s: f64| -> f64 {
            let deg = if s <= s_centre[n - 1] {
                anat[n - 1].tangent_deg
            } else if s >= s_centre[0] {
                anat[0].tangent_deg
            } else {
                let i = (0..n - 1)
                    .find(|&i| s <= s_centre[i] && s >= s_centre[i + 1])
                    .unwrap_or(0);
                let t = (s - s_centre[i + 1]) / (s_centre[i] - s_centre[i + 1]);
                anat[i + 1].tangent_deg + t * (anat[i].tangent_deg - anat[i + 1].tangent_deg)
            };
            (deg * k).to_radians()
        };
        let s_l5 = s_centre[anat.iter().position(|a| a.name == "L5").unwrap_or(n - 1)];
        let psi = |s: f64| -> f64 {
            if s <= s_l5 {
                0.0
            } else {
                params.scoliosis_deg.to_radians()
                    * (std::f64::consts::PI * (s - s_l5) / (s_top - s_l5)).sin()
            }
        };
        let tangent = |s: f64| {
            let (f, p) = (phi(s), psi(s));
            Vector3::new(p.sin(), p.cos() * f.sin(), p.cos() * f.cos()).normalize()
        };
        // Integrate the centreline (midpoint rule, 0.25 mm steps).
        let step = 0.25;
        let mut pos = Vector3::zeros();
        let mut centres = vec![Vector3::zeros(); n];
        let mut sc = 0.0;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| s_centre[*a].total_cmp(&s_centre[*b]));
        let mut next = 0;
        while next < n {
            let target = s_centre[order[next]];
            if sc + step >= target {
                let h = target - sc;
                pos += tangent(sc + h / 2.0) * h;
                sc = target;
                centres[order[next]] = pos;
                next += 1;
                continue;
            }
            pos += tangent(sc + step / 2.0) * step;
            sc += step;
        }
        let rot =
            Rotation3::from_axis_angle(&Vector3::z_axis(), params.rotation_deg[2].to_radians())
                * Rotation3::from_axis_angle(
                    &Vector3::y_axis(),
                    params.rotation_deg[1].to_radians(),
                )
                * Rotation3::from_axis_angle(
                    &Vector3::x_axis(),
                    params.rotation_deg[0].to_radians(),
                );
        let l2 = anat.iter().position(|a| a.name == "L2").unwrap_or(0);
        let pivot = centres[l2];
        let place = Vector3::from(params.l2_centre_lps_mm);

        let mut vertebrae = Vec::with_capacity(n);
        for (i, an) in anat.iter().enumerate() {
            let u0 = tangent(s_centre[i]);
            let f = phi(s_centre[i]);
            let v0 = Vector3::new(0.0, f.cos(), -f.sin());
            let v0 = (v0 - u0 * v0.dot(&u0)).normalize();
            let w0 = v0.cross(&u0);
            let (u, v, w) = (rot * u0, rot * v0, rot * w0);
            let origin = place + rot * (centres[i] - pivot);
            let spec = specs
                .iter()
                .find(|(nm, _)| nm == an.name)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let hm = an.height;
            let depth = an.depth;
            // Physiologic wedge: heights linear in v with Ha/Hp = ha_hp at ±0.4 D.
            let slope = hm * (1.0 - an.ha_hp) / (0.4 * depth * (1.0 + an.ha_hp));
            let ha_nom = hm - slope * 0.4 * depth;
            let hp_nom = hm + slope * 0.4 * depth;
            let (mut sup_dep, mut inf_dep) = (Depression::Flat, Depression::Flat);
            if let Some(fr) = spec.fracture {
                let keep = 1.0 - fr.loss_pct / 100.0;
                match fr.kind {
                    FractureKind::Wedge => {
                        sup_dep = Depression::Anterior {
                            amount: (ha_nom - keep * hp_nom).max(0.0),
                        }
                    }
                    FractureKind::Biconcave => {
                        let amount = (hm - keep * hp_nom).max(0.0) / 2.0;
                        sup_dep = Depression::Central { amount };
                        inf_dep = Depression::Central { amount };
                    }
                    FractureKind::Crush => {
                        sup_dep = Depression::Uniform {
                            amount: (ha_nom.min(hm).min(hp_nom) - keep * hp_nom).max(0.0),
                        }
                    }
                    FractureKind::Lateral => {
                        sup_dep = Depression::LeftSide {
                            amount: fr.loss_pct / 100.0 * hm,
                        }
                    }
                }
            }
            let thoracic = an.name.starts_with('T');
            let sacral = an.name.starts_with('S');
            let cord = match an.name {
                "L1" => CordExtent::UpperHalf,
                nm if nm.starts_with('T') => CordExtent::Full,
                _ => CordExtent::None,
            };
            let rib_len: f64 = match an.name {
                "T12" => 55.0,
                "T11" => 120.0,
                nm if thoracic && nm != "T12" => 160.0,
                _ => 0.0,
            };
            let reach = depth + 70.0 + if thoracic { rib_len.min(100.0) } else { 45.0 };
            vertebrae.push(Vertebra {
                name: an.name,
                origin,
                u,
                v,
                w,
                hm,
                depth,
                width: an.width,
                slope,
                disc_below: an.disc_below,
                spec,
                sup_dep,
                inf_dep,
                sacral,
                thoracic,
                cord,
                canal_ap: if thoracic {
                    15.0
                } else if sacral {
                    12.0
                } else {
                    17.0
                },
                canal_w: if thoracic {
                    17.0
                } else if sacral {
                    24.0
                } else {
                    23.0
                },
                ped_w: if thoracic { 6.5 } else { 9.0 },
                lamina_t: 6.0,
                rib_len,
                bound_r2: reach * reach,
            });
        }
        // The back's skin lies 25 mm behind the furthest spinous process tip.
        let back = vertebrae
            .iter()
            .map(|vb| {
                let reach = vb.depth / 2.0 + vb.canal_ap + vb.lamina_t + 34.0;
                (vb.origin + vb.v * reach).y
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let ay = 125.0;
        Ok(Spine {
            vertebrae,
            torso_centre: (place.x, back + 25.0 - ay),
            torso_axes: (165.0, ay),
            fat_mm: 15.0,
            trabecular_hu: params.trabecular_hu,
        })
    }

    /// The tissue at an LPS point.
    pub fn tissue_at(&self, p: &Vector3<f64>) -> Tissue {
        self.resolve(p).0
    }

    /// The posterior-element structure at an LPS point, with the index of its vertebra in
    /// `vertebrae`, when bone of a neural arch is what the images show there.
    pub fn arch_part_at(&self, p: &Vector3<f64>) -> Option<(usize, ArchPart)> {
        let (_, prio, owner) = self.resolve(p);
        let i = owner.filter(|_| prio == 8)?;
        let (u, v, w) = self.vertebrae[i].local(p);
        self.vertebrae[i]
            .arch_part(u, v, w)
            .map(|(part, _)| (i, part))
    }

    /// The tissue at `p`, its priority, and the vertebra whose own structure it is (none for
    /// the torso and the discs).
    fn resolve(&self, p: &Vector3<f64>) -> (Tissue, u8, Option<usize>) {
        let (cx, cy) = self.torso_centre;
        let (ax, ay) = self.torso_axes;
        let e = ell(p.x - cx, p.y - cy, ax, ay);
        if e > 1.0 {
            return (Tissue::Air, 0, None);
        }
        let mut best = if ell(p.x - cx, p.y - cy, ax - self.fat_mm, ay - self.fat_mm) > 1.0 {
            (Tissue::Fat, 0u8)
        } else {
            (Tissue::Muscle, 0u8)
        };
        let mut owner = None;
        for (i, vb) in self.vertebrae.iter().enumerate() {
            let d = p - vb.origin;
            if d.norm_squared() > vb.bound_r2 {
                continue;
            }
            let (u, v, w) = vb.local(p);
            if let Some((t, prio)) = vb.classify(u, v, w) {
                if prio > best.1 {
                    best = (t, prio);
                    owner = Some(i);
                }
            }
            // Disc (or fused bone) between this level and the one below.
            if let Some(below) = self.vertebrae.get(i + 1) {
                if best.1 < 7 && u < 0.0 {
                    let (ub, vb2, wb) = below.local(p);
                    if ub > 0.0
                        && u < vb.u_bot(v, w)
                        && ub > below.u_top(vb2, wb)
                        && ell(v, w, vb.depth / 2.0 + 0.5, vb.width / 2.0 + 0.5) <= 1.0
                    {
                        let t = if vb.disc_below == 0.0 {
                            Tissue::Marrow
                        } else if ell(v, w, vb.depth * 0.28, vb.width * 0.28) <= 1.0 {
                            Tissue::DiscNucleus
                        } else {
                            Tissue::DiscAnnulus
                        };
                        best = (t, 7);
                        owner = None;
                    }
                }
            }
        }
        (best.0, best.1, owner)
    }
}
