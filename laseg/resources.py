"""Memory a job needs, from the sizes of its inputs: what the rules' mem_mb asks SLURM (or a local run) for.

Only sidecars and the plan are read (no arrays, no torch), so the estimates are cheap at scheduling time.
The figures per voxel count the arrays a job holds at once; bench/memory_bound.py checks them against the
peak RSS of real jobs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

# Calibrated on bench/memory_bound.py (MSD Task02, 4-20 training cases: peak RSS 969-1239 MB against requests of
# 1.4-1.8x that) and predict jobs' peak RSS (at most 902 MB on MSD scans of 110 x 256 x 256).
RUNTIME_MB = 800  # Python with torch, SimpleITK, numpy and scipy loaded, before any data
TRAINING_STATE_MB = 300  # two small U-Nets, AdamW state, a batch and its activations
# Training: a full scan being prepared (float32 image, uint8 label, a view transposed, resampling buffers) ...
BYTES_PER_SOURCE_VOXEL_TRAIN = 17
# ... and every training scan at the network grid, one view at a time (float32 image and target, bool mask).
BYTES_PER_GRID_VOXEL = 9
# Prediction: image, per-view prepared copy and probability, the summed probability, the NIfTI written back.
BYTES_PER_SOURCE_VOXEL_PREDICT = 32
MARGIN = 1.25
VIEW_PLANES = {"axial": (1, 2), "coronal": (0, 2), "sagittal": (0, 1)}  # canonical (z, y, x) axes in the slice


def _sidecar(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def grid_voxels(shape_zyx: Sequence[int], spacing_zyx_mm: Sequence[float], grid_mm_by_view: dict | None) -> int:
    """Voxels of a scan at the network grid, for the view that needs most (the source count without a plan)."""
    if not grid_mm_by_view:
        return int(math.prod(shape_zyx))
    most = 0
    for view, grid in grid_mm_by_view.items():
        rows, cols = VIEW_PLANES[view]
        slices = next(axis for axis in range(3) if axis not in (rows, cols))
        in_plane = [max(1, round(shape_zyx[a] * spacing_zyx_mm[a] / g)) for a, g in zip((rows, cols), grid)]
        most = max(most, shape_zyx[slices] * in_plane[0] * in_plane[1])
    return most


def train_memory_mb(sidecars: Sequence[str | os.PathLike], plan: str | os.PathLike | None, fallback_mb: int) -> int:
    """The train job's memory: one full scan being prepared plus every training scan at the plan's grid.
    `fallback_mb` while the inputs do not exist yet (Snakemake asks again when the job is ready)."""
    try:
        cases = [_sidecar(path) for path in sidecars]
        grids = json.loads(Path(plan).read_text())["settings"]["model"]["grid_spacing_mm"]["value"] if plan else None
    except (OSError, KeyError, json.JSONDecodeError):
        return fallback_mb
    if not cases:
        return fallback_mb
    largest = max(math.prod(case["canonical_shape_zyx"]) for case in cases)
    at_grid = sum(grid_voxels(case["canonical_shape_zyx"], case["spacing_zyx_mm"], grids) for case in cases)
    data = BYTES_PER_SOURCE_VOXEL_TRAIN * largest + BYTES_PER_GRID_VOXEL * at_grid
    return int(MARGIN * (RUNTIME_MB + TRAINING_STATE_MB + data / 2**20))


# The stage-2 train job: its 3D U-Net's activations for a batch of two patches and AdamW state. The MSD fold-0 job
# (16 boxes, 80 x 64 x 48 patch) peaked at 1,462 MB RSS, LA2018's (32 boxes) at no more than 1,388 MB
# (bench/results/benchmark-2026-12-08-*-fold0-*-dev-amd.json); the estimate asks 1.25 x (800 + 1200 + data).
STAGE2_TRAINING_STATE_MB = 1200
# ... and each training case's box at the stage's grid (float32 image and label), about a twentieth of its scan.
STAGE2_BYTES_PER_SOURCE_VOXEL = 0.5


def stage2_train_memory_mb(sidecars: Sequence[str | os.PathLike], fallback_mb: int) -> int:
    """The stage-2 train job's memory: one full scan being cut to its box plus every training case's box."""
    try:
        voxels = [math.prod(_sidecar(path)["canonical_shape_zyx"]) for path in sidecars]
    except (OSError, KeyError, json.JSONDecodeError):
        return fallback_mb
    if not voxels:
        return fallback_mb
    data = BYTES_PER_SOURCE_VOXEL_TRAIN * max(voxels) + STAGE2_BYTES_PER_SOURCE_VOXEL * sum(voxels)
    return int(MARGIN * (RUNTIME_MB + STAGE2_TRAINING_STATE_MB + data / 2**20))


def predict_memory_mb(sidecar: str | os.PathLike, fallback_mb: int) -> int:
    """A predict job's memory: one scan and its probability maps."""
    try:
        voxels = math.prod(_sidecar(sidecar)["canonical_shape_zyx"])
    except (OSError, KeyError, json.JSONDecodeError):
        return fallback_mb
    return int(MARGIN * (RUNTIME_MB + BYTES_PER_SOURCE_VOXEL_PREDICT * voxels / 2**20))
