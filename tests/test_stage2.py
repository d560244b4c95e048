"""The 3D second stage: its box, its grid, its prediction on the scan's voxels, its plan and its training."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from laseg.io import Geometry
from laseg.masks import dice
from laseg.plan import make_stage2_plan, planned_stage2, stage2_enabled
from laseg.slices import SliceStack
from laseg.stage2 import (
    Stage2Config,
    Stage2Settings,
    box_around,
    grid_shape,
    network_of,
    refine_logits,
    sliding_window_logits,
    train_stage2,
    widen_box,
    window_starts,
)


def ellipsoid(shape, spacing, centre_mm, radii_mm) -> np.ndarray:
    grids = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre_mm, radii_mm)) <= 1.0


def stack_of(image: np.ndarray, label: np.ndarray | None, spacing, patient="p") -> SliceStack:
    geometry = Geometry(image.shape[::-1], spacing[::-1], (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return SliceStack(patient, image.astype(np.float32), label, geometry, tuple(spacing))


class Threshold(torch.nn.Module):
    """A stand-in network whose logit is 20 x (intensity - 0.5): a bright object's own outline."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x - 0.5)


class Constant(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x) + self.value


def test_box_grows_by_the_margin_in_mm_per_axis_and_clips_at_the_volume_edge():
    mask = np.zeros((20, 30, 40), bool)
    mask[5:8, 10:12, 35:40] = True
    box = box_around(mask, (2.0, 1.0, 0.5), margin_mm=3.0)
    # 3 mm: 2 slices at 2 mm (rounded up), 3 rows at 1 mm, 6 columns at 0.5 mm, clipped at column 40.
    assert box == (slice(3, 10), slice(7, 15), slice(29, 40))
    corner = np.zeros((10, 10, 10), bool)
    corner[0, 0, 0] = True
    assert box_around(corner, (1.0, 1.0, 1.0), 5.0) == (slice(0, 6), slice(0, 6), slice(0, 6))
    assert box_around(np.zeros((4, 4, 4), bool), (1.0, 1.0, 1.0), 5.0) is None


def test_widen_box_reaches_the_patch_extent_inside_the_volume():
    wide = widen_box((slice(10, 14), slice(0, 4), slice(5, 50)), (30, 30, 60), (1.0, 2.0, 1.0), (10.0, 10.0, 10.0))
    assert wide == (slice(7, 17), slice(0, 5), slice(5, 50))  # centred; at the edge; already wide enough
    small = widen_box((slice(1, 2),) * 3, (4, 4, 4), (1.0, 1.0, 1.0), (10.0, 10.0, 10.0))
    assert small == (slice(0, 4),) * 3  # never beyond the volume
    # A box that fits the patch stays one window: rounded down, 80 grid voxels of 1.411 mm at 1.37 mm spacing.
    fits = widen_box((slice(40, 50),), (200,), (1.37,), (80 * 1.411,))
    assert grid_shape((fits[0].stop - fits[0].start,), (1.37,), 1.411) == (80,)


