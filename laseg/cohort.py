"""Which patients a data folder holds, which are labelled, and how they are split for training."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laseg.io import InputError

NIFTI_SUFFIX = ".nii.gz"


@dataclass(frozen=True)
class Case:
    patient: str
    image: Path
    label: Path | None  # None: an unlabelled scan, segmented but not scored


def patient_id_of(path: Path) -> str:
    """`la_003.nii.gz` -> `la_003`; nnU-Net v2's channel suffix (`la_003_0000.nii.gz`) is dropped."""
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if len(name) > 5 and name[-5] == "_" and name[-4:].isdigit():
        name = name[:-5]
    return name


def _nifti_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".nii.gz", ".nii")) and not p.name.startswith("."))


def _from_dataset_json(root: Path) -> list[Case]:
    path = root / "dataset.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable dataset.json ({err})") from None
    cases = []
    for entry in meta.get("training", []):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            raise InputError(f"{path}: every 'training' entry needs 'image' and 'label', got {entry!r}")
        image, label = root / entry["image"], root / entry["label"]
        cases.append(Case(patient_id_of(image), image, label))
    for entry in meta.get("test", []):
        image = root / (entry if isinstance(entry, str) else entry["image"])
        cases.append(Case(patient_id_of(image), image, None))
    return cases


def _from_folders(root: Path) -> list[Case]:
    images_tr = _nifti_files(root / "imagesTr")
    labels = {patient_id_of(p): p for p in _nifti_files(root / "labelsTr")}
    for image in images_tr:
        if patient_id_of(image) not in labels:
            raise InputError(f"{image}: no label for this imagesTr case in {root / 'labelsTr'}")
    cases = [Case(patient_id_of(p), p, labels.get(patient_id_of(p))) for p in images_tr]
    cases += [Case(patient_id_of(p), p, None) for p in _nifti_files(root / "imagesTs")]
    if not (root / "imagesTr").is_dir() and not (root / "imagesTs").is_dir():
        # A plain folder of scans: segmented, never scored.
        cases = [Case(patient_id_of(p), p, None) for p in _nifti_files(root)]
    return cases


def discover_cases(root: str | Path) -> list[Case]:
    """Cases of an MSD-layout folder (dataset.json when present), or of a plain folder of scans.

    Raises InputError naming the file when a case's image or label is missing or ids collide.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: data folder not found")
    cases = _from_dataset_json(root) if (root / "dataset.json").is_file() else _from_folders(root)
    if not cases:
        raise InputError(f"{root}: no NIfTI scans found (expected imagesTr/, imagesTs/ or *.nii.gz)")
    seen: set[str] = set()
    for case in cases:
        if case.patient in seen:
            raise InputError(f"{case.image}: patient id '{case.patient}' appears twice in {root}")
        seen.add(case.patient)
        if not case.image.is_file():
            raise InputError(f"{case.image}: image file not found")
        if case.label is not None and not case.label.is_file():
            raise InputError(f"{case.label}: label file not found for {case.image.name}")
    return sorted(cases, key=lambda c: c.patient)


def split_patients(
    labelled: list[str], test: list[str] | None, test_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """(train, test) patient ids: the explicit held-out list if given, else a seeded random fraction.

    The fraction is drawn from the sorted ids with a seed, so the split depends only on the ids.
    """
    labelled = sorted(labelled)
    if test:
        unknown = sorted(set(test) - set(labelled))
        if unknown:
            raise InputError(f"config split.test: {', '.join(unknown)} not among the labelled patients")
        held_out = sorted(test)
    else:
        n_test = max(1, round(test_fraction * len(labelled))) if test_fraction > 0 else 0
        held_out = sorted(random.Random(seed).sample(labelled, n_test))
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
