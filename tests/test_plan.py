"""The fingerprint and the plan: settings follow the data, explicit config keys win, training is fixed and capped."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from laseg.io import Geometry
from laseg.model import ModelConfig, UNet2D, prepare_volume
from laseg.plan import (
    PRESETS,
    cohort_fingerprint,
    explicit_settings,
    fingerprint_case,
    make_plan,
    planned_test_time_scales,
    planned_training,
    planned_values,
    stage2_cap_minutes,
    training_cap_minutes,
)
from laseg.slices import SliceStack
from laseg.train import TrainSettings, prepared_volumes, sample_batch, train_model


def synthetic_case(
    patient: str,
    spacing_zyx_mm=(1.25, 1.25, 1.25),
    fov_zyx_mm=(100.0, 320.0, 320.0),
    atrium_mm=(40.0, 50.0, 50.0),
    seed: int = 0,
) -> SliceStack:
    """A scan of the given field of view with an ellipsoidal 'atrium' of the given extents at its centre."""
    shape = tuple(round(f / s) for f, s in zip(fov_zyx_mm, spacing_zyx_mm))
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing_zyx_mm)]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    label = (
        (zz / (atrium_mm[0] / 2)) ** 2 + (yy / (atrium_mm[1] / 2)) ** 2 + (xx / (atrium_mm[2] / 2)) ** 2 <= 1
    ).astype(np.uint8)
    rng = np.random.default_rng(seed)
    image = (100.0 + 300.0 * label + 20.0 * rng.standard_normal(shape)).astype(np.float32)
    geometry = Geometry(
        tuple(reversed(shape)), tuple(reversed(spacing_zyx_mm)), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)
    )  # type: ignore[arg-type]
    return SliceStack(patient, image, label, geometry, tuple(spacing_zyx_mm))  # type: ignore[arg-type]


def fingerprint_of(n_cases: int = 3, **case) -> dict:
    return cohort_fingerprint([fingerprint_case(synthetic_case(f"p{i:02d}", seed=i, **case)) for i in range(n_cases)])


def value(plan: dict, section: str, key: str):
    return plan["settings"][section][key]["value"]


def test_fingerprint_measures_spacing_volume_extent_and_intensities():
    case = fingerprint_case(
        synthetic_case("p", spacing_zyx_mm=(2.0, 1.0, 1.0), fov_zyx_mm=(100, 120, 120), atrium_mm=(40, 50, 60))
    )
    assert case["spacing_zyx_mm"] == [2.0, 1.0, 1.0] and case["shape_zyx"] == [50, 120, 120]
    assert case["field_of_view_zyx_mm"] == [100.0, 120.0, 120.0]
    assert case["la_volume_ml"] == pytest.approx(4 / 3 * np.pi * 20 * 25 * 30 / 1000, rel=0.05)
    assert case["la_extent_zyx_mm"] == pytest.approx([40, 50, 60], abs=2.5)
    assert case["intensity_inside_la"][2] == pytest.approx(400, abs=5) and case["intensity_outside_la"][
        2
    ] == pytest.approx(100, abs=5)


def test_finer_data_gets_a_finer_grid():
    coarse = make_plan(fingerprint_of(spacing_zyx_mm=(1.25, 1.25, 1.25), fov_zyx_mm=(100, 320, 320)), {})
    fine = make_plan(fingerprint_of(spacing_zyx_mm=(0.625, 0.625, 0.625), fov_zyx_mm=(60, 120, 120)), {})
    assert value(coarse, "model", "grid_spacing_mm")["axial"] == [2.5, 2.5]  # 320 mm in 128 px
    assert value(fine, "model", "grid_spacing_mm")["axial"] == pytest.approx(
        [0.9375, 0.9375], abs=1e-3
    )  # 120 mm in 128 px
    # Never finer than the data: a small field of view at coarse spacing keeps the data's spacing.
    native = make_plan(fingerprint_of(spacing_zyx_mm=(2.0, 2.0, 2.0), fov_zyx_mm=(100, 160, 160)), {})
    assert value(native, "model", "grid_spacing_mm")["axial"] == [2.0, 2.0]
    # Context slices cover the same distance: 2 at 1.25 mm, 4 at 0.625 mm.
    assert (
        value(coarse, "model", "context_slices")["axial"] == 2 and value(fine, "model", "context_slices")["axial"] == 4
    )


def test_a_small_atrium_gets_crops_sized_to_it_and_a_grid_that_resolves_it():
    big = make_plan(fingerprint_of(atrium_mm=(60, 60, 60)), {})
    small = make_plan(fingerprint_of(atrium_mm=(30, 30, 30)), {})
    grid_big, grid_small = (
        value(big, "model", "grid_spacing_mm")["axial"][0],
        value(small, "model", "grid_spacing_mm")["axial"][0],
    )
    assert grid_small < grid_big  # 30 mm / 20 px = 1.5 mm: the atrium spans at least 20 grid pixels
    assert 30 / grid_small >= 20
    crop_mm = {
        name: value(p, "train", "patch_px")["axial"][0] * g
        for name, p, g in (("big", big, grid_big), ("small", small, grid_small))
    }
    assert crop_mm["small"] < 0.7 * crop_mm["big"]
    assert all(n % 16 == 0 for p in (big, small) for n in value(p, "train", "patch_px")["axial"])
    # Smaller crops, bigger batches: the same work per iteration.
    pixels = [
        value(p, "train", "batch_size")["axial"] * np.prod(value(p, "train", "patch_px")["axial"]) for p in (big, small)
    ]
    assert pixels[1] == pytest.approx(pixels[0], rel=0.2)


def test_more_cases_more_training_within_the_bounds():
    preset = PRESETS["default"]
    iterations = {}
    for n in (2, 16, 24, 60):
        plan = make_plan(fingerprint_of(n_cases=1) | {"n_cases": n}, {})
        iterations[n] = value(plan, "train", "max_epochs") * value(plan, "train", "iterations_per_epoch")
    assert iterations[2] == pytest.approx(preset.iterations_min, abs=40)
    assert iterations[2] < iterations[16] < iterations[24] <= iterations[60]
    assert iterations[60] == pytest.approx(preset.iterations_max, abs=40)
    # full's first stage is the default's (its minutes go to the 3D second stage, laseg.plan.STAGE2_PRESETS).
    full = make_plan(fingerprint_of(n_cases=1) | {"n_cases": 16}, {}, "full")
    default = make_plan(fingerprint_of(n_cases=1) | {"n_cases": 16}, {})
    assert planned_values(full) == planned_values(default) and full["preset"] == "full"


def test_thick_slices_are_planned_axial_only():
    plan = make_plan(fingerprint_of(spacing_zyx_mm=(5.0, 1.25, 1.25), fov_zyx_mm=(100, 320, 320)), {})
    assert value(plan, "model", "views") == ["axial"] and "thicker" in plan["settings"]["model"]["views"]["reason"]


def test_explicit_config_keys_win_and_the_plan_says_so():
    config = {
        "model": {"views": ["sagittal"], "inplane_spacing_mm": 1.5, "context_slices": 1, "base_channels": 16},
        "train": {
            "max_epochs": 3,
            "patch_px": 48,
            "batch_size": 5,
            "budget_minutes": 2.0,
            "iterations_per_epoch": "auto",
        },
    }
    explicit = explicit_settings(config)
    assert "base_channels" not in explicit["model"] and "iterations_per_epoch" not in explicit["train"]
    plan = make_plan(fingerprint_of(), explicit)
    assert value(plan, "model", "views") == ["sagittal"]
    assert value(plan, "model", "grid_spacing_mm") == {"sagittal": [1.5, 1.5]}
    assert value(plan, "model", "context_slices") == {"sagittal": 1}
    assert value(plan, "train", "patch_px") == {"sagittal": [48, 48]} and value(plan, "train", "batch_size") == {
        "sagittal": 5
    }
    assert value(plan, "train", "max_epochs") == 3 and value(plan, "train", "budget_minutes") == 2.0
    for section, key in [
        ("model", "views"),
        ("model", "grid_spacing_mm"),
        ("train", "max_epochs"),
        ("train", "patch_px"),
    ]:
        assert plan["settings"][section][key]["source"] == "config", (section, key)
    assert plan["settings"]["train"]["iterations_per_epoch"]["source"] == "plan"
    assert training_cap_minutes(config) == 2.0 and training_cap_minutes({"plan": {"preset": "full"}}) == 15.0
    # full's 60 minutes: 15 for the first stage, 45 for the second.
    assert stage2_cap_minutes({"plan": {"preset": "full"}}) == 45.0
    assert stage2_cap_minutes({"plan": {"preset": "full"}, "stage2": {"budget_minutes": 5}}) == 5.0


def test_test_time_zooms_follow_the_preset_unless_the_config_names_them():
    # One pass per view (three zooms scored +0.0004 on MSD's 5 folds for twice the network time).
    assert planned_test_time_scales({"predict": {"test_time_scales": "auto"}}) == [1.0]
    assert planned_test_time_scales({"predict": {"test_time_scales": "auto"}, "plan": {"preset": "full"}}) == [1.0]
    assert planned_test_time_scales({"predict": {"test_time_scales": [1.0, 1.2]}, "plan": {"preset": "full"}}) == [
        1.0,
        1.2,
    ]


def test_plan_json_matches_its_schema_and_every_entry_has_a_reason():
    schema = yaml.safe_load((REPO / "config" / "plan.schema.yaml").read_text())
    for preset in PRESETS:
        plan = json.loads(json.dumps(make_plan(fingerprint_of(), {}, preset)))  # what plan.json holds
        jsonschema.validate(plan, schema)
    broken = json.loads(json.dumps(plan))
    del broken["settings"]["train"]["max_epochs"]["reason"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_plan_records_the_thickest_training_slices_per_view_and_the_networks_get_them():
    cases = [
        fingerprint_case(synthetic_case("fine", spacing_zyx_mm=(1.0, 1.25, 1.25), fov_zyx_mm=(100, 200, 200))),
        fingerprint_case(synthetic_case("thick", spacing_zyx_mm=(2.0, 1.25, 1.25), fov_zyx_mm=(100, 200, 200))),
        fingerprint_case(synthetic_case("mid", spacing_zyx_mm=(1.5, 1.25, 1.25), fov_zyx_mm=(100, 200, 200))),
    ]
    plan = make_plan(cohort_fingerprint(cases), {})
    assert value(plan, "model", "trained_slice_spacing_mm") == {"axial": 2.0, "coronal": 1.25}
    config, _ = planned_training(plan, {}, {})
    assert config.view_slice_spacing_mm == {"axial": 2.0, "coronal": 1.25}
    assert config.slice_refinement("axial", 3.0) == 1  # within 1.5x of what it learned from
    assert config.slice_refinement("axial", 5.0) == 3  # 5 mm slices: two between each, 1.67 mm apart
    assert ModelConfig().slice_refinement("axial", 5.0) == 1  # a checkpoint that does not know: as before


def test_the_plan_resolves_to_networks_and_crops_per_view():
    plan = make_plan(
        fingerprint_of(spacing_zyx_mm=(0.625, 0.625, 0.625), fov_zyx_mm=(40, 80, 80), atrium_mm=(20, 30, 30)), {}
    )
    config, settings = planned_training(plan, {"base_channels": 4, "depth": 2}, {"seed": 0, "augment": False})
    values = planned_values(plan)
    stack = synthetic_case("p", spacing_zyx_mm=(0.625, 0.625, 0.625), fov_zyx_mm=(40, 80, 80), atrium_mm=(20, 30, 30))
    for view in config.views:
        image, _ = prepare_volume(stack, config, view)
        grid = values["model"]["grid_spacing_mm"][view]
        native = {"axial": (80, 80), "coronal": (40, 80)}[view]
        assert image.shape[1:] == tuple(round(n / g) for n, g in zip(native, grid))
        prepared = prepared_volumes([stack], config, view, soft_labels=False)
        images, labels = sample_batch(prepared, settings, config, np.random.default_rng(0), view)
        assert images.shape == (settings.batch_of(view), config.in_channels_of(view), *settings.patch_of(view))
        net = UNet2D(config, config.in_channels_of(view))
        assert net(torch.from_numpy(images)).shape == labels.shape


def test_a_budget_cut_is_logged_and_stored_and_an_uncut_run_says_complete():
    stack = synthetic_case("p", spacing_zyx_mm=(2.0, 2.0, 2.0), fov_zyx_mm=(32, 64, 64), atrium_mm=(16, 24, 24))
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, views=("axial", "coronal"))
    lines: list[str] = []
    cut = TrainSettings(max_epochs=50, iterations_per_epoch=2, batch_size=2, patch_px=16, budget_minutes=0.001)
    checkpoint, _ = train_model([stack], config, cut, log=lines.append, plan={"format": 1})
    amount = checkpoint["training_amount"]
    assert amount["cut_short_by_budget"] and all(n < 50 for n in amount["epochs_run"].values())
    assert any(line.startswith("training cut short by the 0.001 min budget: axial") for line in lines), lines
    assert checkpoint["plan"] == {"format": 1}
    whole = TrainSettings(max_epochs=2, iterations_per_epoch=2, batch_size=2, patch_px=16, budget_minutes=30)
    checkpoint, _ = train_model([stack], config, whole, log=lines.append)
    assert checkpoint["training_amount"]["epochs_run"] == {"axial": 2, "coronal": 2}
    assert not checkpoint["training_amount"]["cut_short_by_budget"]
