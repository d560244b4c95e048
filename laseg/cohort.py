"""Which patients a data folder holds, which are labelled, and how they are split for training."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laseg.io import InputError

NIFTI_SUFFIX = ".nii.gz"


@dataclass(frozen=True)
class Case:
    patient: str
    image: Path  # the scan file; for a DICOM series, its folder
    label: Path | None  # None: an unlabelled scan, segmented but not scored
    series_files: tuple[Path, ...] = ()  # a DICOM series' files, in slice order

    @property
    def source(self) -> list[str]:
        """What the reading rules take as input: the scan file, or every file of the DICOM series."""
        return [str(f) for f in self.series_files] if self.series_files else [str(self.image)]


CHANNEL_SUFFIX = "_0000"  # nnU-Net v2's first (here: only) input channel


SCAN_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in SCAN_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def has_channel_suffixes(images: list[Path]) -> bool:
    """Whether a folder's scans are named as nnU-Net v2 channels: every one ends in `_0000`. Only then is
    the suffix a channel; ids such as `pat_0001`, `pat_0002` stay whole."""
    return bool(images) and all(_stem(p).endswith(CHANNEL_SUFFIX) and len(_stem(p)) > 5 for p in images)


def patient_id_of(path: Path, channel_suffix: bool = False) -> str:
    """`la_003.nii.gz` -> `la_003`; with `channel_suffix` (has_channel_suffixes of its folder),
    `la_003_0000.nii.gz` -> `la_003`."""
    stem = _stem(path)
    return stem[: -len(CHANNEL_SUFFIX)] if channel_suffix and stem.endswith(CHANNEL_SUFFIX) else stem


def _nifti_files(folder: Path) -> list[Path]:
    """The scan files (NIfTI, NRRD, MHA) directly in a folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(SCAN_SUFFIXES) and not p.name.startswith("."))


def _plain_folder(root: Path, note: Callable[[str], None]) -> list[Case]:
    """A folder as a scanner or PACS exports it: scan files anywhere under it (ids from their paths) and
    DICOM series in any subfolder (ids from the series' folder paths). Segmented, never scored."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SCAN_SUFFIXES))
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    top = [p for p in files if p.parent == root]
    channels = has_channel_suffixes(top)
    cases = [Case(patient_id_of(p, channels), p, None) for p in top]
    for p in files:
        if p.parent != root:
            relative = p.relative_to(root).with_name(_stem(p)).as_posix()
            cases.append(Case(re.sub(r"[^A-Za-z0-9.-]+", "_", relative).strip("_"), p, None))
    from laseg.dicom import find_series, series_ids

    series = find_series(root, note)
    cases += [Case(i, s.folder, None, s.files) for i, s in zip(series_ids(series, root), series)]
    return cases


def _from_dataset_json(root: Path) -> list[Case]:
    path = root / "dataset.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable dataset.json ({err})") from None
    training, test = [], []
    for entry in meta.get("training", []):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise InputError(f"{path}: every 'training' entry needs 'image' and 'label', got {entry!r}")
        training.append((root / entry["image"], root / entry["label"]))
    for entry in meta.get("test", []):
        test.append((root / (entry if isinstance(entry, str) else entry["image"]), None))
    cases = []
    for entries in (training, test):
        channels = has_channel_suffixes([image for image, _ in entries])
        cases += [Case(patient_id_of(image, channels), image, label) for image, label in entries]
    return cases


def _from_folders(root: Path) -> list[Case]:
    def ids(images: list[Path]) -> list[str]:
        channels = has_channel_suffixes(images)
        return [patient_id_of(p, channels) for p in images]

    images_tr, images_ts = _nifti_files(root / "imagesTr"), _nifti_files(root / "imagesTs")
    labels = {patient_id_of(p): p for p in _nifti_files(root / "labelsTr")}  # labels carry no channel suffix
    for image, patient in zip(images_tr, ids(images_tr)):
        if patient not in labels:
            raise InputError(f"{image}: no label for this imagesTr case in {root / 'labelsTr'}")
    cases = [Case(patient, p, labels[patient]) for p, patient in zip(images_tr, ids(images_tr))]
    cases += [Case(patient, p, None) for p, patient in zip(images_ts, ids(images_ts))]
    return cases


def discover_cases(
    root: str | Path, note: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
) -> list[Case]:
    """Cases of an MSD-layout folder (dataset.json when present, else imagesTr/, labelsTr/, imagesTs/), or of a
    plain folder (scan files and DICOM series anywhere under it). Skipped DICOM series are noted, one line each.

    Raises InputError naming the file when a case's image or label is missing or ids collide.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: data folder not found")
    if (root / "dataset.json").is_file():
        cases = _from_dataset_json(root)
    elif (root / "imagesTr").is_dir() or (root / "imagesTs").is_dir():
        cases = _from_folders(root)
    else:
        cases = _plain_folder(root, note)
    if not cases:
        raise InputError(
            f"{root}: no scans found (expected imagesTr/, imagesTs/, NIfTI/NRRD/MHA files or DICOM series)"
        )
    seen: set[str] = set()
    for case in cases:
        if case.patient in seen:
            raise InputError(f"{case.image}: patient id '{case.patient}' appears twice in {root}")
        seen.add(case.patient)
        if not case.series_files and not case.image.is_file():
            raise InputError(f"{case.image}: image file not found")
        if case.label is not None and not case.label.is_file():
            raise InputError(f"{case.label}: label file not found for {case.image.name}")
    return sorted(cases, key=lambda c: c.patient)


def held_out_score(patient: str, seed: int) -> float:
    """A number in [0, 1) that depends only on the id and the seed (not on the other patients)."""
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_patients(
    labelled: list[str], test: list[str] | None, test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """(train, test) patient ids: the explicit held-out list if given, else a seeded fraction.

    Each patient's role follows from its own id and the seed (held out when its held_out_score is below
    test_fraction), so adding or removing a patient never moves another between train and test; the
    held-out share is test_fraction on average (at least one patient when test_fraction > 0).
    """
    labelled = sorted(labelled)
    if test:
        unknown = sorted(set(test) - set(labelled))
        if unknown:
            raise InputError(f"config split.test: {', '.join(unknown)} not among the labelled patients")
        held_out = sorted(test)
    elif test_fraction > 0 and labelled:
        score = {p: held_out_score(p, seed) for p in labelled}
        held_out = [p for p in labelled if score[p] < test_fraction] or [min(labelled, key=score.__getitem__)]
    else:
        held_out = []
    train = [p for p in labelled if p not in held_out]
    if not train:
        raise InputError("config split: no labelled patient left for training")
    return train, held_out


def kfold_splits(patients: list[str], k: int = 5, seed: int = 12345) -> list[tuple[list[str], list[str]]]:
    """(train, validation) per fold, identical to nnU-Net's split: sorted ids, KFold(k, shuffle=True, seed).

    This reproduces scikit-learn's KFold exactly (a RandomState permutation, first n % k folds one
    larger) so our folds match nnU-Net's published ones without depending on scikit-learn.
    """
    ids = sorted(patients)
    if not 2 <= k <= len(ids):
        raise InputError(f"config cv.folds: {k} folds need at least {k} labelled patients, found {len(ids)}")
    order = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(order)
    sizes = [len(ids) // k + (1 if i < len(ids) % k else 0) for i in range(k)]
    splits, start = [], 0
    for size in sizes:
        val_idx = set(order[start : start + size].tolist())
        start += size
        splits.append(([ids[i] for i in range(len(ids)) if i not in val_idx], [ids[i] for i in sorted(val_idx)]))
    return splits
