"""Writing DICOM MR series in tests, as a scanner exports them: one file per slice, with the tags that place it."""

from __future__ import annotations

import locale
from pathlib import Path

import numpy as np
import SimpleITK as sitk

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_series(
    folder: Path,
    array_zyx: np.ndarray,
    spacing_xyz: tuple[float, float, float] = (1.25, 1.25, 2.0),
    origin_xyz: tuple[float, float, float] = (-100.0, -80.0, 30.0),
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
    series_uid: str = "1.2.826.0.1.3680043.2.1125.1",
    series_number: int = 3,
    modality: str = "MR",
    sop_class: str = MR_IMAGE_STORAGE,
    image_type: str = "ORIGINAL\\PRIMARY\\M",
    skip_slices: tuple[int, ...] = (),
) -> list[Path]:
    """One file per slice of a (z, y, x) int16 array placed by `origin_xyz`, `spacing_xyz` and `direction`."""
    # SimpleITK's DICOM writer (GDCM) switches the process to the C locale, which would make every later
    # open() in the test session ASCII-only: the locale is put back afterwards.
    saved_locale = locale.setlocale(locale.LC_ALL)
    try:
        return _write_series(folder, array_zyx, spacing_xyz, origin_xyz, direction, series_uid, series_number,
                             modality, sop_class, image_type, skip_slices)  # fmt: skip
    finally:
        locale.setlocale(locale.LC_ALL, saved_locale)


def _write_series(
    folder, array_zyx, spacing_xyz, origin_xyz, direction, series_uid, series_number, modality, sop_class, image_type,
    skip_slices,
) -> list[Path]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    volume = sitk.GetImageFromArray(array_zyx.astype(np.int16))
    volume.SetSpacing(spacing_xyz)
    volume.SetOrigin(origin_xyz)
    volume.SetDirection(direction)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    d = np.array(direction).reshape(3, 3)
    orientation = "\\".join(f"{v:.6f}" for v in (*d[:, 0], *d[:, 1]))
    paths = []
    for z in range(array_zyx.shape[0]):
        if z in skip_slices:
            continue
        image = volume[:, :, z]
        position = volume.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            "0008|0060": modality,
            "0008|0016": sop_class,
            "0008|0018": f"{series_uid}.{z + 1}",
            "0008|0008": image_type,
            "0008|103e": "LA test series",
            "0010|0020": "TEST01",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.9",
            "0020|000e": series_uid,
            "0020|0052": "1.2.826.0.1.3680043.2.1125.8",  # frame of reference
            "0020|0011": str(series_number),
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0037": orientation,
            "0018|0050": f"{spacing_xyz[2]:.6f}",
        }
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        path = folder / f"IM{series_number:02d}{z + 1:04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(image)
        paths.append(path)
    return paths
