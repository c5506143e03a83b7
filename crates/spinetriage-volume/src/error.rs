//! Errors of pixel decoding, volume assembly and NIfTI reading.

use std::path::PathBuf;

/// Why a series, instance or NIfTI file could not become a volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// Reading or parsing the file failed.
    #[error(transparent)]
    Dicom(#[from] spinetriage_dicom::DicomError),
    /// The file is not DICOM.
    #[error("{path}: not a DICOM file")]
    NotDicom {
        /// The file.
        path: PathBuf,
    },
    /// The object has no Pixel Data.
    #[error("{path}: no Pixel Data")]
    NoPixelData {
        /// The file.
        path: PathBuf,
    },
    /// The pixel format cannot form a grey-level volume.
    #[error("{path}: unsupported pixel format: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// Decoding compressed pixel data failed.
    #[error("{path}: cannot decode pixel data ({transfer_syntax}): {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Its transfer syntax UID.
        transfer_syntax: String,
        /// The decoder's message.
        reason: String,
    },
    /// Pixel Data holds fewer bytes than Rows × Columns × Frames × BitsAllocated require.
    #[error("{path}: pixel data has {got} bytes, the header requires {want}")]
    PixelDataTooShort {
        /// The file.
        path: PathBuf,
        /// Bytes present.
        got: usize,
        /// Bytes required.
        want: usize,
    },
    /// A slice lacks the geometry needed to place it in patient space.
    #[error("{path}: frame {frame}: {attribute} missing or invalid; cannot place the slice")]
    MissingGeometry {
        /// The file.
        path: PathBuf,
        /// 0-based frame index.
        frame: usize,
        /// The attribute.
        attribute: &'static str,
    },
    /// The volume would exceed the configured limits.
    #[error("series {series_uid}: refused before allocation: {reason}")]
    TooLarge {
        /// The series.
        series_uid: String,
        /// Which cap and the numbers.
        reason: String,
    },
    /// The series has no image slices.
    #[error("series {series_uid}: no image slices")]
    Empty {
        /// The series.
        series_uid: String,
    },
    /// A NIfTI file is malformed or unsupported.
    #[error("{path}: NIfTI: {reason}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
