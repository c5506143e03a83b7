//! Binary morphology on small blocks: separable box erosion and dilation, hole filling.

use ndarray::{Array3, ArrayView3};
use spinetriage_volume::Sample;

/// Dilation (`grow = true`) or erosion with a box of half-widths `r` voxels per axis.
pub fn box_filter(mask: &Array3<u8>, r: [usize; 3], grow: bool) -> Array3<u8> {
    let mut cur = mask.as_standard_layout().into_owned();
    let (n0, n1, n2) = cur.dim();
    let dims = [n0, n1, n2];
    let Some(flat) = cur.as_slice_mut() else {
        return cur;
    };
    let mut src: Vec<u8> = Vec::new();
    let mut counts: Vec<u16> = Vec::new();
    for (ax, &rad) in r.iter().enumerate() {
        if rad == 0 || flat.is_empty() {
            continue;
        }
        src.clear();
        src.extend_from_slice(flat);
        // Along `ax`, whole rows of `inner` voxels at a time: a running count per voxel of the
        // row, added at the window's leading row and removed at its trailing one. Rows are
        // contiguous, so every axis reads memory in order (strided lanes were most of the body
        // growth's time).
        let len = dims[ax];
        let inner: usize = dims[ax + 1..].iter().product();
        let outer: usize = dims[..ax].iter().product();
        if inner == 1 {
            // The contiguous axis: per lane, prefix counts, then each voxel's window as the
            // difference of two of them. Both loops are free of per-voxel branches (a running
            // count that tested the lane's ends at every voxel was most of the body growth's
            // morphology).
            let mut prefix = vec![0u32; len + 1];
            for (out, lane) in flat.chunks_exact_mut(len).zip(src.chunks_exact(len)) {
                for (i, v) in lane.iter().enumerate() {
                    prefix[i + 1] = prefix[i] + u32::from(*v != 0);
                }
                window_counts(out, &prefix, rad, grow);
            }
            continue;
        }
        counts.clear();
        counts.resize(inner, 0);
        for o in 0..outer {
            let base = o * len * inner;
            let row = |i: usize| base + i * inner..base + (i + 1) * inner;
            counts.fill(0);
            for i in 0..=rad.min(len - 1) {
                for (c, v) in counts.iter_mut().zip(&src[row(i)]) {
                    *c += u16::from(*v != 0);
                }
            }
            for i in 0..len {
                let lo = i.saturating_sub(rad);
                let hi = (i + rad + 1).min(len);
                let inside = hi - lo == 2 * rad + 1;
                let out = &mut flat[row(i)];
                if grow {
                    for (o, c) in out.iter_mut().zip(&counts) {
                        *o = u8::from(*c > 0);
                    }
                } else {
                    // Outside the block counts as background for erosion.
                    let full = (2 * rad + 1) as u16;
                    for (o, c) in out.iter_mut().zip(&counts) {
                        *o = u8::from(inside && *c == full);
                    }
                }
                if i + rad + 1 < len {
                    for (c, v) in counts.iter_mut().zip(&src[row(i + rad + 1)]) {
                        *c += u16::from(*v != 0);
                    }
                }
                if i >= rad {
                    for (c, v) in counts.iter_mut().zip(&src[row(i - rad)]) {
                        *c -= u16::from(*v != 0);
                    }
                }
            }
        }
    }
    cur
}

/// One lane of [`box_filter`] along the contiguous axis, from the lane's prefix counts
/// (`prefix[i]` = set voxels before `i`; `out.len() + 1` of them).
fn window_counts(out: &mut [u8], prefix: &[u32], rad: usize, grow: bool) {
    let len = out.len();
    let full = 2 * rad + 1;
    // The ends, where the window is cut by the lane's (outside counts as background).
    let end = |i: usize| {
        let (lo, hi) = (i.saturating_sub(rad), (i + rad + 1).min(len));
        let c = prefix[hi] - prefix[lo];
        u8::from(if grow {
            c > 0
        } else {
            hi - lo == full && c as usize == full
        })
    };
    let mid = rad..len.saturating_sub(rad).max(rad);
    for i in (0..mid.start.min(len)).chain(mid.end..len) {
        out[i] = end(i);
    }
    if mid.is_empty() {
        return;
    }
    let windows = out[mid.clone()]
        .iter_mut()
        .zip(&prefix[mid.start + rad + 1..])
        .zip(&prefix[mid.start - rad..]);
    if grow {
        for ((o, hi), lo) in windows {
            *o = u8::from(hi - lo > 0);
        }
    } else {
        for ((o, hi), lo) in windows {
            *o = u8::from((hi - lo) as usize == full);
        }
    }
}

