#!/usr/bin/env python3
"""Reference pixel statistics from pydicom, the independent checker for spinetriage's decoders.

For every file under the given shared-data folders, writes what pydicom reads after the modality
LUT (RescaleSlope/Intercept, as `apply_modality_lut`): shape, min, max, sum and 32 values at fixed
positions, or the error pydicom raised. Only derived numbers are stored, never the data itself.

    python3 scripts/pydicom_reference.py ../shared/data > fixtures/pydicom-reference.json
"""
import json
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

FOLDERS = ["pydicom-test-files", "dcm_qa_ts", "dcm_qa_ct_ge", "real-ct-j2k-t11-t12"]
LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
         "1.2.840.10008.1.2.4.91"}


def entry(path: Path) -> dict:
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as e:  # noqa: BLE001 - any failure is a reference outcome
        return {"status": "error", "reason": f"read: {type(e).__name__}: {e}"[:200]}
    if "PixelData" not in ds:
        return {"status": "no_pixels"}
    try:
        arr = ds.pixel_array
        if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
            return {"status": "colour", "shape": list(arr.shape)}
        vals = apply_modality_lut(arr, ds).astype(np.float64)
    except Exception as e:  # noqa: BLE001
        return {"status": "error", "reason": f"decode: {type(e).__name__}: {e}"[:200]}
    flat = vals.reshape(-1)
    idx = np.linspace(0, flat.size - 1, 32).round().astype(np.int64)
    ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    return {
        "status": "ok",
        "transfer_syntax": ts,
        "lossy": ts in LOSSY,
        "frames": int(getattr(ds, "NumberOfFrames", 1) or 1),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "count": int(flat.size),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "sum": float(flat.sum()),
        "samples_at": idx.tolist(),
        "samples": flat[idx].tolist(),
    }


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    out = {"pydicom": pydicom.__version__, "files": {}}
    for folder in FOLDERS:
        for p in sorted((root / folder).rglob("*")):
            if p.is_file():
                out["files"][str(p.relative_to(root))] = entry(p)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
