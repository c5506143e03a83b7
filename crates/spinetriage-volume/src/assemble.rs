//! Series → volumes: slices ordered by position along the normal, spacing from positions, every
//! geometric irregularity detected, reported and resolved by splitting or resampling.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nalgebra::Vector3;
use ndarray::Array3;
use rayon::prelude::*;
use serde::Serialize;
use spinetriage_dicom::{Limits, Series, SeriesKind};

use crate::grid::Grid;
use crate::pixels::{fits_i16, read_native_as, read_pixels, Store};
use crate::{Sample, VolumeError, Voxels};

/// Something about a series' geometry that a reader must know.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GeometryProblem {
    /// Slices of different size, orientation or pixel spacing: the series was split.
    MixedStacks {
        /// How many volumes the series was split into.
        stacks: usize,
    },
    /// Several slices at one position.
    DuplicatePositions {
        /// Number of positions holding more than one slice.
        positions: usize,
        /// What was done: `split` into repeated stacks, or `kept first` slice per position.
        action: String,
    },
    /// Gaps between slices differ: resampled to a regular spacing by linear interpolation.
    UnevenSpacing {
        /// Smallest gap along the normal, mm.
        min_gap_mm: f64,
        /// Largest gap along the normal, mm.
        max_gap_mm: f64,
        /// Spacing of the resampled volume, mm.
        resampled_to_mm: f64,
    },
    /// Gaps that are whole multiples of the regular spacing: slices missing, filled by interpolation.
    MissingSlices {
        /// Number of missing slices.
        count: usize,
    },
    /// Slice positions step off the slice normal (gantry tilt): resampled onto an orthogonal grid.
    GantryTilt {
        /// Angle between the slice step and the normal, degrees.
        angle_deg: f64,
        /// In-plane shift per slice, mm.
        shift_per_slice_mm: f64,
    },
    /// Only one slice: a 2-D image; through-plane spacing taken from SliceThickness (or 1 mm).
    SingleSlice {
        /// The through-plane extent used, mm.
        thickness_mm: f64,
    },
}

/// Summary of a volume's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ValueStats {
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Mean value.
    pub mean: f64,
}

/// A 3-D volume with exact patient geometry.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Study Instance UID (empty for NIfTI).
    pub study_uid: String,
    /// Series Instance UID, or the NIfTI path.
    pub series_uid: String,
    /// Frame of Reference UID: volumes sharing it can be combined through LPS coordinates.
    pub frame_of_reference_uid: Option<String>,
    /// What the series is.
    pub kind: SeriesKind,
    /// Series description.
    pub description: Option<String>,
    /// Voxel values indexed `[k, j, i]` (slice, row, column): HU on CT, rescaled signal on MR.
    pub data: Voxels,
    /// Voxel index ↔ LPS geometry.
    pub grid: Grid,
    /// Irregularities found and how they were resolved.
    pub problems: Vec<GeometryProblem>,
    /// Source files in slice order (after sorting; empty for NIfTI).
    pub sources: Vec<PathBuf>,
    /// SOP Class and SOP Instance UIDs of the source files, in slice order, so that reports can
    /// reference the images they were measured on (empty for NIfTI).
    pub instances: Vec<SopRef>,
}

/// A reference to one DICOM instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SopRef {
    /// SOP Class UID.
    pub class_uid: String,
    /// SOP Instance UID.
    pub instance_uid: String,
}

impl Volume {
    /// Trilinear sample at a continuous index; `None` outside the volume. A voxel extends half a
    /// step around its centre, so the outer half-voxel takes the edge value.
    pub fn sample_index(&self, i: f64, j: f64, k: f64) -> Option<f32> {
        crate::with_voxels!(&self.data, |a| trilinear(a, self.grid.dims, [i, j, k]))
    }

    /// Trilinear samples at `start + dir × (n · step_mm)` for n = 0, 1, … up to `count` points
    /// (LPS mm), handed to `out` in order up to the first point outside the volume. The same
    /// values as [`Volume::sample_lps`] at each point, with the storage matched once per line
    /// instead of once per sample (rays read millions of samples).
    pub fn sample_line_lps(
        &self,
        start: crate::LpsPoint,
        dir: Vector3<f64>,
        step_mm: f64,
        count: usize,
        mut out: impl FnMut(f32),
    ) {
        crate::with_voxels!(&self.data, |a| {
            for n in 0..count {
                let x = n as f64 * step_mm;
                let q = self.grid.to_index(crate::LpsPoint(start.0 + dir * x)).0;
                match trilinear(a, self.grid.dims, [q.x, q.y, q.z]) {
                    Some(v) => out(v),
                    None => break,
                }
            }
        })
    }

