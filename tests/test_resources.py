"""Memory requests from input sizes, and training from stored stacks read as needed."""

from __future__ import annotations

import json

import torch
from test_model import tiny_stack

from laseg.model import ModelConfig
from laseg.resources import grid_voxels, predict_memory_mb, train_memory_mb
from laseg.slices import StoredStack, save_slices
from laseg.train import TrainSettings, train_model


def write_sidecar(path, shape, spacing=(1.0, 1.0, 1.0)):
    path.write_text(
        json.dumps({"patient": path.stem, "canonical_shape_zyx": list(shape), "spacing_zyx_mm": list(spacing)})
    )
    return path


def test_grid_voxels_follow_the_plans_grid_per_view():
    shape, spacing = (100, 200, 200), (1.0, 0.5, 0.5)
    assert grid_voxels(shape, spacing, None) == 100 * 200 * 200
    assert grid_voxels(shape, spacing, {"axial": [1.0, 1.0]}) == 100 * 100 * 100
    # coronal slices (z, x): 200 slices of 100 x 100 at 1 mm
    assert grid_voxels(shape, spacing, {"axial": [2.0, 2.0], "coronal": [1.0, 1.0]}) == 200 * 100 * 100


def test_memory_requests_grow_with_the_inputs_and_fall_back_before_they_exist(tmp_path):
    small = [write_sidecar(tmp_path / f"s{i}.json", (80, 160, 160)) for i in range(4)]
    large = small + [write_sidecar(tmp_path / f"l{i}.json", (80, 160, 160)) for i in range(40)]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"settings": {"model": {"grid_spacing_mm": {"value": {"axial": [2.0, 2.0]}}}}}))
    assert train_memory_mb(small, plan, 6000) < train_memory_mb(large, plan, 6000) < train_memory_mb(large, None, 6000)
    assert train_memory_mb([tmp_path / "absent.json"], plan, 6000) == 6000
    assert predict_memory_mb(small[0], 4000) < predict_memory_mb(
        write_sidecar(tmp_path / "big.json", (300, 512, 512)), 4000
    )
    assert predict_memory_mb(tmp_path / "absent.json", 4000) == 4000


def test_training_from_stored_stacks_equals_training_from_loaded_ones(tmp_path):
    stack = tiny_stack()
    save_slices(stack, tmp_path / "p.npz", tmp_path / "p.json")
    config = ModelConfig(base_channels=4, depth=2, context_slices=1, views=("axial", "coronal"))
    settings = TrainSettings(max_epochs=2, iterations_per_epoch=2, batch_size=2, patch_px=16, budget_minutes=30)
    loaded, _ = train_model([stack], config, settings, log=lambda line: None)
    stored, _ = train_model(
        [StoredStack.of(tmp_path / "p.npz", tmp_path / "p.json")], config, settings, log=lambda line: None
    )
    assert all(torch.equal(loaded["state_dict"][k], stored["state_dict"][k]) for k in loaded["state_dict"])
