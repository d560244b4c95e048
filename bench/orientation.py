"""Where the anatomy lies in the two benchmark datasets' voxels, which their headers do not say.

Every step of the workflow reorients a scan by its header (to LPS) before slicing, so a network learns one plane's
picture of the heart. A scanner's DICOM, or dcm2niix's NIfTI of it, says where the patient lies; these two datasets'
public files do not. `anatomical_dataset` writes a dataset's cases with the direction that does, for the shipped
model's training (bench/train_shipped_model.py) and for benchmarks on scans oriented as a scanner would
(bench/run_benchmark.py --anatomical).

    .venv/bin/python bench/orientation.py --figure /tmp/orientation.png   # to check the directions by eye

draws, for the first labelled case of each dataset, as stored and with its anatomical direction, the axial, coronal
and sagittal slices through the atrium's centre as this workflow slices them (LPS; axial with anterior up and the
patient's left on the right, coronal and sagittal with superior up), label outlined in red. With the anatomical
direction the spine and descending aorta lie behind the atrium, the aorta left of the spine, the arch on top.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from laseg.cohort import discover_cases
from laseg.io import Geometry, canonical_spacing_zyx_mm, read_volume, to_canonical, write_volume

# Direction cosines (ITK, LPS world) that put each dataset's voxel axes where the anatomy is, read off the images:
# - MSD Task02 stores sagittal acquisitions under an axial header (diag(-1, -1, 1)): its "axial" slices show the
#   aortic arch and the spine side by side. Its voxel axes x, y, z run anterior, superior and to the patient's right
#   (the descending aorta lies on the left of the spine, the great vessels superior): a rotation, not a mirror.
# - LA2018's arrays are in DICOM (LPS) order under a header of identity in nibabel's RAS convention, diag(-1, -1, 1)
#   in ITK's: as stored the descending aorta lies anterior to the atrium; identity puts it posterior and to the left.
ANATOMICAL_DIRECTION = {
    "msd_task02_heart": (0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "la2018_lge_dev": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
}
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()  # where both datasets live, never inside the repository


def with_direction(source: Path, target: Path, direction: tuple[float, ...]) -> None:
    """`source` rewritten to `target` with the same voxels, spacing and origin and another direction; kept while
    newer than `source` (a rewrite would look like a new scan to Snakemake and re-slice it), rewritten after the
    source changed (a stale copy would be scored as the scan)."""
    if target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return
    array, geometry = read_volume(source)
    write_volume(array, Geometry(geometry.size, geometry.spacing_mm, geometry.origin_mm, direction), target)


def anatomical_dataset(source: Path, name: str, target: Path) -> Path:
    """An MSD-layout copy of the dataset `name` at `source` (every case, same ids and dataset.json) with its
    anatomical direction."""
    for case in discover_cases(source):
        for path in (case.image, case.label):
            if path is not None:
                with_direction(path, target / path.parent.name / path.name, ANATOMICAL_DIRECTION[name])
    dataset = json.loads((source / "dataset.json").read_text())
    if not (target / "dataset.json").is_file() or json.loads((target / "dataset.json").read_text()) != dataset:
        shutil.copy(source / "dataset.json", target / "dataset.json")
    return target


def orthogonal_slices(image: Path, label: Path, direction: tuple[float, ...] | None) -> np.ndarray:
    """Axial, coronal and sagittal slices through the label's centre, side by side (BGR, 240 px high), in the
    canonical frame the workflow slices; `direction` replaces the header's when given."""
    array, geometry = read_volume(image)
    mask, _ = read_volume(label)
    if direction is not None:
        geometry = Geometry(geometry.size, geometry.spacing_mm, geometry.origin_mm, direction)
    array, mask = to_canonical(array, geometry).astype(np.float32), to_canonical(mask, geometry, mask=True)
    sz, sy, sx = canonical_spacing_zyx_mm(geometry)
    z, y, x = (int(v) for v in np.argwhere(mask > 0).mean(axis=0))
    low, high = np.percentile(array, [1, 99.5])
    tiles = []
    # Canonical z runs inferior to superior: flip it so that superior is up.
    for plane, outline, height_mm, width_mm in (
        (array[z], mask[z], sy, sx),
        (array[::-1, y], mask[::-1, y], sz, sx),
        (array[::-1, :, x], mask[::-1, :, x], sz, sy),
    ):
        grey = np.clip((plane - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8)
        tile = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        contours, _ = cv2.findContours((outline > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, (0, 0, 255), 1)
        width = round(240 * plane.shape[1] * width_mm / (plane.shape[0] * height_mm))
        tiles.append(cv2.resize(tile, (width, 240)))
    return np.hstack(tiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figure", type=Path, required=True, help="PNG to write")
    args = parser.parse_args()
    rows = []
    for name, direction in ANATOMICAL_DIRECTION.items():
        case = next(c for c in discover_cases(SHARED_DATA / name) if c.label is not None)
        for header in (None, direction):
            row = orthogonal_slices(case.image, case.label, header)
            text = f"{name} {case.patient}: " + ("as stored" if header is None else "anatomical direction")
            cv2.putText(row, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
            rows.append(row)
    width = max(row.shape[1] for row in rows)
    cv2.imwrite(str(args.figure), np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]))
    print(args.figure)


if __name__ == "__main__":
    main()
