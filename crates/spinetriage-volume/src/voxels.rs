//! Voxel storage: 32-bit floats, or 16-bit integers where every value of a series is an integer
//! that fits (CT in HU with slope 1, most MR). The integers are the very values the floats would
//! hold, so every computation reads the same numbers; a 512 × 512 × 300 CT takes 157 MB instead
//! of 315 MB, and fresh memory is expensive (first-touch page faults were the largest single cost
//! of analysing such a study).

use ndarray::Array3;

/// A stored voxel value, read as `f32`.
pub trait Sample: Copy + Send + Sync + 'static {
    /// The value.
    fn value(self) -> f32;
}

impl Sample for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Sample for i16 {
    #[inline(always)]
    fn value(self) -> f32 {
        f32::from(self)
    }
}

/// Voxel values indexed `[k, j, i]` (slice, row, column).
// Not `#[non_exhaustive]`: `with_voxels!` matches every storage outside this crate.
#[derive(Debug, Clone, PartialEq)]
pub enum Voxels {
    /// Any values.
    F32(Array3<f32>),
    /// Integer values within ±32 767.
    I16(Array3<i16>),
}

/// Runs `$body` with `$a` bound to the typed array of a [`Voxels`] (`&Array3<f32>` or
/// `&Array3<i16>`); the body is compiled once per type, so it can call functions generic over
/// [`Sample`].
#[macro_export]
macro_rules! with_voxels {
    ($voxels:expr, |$a:ident| $body:expr) => {
        match $voxels {
            $crate::Voxels::F32($a) => $body,
            $crate::Voxels::I16($a) => $body,
        }
    };
}

impl Voxels {
    /// `(k, j, i)` extents.
    pub fn dim(&self) -> (usize, usize, usize) {
        with_voxels!(self, |a| a.dim())
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        with_voxels!(self, |a| a.len())
    }

    /// Whether there are no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the values.
    pub fn bytes(&self) -> usize {
        match self {
            Voxels::F32(a) => a.len() * 4,
            Voxels::I16(a) => a.len() * 2,
        }
    }

    /// The value at `[k, j, i]`, `None` outside.
    pub fn get(&self, idx: [usize; 3]) -> Option<f32> {
        with_voxels!(self, |a| a.get(idx).map(|v| v.value()))
    }

    /// All values as floats (a copy; for tests and writers).
    pub fn to_f32(&self) -> Array3<f32> {
        match self {
            Voxels::F32(a) => a.clone(),
            Voxels::I16(a) => a.mapv(f32::from),
        }
    }
}

/// The values of a (possibly strided or flipped) view as floats, in a new array of standard
/// layout (contiguous, row-major), so that callers can work on its flat slice.
pub fn to_f32_standard<T: Sample>(view: ndarray::ArrayView3<'_, T>) -> Array3<f32> {
    let values: Vec<f32> = view.iter().map(|v| v.value()).collect();
    Array3::from_shape_vec(view.dim(), values).expect("one value per voxel")
}

impl From<Array3<f32>> for Voxels {
    fn from(a: Array3<f32>) -> Voxels {
        Voxels::F32(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_storages_read_the_same_values() {
        let f = Array3::from_shape_fn((2, 3, 4), |(k, j, i)| (k * 12 + j * 4 + i) as f32 - 1024.0);
        let i = f.mapv(|v| v as i16);
        let (a, b) = (Voxels::F32(f.clone()), Voxels::I16(i));
        assert_eq!(a.dim(), b.dim());
        assert_eq!(a.get([1, 2, 3]), b.get([1, 2, 3]));
        assert_eq!(b.get([1, 2, 3]), Some(-1001.0));
        assert_eq!(b.get([2, 0, 0]), None);
        assert_eq!(b.to_f32(), f);
        assert_eq!((a.bytes(), b.bytes()), (96, 48));
    }
}
