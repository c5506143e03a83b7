//! Errors of discovery and header parsing.

use std::path::PathBuf;

/// Why a file could not be read as a DICOM instance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DicomError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file starts like DICOM but its content does not parse.
    #[error("{path}: not a readable DICOM file: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// A required attribute is absent or malformed.
    #[error("{path}: {attribute} is missing or malformed")]
    MissingAttribute {
        /// The file.
        path: PathBuf,
        /// The attribute's keyword.
        attribute: &'static str,
    },
    /// The header asks for more than the configured [`crate::Limits`] allow.
    #[error("{path}: refused before allocation: {reason}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Which cap was exceeded, with the numbers.
        reason: String,
    },
    /// Walking the folder tree failed (unreadable folder, symlink loop).
    #[error("{path}: {reason}")]
    Walk {
        /// The path being walked.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl DicomError {
    /// The file or folder the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            DicomError::Io { path, .. }
            | DicomError::Parse { path, .. }
            | DicomError::MissingAttribute { path, .. }
            | DicomError::TooLarge { path, .. }
            | DicomError::Walk { path, .. } => path,
        }
    }
}