/// Opening: erosion then dilation.
pub fn open(mask: &Array3<u8>, r: [usize; 3]) -> Array3<u8> {
    box_filter(&box_filter(mask, r, false), r, true)
}

/// Closing: dilation then erosion.
pub fn close(mask: &Array3<u8>, r: [usize; 3]) -> Array3<u8> {
    box_filter(&box_filter(mask, r, true), r, false)
}

/// Fills holes plane by plane across `axis` (background not connected to the plane's border).
pub fn fill_holes_2d(mask: &mut Array3<u8>, axis: usize) {
    let dims = mask.dim();
    let dims = [dims.0, dims.1, dims.2];
    if mask.as_slice().is_none() {
        let mut own = mask.as_standard_layout().into_owned();
        fill_holes_2d(&mut own, axis);
        mask.assign(&own);
        return;
    }
    let Some(flat) = mask.as_slice_mut() else {
        return;
    };
    // Flat offsets: a plane across `axis` is spanned by the other two axes (`u`, `v`).
    let strides = [dims[1] * dims[2], dims[2], 1];
    let (u, v) = match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let (n0, n1) = (dims[u], dims[v]);
    let (su, sv) = (strides[u], strides[v]);
    let mut outside = Vec::new();
    let mut stack = Vec::new();
    for plane in 0..dims[axis.min(2)] {
        let base = plane * strides[axis.min(2)];
        let at = |a: usize, b: usize| base + a * su + b * sv;
        // Only the box around the plane's foreground is searched: all outside it is background
        // reaching the border, and so is any background on the box's edge. Most of a body's
        // block is background around it, which the search would otherwise walk voxel by voxel.
        let (mut lo, mut hi) = ([usize::MAX; 2], [0usize; 2]);
        for a in 0..n0 {
            for b in 0..n1 {
                if flat[at(a, b)] != 0 {
                    lo = [lo[0].min(a), lo[1].min(b)];
                    hi = [hi[0].max(a), hi[1].max(b)];
                }
            }
        }
        if lo[0] > hi[0] {
            continue;
        }
        let (m0, m1) = (hi[0] + 1 - lo[0], hi[1] + 1 - lo[1]);
        let at = |a: usize, b: usize| at(lo[0] + a, lo[1] + b);
        outside.clear();
        outside.resize(m0 * m1, false);
        for a in 0..m0 {
            for b in 0..m1 {
                if (a == 0 || b == 0 || a + 1 == m0 || b + 1 == m1) && flat[at(a, b)] == 0 {
                    outside[a * m1 + b] = true;
                    stack.push((a, b));
                }
            }
        }
        while let Some((a, b)) = stack.pop() {
            let mut visit = |x: usize, y: usize| {
                if flat[at(x, y)] == 0 && !outside[x * m1 + y] {
                    outside[x * m1 + y] = true;
                    stack.push((x, y));
                }
            };
            if a > 0 {
                visit(a - 1, b);
            }
            if a + 1 < m0 {
                visit(a + 1, b);
            }
            if b > 0 {
                visit(a, b - 1);
            }
            if b + 1 < m1 {
                visit(a, b + 1);
            }
        }
        for a in 0..m0 {
            for b in 0..m1 {
                if !outside[a * m1 + b] {
                    flat[at(a, b)] = 1;
                }
            }
        }
    }
}

