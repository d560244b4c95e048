"""Where the cross-validation errors are: near the reference surface (boundary disagreement) or far
from it (missed or spurious parts), and how many at the atrium's superior/inferior ends.

    .venv/bin/python bench/error_analysis.py --workdir bench/work/ours --tag 5fold

Reads the final masks of a `run_benchmark.py` work folder and the reference labels in ../shared; writes
bench/results/error-analysis-<date>[-tag].json and .md and prints the table. Takes about a minute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import write_result
from laseg.io import read_volume

DATA = (REPO / ".." / "shared" / "data" / "msd_task02_heart").resolve()


def error_profile(
    mask: np.ndarray, truth: np.ndarray, spacing_zyx_mm: tuple[float, float, float], near_mm: float, end_fraction: float
) -> dict:
    """Missed (FN) and extra (FP) voxels, the share of each within near_mm of the reference surface,
    the share in the first and last end_fraction of the atrium's slices, and the voxels of the largest connected
    part of each (a whole missed or added structure, as against a thin shell along the boundary)."""
    distance_inside = ndimage.distance_transform_edt(truth, sampling=spacing_zyx_mm)  # to the surface, from inside
    distance_outside = ndimage.distance_transform_edt(~truth, sampling=spacing_zyx_mm)
    slices = np.flatnonzero(truth.any(axis=(1, 2)))
    n_end = max(1, int(end_fraction * len(slices)))
    at_ends = np.zeros(len(truth), bool)
    at_ends[slices[:n_end]] = at_ends[slices[-n_end:]] = True
    row = {"reference_voxels": int(truth.sum())}
    for kind, wrong, distance in (
        ("missed", truth & ~mask, distance_inside),
        ("extra", mask & ~truth, distance_outside),
    ):
        row[f"{kind}_voxels"] = int(wrong.sum())
        row[f"{kind}_near_surface"] = int((wrong & (distance <= near_mm)).sum())
        row[f"{kind}_at_ends"] = int(wrong[at_ends].sum())
        parts, n_parts = ndimage.label(wrong)
        row[f"{kind}_largest_part"] = int(np.bincount(parts.ravel())[1:].max()) if n_parts else 0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "work" / "ours")
    parser.add_argument("--near-mm", type=float, default=2.5, help="'near the surface': within this distance of it")
    parser.add_argument("--end-fraction", type=float, default=0.15, help="share of the atrium's slices at each end")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    masks = sorted(args.workdir.glob("results/cv/fold_*/masks/*.nii.gz"))
    if not masks:
        raise SystemExit(f"{args.workdir}: no results/cv/fold_*/masks/*.nii.gz (run bench/run_benchmark.py first)")
    rows = []
    for path in masks:
        patient = path.name.removesuffix(".nii.gz")
        mask, geometry = read_volume(path)
        truth, _ = read_volume(DATA / "labelsTr" / f"{patient}.nii.gz")
        rows.append(
            {
                "patient": patient,
                **error_profile(mask > 0, truth > 0, geometry.spacing_zyx_mm, args.near_mm, args.end_fraction),
            }
        )
        print(rows[-1], flush=True)

    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "patient"}
    lines = [
        f"Error analysis {dt.date.today()} of {args.workdir.name} ({len(rows)} held-out cases)",
        "",
        (
            f"| | voxels, share of the reference | share within {args.near_mm:g} mm of the reference surface "
            f"| share in the first and last {args.end_fraction:.0%} of the atrium's slices "
            "| share in each case's largest connected part |"
        ),
        "| --- | --- | --- | --- | --- |",
    ]
    for kind in ("missed", "extra"):
        n = total[f"{kind}_voxels"]
        lines.append(
            f"| {kind} | {n / total['reference_voxels']:.3f} | {total[f'{kind}_near_surface'] / n:.2f} "
            f"| {total[f'{kind}_at_ends'] / n:.2f} | {total[f'{kind}_largest_part'] / n:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    record = {
        "workdir": args.workdir.name,
        "near_mm": args.near_mm,
        "end_fraction": args.end_fraction,
        "total": total,
        "per_case": rows,
    }
    write_result("error-analysis", args.tag, dt.date.today(), record, table)


if __name__ == "__main__":
    main()
