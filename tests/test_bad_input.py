"""Bad input stops early with one line naming the file and the problem, and destroys nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO, run_snakemake

from laseg.cohort import discover_cases
from laseg.config import config_problems
from laseg.io import Geometry, InputError, read_volume, write_volume
from laseg.slices import load_checked_case, load_slices, save_slices

GEOMETRY = Geometry(
    size=(24, 20, 16), spacing_mm=(1.25, 1.25, 1.37), origin_mm=(10.0, -5.0, 3.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)
)


def make_case(
    folder: Path, patient: str, image: np.ndarray | None = None, label: np.ndarray | None = None
) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    if image is None:
        image = rng.normal(500, 100, (16, 20, 24)).astype(np.int16)
    if label is None:
        label = np.zeros((16, 20, 24), np.uint8)
        label[5:10, 6:12, 8:16] = 1
    image_path, label_path = folder / "imagesTr" / f"{patient}.nii.gz", folder / "labelsTr" / f"{patient}.nii.gz"
    write_volume(image, GEOMETRY, image_path)
    write_volume(label, GEOMETRY, label_path)
    return image_path, label_path


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path, words: str) -> None:
    message = str(err.value)
    assert "\n" not in message and str(path) in message and words in message, message


def test_corrupt_nifti(tmp_path):
    image, label = make_case(tmp_path, "p1")
    image.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, image, "not a readable NIfTI")


def test_a_truncated_slice_cache_is_named_removed_and_regenerated_on_rerun(tmp_path):
    image, label = make_case(tmp_path, "p1")
    npz, sidecar = tmp_path / "results/slices/p1.npz", tmp_path / "results/slices/p1.json"
    save_slices(load_checked_case("p1", image, label), npz, sidecar)
    assert load_slices(npz, sidecar).patient == "p1"
    npz.write_bytes(npz.read_bytes()[:200])  # a full disk or a copy cut short
    with pytest.raises(InputError) as err:
        load_slices(npz, sidecar)
    assert_one_line_naming(err, npz, "damaged slice cache")
    assert "rerun" in str(err.value) and not npz.exists() and not sidecar.exists()


def test_label_on_a_different_grid(tmp_path):
    image, label = make_case(tmp_path, "p1")
    array, geometry = read_volume(label)
    write_volume(array, Geometry(geometry.size, (1.0, 1.0, 1.0), geometry.origin_mm, geometry.direction), label)
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, label, "geometry differs")


def test_4d_image(tmp_path):
    image, label = make_case(tmp_path, "p1")
    frame = sitk.GetImageFromArray(np.ones((16, 20, 24), np.int16))
    sitk.WriteImage(sitk.JoinSeries([frame, frame]), str(image))
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, image, "got 4D")


def test_label_values_other_than_0_1(tmp_path):
    label_array = np.zeros((16, 20, 24), np.uint8)
    label_array[4:8, 4:8, 4:8] = 2
    image, label = make_case(tmp_path, "p1", label=label_array)
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, label, "0/1")


def test_nan_intensities(tmp_path):
    array = np.random.default_rng(1).normal(0, 1, (16, 20, 24)).astype(np.float32)
    array[3, 4, 5] = np.nan
    array[7, 1, 1] = np.inf
    image, label = make_case(tmp_path, "p1", image=array)
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, image, "2 voxels are NaN or Inf")


def test_empty_label(tmp_path):
    image, label = make_case(tmp_path, "p1", label=np.zeros((16, 20, 24), np.uint8))
    with pytest.raises(InputError) as err:
        load_checked_case("p1", image, label)
    assert_one_line_naming(err, label, "empty")


def test_missing_label_for_an_imagesTr_case(tmp_path):
    make_case(tmp_path, "p1")
    _, label = make_case(tmp_path, "p2")
    label.unlink()
    with pytest.raises(InputError) as err:
        discover_cases(tmp_path)
    assert_one_line_naming(err, tmp_path / "imagesTr" / "p2.nii.gz", "no label")


def test_dataset_json_naming_a_missing_file(tmp_path):
    make_case(tmp_path, "p1")
    (tmp_path / "dataset.json").write_text(
        json.dumps({"training": [{"image": "./imagesTr/p9.nii.gz", "label": "./labelsTr/p9.nii.gz"}]})
    )
    with pytest.raises(InputError) as err:
        discover_cases(tmp_path)
    assert "p9.nii.gz" in str(err.value) and "not found" in str(err.value)


def test_config_of_wrong_type_and_unknown_key_are_named():
    problems = config_problems({"train": {"max_epochs": "ten", "epochz": 3}}, REPO / "config" / "schema.yaml")
    assert any(p.startswith("train.max_epochs:") and "'auto' or of type 'integer'" in p for p in problems), problems
    assert any(p.startswith("train:") and "epochz" in p for p in problems), problems


def test_workflow_stops_before_training_on_a_corrupt_scan_and_keeps_user_files(tmp_path):
    data = tmp_path / "data"
    for patient in ("p1", "p2", "p3"):
        make_case(data, patient)
    broken = data / "imagesTr" / "p2.nii.gz"
    broken.write_bytes(b"\x00" * 100)
    original = {p: p.read_bytes() for p in data.rglob("*.nii.gz")}
    result = run_snakemake(
        tmp_path, config={"data": {"source": "folder", "path": str(data)}, "split": {"test": ["p3"]}}, check=False
    )
    assert result.returncode != 0
    assert f"error: {broken}: not a readable NIfTI file" in result.stderr
    assert not (tmp_path / "results/model/model.pt").exists()
    assert not (tmp_path / "logs/train.log").exists()
    assert {p: p.read_bytes() for p in data.rglob("*.nii.gz")} == original


def test_workflow_rejects_a_bad_config_at_start(tmp_path):
    result = run_snakemake(tmp_path, "-n", config={"train": {"max_epochs": "ten"}}, check=False)
    assert result.returncode != 0
    assert (
        "invalid configuration: train.max_epochs: 'ten' must be 'auto' or of type 'integer'"
        in result.stdout + result.stderr
    )


@pytest.mark.parametrize("scans, out", [("/data/DICOM Export", "/tmp/out dir é"), ("exports/it's, #1: new", "o")])
def test_make_predict_passes_folders_with_spaces_quotes_and_accents_whole_to_snakemake(scans, out):
    import shlex
    import subprocess

    from snakemake.cli import parse_config

    # `make -n` prints the commands without running them; shlex splits them as the shell will.
    printed = subprocess.run(
        ["make", "-n", "predict", f"IN={scans}", f"OUT={out}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    words = shlex.split(next(line for line in printed.splitlines() if "snakemake --profile" in line))
    assert words[words.index("--directory") + 1] == out
    config = parse_config(words[words.index("--config") + 1 :])
    assert config["data"] == {"source": "folder", "path": scans if scans.startswith("/") else f"{REPO}/{scans}"}
    assert config["predict"] == {"checkpoint": f"{REPO}/models/la_unet.pt"}
