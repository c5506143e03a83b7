//! Allocation caps checked before any pixel buffer is made.

use serde::Serialize;

/// Caps on what a DICOM header may ask us to allocate.
///
/// Headers are untrusted input: a file may claim 65535×65535 pixels × 65535 frames. Every check here
/// runs on header values only, before a buffer of that size exists (like `image::Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted Rows or Columns value.
    pub max_dimension: u32,
    /// Largest accepted NumberOfFrames of one instance.
    pub max_frames: u32,
    /// Largest accepted number of slices in one assembled volume.
    pub max_slices: usize,
    /// Largest accepted voxel count (rows × columns × frames × slices) of one volume.
    pub max_voxels: u64,
    /// Largest file that is read into memory, in bytes.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_dimension: 8192,
            max_frames: 16_384,
            max_slices: 16_384,
            // 2^30 voxels is 4 GiB of f32: a 1024×1024×1024 CT, far above any spine study.
            max_voxels: 1 << 30,
            max_file_bytes: 4 << 30,
        }
    }
}

impl Limits {
    /// Caps with no practical limit, for trusted research data.
    pub fn unlimited() -> Self {
        Limits {
            max_dimension: u32::MAX,
            max_frames: u32::MAX,
            max_slices: usize::MAX,
            max_voxels: u64::MAX,
            max_file_bytes: u64::MAX,
        }
    }

    /// Checks one instance's claimed pixel matrix; returns the offending description on failure.
    pub fn check_instance(&self, rows: u32, columns: u32, frames: u32) -> Result<u64, String> {
        if rows == 0 || columns == 0 {
            return Err(format!("image matrix {rows}×{columns} is empty"));
        }
        if rows > self.max_dimension || columns > self.max_dimension {
            return Err(format!(
                "image matrix {rows}×{columns} exceeds the limit of {} per side",
                self.max_dimension
            ));
        }
        if frames > self.max_frames {
            return Err(format!(
                "{frames} frames exceed the limit of {}",
                self.max_frames
            ));
        }
        let voxels = u64::from(rows) * u64::from(columns) * u64::from(frames.max(1));
        if voxels > self.max_voxels {
            return Err(format!(
                "{rows}×{columns}×{frames} voxels exceed the limit of {}",
                self.max_voxels
            ));
        }
        Ok(voxels)
    }

    /// Checks a whole volume (rows × columns × slices) before its buffer is allocated.
    pub fn check_volume(&self, rows: u32, columns: u32, slices: usize) -> Result<u64, String> {
        if slices > self.max_slices {
            return Err(format!(
                "{slices} slices exceed the limit of {}",
                self.max_slices
            ));
        }
        let voxels = (u64::from(rows) * u64::from(columns)).saturating_mul(slices as u64);
        if voxels > self.max_voxels {
            return Err(format!(
                "{rows}×{columns}×{slices} voxels exceed the limit of {}",
                self.max_voxels
            ));
        }
        Ok(voxels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_header_is_refused() {
        let l = Limits::default();
        assert!(l.check_instance(65535, 65535, 1).is_err());
        assert!(l.check_instance(4096, 4096, 65535).is_err());
        assert!(l.check_instance(0, 512, 1).is_err());
        assert_eq!(l.check_instance(512, 512, 1), Ok(262_144));
        assert!(l.check_volume(512, 512, 300).is_ok());
        assert!(l.check_volume(8192, 8192, 8192).is_err());
    }
}
