#!/usr/bin/env python3
"""Where the expert masks of `real-mr-t2-lumbar-masks` end, relative to the endplates' cortex.

The measurement convention (README, docs/measurements.md) takes heights between the *outer*
surfaces of the endplates, cortex included. The issue compares our heights with the same code
run on the expert masks, so any part of the cortex the masks leave out is a systematic
difference, not an error of ours. On T2 the cortex is the dark band between bright marrow and
the disc (or the tissue in front of the body).

For every body and every image column through its middle third (antero-posterior, at the
body's lateral middle ±1 voxel), this takes the profile across the mask's superior and
inferior edge (and, at mid-height, the anterior edge), normalised by the body's median along
the column; prints the median profile; and measures how far beyond the mask's edge the outer
cortical surface lies: where the profile, going outwards from the dark band's minimum, crosses
half-way to the brightest value outside it. Spacing is 1 mm (the data's README).

    python3 benches/real_t2_mask_edges.py [DATA_DIR]

Session 12 (docs/segmentation.md): the outer surface lies a median 1.4 mm (superior), 1.3 mm
(inferior) and 2.1 mm (anterior) beyond the masks' edges.
"""
import glob
import sys

import nibabel as nib
import numpy as np

R = 6  # profile half-length, voxels


def profiles(data_dir):
    """Edge profiles per side, outside first: positions -R..-1 outside, 0 the mask's last
    voxel, 1..R inside."""
    out = {"superior": [], "inferior": [], "anterior": []}
    files = sorted(glob.glob(f"{data_dir}/vb2_*_t2.nii.gz"))
    if not files:
        sys.exit(f"no vb2_*_t2.nii.gz in {data_dir}")
    for f in files:
        img = np.asarray(nib.load(f).dataobj).astype(float)
        masks = np.asarray(nib.load(f.replace("_t2.", "_bodies.")).dataobj).astype(int)
        # axis 0 superior -> inferior, axis 1 anterior -> posterior, axis 2 lateral
        for label in range(1, masks.max() + 1):
            body = masks == label
            if body.sum() < 500:
                continue
            z, y, x = np.nonzero(body)
            cx = int(np.median(x))
            for yy in range(int(np.percentile(y, 35)), int(np.percentile(y, 65)) + 1):
                for xx in (cx - 1, cx, cx + 1):
                    idx = np.nonzero(body[:, yy, xx])[0]
                    if len(idx) < 10:
                        continue
                    top, bottom = idx.min(), idx.max()
                    if top - R < 0 or bottom + R >= img.shape[0]:
                        continue
                    level = np.median(img[idx, yy, xx])
                    out["superior"].append(img[top - R : top + R + 1, yy, xx] / level)
                    out["inferior"].append(img[bottom - R : bottom + R + 1, yy, xx][::-1] / level)
            zc = int(np.median(z))
            for zz in range(zc - 3, zc + 4):
                for xx in (cx - 1, cx, cx + 1):
                    idx = np.nonzero(body[zz, :, xx])[0]
                    if len(idx) < 10 or idx.min() - R < 0:
                        continue
                    a0 = idx.min()
                    level = np.median(img[zz, idx, xx])
                    out["anterior"].append(img[zz, a0 - R : a0 + R + 1, xx] / level)
    return out


def outer_surface(prof):
    """Position (voxels, negative = outside the mask's last voxel) of the outer cortical surface,
    or None."""
    pos = np.arange(-R, R + 1)
    near = np.nonzero((pos >= -3) & (pos <= 1))[0]
    i_min = near[np.argmin(prof[near])]
    outside = prof[:i_min]
    if len(outside) < 2:
        return None
    i_max = int(np.argmax(outside))
    half = 0.5 * (prof[i_min] + outside[i_max])
    for k in range(i_min - 1, i_max - 1, -1):
        if prof[k] >= half:
            step = prof[k] - prof[k + 1]
            t = (half - prof[k + 1]) / step if step > 0 else 0.0
            return pos[k + 1] - t
    return None


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/real-mr-t2-lumbar-masks"
    for side, rows in profiles(data_dir).items():
        rows = np.array(rows)
        median = np.median(rows, axis=0)
        print(f"{side}: {len(rows)} columns; median profile, outside -> mask edge -> inside:")
        print("   " + " ".join(f"{v:.2f}" for v in median))
        found = [o for o in (outer_surface(p) for p in rows) if o is not None]
        # The mask's edge is half a voxel beyond its last voxel.
        beyond = -(np.array(found) + 0.5)
        q25, q50, q75 = np.percentile(beyond, [25, 50, 75])
        print(
            f"   outer cortical surface beyond the mask's edge: median {q50:.2f} mm "
            f"(IQR {q25:.2f}..{q75:.2f}), {len(found)} columns"
        )


if __name__ == "__main__":
    main()
