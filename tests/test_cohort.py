"""Cohort discovery in MSD layout and plain folders, and reproducible splits."""

from __future__ import annotations

import json

import pytest
from conftest import REAL_DATA, requires_real_data

from laseg.cohort import discover_cases, kfold_splits, patient_id_of, split_patients
from laseg.io import InputError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_msd_folders_with_test_scans(tmp_path):
    for p in ("a", "b"):
        touch(tmp_path / "imagesTr" / f"{p}.nii.gz")
        touch(tmp_path / "labelsTr" / f"{p}.nii.gz")
    touch(tmp_path / "imagesTs" / "c.nii.gz")
    cases = {c.patient: c for c in discover_cases(tmp_path)}
    assert sorted(cases) == ["a", "b", "c"]
    assert cases["c"].label is None and cases["a"].label == tmp_path / "labelsTr" / "a.nii.gz"


def test_dataset_json_is_preferred(tmp_path):
    for p in ("a", "b"):
        touch(tmp_path / "imagesTr" / f"{p}.nii.gz")
        touch(tmp_path / "labelsTr" / f"{p}.nii.gz")
    (tmp_path / "dataset.json").write_text(
        json.dumps(
            {
                "training": [{"image": "./imagesTr/a.nii.gz", "label": "./labelsTr/a.nii.gz"}],
                "test": ["./imagesTr/b.nii.gz"],
            }
        )
    )
    cases = {c.patient: c for c in discover_cases(tmp_path)}
    assert cases["a"].label is not None and cases["b"].label is None


def test_plain_folder_is_all_unlabelled(tmp_path):
    touch(tmp_path / "x.nii.gz")
    touch(tmp_path / "y.nii")
    assert [(c.patient, c.label) for c in discover_cases(tmp_path)] == [("x", None), ("y", None)]


def test_nnunet_channel_suffix_is_dropped():
    from pathlib import Path

    assert patient_id_of(Path("la_003_0000.nii.gz")) == "la_003"
    assert patient_id_of(Path("la_003.nii.gz")) == "la_003"


def test_split_by_fraction_is_seeded_and_explicit_list_wins():
    ids = [f"p{i:02d}" for i in range(20)]
    train, test = split_patients(ids, [], 0.25, seed=3)
    assert len(test) == 5 and set(train) | set(test) == set(ids) and not set(train) & set(test)
    assert split_patients(list(reversed(ids)), [], 0.25, seed=3) == (train, test)
    assert split_patients(ids, [], 0.25, seed=4)[1] != test
    assert split_patients(ids, ["p07"], 0.25, seed=3)[1] == ["p07"]
    with pytest.raises(InputError, match="p99"):
        split_patients(ids, ["p99"], 0.25, seed=3)


def test_kfold_partitions_like_scikit_learn():
    ids = [f"la_{i:03d}" for i in range(20)]
    folds = kfold_splits(ids, 5)
    assert sorted(p for _, val in folds for p in val) == ids
    for train, val in folds:
        assert len(val) == 4 and not set(train) & set(val)
    sklearn = pytest.importorskip("sklearn.model_selection")
    expected = [
        sorted(ids[i] for i in test) for _, test in sklearn.KFold(5, shuffle=True, random_state=12345).split(ids)
    ]
    assert [val for _, val in folds] == expected


@requires_real_data
def test_real_msd_dataset_is_discovered():
    cases = discover_cases(REAL_DATA)
    assert len(cases) == 20 and all(c.label is not None for c in cases)
    assert cases[0].patient == "la_003"