    /// Minimum, maximum and mean voxel value, computed in parallel.
    pub fn value_stats(&self) -> ValueStats {
        crate::with_voxels!(&self.data, |a| stats(a))
    }

    /// Trilinear sample at an LPS position; `None` outside the volume.
    pub fn sample_lps(&self, p: crate::LpsPoint) -> Option<f32> {
        let q = self.grid.to_index(p).0;
        self.sample_index(q.x, q.y, q.z)
    }
}

/// Trilinear sample of `a` (grid extents `[ni, nj, nk]`) at a continuous index; `None` outside.
/// A voxel extends half a step around its centre, so the outer half-voxel takes the edge value.
#[inline(always)]
fn trilinear<T: Sample>(
    a: &Array3<T>,
    [ni, nj, nk]: [usize; 3],
    [i, j, k]: [f64; 3],
) -> Option<f32> {
    let inside = |v: f64, n: usize| n > 0 && v >= -0.5 && v <= n as f64 - 0.5;
    if !(inside(i, ni) && inside(j, nj) && inside(k, nk)) {
        return None;
    }
    let clamp = |v: f64, n: usize| v.clamp(0.0, (n - 1) as f64);
    let (i, j, k) = (clamp(i, ni), clamp(j, nj), clamp(k, nk));
    // Clamped to ≥ 0, so truncation is the floor (without a libm call per sample).
    let (i0, j0, k0) = (i as usize, j as usize, k as usize);
    let (i1, j1, k1) = (
        (i0 + 1).min(ni - 1),
        (j0 + 1).min(nj - 1),
        (k0 + 1).min(nk - 1),
    );
    let (fi, fj, fk) = (
        (i - i0 as f64) as f32,
        (j - j0 as f64) as f32,
        (k - k0 as f64) as f32,
    );
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let d = corners(a, [i0, i1], [j0, j1], [k0, k1]);
    let c00 = lerp(d[0], d[1], fi);
    let c01 = lerp(d[2], d[3], fi);
    let c10 = lerp(d[4], d[5], fi);
    let c11 = lerp(d[6], d[7], fi);
    Some(lerp(lerp(c00, c01, fj), lerp(c10, c11, fj), fk))
}

/// The eight values around a sample, `[k0 j0 i0, k0 j0 i1, k0 j1 i0, …, k1 j1 i1]`.
#[inline(always)]
fn corners<T: Sample>(a: &Array3<T>, i: [usize; 2], j: [usize; 2], k: [usize; 2]) -> [f32; 8] {
    // Rays read millions of samples: on the (usual) contiguous array, offsets into the flat
    // slice instead of an ndarray index with three bounds checks per corner.
    let (_, nj, ni) = a.dim();
    match a.as_slice() {
        Some(flat) => eight(|k, j, i| flat[(k * nj + j) * ni + i].value(), i, j, k),
        None => eight(|k, j, i| a[[k, j, i]].value(), i, j, k),
    }
}

/// `at` at the eight corners, in the order of [`corners`].
#[inline(always)]
fn eight(
    at: impl Fn(usize, usize, usize) -> f32,
    [i0, i1]: [usize; 2],
    [j0, j1]: [usize; 2],
    [k0, k1]: [usize; 2],
) -> [f32; 8] {
    [
        at(k0, j0, i0),
        at(k0, j0, i1),
        at(k0, j1, i0),
        at(k0, j1, i1),
        at(k1, j0, i0),
        at(k1, j0, i1),
        at(k1, j1, i0),
        at(k1, j1, i1),
    ]
}

/// [`Volume::value_stats`] of one storage.
fn stats<T: Sample>(a: &Array3<T>) -> ValueStats {
    let flat: Vec<T>;
    let data = match a.as_slice() {
        Some(d) => d,
        None => {
            flat = a.iter().copied().collect();
            &flat
        }
    };
    let (min, max, sum) = data
        .par_chunks(1 << 16)
        .map(|c| {
            let (mut lo, mut hi, mut s) = (f32::INFINITY, f32::NEG_INFINITY, 0.0f64);
            for x in c {
                let x = x.value();
                lo = lo.min(x);
                hi = hi.max(x);
                s += f64::from(x);
            }
            (lo, hi, s)
        })
        .reduce(
            || (f32::INFINITY, f32::NEG_INFINITY, 0.0),
            |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 + b.2),
        );
    ValueStats {
        min,
        max,
        mean: sum / data.len().max(1) as f64,
    }
}

