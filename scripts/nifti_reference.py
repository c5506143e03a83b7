#!/usr/bin/env python3
"""Reference affines and voxel sums of the shared NIfTI files, from nibabel (the independent checker).

    python3 scripts/nifti_reference.py ../shared/data > fixtures/nifti-reference.json
"""
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    out = {"nibabel": nib.__version__, "files": {}}
    for p in sorted(root.glob("real-mr-t2-lumbar-*/*.nii.gz")):
        im = nib.load(p)
        d = np.asarray(im.dataobj, dtype=np.float64)
        # nibabel's affine is RAS; spinetriage works in DICOM LPS.
        lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ im.affine
        out["files"][str(p.relative_to(root))] = {
            "shape": list(d.shape[:3]),
            "affine_lps": lps.tolist(),
            "sum": float(d.sum()),
            "value_at": [[10, 20, 5], float(d[10, 20, 5])],
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
