//! Voxel index ↔ patient LPS millimetre geometry.

use nalgebra::{Matrix3, Matrix4, Point3, Vector3};
use serde::Serialize;

/// A continuous voxel index (i = column, j = row, k = slice); integers are voxel centres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexPoint(pub Point3<f64>);

/// A point in DICOM patient coordinates (x → left, y → posterior, z → superior), in millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LpsPoint(pub Point3<f64>);

impl LpsPoint {
    /// Builds a point from LPS millimetres.
    pub fn new(x_mm: f64, y_mm: f64, z_mm: f64) -> Self {
        LpsPoint(Point3::new(x_mm, y_mm, z_mm))
    }
    /// Euclidean distance in mm.
    pub fn distance_mm(&self, other: &LpsPoint) -> f64 {
        (self.0 - other.0).norm()
    }
}

/// The sampling grid of a volume: dimensions and the affine from voxel index to LPS mm.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Voxel counts along i (columns), j (rows), k (slices).
    pub dims: [usize; 3],
    /// Affine mapping homogeneous (i, j, k, 1) to LPS mm.
    pub index_to_lps: Matrix4<f64>,
    lps_to_index: Matrix4<f64>,
}

impl Grid {
    /// Builds a grid from an origin (centre of voxel 0,0,0) and three axis vectors, each the LPS
    /// displacement of one index step (direction × spacing). Returns `None` for a degenerate basis.
    pub fn new(dims: [usize; 3], origin: Vector3<f64>, axes: [Vector3<f64>; 3]) -> Option<Grid> {
        let m = Matrix3::from_columns(&axes);
        let mut a = Matrix4::identity();
        a.fixed_view_mut::<3, 3>(0, 0).copy_from(&m);
        a.fixed_view_mut::<3, 1>(0, 3).copy_from(&origin);
        Grid::from_affine(dims, a)
    }

    /// Builds a grid from an index→LPS affine; `None` when it is not invertible or not finite.
    pub fn from_affine(dims: [usize; 3], index_to_lps: Matrix4<f64>) -> Option<Grid> {
        if !index_to_lps.iter().all(|v| v.is_finite()) {
            return None;
        }
        let det = index_to_lps.fixed_view::<3, 3>(0, 0).determinant();
        if det.abs() < 1e-9 {
            return None;
        }
        let lps_to_index = index_to_lps.try_inverse()?;
        Some(Grid {
            dims,
            index_to_lps,
            lps_to_index,
        })
    }

    /// LPS position of a (continuous) voxel index.
    pub fn to_lps(&self, p: IndexPoint) -> LpsPoint {
        LpsPoint(self.index_to_lps.transform_point(&p.0))
    }

    /// Continuous voxel index of an LPS position.
    pub fn to_index(&self, p: LpsPoint) -> IndexPoint {
        IndexPoint(self.lps_to_index.transform_point(&p.0))
    }

    /// Spacing along i, j, k in mm (lengths of the affine's columns).
    pub fn spacing_mm(&self) -> [f64; 3] {
        std::array::from_fn(|c| self.index_to_lps.fixed_view::<3, 1>(0, c).norm())
    }

    /// Unit direction of index axis `c` (0 = i, 1 = j, 2 = k) in LPS.
    pub fn direction(&self, c: usize) -> Vector3<f64> {
        self.index_to_lps.fixed_view::<3, 1>(0, c).normalize()
    }

    /// Total voxel count.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the grid holds no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lps_round_trip() {
        let g = Grid::new(
            [10, 20, 30],
            Vector3::new(-100.0, 50.0, 20.0),
            [
                Vector3::new(0.0, 0.8, 0.0),
                Vector3::new(0.0, 0.0, -0.8),
                Vector3::new(-3.5, 0.0, 0.0),
            ],
        )
        .unwrap();
        let p = IndexPoint(Point3::new(3.25, 7.5, 2.0));
        let l = g.to_lps(p);
        assert!((l.0 - Point3::new(-107.0, 52.6, 14.0)).norm() < 1e-9);
        assert!((g.to_index(l).0 - p.0).norm() < 1e-9);
        assert_eq!(g.spacing_mm(), [0.8, 0.8, 3.5]);
        assert!(Grid::new([1, 1, 1], Vector3::zeros(), [Vector3::zeros(); 3]).is_none());
    }
}
