//! Canonical orientation: every volume is looked at as `[si, ap, lr]` (axis 0 runs head → feet,
//! axis 1 front → back, axis 2 right → left), whatever the acquisition plane, so that the detection
//! code can speak of "above" and "behind" without asking how the series was acquired.

use nalgebra::{Matrix4, Point3, Vector3};
use ndarray::{Array3, ArrayView3, Axis};
use spinetriage_volume::{Grid, IndexPoint, LpsPoint};

/// Maps canonical `[si, ap, lr]` indices onto a volume's own `[k, j, i]` array without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalView {
    /// Grid axis (0 = i, 1 = j, 2 = k) behind each canonical axis.
    pub grid_axis: [usize; 3],
    /// Whether the canonical axis runs against its grid axis.
    pub flipped: [bool; 3],
    /// Voxel counts along the canonical axes.
    pub dims: [usize; 3],
    /// Spacing along the canonical axes, mm.
    pub spacing_mm: [f64; 3],
    /// Canonical index (as x = si, y = ap, z = lr) → LPS mm.
    pub index_to_lps: Matrix4<f64>,
    lps_to_index: Matrix4<f64>,
}

impl CanonicalView {
    /// Chooses, for each of inferior (−z), posterior (+y) and left (+x), the grid axis closest to
    /// it. Oblique acquisitions keep their own sampling; only the labelling of axes changes, and
    /// every measurement goes back to LPS through [`CanonicalView::to_lps`].
    pub fn new(grid: &Grid) -> CanonicalView {
        let dirs: [Vector3<f64>; 3] = std::array::from_fn(|c| grid.direction(c));
        let wanted = [
            Vector3::new(0.0, 0.0, -1.0),
            Vector3::new(0.0, 1.0, 0.0),
            Vector3::new(1.0, 0.0, 0.0),
        ];
        let mut used = [false; 3];
        let mut grid_axis = [0usize; 3];
        let mut flipped = [false; 3];
        for (n, want) in wanted.iter().enumerate() {
            let (best, dot) = (0..3)
                .filter(|c| !used[*c])
                .map(|c| (c, dirs[c].dot(want)))
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap_or((n, 1.0));
            used[best] = true;
            grid_axis[n] = best;
            flipped[n] = dot < 0.0;
        }
        let spacing = grid.spacing_mm();
        let dims: [usize; 3] = std::array::from_fn(|n| grid.dims[grid_axis[n]]);
        // Canonical index → grid index is affine: g[c_n] = a_n or (dims_n − 1 − a_n).
        let mut c2g = Matrix4::<f64>::zeros();
        c2g[(3, 3)] = 1.0;
        for n in 0..3 {
            let c = grid_axis[n];
            if flipped[n] {
                c2g[(c, n)] = -1.0;
                c2g[(c, 3)] = dims[n] as f64 - 1.0;
            } else {
                c2g[(c, n)] = 1.0;
            }
        }
        let index_to_lps = grid.index_to_lps * c2g;
        CanonicalView {
            lps_to_index: index_to_lps.try_inverse().unwrap_or_else(Matrix4::identity),
            index_to_lps,
            grid_axis,
            flipped,
            dims,
            spacing_mm: std::array::from_fn(|n| spacing[grid_axis[n]]),
        }
    }

    /// The volume's data seen in canonical order (a strided view, no copy).
    pub fn view<'a, T>(&self, data: &'a Array3<T>) -> ArrayView3<'a, T> {
        // Array axes are [k, j, i], i.e. grid axis c is array axis 2 − c.
        let mut v = data.view().permuted_axes([
            2 - self.grid_axis[0],
            2 - self.grid_axis[1],
            2 - self.grid_axis[2],
        ]);
        for n in 0..3 {
            if self.flipped[n] {
                v.invert_axis(Axis(n));
            }
        }
        v
    }

    /// LPS position of a continuous canonical index.
    pub fn to_lps(&self, p: [f64; 3]) -> LpsPoint {
        // The grid is affine: the homogeneous transform's divide was a measurable share of
        // measuring and labelling a CT's bodies, which map every voxel they hold.
        let m = &self.index_to_lps;
        LpsPoint(Point3::from(
            m.fixed_view::<3, 3>(0, 0) * nalgebra::Vector3::new(p[0], p[1], p[2])
                + m.fixed_view::<3, 1>(0, 3),
        ))
    }

    /// Continuous canonical index of an LPS position.
    pub fn to_canonical(&self, p: LpsPoint) -> [f64; 3] {
        let q = self.lps_to_index.transform_point(&p.0);
        [q.x, q.y, q.z]
    }

    /// Continuous grid index `(i, j, k)` of a canonical index.
    pub fn to_grid_index(&self, p: [f64; 3]) -> IndexPoint {
        let mut g = [0.0; 3];
        for n in 0..3 {
            g[self.grid_axis[n]] = if self.flipped[n] {
                self.dims[n] as f64 - 1.0 - p[n]
            } else {
                p[n]
            };
        }
        IndexPoint(Point3::new(g[0], g[1], g[2]))
    }

    /// LPS displacement of one step along canonical axis `n`.
    pub fn axis_lps(&self, n: usize) -> Vector3<f64> {
        self.index_to_lps.fixed_view::<3, 1>(0, n).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn sagittal_mr_maps_rows_to_si_and_columns_to_ap() {
        // Sagittal: i (columns) posterior, j (rows) inferior, k (slices) left.
        let grid = Grid::new(
            [4, 5, 3],
            Vector3::new(-10.0, -20.0, 30.0),
            [
                Vector3::new(0.0, 0.8, 0.0),
                Vector3::new(0.0, 0.0, -0.8),
                Vector3::new(4.0, 0.0, 0.0),
            ],
        )
        .expect("grid");
        let cv = CanonicalView::new(&grid);
        assert_eq!(cv.grid_axis, [1, 0, 2]);
        assert_eq!(cv.flipped, [false, false, false]);
        assert_eq!(cv.dims, [5, 4, 3]);
        let mut data = Array3::<f32>::zeros((3, 5, 4));
        data[[2, 1, 3]] = 7.0; // k=2, j=1, i=3
        assert_eq!(cv.view(&data)[[1, 3, 2]], 7.0);
        let lps = cv.to_lps([1.0, 3.0, 2.0]);
        let want = grid.to_lps(IndexPoint(Point3::new(3.0, 1.0, 2.0)));
        assert!(lps.distance_mm(&want) < 1e-9);
    }

    #[test]
    fn axial_ct_with_feet_first_slices_is_flipped() {
        // Axial, k runs upward (superior): canonical axis 0 (downward) must flip it.
        let grid = Grid::new(
            [6, 6, 4],
            Vector3::new(0.0, 0.0, 0.0),
            [
                Vector3::new(0.7, 0.0, 0.0),
                Vector3::new(0.0, 0.7, 0.0),
                Vector3::new(0.0, 0.0, 2.0),
            ],
        )
        .expect("grid");
        let cv = CanonicalView::new(&grid);
        assert_eq!(cv.grid_axis, [2, 1, 0]);
        assert_eq!(cv.flipped, [true, false, false]);
        let mut data = Array3::<f32>::zeros((4, 6, 6));
        data[[3, 2, 1]] = 5.0; // top slice
        assert_eq!(cv.view(&data)[[0, 2, 1]], 5.0);
        let g = cv.to_grid_index([0.0, 2.0, 1.0]);
        assert_eq!((g.0.x, g.0.y, g.0.z), (1.0, 2.0, 3.0));
        assert!((cv.to_lps([0.0, 0.0, 0.0]).0.z - 6.0).abs() < 1e-9);
    }
}