def test_windows_cover_every_voxel_and_overlap():
    for n, patch in [(10, 16), (16, 16), (17, 16), (100, 32), (65, 64)]:
        starts = window_starts(n, patch)
        covered = np.zeros(max(n, patch), bool)
        for s in starts:
            covered[s : s + patch] = True
            assert 0 <= s and s + patch <= max(n, patch)
        assert covered[:n].all(), (n, patch, starts)
        assert all(b - a <= patch // 2 for a, b in itertools.pairwise(starts))


def test_sliding_window_reproduces_a_voxelwise_network_exactly_over_a_block_bigger_than_the_patch():
    rng = np.random.default_rng(0)
    image = rng.random((40, 20, 10)).astype(np.float32)
    logits = sliding_window_logits(Threshold(), image, (16, 16, 16), torch.device("cpu"))
    assert logits.shape == image.shape
    np.testing.assert_allclose(logits, 20 * (image - 0.5), atol=1e-4)


def test_stage2_prediction_lands_on_the_scan_grid_exactly_in_the_box_around_the_first_stage():
    spacing = (1.5, 0.8, 1.1)  # anisotropic: the stage's isotropic grid differs on every axis
    shape = (40, 70, 56)
    truth = ellipsoid(shape, spacing, (30.0, 28.0, 30.0), (12.0, 15.0, 10.0))
    image = np.where(truth, 1.0, 0.1).astype(np.float32)
    image[0, 0, 0] = 0.0  # content_range's minimum is fill, not anatomy
    stack = stack_of(image, None, spacing)
    # The first stage found a shrunken atrium: its box plus the margin must still hold the whole truth.
    first_truth = ellipsoid(shape, spacing, (30.0, 28.0, 30.0), (9.0, 11.0, 7.0))
    first = np.where(first_truth, 3.0, -3.0).astype(np.float32)
    config = Stage2Config(grid_spacing_mm=1.0, patch_zyx=(24, 24, 24), margin_mm=6.0)
    logits, done = refine_logits(Threshold(), config, stack, first, torch.device("cpu"))
    assert logits.shape == shape and done["stage2"] == "applied"
    assert dice(logits >= 0, truth) > 0.97  # the 3D network's outline, resampled back onto the scan's voxels
    # Exactly the box: the second stage's logits inside, the first stage's untouched outside.
    box = box_around(first >= 0, spacing, 6.0)
    assert done["stage2_box_zyx"] == [[s.start, s.stop] for s in box]
    constant, _ = refine_logits(Constant(7.0), config, stack, first, torch.device("cpu"))
    inside = np.zeros(shape, bool)
    inside[box] = True
    np.testing.assert_allclose(constant[inside], 7.0, atol=1e-5)
    np.testing.assert_array_equal(constant[~inside], first[~inside])
    mean = Stage2Config(grid_spacing_mm=1.0, patch_zyx=(24, 24, 24), margin_mm=6.0, combine="mean")
    averaged, _ = refine_logits(Constant(7.0), mean, stack, first, torch.device("cpu"))
    np.testing.assert_allclose(averaged[inside], (first[inside] + 7.0) / 2, atol=1e-5)


def test_an_empty_first_stage_mask_falls_back_to_the_first_stage_with_a_warning():
    stack = stack_of(np.random.default_rng(1).random((12, 12, 12)), None, (1.0, 1.0, 1.0))
    first = np.full((12, 12, 12), -4.0, np.float32)
    config = Stage2Config(grid_spacing_mm=1.0, patch_zyx=(16, 16, 16), margin_mm=5.0)
    with pytest.warns(UserWarning, match="found no atrium"):
        logits, done = refine_logits(Constant(9.0), config, stack, first, torch.device("cpu"))
    np.testing.assert_array_equal(logits, first)
    assert done["stage2"].startswith("skipped")


FINGERPRINT = {
    "n_cases": 3,
    "patients": ["a", "b", "c"],
    "median": {"spacing_zyx_mm": [1.37, 1.25, 1.25], "la_extent_zyx_mm": [93.0, 70.0, 52.0]},
}


def test_the_stage2_plan_fits_the_median_box_in_the_patch_and_never_goes_finer_than_the_data():
    plan = make_stage2_plan(FINGERPRINT, {}, "full")
    values = {key: entry["value"] for key, entry in plan["settings"]["stage2"].items()}
    grid, patch = values["grid_spacing_mm"], values["patch_zyx"]
    box = [e + 2 * values["margin_mm"] for e in (93.0, 70.0, 52.0)]
    assert all(n % 8 == 0 for n in patch)
    assert all(abs(n * grid - b) <= 4 * grid for n, b in zip(patch, box))  # the box's shape, to 8 voxels
    assert grid >= 1.25 and np.prod(patch) <= 1.2 * 64**3
    fine = make_stage2_plan({**FINGERPRINT, "median": {**FINGERPRINT["median"], "spacing_zyx_mm": [3.0, 3, 3]}}, {})
    assert fine["settings"]["stage2"]["grid_spacing_mm"]["value"] == 3.0  # never finer than the data
    # The config's values win and say so; a GPU trains longer than a CPU, by the plan.
    own = make_stage2_plan(FINGERPRINT, {"grid_spacing_mm": 2.0, "patch_vox": 32, "steps": 7}, "full")
    entries = own["settings"]["stage2"]
    assert entries["grid_spacing_mm"] == {**entries["grid_spacing_mm"], "value": 2.0, "source": "config"}
    assert entries["patch_zyx"]["value"] == [32, 32, 32] and entries["steps"]["value"]["cuda"] == 7
    config, settings = planned_stage2(plan, {"combine": "mean"}, "cuda")
    assert config.combine == "mean" and settings.steps == values["steps"]["cuda"] > values["steps"]["cpu"]
    json.dumps(plan)  # plan.json-able
    assert stage2_enabled({"plan": {"preset": "full"}}) and not stage2_enabled({"plan": {"preset": "default"}})
    assert stage2_enabled({"plan": {"preset": "default"}, "stage2": {"enabled": True}})


def _training_cases() -> list[SliceStack]:
    cases = []
    for i, centre in enumerate([(28.0, 30.0, 32.0), (32.0, 28.0, 28.0), (30.0, 34.0, 30.0)]):
        spacing = (1.2, 1.0, 1.0)
        shape = (50, 60, 60)
        label = ellipsoid(shape, spacing, centre, (12.0, 14.0, 11.0))
        noise = np.random.default_rng(i).normal(0, 0.05, shape)
        image = (np.where(label, 1.0, 0.2) + noise).astype(np.float32)
        cases.append(stack_of(image, label.astype(np.uint8), spacing, f"case_{i}"))
    return cases


def test_training_is_repeatable_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    cases = _training_cases()
    config = Stage2Config(grid_spacing_mm=2.0, patch_zyx=(16, 16, 16), margin_mm=4.0, base_channels=4)
    settings = Stage2Settings(steps=6, steps_per_epoch=2, jitter_mm=4.0, threads=1, device="cpu")
    whole, history = train_stage2(cases, config, settings, log=lambda line: None)
    again, _ = train_stage2(cases, config, settings, log=lambda line: None)
    assert len(history) == 3 and whole["training_amount"]["steps_run"] == 6 and whole["kind"] == "stage2"
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key

    # A run killed after its second epoch: its resume state, then a fresh call that continues from it.
    resume = tmp_path / ".stage2.pt.resume"
    killed = Stage2Settings(**{**settings.__dict__, "budget_minutes": settings.budget_minutes})
    lines: list[str] = []

    class Killed(Exception):
        pass

    def stop_after_second_epoch(line: str) -> None:
        lines.append(line)
        if "epoch 2/" in line:
            raise Killed

    with pytest.raises(Killed):
        train_stage2(cases, config, killed, log=stop_after_second_epoch, resume_path=resume)
    assert resume.is_file()
    resumed, resumed_history = train_stage2(cases, config, settings, log=lines.append, resume_path=resume)
    assert any("resuming after epoch 2" in line for line in lines)
    assert [row["epoch"] for row in resumed_history] == [1, 2, 3]
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_a_short_training_learns_the_atrium_of_an_unseen_case():
    cases = _training_cases()
    config = Stage2Config(grid_spacing_mm=2.0, patch_zyx=(24, 24, 24), margin_mm=4.0, base_channels=8)
    settings = Stage2Settings(steps=100, steps_per_epoch=20, jitter_mm=4.0, learning_rate=1e-2, threads=2, device="cpu")
    checkpoint, _ = train_stage2(cases[:2], config, settings, log=lambda line: None)
    net = network_of(config)
    net.load_state_dict(checkpoint["state_dict"])
    unseen = cases[2]
    first = np.where(unseen.label > 0, 2.0, -2.0).astype(np.float32)
    logits, _ = refine_logits(net, config, unseen, first, torch.device("cpu"))
    assert dice(logits >= 0, unseen.label > 0) > 0.85
    assert grid_shape(unseen.image.shape, unseen.spacing_zyx_mm, 2.0) == (30, 30, 30)
