//! Volumes with exact patient geometry for spinetriage.
//!
//! [`assemble`] turns a [`spinetriage_dicom::Series`] into one or more [`Volume`]s: slices are
//! ordered by their position along the slice normal (never by file name or InstanceNumber), spacing
//! comes from positions (never SliceThickness), and the [`Grid`] holds the voxel index ↔ DICOM LPS
//! millimetre affine. Uneven spacing, missing slices, gantry tilt, duplicate positions and mixed
//! stacks are detected, listed in [`Volume::problems`] and resolved by resampling or splitting.
//! [`read_pixels`] decodes one instance (CT in HU, MR stored value × slope + intercept) on a fast
//! native path or through dicom-pixeldata for compressed syntaxes; [`read_nifti`] reads NIfTI-1.
//!
//! ```no_run
//! use spinetriage_dicom::{discover, DiscoverOptions, Limits};
//! use spinetriage_volume::{assemble, LpsPoint};
//! let inv = discover(&["study/".into()], &DiscoverOptions::default());
//! let series = &inv.studies[0].series[0];
//! let vols = assemble(series, &Limits::default())?;
//! let v = &vols[0];
//! println!("{:?} mm spacing, value at origin {:?}", v.grid.spacing_mm(), v.sample_lps(LpsPoint::new(0.0, 0.0, 0.0)));
//! # Ok::<(), spinetriage_volume::VolumeError>(())
//! ```
#![deny(missing_docs)]

mod assemble;
mod error;
mod grid;
mod nifti;
mod pixels;
mod tasks;
mod voxels;

pub use assemble::{assemble, plan, GeometryProblem, SopRef, StackPlan, ValueStats, Volume};
pub use error::VolumeError;
pub use grid::{Grid, IndexPoint, LpsPoint};
pub use nalgebra::{Point3, Vector3};
pub use nifti::{read_nifti, write_nifti_labels};
pub use pixels::{
    pixels_from_object, read_native_into, read_pixels, stored_bytes_per_voxel, InstancePixels,
};
pub use spinetriage_dicom::SeriesKind;
pub use tasks::par_map_costliest_first;
pub use voxels::{to_f32_standard, Sample, Voxels};
