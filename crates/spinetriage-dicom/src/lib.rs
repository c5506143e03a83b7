//! DICOM study ingest for spinetriage: discover files, read headers, group and classify series.
//!
//! The entry point is [`discover`], which walks files, folder trees and DICOMDIRs, reads every
//! header in parallel (never Pixel Data), skips and counts non-DICOM files, and returns an
//! [`Inventory`] of [`Study`] → [`Series`] → [`InstanceHeader`]. Each series carries a
//! [`Classification`] (CT, MR STIR / T1 / T2 / fat-saturated T2, other; sagittal / axial / coronal /
//! oblique) with the tags that decided it. [`Limits`] caps what a header may make later stages
//! allocate.
//!
//! ```no_run
//! use spinetriage_dicom::{discover, DiscoverOptions};
//! let inv = discover(&["study/".into()], &DiscoverOptions::default());
//! for study in &inv.studies {
//!     for s in &study.series {
//!         println!("{} {:?}: {}", s.uid, s.classification.kind, s.classification.reason);
//!     }
//! }
//! ```
#![deny(missing_docs)]

mod classify;
mod discover;
mod error;
mod header;
mod limits;
mod object;
mod validate;

pub use classify::{classify, plane_of, Classification, Plane, SeriesKind};
pub use discover::{discover, index, DiscoverOptions, Index, Inventory, Series, Study, StudyFiles};
pub use error::DicomError;
pub use header::{
    header_from_object, read_header, read_header_bytes, read_patient, FrameGeometry,
    InstanceHeader, MrParams, Patient, Rescale,
};
pub use limits::Limits;
pub use object::{open_object, open_object_bytes, sniff, sniff_file, RawSyntax, Sniff};
pub use validate::MAX_DEPTH;
