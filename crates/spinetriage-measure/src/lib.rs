//! Per-level vertebral morphometry.
//!
//! [`measure_bodies`] takes the shape volume and its [`Segmentation`] and returns one
//! [`LevelMeasurement`] per body: the vertebra's own frame (axis from the endplate normals),
//! anterior, middle and posterior heights at 10 %, 50 % and 90 % of the antero-posterior depth,
//! lateral heights, the posterior-wall profile, each with an uncertainty. [`derive`] then adds the
//! quantities that need the neighbours: expected height, height loss, Genant grade, wedge
//! (kyphosis), dorsal-wall and lateral-wedge (scoliosis) percentages, the ACR deformity criteria,
//! angles, the level-specific normal ranges and canal compromise ([`canal`] measures the canal;
//! [`posterior`] segments the pedicles, lamina and spinous process). Definitions and sources: `docs/measurements.md`.
//!
//! Heights are found on intensity profiles with a sub-voxel edge model ([`edge::fit_edge`]); the
//! mask only says where to look. [`MaskSampler`] lets the same code run on a binary mask (for
//! comparing a segmentation with expert masks).
#![deny(missing_docs)]

pub mod canal;
pub mod derive;
pub mod edge;
mod morph;
pub mod posterior;
pub mod study;

pub use derive::{
    derive, fractured, genant_grade, is_sacral, middle_reference, Criterion, Derived,
    MiddleReference, Morphology, NormalRange, FLAT_ENDPLATE_SPREAD,
};
pub use morph::{
    column_axis, measure_bodies, measure_body, measure_mask, wall_displacement, Frame, Height,
    LevelMeasurement, Line, MaskSampler, Sampler, SignalLevels, Status,
};
pub use study::{analyze_volumes, shape_volume, Level, StudyMorphometry};

/// Gas on CT, HU: below any soft tissue or fluid (an intravertebral cleft, the vacuum
/// phenomenon).
pub const GAS_HU: f64 = -200.0;