/// A zeroed volume buffer. On Linux the buffer is advised into transparent huge pages: first-touch
/// page faults on 4 KiB pages otherwise cost as much as decoding a CT (measured in
/// `benches/load_ct.rs`).
fn zeroed_volume<T: Copy + Default>(nk: usize, rows: usize, cols: usize) -> Array3<T> {
    let n = nk * rows * cols;
    let v = vec![T::default(); n];
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let aligned = start.div_ceil(PAGE) * PAGE;
        let end = start + n * std::mem::size_of::<T>();
        if end > aligned + PAGE {
            // SAFETY: the range lies inside the allocation and is page aligned; MADV_HUGEPAGE only
            // changes how the kernel backs it, never its contents. Failure is harmless.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    (end - aligned) / PAGE * PAGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    Array3::from_shape_vec((nk, rows, cols), v).expect("shape matches length")
}

/// One frame of one instance, with its place in space.
#[derive(Debug, Clone)]
struct SliceRef {
    instance: usize,
    frame: usize,
    position: Vector3<f64>,
    row_dir: Vector3<f64>,
    col_dir: Vector3<f64>,
    /// [between rows, between columns], mm.
    spacing: [f64; 2],
    thickness: Option<f64>,
    rows: u32,
    columns: u32,
    instance_number: i64,
}

fn slice_refs(series: &Series) -> Result<Vec<SliceRef>, VolumeError> {
    let mut out = Vec::new();
    for (n, h) in series.instances.iter().enumerate() {
        for f in 0..h.frames as usize {
            let g = h.frame_geometry(f);
            let missing = |attribute| VolumeError::MissingGeometry {
                path: h.path.clone(),
                frame: f,
                attribute,
            };
            let p = g.position_lps_mm.ok_or(missing("ImagePositionPatient"))?;
            let o = g.orientation.ok_or(missing("ImageOrientationPatient"))?;
            let s = g.pixel_spacing_mm.ok_or(missing("PixelSpacing"))?;
            if !(s[0] > 0.0 && s[1] > 0.0) {
                return Err(missing("PixelSpacing"));
            }
            let r = Vector3::new(o[0], o[1], o[2]);
            let c = Vector3::new(o[3], o[4], o[5]);
            if (r.norm() - 1.0).abs() > 0.05
                || (c.norm() - 1.0).abs() > 0.05
                || r.dot(&c).abs() > 0.05
            {
                return Err(missing("ImageOrientationPatient"));
            }
            out.push(SliceRef {
                instance: n,
                frame: f,
                position: Vector3::new(p[0], p[1], p[2]),
                row_dir: r.normalize(),
                col_dir: c.normalize(),
                spacing: s,
                thickness: g.slice_thickness_mm,
                rows: h.rows,
                columns: h.columns,
                instance_number: h.instance_number.unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Key grouping slices that can form one stack: same matrix, orientation and pixel spacing.
fn stack_key(s: &SliceRef) -> (u32, u32, [i64; 6], [i64; 2]) {
    let q = |v: f64| (v * 1000.0).round() as i64;
    (
        s.rows,
        s.columns,
        [
            q(s.row_dir.x),
            q(s.row_dir.y),
            q(s.row_dir.z),
            q(s.col_dir.x),
            q(s.col_dir.y),
            q(s.col_dir.z),
        ],
        [q(s.spacing[0]), q(s.spacing[1])],
    )
}

/// Two positions closer than this along the normal are the same slice position.
const SAME_POSITION_MM: f64 = 0.01;

/// The geometry of one stack of a series, worked out from headers alone (no pixel data read).
#[derive(Debug, Clone)]
pub struct StackPlan {
    slices: Vec<SliceRef>,
    depth_mm: Vec<f64>,
    /// The output grid (orthogonal and regular when resampling).
    pub grid: Grid,
    /// Irregularities found and how they will be resolved.
    pub problems: Vec<GeometryProblem>,
    /// Regular spacing the stack is resampled to, when it must be.
    pub resample_to_mm: Option<f64>,
}

impl StackPlan {
    /// Number of acquired slices in the stack.
    pub fn source_slices(&self) -> usize {
        self.slices.len()
    }
}

/// Works out how a series becomes volumes: splits it into stacks, orders slices along the normal,
/// measures spacing from positions and finds every irregularity, without reading pixel data.
pub fn plan(series: &Series, limits: &Limits) -> Result<Vec<StackPlan>, VolumeError> {
    let slices = slice_refs(series)?;
    if slices.is_empty() {
        return Err(VolumeError::Empty {
            series_uid: series.uid.clone(),
        });
    }
    let mut groups: BTreeMap<_, Vec<SliceRef>> = BTreeMap::new();
    for s in slices {
        groups.entry(stack_key(&s)).or_default().push(s);
    }
    let mixed = groups.len();
    let mut plans = Vec::new();
    for (_, g) in groups {
        for (stack, dup_problem) in split_duplicates(g) {
            let mut p = plan_stack(series, stack, limits)?;
            if let Some(d) = dup_problem {
                p.problems.insert(0, d);
            }
            if mixed > 1 {
                p.problems
                    .insert(0, GeometryProblem::MixedStacks { stacks: mixed });
            }
            plans.push(p);
        }
    }
    Ok(plans)
}

/// Assembles a series into one or more volumes (more when it holds several stacks).
pub fn assemble(series: &Series, limits: &Limits) -> Result<Vec<Volume>, VolumeError> {
    plan(series, limits)?
        .into_iter()
        .map(|p| load_stack(series, p, limits))
        .collect()
}

fn normal_of(s: &SliceRef) -> Vector3<f64> {
    s.row_dir.cross(&s.col_dir).normalize()
}

/// Sorts by position along the normal and resolves duplicate positions: when every position repeats
/// the same number of times (multi-echo, repeated acquisitions) the stack is split; otherwise the
/// first slice (lowest InstanceNumber) at each position is kept.
fn split_duplicates(mut g: Vec<SliceRef>) -> Vec<(Vec<SliceRef>, Option<GeometryProblem>)> {
    let n = normal_of(&g[0]);
    g.sort_by(|a, b| {
        n.dot(&a.position)
            .total_cmp(&n.dot(&b.position))
            .then(a.instance_number.cmp(&b.instance_number))
    });
    let mut runs: Vec<Vec<SliceRef>> = Vec::new();
    for s in g {
        match runs.last_mut() {
            Some(r) if (n.dot(&r[0].position) - n.dot(&s.position)).abs() < SAME_POSITION_MM => {
                r.push(s)
            }
            _ => runs.push(vec![s]),
        }
    }
    let dups = runs.iter().filter(|r| r.len() > 1).count();
    if dups == 0 {
        return vec![(runs.into_iter().flatten().collect(), None)];
    }
    let m = runs[0].len();
    if runs.len() > 1 && runs.iter().all(|r| r.len() == m) {
        let mut out: Vec<Vec<SliceRef>> = vec![Vec::new(); m];
        for r in runs {
            for (i, s) in r.into_iter().enumerate() {
                out[i].push(s);
            }
        }
        let p = GeometryProblem::DuplicatePositions {
            positions: dups,
            action: format!("split into {m} stacks"),
        };
        return out.into_iter().map(|s| (s, Some(p.clone()))).collect();
    }
    let kept = runs
        .into_iter()
        .map(|mut r| r.swap_remove(0))
        .collect::<Vec<_>>();
    vec![(
        kept,
        Some(GeometryProblem::DuplicatePositions {
            positions: dups,
            action: "kept the first slice (lowest InstanceNumber) at each position".into(),
        }),
    )]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn plan_stack(
    series: &Series,
    stack: Vec<SliceRef>,
    limits: &Limits,
) -> Result<StackPlan, VolumeError> {
    let first = &stack[0];
    let (rows, cols) = (first.rows as usize, first.columns as usize);
    limits
        .check_volume(first.rows, first.columns, stack.len())
        .map_err(|reason| VolumeError::TooLarge {
            series_uid: series.uid.clone(),
            reason,
        })?;
    let n = normal_of(first);
    let (r, c) = (first.row_dir, first.col_dir);
    let (dy, dx) = (first.spacing[0], first.spacing[1]);
    let depth: Vec<f64> = stack.iter().map(|s| n.dot(&s.position)).collect();
    let gaps: Vec<f64> = depth.windows(2).map(|w| w[1] - w[0]).collect();
    let mut problems = Vec::new();
    let origin = first.position;
    let (k_axis, nk, resample) = if gaps.is_empty() {
        let t = first.thickness.filter(|t| *t > 0.0).unwrap_or(1.0);
        problems.push(GeometryProblem::SingleSlice { thickness_mm: t });
        (n * t, 1, None)
    } else {
        let step = median(&mut gaps.clone());
        let tol = (0.01 * step).max(0.02);
        let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
        let max_gap = gaps.iter().copied().fold(0.0, f64::max);
        // In-plane drift of each slice relative to the first, measured in the slice plane.
        let shifts: Vec<f64> = stack
            .iter()
            .map(|s| {
                let d = s.position - origin;
                (d - n * n.dot(&d)).norm()
            })
            .collect();
        let extent = depth[depth.len() - 1] - depth[0];
        let shift_per_mm = shifts[shifts.len() - 1] / extent.max(1e-9);
        // Positions are written to ~0.01 mm; a drift beyond 0.05 mm is real.
        let tilted = shifts.iter().any(|s| *s > 0.05);
        if tilted {
            problems.push(GeometryProblem::GantryTilt {
                angle_deg: shift_per_mm.atan().to_degrees(),
                shift_per_slice_mm: shift_per_mm * step,
            });
        }
        let uneven = max_gap - min_gap > tol;
        if uneven {
            let multiples = gaps.iter().all(|g| {
                let m = (g / step).round();
                m >= 1.0 && (g - m * step).abs() <= tol
            });
            if multiples {
                let count = gaps.iter().map(|g| (g / step).round() as usize - 1).sum();
                problems.push(GeometryProblem::MissingSlices { count });
            } else {
                problems.push(GeometryProblem::UnevenSpacing {
                    min_gap_mm: min_gap,
                    max_gap_mm: max_gap,
                    resampled_to_mm: step,
                });
            }
        }
        if uneven || tilted {
            let nk = (extent / step).round() as usize + 1;
            limits
                .check_volume(first.rows, first.columns, nk)
                .map_err(|reason| VolumeError::TooLarge {
                    series_uid: series.uid.clone(),
                    reason,
                })?;
            (n * step, nk, Some(step))
        } else {
            (n * step, stack.len(), None)
        }
    };

    let grid = Grid::new([cols, rows, nk], origin, [r * dx, c * dy, k_axis]).ok_or_else(|| {
        VolumeError::MissingGeometry {
            path: series.instances[first.instance].path.clone(),
            frame: first.frame,
            attribute: "ImageOrientationPatient",
        }
    })?;
    Ok(StackPlan {
        slices: stack,
        depth_mm: depth,
        grid,
        problems,
        resample_to_mm: resample,
    })
}

/// Reads a planned stack's pixels and builds its volume.
fn load_stack(series: &Series, plan: StackPlan, limits: &Limits) -> Result<Volume, VolumeError> {
    let StackPlan {
        slices: stack,
        depth_mm: depth,
        grid,
        problems,
        resample_to_mm: resample,
    } = plan;
    let first = &stack[0];
    let (rows, cols) = (first.rows as usize, first.columns as usize);
    let [_, _, nk] = grid.dims;
    let (r, c) = (first.row_dir, first.col_dir);
    let (dy, dx) = (first.spacing[0], first.spacing[1]);
    let n = normal_of(first);
    let origin = first.position;
    let single_frames = stack
        .iter()
        .all(|s| series.instances[s.instance].frames == 1);
    let integral = resample.is_none()
        && single_frames
        && stack
            .iter()
            .all(|s| fits_i16(&series.instances[s.instance]));
    let as_i16 = if integral {
        read_straight(series, &stack, limits, zeroed_volume(nk, rows, cols))?
    } else {
        None
    };
    let data = if let Some(a) = as_i16 {
        Voxels::I16(a)
    } else {
        let mut data = zeroed_volume::<f32>(nk, rows, cols);
        match resample {
            None if single_frames => {
                // Every value fits a float: `None` cannot come back.
                data = read_straight(series, &stack, limits, data)?.ok_or_else(|| {
                    VolumeError::Unsupported {
                        path: series.instances[first.instance].path.clone(),
                        reason: "values not representable".into(),
                    }
                })?;
            }
            None => {
                let pixels = load_slices(series, &stack, rows * cols, limits)?;
                for (k, p) in pixels.iter().enumerate() {
                    data.index_axis_mut(ndarray::Axis(0), k)
                        .as_slice_mut()
                        .expect("fresh arrays are contiguous")
                        .copy_from_slice(p);
                }
            }
            Some(step) => {
                let pixels = load_slices(series, &stack, rows * cols, limits)?;
                // Regular orthogonal grid: each output slice blends the two input slices that bracket
                // it along the normal, each sampled bilinearly at the output pixel's in-plane position
                // (which absorbs the tilt shift). Outside an input's field of view: the series minimum.
                let fill = pixels
                    .iter()
                    .flat_map(|p| p.iter().copied())
                    .fold(f32::INFINITY, f32::min);
                data.axis_iter_mut(ndarray::Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(k, mut out)| {
                        let d = depth[0] + k as f64 * step;
                        let b = depth
                            .partition_point(|&x| x < d - 1e-9)
                            .min(depth.len() - 1);
                        let a = b.saturating_sub(1);
                        let t = if b == a || depth[b] - depth[a] < 1e-9 {
                            0.0
                        } else {
                            ((d - depth[a]) / (depth[b] - depth[a])).clamp(0.0, 1.0)
                        };
                        let plane_origin = origin + n * (k as f64 * step);
                        let offset = |s: &SliceRef| {
                            let dv = plane_origin - s.position;
                            (dv.dot(&r) / dx, dv.dot(&c) / dy)
                        };
                        let (oa, ob) = (offset(&stack[a]), offset(&stack[b]));
                        for j in 0..rows {
                            for i in 0..cols {
                                let at = |s: usize, o: (f64, f64)| {
                                    bilinear(&pixels[s], cols, rows, i as f64 + o.0, j as f64 + o.1)
                                };
                                let (va, vb) = (at(a, oa), at(b, ob));
                                out[[j, i]] = match (va, vb) {
                                    (Some(x), Some(y)) => x + (y - x) * t as f32,
                                    (Some(x), None) if t < 0.5 => x,
                                    (None, Some(y)) if t >= 0.5 => y,
                                    _ => fill,
                                };
                            }
                        }
                    });
            }
        }
        Voxels::F32(data)
    };
    let h0 = &series.instances[first.instance];
    Ok(Volume {
        study_uid: h0.study_uid.clone(),
        series_uid: series.uid.clone(),
        frame_of_reference_uid: h0.frame_of_reference_uid.clone(),
        kind: series.classification.kind,
        description: series.description.clone(),
        data,
        grid,
        problems,
        sources: stack
            .iter()
            .map(|s| series.instances[s.instance].path.clone())
            .collect(),
        instances: {
            // A multi-frame instance backs several slices: reference it once.
            let mut refs: Vec<SopRef> = Vec::new();
            for s in &stack {
                let h = &series.instances[s.instance];
                if refs
                    .last()
                    .is_none_or(|r| r.instance_uid != h.sop_instance_uid)
                {
                    refs.push(SopRef {
                        class_uid: h.sop_class_uid.clone(),
                        instance_uid: h.sop_instance_uid.clone(),
                    });
                }
            }
            refs
        },
    })
}

/// One slice per single-frame instance, straight into `data` in parallel (no intermediate copy);
/// a file off the fast native path is decoded in full and its values stored. `None` when a value
/// cannot be stored exactly as `O`.
fn read_straight<O: Store>(
    series: &Series,
    stack: &[SliceRef],
    limits: &Limits,
    mut data: Array3<O>,
) -> Result<Option<Array3<O>>, VolumeError> {
    let fits = data
        .axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(stack.par_iter())
        .map(|(mut dst, s)| -> Result<bool, VolumeError> {
            let h = &series.instances[s.instance];
            let dst = dst.as_slice_mut().expect("fresh arrays are contiguous");
            if let Some(fits) = read_native_as(h, limits, dst)? {
                return Ok(fits);
            }
            let px = read_pixels(&h.path, limits)?;
            if px.values.len() != dst.len() {
                return Err(VolumeError::Unsupported {
                    path: h.path.clone(),
                    reason: "matrix size changed between header and pixel read".into(),
                });
            }
            let mut fits = true;
            for (o, v) in dst.iter_mut().zip(&px.values) {
                let v = f64::from(*v);
                fits &= O::fits(v);
                *o = O::store(v);
            }
            Ok(fits)
        })
        .try_reduce(|| true, |a, b| Ok(a && b))?;
    Ok(fits.then_some(data))
}

fn bilinear(p: &[f32], cols: usize, rows: usize, x: f64, y: f64) -> Option<f32> {
    if !(x > -0.5 && y > -0.5 && x < cols as f64 - 0.5 && y < rows as f64 - 0.5) {
        return None;
    }
    let x = x.clamp(0.0, (cols - 1) as f64);
    let y = y.clamp(0.0, (rows - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(cols - 1), (y0 + 1).min(rows - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let top = p[y0 * cols + x0] + (p[y0 * cols + x1] - p[y0 * cols + x0]) * fx;
    let bot = p[y1 * cols + x0] + (p[y1 * cols + x1] - p[y1 * cols + x0]) * fx;
    Some(top + (bot - top) * fy)
}

/// Pixels of the slices of one instance, each with its index in the stack.
type SlicePixels = Vec<(usize, Vec<f32>)>;

/// Reads the pixels of every slice of a stack, each instance once, in parallel.
fn load_slices(
    series: &Series,
    stack: &[SliceRef],
    frame_len: usize,
    limits: &Limits,
) -> Result<Vec<Vec<f32>>, VolumeError> {
    let mut by_instance: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (k, s) in stack.iter().enumerate() {
        by_instance
            .entry(s.instance)
            .or_default()
            .push((k, s.frame));
    }
    let parts: Vec<Result<SlicePixels, VolumeError>> = by_instance
        .into_par_iter()
        .map(|(inst, frames)| {
            let px = read_pixels(&series.instances[inst].path, limits)?;
            if px.rows * px.columns != frame_len {
                return Err(VolumeError::Unsupported {
                    path: series.instances[inst].path.clone(),
                    reason: "matrix size changed between header and pixel read".into(),
                });
            }
            if px.frames == 1 && frames.len() == 1 {
                return Ok(vec![(frames[0].0, px.values)]);
            }
            Ok(frames
                .into_iter()
                .map(|(k, f)| (k, px.values[f * frame_len..(f + 1) * frame_len].to_vec()))
                .collect())
        })
        .collect();
    let mut out = vec![Vec::new(); stack.len()];
    for part in parts {
        for (k, v) in part? {
            out[k] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod line_tests {
    use super::*;
    use crate::LpsPoint;

    fn volume(data: Voxels, dims: [usize; 3]) -> Volume {
        // An oblique grid: rows and columns tilted in the patient, 0.7 × 0.8 × 2.5 mm.
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        let grid = Grid::new(
            dims,
            Vector3::new(-10.0, 5.0, 20.0),
            [
                Vector3::new(0.7 * c, 0.7 * s, 0.0),
                Vector3::new(-0.8 * s, 0.8 * c, 0.1),
                Vector3::new(0.0, -0.2, 2.5),
            ],
        )
        .expect("grid");
        Volume {
            study_uid: String::new(),
            series_uid: "line-test".into(),
            frame_of_reference_uid: None,
            kind: SeriesKind::Ct,
            description: None,
            data,
            grid,
            problems: Vec::new(),
            sources: Vec::new(),
            instances: Vec::new(),
        }
    }

    #[test]
    fn a_line_reads_the_same_values_as_single_samples_and_stops_at_the_edge() {
        let dims = [23, 17, 9];
        let value = |k: usize, j: usize, i: usize| ((k * 131 + j * 37 + i * 11) % 97) as i16 - 40;
        let i16s = Array3::from_shape_fn((dims[2], dims[1], dims[0]), |(k, j, i)| value(k, j, i));
        let f32s = i16s.mapv(|v| f32::from(v) * 1.5);
        for data in [Voxels::I16(i16s), Voxels::F32(f32s)] {
            let v = volume(data, dims);
            let start = LpsPoint::new(-6.0, 9.0, 26.0);
            let dir = Vector3::new(0.6, 0.3, 0.74).normalize();
            let mut line = Vec::new();
            v.sample_line_lps(start, dir, 0.25, 400, |x| line.push(x));
            let single: Vec<f32> = (0..400)
                .map(|n| v.sample_lps(LpsPoint(start.0 + dir * (n as f64 * 0.25))))
                .take_while(Option::is_some)
                .flatten()
                .collect();
            assert!(line.len() > 20 && line.len() < 400, "{}", line.len());
            assert_eq!(line, single);
        }
    }
}
