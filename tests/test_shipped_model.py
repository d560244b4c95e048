"""The shipped model (models/la_unet.pt): small, loaded with weights_only, and it finds the atrium in scans it never
saw, whichever way their header says the patient lies."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from conftest import REAL_DATA, REPO, load_bench_script, requires_real_data

from laseg.checkpoint import checkpoint_facts
from laseg.io import read_volume
from laseg.masks import dice
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import load_model, predict_canonical, predict_stack
from laseg.slices import load_checked_case
from laseg.synthetic import synthesize_case, write_case

MODEL = REPO / "models" / "la_unet.pt"
SHIPPED = load_bench_script("train_shipped_model")  # its held-out cases
ORIENTATION = load_bench_script("orientation")  # each dataset's anatomical direction
SYNTHETIC_DICE_BOUND = 0.65  # measured 0.712 (seed 7): the synthetic cohort is not the real scans it learned from
HELD_OUT_DICE_BOUND = 0.85  # measured on the four below: see models/la_unet.json, held_out_dice
REWRITTEN_DICE_BOUND = 0.87  # each case of ROBUSTNESS_CASES: the old model and code fail every one, this passes


@pytest.fixture(scope="module")
def shipped_model():
    return load_model(MODEL, "cpu")  # torch.load(weights_only=True) inside


def test_the_shipped_model_is_small_and_trained_on_both_real_datasets_in_both_orientations():
    assert MODEL.stat().st_size <= 20 * 2**20
    facts = checkpoint_facts(MODEL)
    patients = set(facts["train_patients"])
    assert len(patients) == 2 * (20 + 40 - 2)
    assert not patients & {p + suffix for p in SHIPPED.HELD_OUT for suffix in ("", SHIPPED.ANATOMICAL)}
    assert {"la_003", "la_003_anatomical", "la_030", "la_030_anatomical"} <= patients
    assert sum(not p.startswith("la_") for p in patients) == 2 * 39  # LA2018 ids
    assert not facts["training_amount"]["cut_short_by_budget"]


def test_the_shipped_model_segments_a_synthetic_case(tmp_path, shipped_model):
    case = synthesize_case(seed=7, patient_index=0, shape_zyx=(64, 128, 128))
    write_case(case, tmp_path / "image.nii.gz", tmp_path / "label.nii.gz")
    stack = load_checked_case("syn", tmp_path / "image.nii.gz", tmp_path / "label.nii.gz")
    net, config, _ = shipped_model
    probability = predict_stack(net, config, stack)
    label, _ = read_volume(tmp_path / "label.nii.gz")
    # Trained on real scans only: the synthetic atrium is a new domain for it, found nonetheless.
    assert dice(probability >= 0.5, label) >= SYNTHETIC_DICE_BOUND


@requires_real_data
@pytest.mark.realdata
@pytest.mark.parametrize("anatomical", [False, True], ids=["as stored", "anatomical header"])
@pytest.mark.parametrize("dataset, patient", zip(SHIPPED.DATASETS, SHIPPED.HELD_OUT, strict=True))
def test_the_shipped_model_segments_held_out_scans_whichever_way_the_header_orients_them(
    tmp_path, shipped_model, dataset, patient, anatomical
):
    """A model that had learned only the files as stored scored la_007 0.90 as stored and 0.04 with a header
    that says where the patient lies, as a scanner's would."""
    paths = [REAL_DATA.parent / dataset / folder / f"{patient}.nii.gz" for folder in ("imagesTr", "labelsTr")]
    if anatomical:
        for i, source in enumerate(list(paths)):
            paths[i] = tmp_path / source.parent.name / source.name
            ORIENTATION.with_direction(source, paths[i], ORIENTATION.ANATOMICAL_DIRECTION[dataset])
    stack = load_checked_case(patient, *paths)
    net, config, _ = shipped_model
    mask = postprocess_mask(predict_canonical(net, config, stack), stack.spacing_zyx_mm, PostprocessSettings())
    assert dice(mask, stack.label) >= HELD_OUT_DICE_BOUND


# Hospital scans differ from the training files in ways bench/robustness.py rewrites the held-out scans (anatomical
# header); Dice of the model shipped until 2026-12-06 (z-score intensities, thick slices fed as they are, oblique
# grids flipped and swapped only) against this one with this code (robustness-2026-12-07-shipped-model*.md).
ROBUSTNESS_CASES = {
    ("msd_task02_heart", "oblique about the head-foot axis, 30 deg"): "0.849 -> 0.910",
    ("la2018_lge_dev", "oblique about the front-back axis, 30 deg"): "0.732 -> 0.884",
    ("msd_task02_heart", "crop to atrium +15 mm"): "0.774 -> 0.905",
    ("la2018_lge_dev", "pad 40 mm with zeros"): "0.852 -> 0.901",
    ("la2018_lge_dev", "slices 4 mm"): "0.794 -> 0.879",
}


@requires_real_data
@pytest.mark.realdata
@pytest.mark.parametrize("dataset, variant", ROBUSTNESS_CASES, ids=[v for _, v in ROBUSTNESS_CASES])
def test_the_shipped_model_segments_a_held_out_scan_rewritten_as_hospital_scans_differ(
    tmp_path, shipped_model, dataset, variant
):
    """Scored on the rewritten scan's own grid, after the prediction's return onto it."""
    robustness = load_bench_script("robustness")
    patient = robustness.HELD_OUT[dataset]
    images = []
    for folder in ("imagesTr", "labelsTr"):
        source = REAL_DATA.parent / dataset / folder / f"{patient}.nii.gz"
        ORIENTATION.with_direction(source, tmp_path / folder / source.name, ORIENTATION.ANATOMICAL_DIRECTION[dataset])
        images.append(sitk.ReadImage(str(tmp_path / folder / source.name)))
    paths = tmp_path / "rewritten_image.nii.gz", tmp_path / "rewritten_label.nii.gz"
    for image, path in zip(robustness.VARIANTS[variant](*images), paths, strict=True):
        sitk.WriteImage(image, str(path))
    stack = load_checked_case(patient, *paths)
    net, config, _ = shipped_model
    probability = predict_stack(net, config, stack)
    label, geometry = read_volume(paths[1])
    assert probability.shape == label.shape
    mask = postprocess_mask(probability, geometry.spacing_zyx_mm, PostprocessSettings())
    assert dice(mask, label) >= REWRITTEN_DICE_BOUND
