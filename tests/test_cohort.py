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


def test_the_channel_suffix_is_dropped_only_where_the_files_are_channels(tmp_path):
    from pathlib import Path

    assert patient_id_of(Path("la_003_0000.nii.gz"), channel_suffix=True) == "la_003"
    assert patient_id_of(Path("la_003_0000.nii.gz")) == "la_003_0000"
    # nnU-Net v2 layout: every image a channel _0000, labels without it.
    for name in ("imagesTr/la_003_0000.nii.gz", "labelsTr/la_003.nii.gz", "imagesTs/la_009_0000.nii.gz"):
        touch(tmp_path / "nnunet" / name)
    assert [c.patient for c in discover_cases(tmp_path / "nnunet")] == ["la_003", "la_009"]
    # Ids that merely end in four digits stay whole: pat_0001 and pat_0002 are two patients.
    for name in ("pat_0001.nii.gz", "pat_0002.nii.gz", "pat_0000.nii.gz"):
        touch(tmp_path / "plain" / name)
    assert [c.patient for c in discover_cases(tmp_path / "plain")] == ["pat_0000", "pat_0001", "pat_0002"]


def test_split_by_fraction_is_seeded_and_explicit_list_wins():
    ids = [f"p{i:02d}" for i in range(20)]
    train, test = split_patients(ids, [], 0.25, seed=3)
    assert 2 <= len(test) <= 9 and set(train) | set(test) == set(ids) and not set(train) & set(test)
    assert split_patients(list(reversed(ids)), [], 0.25, seed=3) == (train, test)
    assert split_patients(ids, [], 0.25, seed=4)[1] != test
    assert split_patients(ids, ["p07"], 0.25, seed=3)[1] == ["p07"]
    with pytest.raises(InputError, match="p99"):
        split_patients(ids, ["p99"], 0.25, seed=3)


def test_adding_patients_never_moves_another_between_train_and_test():
    ids = [f"p{i:03d}" for i in range(40)]
    train, test = split_patients(ids, [], 0.25, seed=0)
    more_train, more_test = split_patients([*ids, "new_1", "new_2", "001"], [], 0.25, seed=0)
    assert set(train) <= set(more_train) and set(test) <= set(more_test)
    removed = test[0]
    assert split_patients([p for p in ids if p != removed], [], 0.25, seed=0)[1] == test[1:]
    assert split_patients(["only_one", "two"], [], 0.01, seed=0)[1]  # at least one held out


def test_kfold_partitions_like_scikit_learn():
    ids = [f"la_{i:03d}" for i in range(20)]
    folds = kfold_splits(ids, 5)
    assert sorted(p for _, val in folds for p in val) == ids
    for train, val in folds:
        assert len(val) == 4 and not set(train) & set(val)
    import sklearn.model_selection as sklearn

    expected = [
        sorted(ids[i] for i in test) for _, test in sklearn.KFold(5, shuffle=True, random_state=12345).split(ids)
    ]
    assert [val for _, val in folds] == expected


@requires_real_data
def test_real_msd_dataset_is_discovered():
    cases = discover_cases(REAL_DATA)
    assert len(cases) == 20 and all(c.label is not None for c in cases)
    assert cases[0].patient == "la_003"
