#!/usr/bin/env python3
"""Times, in one run on the same files, loading a CT series into a float volume with:
spinetriage (`spinetriage load`, release build), pydicom + numpy (read, sort by position,
rescale), and dcm2niix (conversion to NIfTI, its PyPI package). Page cache warm for all.

    python3 benches/compare_load.py [SERIES_DIR] [--runs N]

Without SERIES_DIR it uses (and if needed generates) the 512×512×300 phantom CT of the criterion
bench, in target/bench-data/.
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/spinetriage"


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), min(out)


def pydicom_load(folder):
    import numpy as np
    import pydicom

    ds = [pydicom.dcmread(f) for f in glob.glob(os.path.join(folder, "*.dcm"))]
    n = np.cross(np.array(ds[0].ImageOrientationPatient[:3], float), np.array(ds[0].ImageOrientationPatient[3:], float))
    ds.sort(key=lambda d: float(np.dot(n, np.array(d.ImagePositionPatient, float))))
    vol = np.empty((len(ds), ds[0].Rows, ds[0].Columns), np.float32)
    for k, d in enumerate(ds):
        vol[k] = d.pixel_array * np.float32(d.RescaleSlope) + np.float32(d.RescaleIntercept)
    return vol


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("series", nargs="?")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not BIN.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "spinetriage-cli"], cwd=ROOT, check=True)
    folder = a.series
    if folder is None:
        folder = ROOT / "target/bench-data/ct-512x512x300/dicom/02_ct"
        if not folder.is_dir():
            subprocess.run([str(BIN), "phantom", str(ROOT / "target/bench-data"), "--case", "normal", "--no-mr",
                            "--ct-matrix", "512", "--ct-pixel-mm", "0.5", "--ct-slice-mm", "1", "--ct-slices", "300"],
                           check=True, stdout=subprocess.DEVNULL)
            shutil.move(str(ROOT / "target/bench-data/normal"), str(ROOT / "target/bench-data/ct-512x512x300"))
    folder = str(folder)
    files = glob.glob(os.path.join(folder, "*.dcm"))
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    for f in files:  # warm the page cache
        with open(f, "rb") as fh:
            fh.read()
    rows = []
    rows.append(("spinetriage load", *timed(lambda: subprocess.run([str(BIN), "load", folder], check=True, stdout=subprocess.DEVNULL), a.runs)))
    rows.append(("pydicom + numpy", *timed(lambda: pydicom_load(folder), a.runs)))
    d2n = shutil.which("dcm2niix")
    if d2n:
        tmp = tempfile.mkdtemp()
        rows.append(("dcm2niix (to .nii)", *timed(lambda: subprocess.run([d2n, "-o", tmp, "-f", "v", "-z", "n", folder], check=True, stdout=subprocess.DEVNULL), a.runs)))
        shutil.rmtree(tmp)
    print(f"{len(files)} files, {mb:.0f} MB, {os.cpu_count()} CPUs, median of {a.runs} runs\n")
    print("| tool | median s | best s | MB/s (median) |")
    print("|---|---|---|---|")
    for name, med, best in rows:
        print(f"| {name} | {med:.3f} | {best:.3f} | {mb / med:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
