"""Reading and writing NIfTI volumes with their geometry, and atomic file output.

Arrays in this package are numpy arrays indexed (z, y, x), as SimpleITK returns them; geometry is
kept in ITK order (x, y, z) exactly as the file header gives it, and travels with the data from the
first read to the last write.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from laseg.dicom import read_series
from laseg.errors import InputError  # raised by every reader, and imported from here by the rest of the package
from laseg.integrity import check_scan_file, count_nonfinite_nifti_voxels

# Axial slices along array axis 0, rows anterior->posterior, columns right->left: the radiological
# view. Every scan is reoriented to this before slicing, whatever its header direction.
CANONICAL_ORIENTATION = "LPS"
# A scan whose voxel axes lie further than this from the world's (a double-oblique acquisition planned on the
# heart) is resampled onto the world's axes before slicing. Flipped and swapped only, its heart would reach the
# networks turned by up to 45 degrees about any axis, beyond the +-15 degrees in plane they learn by augmentation
# (the shipped model on la_007 turned 30 degrees about the head-foot axis: Dice 0.849 against 0.910,
# bench/robustness.py).
# Nearer ones keep every voxel's value, as nearly every scan's header is within a degree or two of the world's axes.
OBLIQUE_RESAMPLE_DEGREES = 5.0


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid sits in the world, in the file's own (x, y, z) order, millimetres."""

    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> Geometry:
        return cls(
            size=tuple(int(s) for s in image.GetSize()),  # type: ignore[arg-type]
            spacing_mm=tuple(float(s) for s in image.GetSpacing()),  # type: ignore[arg-type]
            origin_mm=tuple(float(o) for o in image.GetOrigin()),  # type: ignore[arg-type]
            direction=tuple(float(d) for d in image.GetDirection()),
        )

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_mm)
        image.SetDirection(self.direction)
        return image

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        x, y, z = self.spacing_mm
        return (z, y, x)

    @property
    def orientation(self) -> str:
        return str(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(self.direction))

    def matches(self, other: Geometry, tolerance: float = 1e-4) -> bool:
        return self.size == other.size and all(
            np.allclose(a, b, atol=tolerance)
            for a, b in (
                (self.spacing_mm, other.spacing_mm),
                (self.origin_mm, other.origin_mm),
                (self.direction, other.direction),
            )
        )

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(
            size=tuple(int(v) for v in d["size"]),  # type: ignore[arg-type]
            spacing_mm=tuple(float(v) for v in d["spacing_mm"]),  # type: ignore[arg-type]
            origin_mm=tuple(float(v) for v in d["origin_mm"]),  # type: ignore[arg-type]
            direction=tuple(float(v) for v in d["direction"]),
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A killed job therefore leaves either the old file or no file, never half a file. The suffix is
    kept so that writers choosing a format by extension (SimpleITK, imageio, open3d) still work.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(target.suffixes) or ".tmp"
    # A writer killed by SIGKILL cannot remove its temporary file: the next write of the same target does.
    prefix = f".{target.name}.tmp-"
    for stale in target.parent.glob(f"{glob.escape(prefix)}*"):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; results are shared with colleagues and web servers, so use 0644.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


ScanPath = str | os.PathLike | Sequence[str | os.PathLike]  # one file, or a DICOM series' files


def read_image(path: ScanPath) -> sitk.Image:
    """Read a scan (NIfTI, NRRD, MHA; or a DICOM series given as its files), turning every failure into a
    one-line InputError naming the file. Each file's header and data size are checked before ITK reads it
    (laseg.integrity): ITK itself reads a file cut short as a volume padded with zeros."""
    if not isinstance(path, (str, os.PathLike)):
        files = [Path(f) for f in path]
        if len(files) != 1:
            return read_series(files)
        path = files[0]
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    check_scan_file(p)
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        kind = "NIfTI" if p.name.endswith((".nii", ".nii.gz")) else "image"
        raise InputError(f"{p}: not a readable {kind} file ({reason[:160]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{p}: expected a 3D single-channel volume, got {image.GetDimension()}D with "
            f"{image.GetNumberOfComponentsPerPixel()} component(s) per voxel, size {image.GetSize()}"
        )
    return image


def count_nonfinite_voxels(path: str | os.PathLike) -> int:
    """NaN/Inf voxels stored in a NIfTI file (streamed, with the same header and size checks as `read_image`).

    ITK's NIfTI reader silently turns NaN and Inf into 0, so they can only be seen in the raw data.
    Integer files cannot hold them; other formats are not inspected (0 is returned).
    """
    p = Path(path)
    if not p.name.endswith((".nii", ".nii.gz")):
        return 0
    return count_nonfinite_nifti_voxels(p)


def read_volume(path: ScanPath) -> tuple[np.ndarray, Geometry]:
    """Read a 3D scan as a (z, y, x) array in the file's own voxel order, and its geometry."""
    image = read_image(path)
    return sitk.GetArrayFromImage(image), Geometry.of(image)


def write_volume(array: np.ndarray, geometry: Geometry, path: str | os.PathLike) -> None:
    """Write a (z, y, x) array onto exactly `geometry`'s grid, atomically."""
    expected = tuple(reversed(geometry.size))
    if array.shape != expected:
        raise ValueError(f"{path}: array shape {array.shape} does not match geometry size (z,y,x) {expected}")
    image = geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def obliquity_degrees(geometry: Geometry) -> float:
    """The largest angle between one of the scan's voxel axes and the world axis nearest to it (0 for a scan
    acquired along the body's axes; up to 54.7 for a double-oblique one)."""
    direction = np.asarray(geometry.direction, float).reshape(3, 3)  # columns: voxel axes in world coordinates
    return float(np.degrees(np.arccos(np.clip(np.abs(direction).max(axis=0), 0.0, 1.0))).max())


def resamples_to_world_axes(geometry: Geometry) -> bool:
    """Whether `to_canonical` resamples this scan (oblique beyond OBLIQUE_RESAMPLE_DEGREES) rather than only
    flipping and swapping its axes."""
    return obliquity_degrees(geometry) > OBLIQUE_RESAMPLE_DEGREES


def world_aligned_geometry(geometry: Geometry) -> Geometry:
    """The canonical grid of an oblique scan: LPS axes, the spacing `canonical_spacing_zyx_mm` gives, covering
    every voxel centre of the source grid."""
    direction = np.asarray(geometry.direction, float).reshape(3, 3)
    spacing = np.asarray(canonical_spacing_zyx_mm(geometry)[::-1])
    size, source_spacing = np.asarray(geometry.size), np.asarray(geometry.spacing_mm)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * (size - 1) * source_spacing
    world = np.asarray(geometry.origin_mm) + corners @ direction.T
    low, high = world.min(axis=0), world.max(axis=0)
    new_size = np.ceil((high - low) / spacing - 1e-6).astype(int) + 1
    return Geometry(
        size=tuple(int(n) for n in new_size),  # type: ignore[arg-type]
        spacing_mm=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        origin_mm=tuple(float(o) for o in low),  # type: ignore[arg-type]
        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )


def resample_onto(array: np.ndarray, source: Geometry, target: Geometry, mask: bool) -> np.ndarray:
    """`array` on `source`'s grid sampled onto `target`'s, trilinear: a mask as its 0/1 fraction, then >= 0.5;
    an image with its minimum outside the source's field of view. Same dtype as `array`."""
    values = np.ascontiguousarray(array, dtype=np.float32)
    outside = 0.0 if mask else float(values.min())
    reference = target.apply_to(sitk.Image(list(target.size), sitk.sitkUInt8))
    moved = sitk.Resample(
        source.apply_to(sitk.GetImageFromArray(values)), reference, sitk.Transform(), sitk.sitkLinear, outside
    )
    result = sitk.GetArrayFromImage(moved)
    if mask:
        return (result >= 0.5).astype(array.dtype)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        return np.clip(np.rint(result), info.min, info.max).astype(array.dtype)
    return result.astype(array.dtype)


def to_canonical(array: np.ndarray, geometry: Geometry, mask: bool = False) -> np.ndarray:
    """A source-order (z, y, x) array in the canonical axial view (LPS). Axis flips and swaps only, which keep
    every voxel's value, unless the scan is oblique beyond OBLIQUE_RESAMPLE_DEGREES: then it is resampled onto
    `world_aligned_geometry` (a `mask` of 0/1 values by its area fraction, then >= 0.5)."""
    if resamples_to_world_axes(geometry):
        return resample_onto(array, geometry, world_aligned_geometry(geometry), mask)
    image = geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    return sitk.GetArrayFromImage(sitk.DICOMOrient(image, CANONICAL_ORIENTATION))


def from_canonical(array: np.ndarray, geometry: Geometry, mask: bool = False) -> np.ndarray:
    """Inverse of `to_canonical`: back onto the source voxel order of `geometry` (resampled, for an oblique
    scan, onto its own grid)."""
    if resamples_to_world_axes(geometry):
        return resample_onto(array, world_aligned_geometry(geometry), geometry, mask)
    source = geometry.apply_to(sitk.Image(list(geometry.size), sitk.sitkUInt8))
    canonical_geometry = Geometry.of(sitk.DICOMOrient(source, CANONICAL_ORIENTATION))
    image = canonical_geometry.apply_to(sitk.GetImageFromArray(np.ascontiguousarray(array)))
    back = sitk.GetArrayFromImage(sitk.DICOMOrient(image, geometry.orientation))
    if back.shape != tuple(reversed(geometry.size)):
        raise ValueError(f"reorientation back to {geometry.orientation} gave shape {back.shape}")
    return back


def canonical_spacing_zyx_mm(geometry: Geometry) -> tuple[float, float, float]:
    """Voxel spacing of the array `to_canonical` returns, in its (z, y, x) order.

    Spacing only permutes under reorientation, so a one-voxel image with the same direction tells
    which file axis became which canonical one, by the very rule `to_canonical` uses.
    """
    probe = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    probe.SetSpacing(geometry.spacing_mm)
    probe.SetDirection(geometry.direction)
    x, y, z = sitk.DICOMOrient(probe, CANONICAL_ORIENTATION).GetSpacing()
    return (z, y, x)
