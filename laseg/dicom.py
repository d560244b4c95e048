"""DICOM series as scans: found in any subfolder, checked, read onto their exact grid.

A scanner or PACS export holds several series per study and folder: MR image series are scans; localisers,
structured reports (SR), presentation states (PR) and other objects are skipped with a one-line note each.
A series with missing slices, uneven spacing or mixed orientations is refused with a one-line error naming it, and
a file cut short with one naming that file, before anything else is checked. This module reads DICOM on its own;
laseg.io's reader hands it every series and is never imported from here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from laseg.errors import InputError
from laseg.integrity import check_dicom_pixel_data, is_dicom_file

MR_IMAGE_STORAGE = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"}  # MR, Enhanced MR
MIN_SLICES = 8  # fewer is a localiser or a scout, not a 3D scan
SPACING_TOLERANCE = (
    0.1  # relative: slice gaps may differ by 10% (rounding in positions) before a slice counts as missing
)
TAGS = {
    "modality": "0008|0060",
    "sop_class": "0008|0016",
    "image_type": "0008|0008",
    "series_uid": "0020|000e",
    "series_number": "0020|0011",
    "description": "0008|103e",
    "position": "0020|0032",
    "orientation": "0020|0037",
}


@dataclass(frozen=True)
class DicomSeries:
    """One MR image series: its folder, its files in slice order, and a readable id."""

    folder: Path
    series_uid: str
    files: tuple[Path, ...]
    series_number: str = ""
    description: str = ""


def _tags(path: Path) -> dict[str, str]:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.LoadPrivateTagsOff()
    reader.ReadImageInformation()
    return {name: reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else "" for name, tag in TAGS.items()}


def _skip_reason(tags: dict[str, str], n_files: int) -> str | None:
    if tags["modality"] and tags["modality"] != "MR":
        return f"modality {tags['modality']}, not MR"
    if tags["sop_class"] and tags["sop_class"] not in MR_IMAGE_STORAGE:
        return f"SOP class {tags['sop_class']} is no MR image (SR, PR or another object)"
    if "LOCALIZER" in tags["image_type"].upper():
        return "a localiser"
    if n_files < MIN_SLICES:
        return f"{n_files} slices: a localiser or scout, not a 3D scan"
    return None


def find_series(root: Path, note: Callable[[str], None]) -> list[DicomSeries]:
    """Every MR image series in `root` and its subfolders; what is skipped is noted in one line each."""
    found = []
    for folder, _, files in sorted(os.walk(root)):
        if not files or Path(folder).name.startswith("."):
            continue
        listed: set[Path] = set()
        in_folder: list[DicomSeries] = []
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder) or ():
            names = tuple(Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
            listed |= set(names)
            try:
                tags = _tags(names[0])
            except RuntimeError:
                note(f"{folder}: series {uid} skipped: its first file is not readable DICOM")
                continue
            reason = _skip_reason(tags, len(names))
            if reason:
                note(
                    f"{folder}: series {tags['series_number'] or uid} "
                    f"({tags['description'] or 'no description'}) skipped: {reason}"
                )
                continue
            in_folder.append(DicomSeries(Path(folder), uid, names, tags["series_number"], tags["description"]))
        # DICOM objects that are no image series (structured reports, presentation states, ...), and files that
        # GDCM leaves out of their series because they are cut short.
        others = [Path(folder) / f for f in files if Path(folder) / f not in listed and is_dicom_file(Path(folder) / f)]
        skipped = []
        for path in others:
            series_uid, problem = _damage(path)
            owner = next((i for i, s in enumerate(in_folder) if series_uid and s.series_uid == series_uid), None)
            if problem and owner is not None:
                # Kept with its series, so that reading the series stops that scan with this file's own fault (else
                # "a slice is missing") and no other scan.
                s = in_folder[owner]
                in_folder[owner] = DicomSeries(s.folder, s.series_uid, (*s.files, path), s.series_number, s.description)
            elif problem:
                note(f"{problem}; skipped")
            else:
                skipped.append(path)
        if skipped:
            note(f"{folder}: {len(skipped)} DICOM file(s) without an image series (SR, PR or other objects) skipped")
        found += in_folder
    return found


def _damage(path: Path) -> tuple[str, str | None]:
    """A DICOM file's series instance UID (when its header is readable) and its fault (None: intact)."""
    try:
        return check_dicom_pixel_data(path)["series_uid"], None
    except InputError as err:
        import pydicom

        try:
            uid = str(pydicom.dcmread(path, stop_before_pixels=True, force=True).get("SeriesInstanceUID", "") or "")
        except Exception:  # noqa: BLE001 (an unreadable header: the file cannot be told to any series)
            uid = ""
        return uid, str(err)


def series_ids(series: list[DicomSeries], root: Path) -> list[str]:
    """Readable, unique ids from the series' folder paths under root ("patient01_study_T1"); a folder with
    several series adds each one's series number ("…_s3")."""
    per_folder: dict[Path, int] = {}
    for s in series:
        per_folder[s.folder] = per_folder.get(s.folder, 0) + 1
    ids = []
    for s in series:
        relative = s.folder.relative_to(root).as_posix() if s.folder != root else root.name
        base = re.sub(r"[^A-Za-z0-9.-]+", "_", relative).strip("_") or "series"
        if per_folder[s.folder] > 1:
            base += f"_s{s.series_number or s.series_uid.rsplit('.', 1)[-1]}"
        ids.append(base)
    seen: dict[str, int] = {}
    unique = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        unique.append(i if seen[i] == 1 else f"{i}_{seen[i]}")
    return unique


def check_slices(series_name: str, files: list[Path]) -> None:
    """One orientation and even slice spacing (no slice missing), from each file's header."""
    orientations, positions = [], []
    for path in files:
        try:
            tags = _tags(path)
        except RuntimeError:
            raise InputError(f"{series_name}: {path.name} is not a readable DICOM file") from None
        try:
            orientations.append(np.array([float(v) for v in tags["orientation"].split("\\")]))
            positions.append(np.array([float(v) for v in tags["position"].split("\\")]))
        except ValueError:
            raise InputError(f"{series_name}: {path.name} has no image position or orientation") from None
    if any(not np.allclose(o, orientations[0], atol=1e-3) for o in orientations):
        raise InputError(f"{series_name}: slices with different orientations in one series (mixed orientations)")
    normal = np.cross(orientations[0][:3], orientations[0][3:])
    along = np.sort(np.array(positions) @ normal)
    gaps = np.diff(along)
    if len(gaps) and gaps.min() <= 0:
        raise InputError(f"{series_name}: two slices at the same position ({along[np.argmin(gaps)]:.2f} mm)")
    if len(gaps) and gaps.max() > (1 + SPACING_TOLERANCE) * np.median(gaps):
        where = int(np.argmax(gaps))
        raise InputError(
            f"{series_name}: uneven slice spacing ({gaps.max():.2f} mm after {along[where]:.2f} mm, "
            f"{np.median(gaps):.2f} mm elsewhere): a slice is missing"
        )


def read_series(files: list[Path] | tuple[Path, ...]) -> sitk.Image:
    """A checked series as one 3D image on its exact grid (spacing, origin, direction from the headers)."""
    files = [Path(f) for f in files]
    name = f"DICOM series in {files[0].parent}"
    for path in files:
        # First: GDCM reads a file cut short as zeros, or leaves it out so that the series seems to miss a slice.
        check_dicom_pixel_data(path)
    check_slices(name, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    try:
        image = reader.Execute()
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise InputError(f"{name}: not readable ({reason[:160]})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{name}: expected a 3D single-channel series, got size {image.GetSize()}")
    return image