/// Separable box mean of half-widths `radius` (clipped at the block's edges).
pub fn box_mean<T: Sample>(block: ArrayView3<'_, T>, radius: [usize; 3]) -> Array3<f32> {
    let mut out = spinetriage_volume::to_f32_standard(block);
    let (d0, d1, d2) = out.dim();
    let dims = [d0, d1, d2];
    // Whole rows at a time (every lane of an axis advances together, reading memory in order),
    // each lane's prefix sums in f64 from its start, as lane by lane.
    let mut prefix: Vec<f64> = Vec::new();
    let mut src: Vec<f32> = Vec::new();
    for (axis, &r) in radius.iter().enumerate() {
        let Some(dst) = out.as_slice_mut() else {
            break;
        };
        if r == 0 || dst.is_empty() {
            continue;
        }
        src.clear();
        src.extend_from_slice(dst);
        let n = dims[axis];
        let inner: usize = dims[axis + 1..].iter().product();
        prefix.clear();
        prefix.resize((n + 1) * inner, 0.0);
        for (lanes, out) in src
            .chunks_exact(n * inner)
            .zip(dst.chunks_exact_mut(n * inner))
        {
            for i in 0..n {
                let (done, next) = prefix.split_at_mut((i + 1) * inner);
                let before = &done[i * inner..];
                for ((p, b), x) in next[..inner]
                    .iter_mut()
                    .zip(before)
                    .zip(&lanes[i * inner..(i + 1) * inner])
                {
                    *p = b + f64::from(*x);
                }
            }
            for i in 0..n {
                let a = i.saturating_sub(r);
                let b = (i + r + 1).min(n);
                let count = (b - a) as f64;
                for ((o, hi), lo) in out[i * inner..(i + 1) * inner]
                    .iter_mut()
                    .zip(&prefix[b * inner..(b + 1) * inner])
                    .zip(&prefix[a * inner..(a + 1) * inner])
                {
                    *o = ((hi - lo) / count) as f32;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_cuts_a_thin_bridge_and_keeps_blocks() {
        let mut m = Array3::<u8>::zeros((1, 20, 9));
        for b in 0..9 {
            for a in 2..8 {
                m[[0, a, b]] = u8::from(b != 4);
            }
        }
        m[[0, 4, 4]] = 1; // one-voxel bridge
        let o = open(&m, [0, 1, 1]);
        assert_eq!(o[[0, 4, 4]], 0);
        assert_eq!(o[[0, 4, 1]], 1);
        assert_eq!(o[[0, 2, 0]], 1);
    }

    #[test]
    fn box_filter_matches_a_brute_force_box() {
        // A pseudo-random mask; every axis, both operations, radii 0–2.
        let (n0, n1, n2) = (7, 9, 11);
        let mut m = Array3::<u8>::zeros((n0, n1, n2));
        let mut x = 12345u32;
        for v in m.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *v = u8::from(!(x >> 16).is_multiple_of(3));
        }
        // Contiguous-axis radii up to past half the lane (11 voxels), where no window is whole.
        for r in [
            [1, 0, 0],
            [0, 2, 0],
            [0, 0, 1],
            [2, 1, 1],
            [0, 0, 5],
            [0, 0, 6],
            [1, 0, 12],
        ] {
            for grow in [true, false] {
                let got = box_filter(&m, r, grow);
                for ((a, b, c), v) in got.indexed_iter() {
                    let mut any = false;
                    let mut all = true;
                    for da in -(r[0] as i64)..=r[0] as i64 {
                        for db in -(r[1] as i64)..=r[1] as i64 {
                            for dc in -(r[2] as i64)..=r[2] as i64 {
                                let q = [a as i64 + da, b as i64 + db, c as i64 + dc];
                                let inside = q[0] >= 0
                                    && q[1] >= 0
                                    && q[2] >= 0
                                    && (q[0] as usize) < n0
                                    && (q[1] as usize) < n1
                                    && (q[2] as usize) < n2;
                                let set =
                                    inside && m[[q[0] as usize, q[1] as usize, q[2] as usize]] != 0;
                                any |= set;
                                all &= set;
                            }
                        }
                    }
                    let want = u8::from(if grow { any } else { all });
                    assert_eq!(*v, want, "{r:?} {grow} at {a},{b},{c}");
                }
            }
        }
    }

    #[test]
    fn holes_are_filled_but_open_bays_are_not() {
        let mut m = Array3::<u8>::zeros((7, 7, 1));
        for a in 1..6 {
            for b in 1..6 {
                m[[a, b, 0]] = 1;
            }
        }
        m[[2, 2, 0]] = 0; // hole
        m[[5, 4, 0]] = 0; // bay open to outside
        m[[4, 4, 0]] = 0;
        let before = m.clone();
        fill_holes_2d(&mut m, 2);
        assert_eq!(m[[2, 2, 0]], 1);
        assert_eq!(m[[4, 4, 0]], 0);
        assert_eq!(m[[5, 4, 0]], 0);
        // The same plane across axis 0 or 1, strided (a permuted view made owned) or contiguous.
        for (axis, order, back) in [(0, [2, 0, 1], [1, 2, 0]), (1, [0, 2, 1], [0, 2, 1])] {
            let strided = before.clone().permuted_axes(order);
            let mut contiguous = strided.as_standard_layout().into_owned();
            let mut strided = strided;
            fill_holes_2d(&mut strided, axis);
            fill_holes_2d(&mut contiguous, axis);
            assert_eq!(strided.permuted_axes(back), m, "axis {axis}");
            assert_eq!(contiguous.permuted_axes(back), m, "axis {axis}");
        }
    }

    #[test]
    fn holes_match_a_flood_from_the_whole_border() {
        // Rings and specks placed away from the planes' borders (the searched box is then
        // smaller than the plane) and touching them, across each axis.
        let mut m = Array3::<u8>::zeros((9, 12, 14));
        let mut x = 777u32;
        for ((a, b, c), v) in m.indexed_iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // The first planes hold specks only two voxels in from every edge.
            let inner = (2..10).contains(&b) && (2..12).contains(&c) && a >= 2;
            *v = u8::from((x >> 16).is_multiple_of(4) && (a >= 5 || inner));
        }
        // A closed ring in every plane across axis 0: its inside is a hole there.
        for a in 0..9 {
            for b in 3..=7 {
                for c in 4..=8 {
                    if b == 3 || b == 7 || c == 4 || c == 8 {
                        m[[a, b, c]] = 1;
                    }
                }
            }
        }
        for axis in 0..3 {
            let mut got = m.clone();
            fill_holes_2d(&mut got, axis);
            let mut want = m.clone();
            for plane in 0..m.shape()[axis] {
                let mut p = want.index_axis_mut(ndarray::Axis(axis), plane);
                let (n0, n1) = p.dim();
                let mut outside = ndarray::Array2::from_elem((n0, n1), false);
                let mut stack: Vec<(usize, usize)> = (0..n0)
                    .flat_map(|a| (0..n1).map(move |b| (a, b)))
                    .filter(|&(a, b)| a == 0 || b == 0 || a + 1 == n0 || b + 1 == n1)
                    .collect();
                while let Some((a, b)) = stack.pop() {
                    if p[[a, b]] != 0 || outside[[a, b]] {
                        continue;
                    }
                    outside[[a, b]] = true;
                    stack.extend(
                        [
                            (a.wrapping_sub(1), b),
                            (a + 1, b),
                            (a, b.wrapping_sub(1)),
                            (a, b + 1),
                        ]
                        .into_iter()
                        .filter(|&(x, y)| x < n0 && y < n1),
                    );
                }
                p.zip_mut_with(&outside, |v, o| *v |= u8::from(!*o));
            }
            assert_eq!(got, want, "across axis {axis}");
            assert!(got != m, "a hole was filled across axis {axis}");
        }
    }

    #[test]
    fn box_mean_is_the_lane_by_lane_mean() {
        let block = Array3::from_shape_fn((5, 7, 9), |(a, b, c)| {
            ((a * 63 + b * 9 + c) * 7919 % 101) as f32 * 0.37
        });
        for radius in [[1, 1, 0], [0, 2, 1], [2, 0, 3]] {
            let got = box_mean(block.view(), radius);
            // The former lane-by-lane version, bit for bit.
            let mut want = block.clone();
            for (axis, r) in radius.iter().enumerate() {
                if *r == 0 {
                    continue;
                }
                let src = want.clone();
                for (mut dst, s) in want
                    .lanes_mut(ndarray::Axis(axis))
                    .into_iter()
                    .zip(src.lanes(ndarray::Axis(axis)))
                {
                    let n = s.len();
                    let mut prefix = vec![0.0f64; n + 1];
                    for (i, x) in s.iter().enumerate() {
                        prefix[i + 1] = prefix[i] + f64::from(*x);
                    }
                    for i in 0..n {
                        let a = i.saturating_sub(*r);
                        let b = (i + r + 1).min(n);
                        dst[i] = ((prefix[b] - prefix[a]) / (b - a) as f64) as f32;
                    }
                }
            }
            assert_eq!(got, want, "{radius:?}");
        }
    }
}
