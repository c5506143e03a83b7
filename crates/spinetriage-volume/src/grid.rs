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
        // An affine's inverse is affine: inverted as such, its last row stays exactly
        // (0, 0, 0, 1) (a general 4 × 4 inverse leaves rounding there), which `to_index` relies on.
        let affine_row = nalgebra::RowVector4::new(0.0, 0.0, 0.0, 1.0);
        let lps_to_index = if index_to_lps.fixed_view::<1, 4>(3, 0) == affine_row {
            let inv = index_to_lps.fixed_view::<3, 3>(0, 0).try_inverse()?;
            let t = -(inv * index_to_lps.fixed_view::<3, 1>(0, 3));
            let mut m = Matrix4::identity();
            m.fixed_view_mut::<3, 3>(0, 0).copy_from(&inv);
            m.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
            m
        } else {
            index_to_lps.try_inverse()?
        };
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
        // With a last row of (0, 0, 0, 1), three rows and no homogeneous divide: rays call this
        // for every sample. The sums run in the order of nalgebra's `transform_point` (column
        // by column, then the translation), so results are the same to the bit.
        let m = &self.lps_to_index;
        if m.fixed_view::<1, 4>(3, 0) != nalgebra::RowVector4::new(0.0, 0.0, 0.0, 1.0) {
            return IndexPoint(m.transform_point(&p.0));
        }
        let q = &p.0;
        let row = |r: usize| m[(r, 0)] * q.x + m[(r, 1)] * q.y + m[(r, 2)] * q.z + m[(r, 3)];
        IndexPoint(Point3::new(row(0), row(1), row(2)))
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

    #[test]
    fn to_index_is_nalgebras_transform_to_the_bit() {
        // An oblique grid with awkward spacings, and points all over: the three-row product
        // must equal the homogeneous one exactly (rays and masks compare indices).
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        let g = Grid::new(
            [512, 512, 300],
            Vector3::new(-176.35, -96.217, -525.46),
            [
                Vector3::new(0.7 * c, 0.7 * s, 0.013),
                Vector3::new(-0.7 * s, 0.7 * c, 0.0),
                Vector3::new(0.01, -0.02, 1.2),
            ],
        )
        .unwrap();
        // (The fast path is taken: the inverse keeps the affine's last row exactly.)
        assert_eq!(
            g.lps_to_index.fixed_view::<1, 4>(3, 0),
            nalgebra::RowVector4::new(0.0, 0.0, 0.0, 1.0)
        );
        let mut x = 0.123_456_789f64;
        for _ in 0..10_000 {
            let mut next = || {
                x = (x * 9_301.0 + 49_297.0) % 233_280.0;
                x / 233_280.0 * 700.0 - 350.0
            };
            let p = LpsPoint(Point3::new(next(), next(), next()));
            assert_eq!(g.to_index(p).0, g.lps_to_index.transform_point(&p.0));
        }
    }
}
