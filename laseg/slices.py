"""Checked, lossless axial slice stacks: one per patient, in the canonical view, with the source geometry."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laseg.io import (
    CANONICAL_ORIENTATION,
    Geometry,
    InputError,
    ScanPath,
    atomic_path,
    canonical_spacing_zyx_mm,
    count_nonfinite_voxels,
    obliquity_degrees,
    read_volume,
    resamples_to_world_axes,
    to_canonical,
)


@dataclass(frozen=True)
class SliceStack:
    """A patient's scan as axial slices (axis 0), canonical orientation, float32 source intensities."""

    patient: str
    image: np.ndarray  # (slices, rows, cols) float32, exact source values
    label: np.ndarray | None  # (slices, rows, cols) uint8 {0, 1}
    source_geometry: Geometry  # of the original file: predictions are written back onto it
    spacing_zyx_mm: tuple[float, float, float]  # of the canonical arrays


def load_checked_case(patient: str, image_path: ScanPath, label_path: str | Path | None) -> SliceStack:
    """Read and validate one case (a scan file, or a DICOM series' files); every problem is a one-line
    InputError naming the file or series."""
    image, geometry = read_volume(image_path)
    single_file = isinstance(image_path, (str, os.PathLike))
    name = str(image_path) if single_file else f"{Path(next(iter(image_path))).parent} (DICOM series)"
    if min(geometry.size) < 2:
        raise InputError(f"{name}: volume size {geometry.size} has a dimension below 2 voxels")
    if not np.issubdtype(image.dtype, np.number):
        raise InputError(f"{name}: non-numeric voxel type {image.dtype}")
    # ITK reads NaN in a NIfTI as 0, so NIfTI files are also checked raw; DICOM pixels are integers.
    nonfinite = (count_nonfinite_voxels(image_path) if single_file else 0) + int((~np.isfinite(image)).sum())
    if nonfinite:
        raise InputError(f"{name}: {nonfinite} voxels are NaN or Inf")
    if float(image.max()) == float(image.min()):
        raise InputError(f"{name}: constant image (every voxel is {float(image.max())})")
    label = None
    if label_path is not None:
        label_raw, label_geometry = read_volume(label_path)
        if not label_geometry.matches(geometry):
            raise InputError(
                f"{label_path}: label geometry differs from its image {Path(name).name} "
                f"(size {label_geometry.size} vs {geometry.size}, spacing {label_geometry.spacing_mm} vs "
                f"{geometry.spacing_mm}, origin {label_geometry.origin_mm} vs {geometry.origin_mm})"
            )
        values = np.unique(label_raw)
        if not set(values.tolist()) <= {0, 1}:
            raise InputError(f"{label_path}: label values must be 0/1, found {values[:10].tolist()}")
        if not values.max(initial=0):
            raise InputError(f"{label_path}: label is empty (no left-atrium voxel)")
        label = to_canonical(label_raw.astype(np.uint8), geometry, mask=True)
    canonical_image = to_canonical(image.astype(np.float32), geometry)
    return SliceStack(patient, canonical_image, label, geometry, canonical_spacing_zyx_mm(geometry))


def save_slices(stack: SliceStack, npz_path: str | os.PathLike, sidecar_path: str | os.PathLike) -> None:
    """Write the stack as a compressed npz plus a JSON sidecar of the source geometry."""
    arrays = {"image": stack.image, "spacing_zyx_mm": np.asarray(stack.spacing_zyx_mm)}
    if stack.label is not None:
        arrays["label"] = stack.label
    sidecar = {
        "patient": stack.patient,
        "labelled": stack.label is not None,
        "source_geometry": stack.source_geometry.to_dict(),
        "source_orientation": stack.source_geometry.orientation,
        "canonical_orientation": CANONICAL_ORIENTATION,
        "obliquity_degrees": round(obliquity_degrees(stack.source_geometry), 2),
        "resampled_to_world_axes": resamples_to_world_axes(stack.source_geometry),
        "canonical_shape_zyx": list(stack.image.shape),
        "spacing_zyx_mm": list(stack.spacing_zyx_mm),
    }
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    with atomic_path(sidecar_path) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2) + "\n")


@dataclass(frozen=True)
class StoredStack:
    """A slice stack on disk, read when needed: training holds network-grid data, not every full scan."""

    patient: str
    npz: Path
    sidecar: Path

    @classmethod
    def of(cls, npz: str | os.PathLike, sidecar: str | os.PathLike) -> StoredStack:
        return cls(json.loads(Path(sidecar).read_text())["patient"], Path(npz), Path(sidecar))

    def load(self) -> SliceStack:
        return load_slices(self.npz, self.sidecar)


def load_slices(npz_path: str | os.PathLike, sidecar_path: str | os.PathLike | None = None) -> SliceStack:
    """A stack written by save_slices. A damaged cache pair (truncated by a full disk, a copy cut short)
    is removed, so that the rerun regenerates it, and reported as one InputError naming the file."""
    npz_path = Path(npz_path)
    sidecar_path = Path(sidecar_path) if sidecar_path else npz_path.with_suffix(".json")
    try:
        meta = json.loads(sidecar_path.read_text())
        with np.load(npz_path) as data:
            return SliceStack(
                patient=meta["patient"],
                image=data["image"],
                label=data.get("label"),
                source_geometry=Geometry.from_dict(meta["source_geometry"]),
                spacing_zyx_mm=tuple(float(s) for s in data["spacing_zyx_mm"]),  # type: ignore[arg-type]
            )
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        if not npz_path.is_file() or not sidecar_path.is_file():
            raise InputError(f"{npz_path}: slice cache missing ({type(err).__name__}); rerun the workflow") from None
        npz_path.unlink(missing_ok=True)
        sidecar_path.unlink(missing_ok=True)
        raise InputError(
            f"{npz_path}: damaged slice cache ({type(err).__name__}: {err}); removed it and its sidecar, "
            "rerun the workflow to regenerate them"
        ) from None
