//! Binary morphology on small blocks: separable box erosion and dilation, hole filling.

use ndarray::{Array3, Axis};

/// Dilation (`grow = true`) or erosion with a box of half-widths `r` voxels per axis.
pub fn box_filter(mask: &Array3<u8>, r: [usize; 3], grow: bool) -> Array3<u8> {
    let mut cur = mask.clone();
    for (ax, &rad) in r.iter().enumerate() {
        if rad == 0 {
            continue;
        }
        let mut next = cur.clone();
        for (mut out, inp) in next
            .lanes_mut(Axis(ax))
            .into_iter()
            .zip(cur.lanes(Axis(ax)))
        {
            let n = inp.len();
            // Running count of set voxels in the window gives O(n) per lane.
            let mut prefix = vec![0usize; n + 1];
            for i in 0..n {
                prefix[i + 1] = prefix[i] + usize::from(inp[i] != 0);
            }
            for i in 0..n {
                let lo = i.saturating_sub(rad);
                let hi = (i + rad + 1).min(n);
                let set = prefix[hi] - prefix[lo];
                // Outside the block counts as background for erosion.
                let full = hi - lo == 2 * rad + 1 && set == hi - lo;
                out[i] = u8::from(if grow { set > 0 } else { full });
            }
        }
        cur = next;
    }
    cur
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
    for mut plane in mask.axis_iter_mut(Axis(axis)) {
        let (n0, n1) = plane.dim();
        let mut outside = vec![false; n0 * n1];
        let mut stack = Vec::new();
        for a in 0..n0 {
            for b in 0..n1 {
                if (a == 0 || b == 0 || a + 1 == n0 || b + 1 == n1) && plane[[a, b]] == 0 {
                    outside[a * n1 + b] = true;
                    stack.push((a, b));
                }
            }
        }
        while let Some((a, b)) = stack.pop() {
            let mut visit = |x: usize, y: usize| {
                if plane[[x, y]] == 0 && !outside[x * n1 + y] {
                    outside[x * n1 + y] = true;
                    stack.push((x, y));
                }
            };
            if a > 0 {
                visit(a - 1, b);
            }
            if a + 1 < n0 {
                visit(a + 1, b);
            }
            if b > 0 {
                visit(a, b - 1);
            }
            if b + 1 < n1 {
                visit(a, b + 1);
            }
        }
        for a in 0..n0 {
            for b in 0..n1 {
                if !outside[a * n1 + b] {
                    plane[[a, b]] = 1;
                }
            }
        }
    }
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
        fill_holes_2d(&mut m, 2);
        assert_eq!(m[[2, 2, 0]], 1);
        assert_eq!(m[[4, 4, 0]], 0);
        assert_eq!(m[[5, 4, 0]], 0);
    }
}
