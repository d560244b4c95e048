"""The data's fingerprint and the plan made from it: every setting train and predict use, each with its reason.

nnU-Net's lesson: a segmentation pipeline must configure itself from the data, not from the dataset it was
tuned on. Ours does it under a CPU budget: the grid, the crops and the amount of training follow from the
training cases' spacing, field of view and atrium size; a key the user sets in the config wins.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a plan is made or used, not where Snakemake parses the config
    from laseg.model import ModelConfig
    from laseg.slices import SliceStack
    from laseg.stage2 import Stage2Config, Stage2Settings
    from laseg.train import TrainSettings

PLAN_FORMAT = 1
INTENSITY_PERCENTILES = (0.5, 5.0, 50.0, 95.0, 99.5)


@dataclass(frozen=True)
class Preset:
    """The constants of a plan: what one CPU minute buys, not what one dataset needs."""

    name: str
    views: tuple[str, ...]  # slicing planes, one network each
    slice_px: int  # the median slice's long side at the network grid: the pixels a network may spend on a slice
    iterations_per_case: int  # training iterations per network per training case ...
    iterations_min: int  # ... within these bounds
    iterations_max: int
    pixels_per_batch: int  # the work of one iteration, whatever the crop: batch x crop pixels
    budget_minutes: float  # the train job's wall-clock cap
    # Inference's in-plane zooms. On networks trained with the default's amount (MSD, 5 folds, a gamma-augmented
    # run), three scored +0.0007 Dice over one for twice the network time, the zooms after the first boxed to the
    # atrium (bench/inference_ablation.py, 2026-12-05): not worth the default's 10 s per volume on 2 cores.
    test_time_scales: tuple[float, ...]


PRESETS = {
    "default": Preset("default", ("axial", "coronal"), 128, 150, 800, 3000, 16 * 64 * 64, 15.0, (1.0,)),
    # full's first stage is the default's: three planes, a finer grid and three zooms (34-46 min per fold) scored
    # 0.9191 on MSD's 5 folds against the default's 0.9201; its minutes go to the 3D second stage instead.
    "full": Preset("full", ("axial", "coronal"), 128, 150, 800, 3000, 16 * 64 * 64, 15.0, (1.0,)),
}


@dataclass(frozen=True)
class Stage2Preset:
    """The constants of the second stage's plan: what it may spend, not what one dataset needs."""

    enabled: bool  # whether the preset runs the second stage unless the config says otherwise
    patch_voxels: int  # the network's input: the median atrium box fits in about this many grid voxels
    steps: dict[str, int]  # training steps by device kind: a GPU buys more in the same minutes
    budget_minutes: float  # the stage-2 train job's wall-clock cap


STAGE2_PRESETS = {
    # The default's 15 minutes go to its first stage (13 of them on a 2-core CPU without AMX): no second stage.
    "default": Stage2Preset(False, 64**3, {"cpu": 1500, "cuda": 6000, "mps": 1500}, 45.0),
    "full": Stage2Preset(True, 64**3, {"cpu": 1500, "cuda": 6000, "mps": 1500}, 45.0),
}
# The config's stage2 keys make_stage2_plan resolves ("auto": the plan decides); the others go to training as they are.
STAGE2_PLANNED_KEYS = ("grid_spacing_mm", "patch_vox", "steps", "budget_minutes", "margin_mm")
STAGE2_MARGIN_MM = 10.0  # around the first stage's mask: the box the second stage segments
STAGE2_BATCH = 2
STAGE2_SIZE_MULTIPLE = 8  # 2**depth of the stage-2 U-Net
MIN_ATRIUM_PX = 20  # the atrium's narrowest in-plane extent spans at least this many grid pixels
CONTEXT_MM = 2.5  # neighbouring slices each side: 2 slices at MSD's 1.25-1.37 mm, the measured default
CONTEXT_MAX_SLICES = 4
CROP_ATRIUM_EXTENTS = 2.5  # crop side = the atrium's in-plane diameter (geometric mean of its extents) x this
BATCH_LIMITS = (4, 64)  # batch norm needs a few crops per batch
ITERATIONS_PER_EPOCH = 40
THICK_SLICE_RATIO = 3.0  # through-plane / in-plane spacing above which a coronal or sagittal slice is too coarse
# Keys the plan sets; "auto" in the config means "the plan decides", anything else is the user's and wins.
PLANNED_KEYS = (
    ("model", "views"),
    ("model", "inplane_spacing_mm"),
    ("model", "context_slices"),
    ("train", "patch_px"),
    ("train", "batch_size"),
    ("train", "max_epochs"),
    ("train", "iterations_per_epoch"),
    ("train", "budget_minutes"),
)


def fingerprint_case(stack: SliceStack) -> dict:
    """What the plan needs to know about one labelled case, in the canonical (z, y, x) frame, millimetres."""
    if stack.label is None:
        raise ValueError(f"patient {stack.patient}: a fingerprint needs a label")
    spacing = np.asarray(stack.spacing_zyx_mm, float)
    inside = stack.label.astype(bool)
    voxels = np.argwhere(inside)
    extent_vox = voxels.max(axis=0) - voxels.min(axis=0) + 1
    percentiles = [float(p) for p in INTENSITY_PERCENTILES]
    return {
        "patient": stack.patient,
        "shape_zyx": [int(n) for n in stack.image.shape],
        "spacing_zyx_mm": [float(s) for s in spacing],
        "field_of_view_zyx_mm": [float(n * s) for n, s in zip(stack.image.shape, spacing)],
        "source_direction": [float(d) for d in stack.source_geometry.direction],
        "source_orientation": stack.source_geometry.orientation,
        "intensity_percentiles": percentiles,
        "intensity_inside_la": [float(v) for v in np.percentile(stack.image[inside], percentiles)],
        "intensity_outside_la": [float(v) for v in np.percentile(stack.image[~inside], percentiles)],
        "la_volume_ml": float(inside.sum() * spacing.prod() / 1000.0),
        "la_extent_zyx_mm": [float(n * s) for n, s in zip(extent_vox, spacing)],
        "la_bbox_min_zyx_mm": [float(v * s) for v, s in zip(voxels.min(axis=0), spacing)],
    }


def cohort_fingerprint(cases: list[dict]) -> dict:
    """The cases' fingerprints and their medians (and the smallest atrium's extents)."""
    if not cases:
        raise ValueError("a fingerprint needs at least one labelled training case")
    cases = sorted(cases, key=lambda c: c["patient"])

    def median(key: str) -> list[float]:
        return [float(v) for v in np.median([c[key] for c in cases], axis=0)]

    inside_high = [c["intensity_inside_la"][-1] for c in cases]
    return {
        "n_cases": len(cases),
        "patients": [c["patient"] for c in cases],
        "median": {
            "spacing_zyx_mm": median("spacing_zyx_mm"),
            "shape_zyx": median("shape_zyx"),
            "field_of_view_zyx_mm": median("field_of_view_zyx_mm"),
            "la_volume_ml": float(np.median([c["la_volume_ml"] for c in cases])),
            "la_extent_zyx_mm": median("la_extent_zyx_mm"),
            "intensity_inside_la": median("intensity_inside_la"),
            "intensity_outside_la": median("intensity_outside_la"),
        },
        "min": {"la_extent_zyx_mm": [float(v) for v in np.min([c["la_extent_zyx_mm"] for c in cases], axis=0)]},
        "max": {"spacing_zyx_mm": [float(v) for v in np.max([c["spacing_zyx_mm"] for c in cases], axis=0)]},
        # How far scanners' raw scales disagree: the ratio of the largest to the smallest atrium 99.5th percentile.
        "intensity_scale_ratio": float(max(inside_high) / max(min(inside_high), 1e-6)),
        "orientations": sorted({c["source_orientation"] for c in cases}),
        "cases": cases,
    }


def _round_to(value: float, multiple: int, minimum: int) -> int:
    return max(minimum, multiple * round(value / multiple))


def _entry(value: object, reason: str, source: str = "plan", **figures: object) -> dict:
    return {"value": value, "source": source, "reason": reason, "from": figures}


def make_plan(fingerprint: dict, explicit: dict, preset_name: str = "default") -> dict:
    """Every planned setting from a cohort fingerprint; `explicit` holds the user's own values of
    PLANNED_KEYS ({"model": {"views": [...]}, ...}), which win and are marked source "config"."""
    from laseg.model import THICK_SLICE_REFINE_RATIO, VIEW_AXES, in_view_order

    preset = PRESETS[preset_name]
    med = fingerprint["median"]
    spacing = med["spacing_zyx_mm"]
    fov = med["field_of_view_zyx_mm"]
    la_extent = med["la_extent_zyx_mm"]
    n_cases = fingerprint["n_cases"]

    def user(section: str, key: str) -> object:
        value = explicit.get(section, {}).get(key, "auto")
        return None if value == "auto" else value

    def entry(section: str, key: str, value: object, planned_reason: str, **figures: object) -> dict:
        """The setting's entry: the config's when the user set `section.key`, else the plan's with its reason."""
        if user(section, key) is not None:
            return _entry(value, f"set in the config ({section}.{key})", "config")
        return _entry(value, planned_reason, "plan", **figures)

    settings: dict[str, dict] = {"model": {}, "train": {}}

    # Views: one network per plane; a plane that cuts across thick slices sees too few rows to learn from.
    inplane = min(spacing[1], spacing[2])
    anisotropy = spacing[0] / inplane
    if anisotropy > THICK_SLICE_RATIO:
        views = ["axial"]
        reason = f"slices {anisotropy:.1f}x thicker than the in-plane spacing (> {THICK_SLICE_RATIO}): axial only"
    else:
        views = list(preset.views)
        reason = (
            f"preset {preset.name}: one network per plane, their logits averaged; planes fail on different cases "
            "(MSD 5-fold, same 10 min per network: axial 0.9009, coronal 0.9028, both averaged 0.9112)"
        )
    views = list(user("model", "views") or views)  # type: ignore[call-overload]
    settings["model"]["views"] = entry(
        "model", "views", views, reason, median_spacing_zyx_mm=spacing, anisotropy=round(anisotropy, 2)
    )

    # Grid: the median slice in preset.slice_px pixels (what a network may spend on a slice), finer where the
    # atrium's narrowest in-plane extent would span fewer than MIN_ATRIUM_PX pixels, never finer than the data.
    grid: dict[str, list[float]] = {}
    context: dict[str, int] = {}
    crops: dict[str, list[int]] = {}
    batches: dict[str, int] = {}
    grid_reasons, grid_figures = [], {}
    for view in views:
        view_spacing, view_fov, view_la = (list(in_view_order(tuple(v), view)[1:]) for v in (spacing, fov, la_extent))
        if user("model", "inplane_spacing_mm") is not None:
            target = float(user("model", "inplane_spacing_mm"))  # type: ignore[arg-type]
        else:
            by_budget = max(view_fov) / preset.slice_px
            by_atrium = min(view_la) / MIN_ATRIUM_PX
            target = round(min(by_budget, by_atrium), 3)
            grid_reasons.append(
                f"{view}: min(slice {max(view_fov):.0f} mm / {preset.slice_px} px = {by_budget:.2f}, "
                f"atrium {min(view_la):.0f} mm / {MIN_ATRIUM_PX} px = {by_atrium:.2f}) = {target:.2f} mm"
            )
        grid[view] = [round(max(target, s), 4) for s in view_spacing]
        grid_figures[view] = {"data_spacing_mm": view_spacing, "field_of_view_mm": view_fov, "la_extent_mm": view_la}

        slice_spacing = spacing[VIEW_AXES[view][0]]
        if user("model", "context_slices") is not None:
            context[view] = int(user("model", "context_slices"))  # type: ignore[arg-type]
        else:
            context[view] = int(min(CONTEXT_MAX_SLICES, max(1, round(CONTEXT_MM / slice_spacing))))

        if user("train", "patch_px") is not None:
            crops[view] = [int(user("train", "patch_px"))] * 2  # type: ignore[arg-type]
        else:
            side_mm = CROP_ATRIUM_EXTENTS * math.sqrt(view_la[0] * view_la[1])
            crops[view] = [
                min(_round_to(side_mm / g, 16, 32), _round_to(math.ceil(f / g), 16, 32))
                for g, f in zip(grid[view], view_fov)
            ]
        if user("train", "batch_size") is not None:
            batches[view] = int(user("train", "batch_size"))  # type: ignore[arg-type]
        else:
            batches[view] = int(
                np.clip(round(preset.pixels_per_batch / (crops[view][0] * crops[view][1])), *BATCH_LIMITS)
            )

    settings["model"]["grid_spacing_mm"] = entry(
        "model",
        "inplane_spacing_mm",
        grid,
        "; ".join(grid_reasons) + "; never finer than the data's spacing",
        **grid_figures,
    )
    settings["model"]["context_slices"] = entry(
        "model", "context_slices", context,
        f"neighbours each side covering {CONTEXT_MM} mm (1..{CONTEXT_MAX_SLICES} slices)",
        slice_spacing_mm={v: spacing[VIEW_AXES[v][0]] for v in views},
    )  # fmt: skip
    # Fingerprints written before 2026-12-07 have no maximum: their median stands in.
    thickest = fingerprint.get("max", {}).get("spacing_zyx_mm", spacing)
    settings["model"]["trained_slice_spacing_mm"] = _entry(
        {v: round(float(thickest[VIEW_AXES[v][0]]), 4) for v in views},
        "the thickest slices of the training cases, per view: a scan whose slices are more than "
        f"{THICK_SLICE_REFINE_RATIO}x thicker gets slices interpolated between its own at prediction, so that the "
        "context slices lie as close together as in training",
        max_spacing_zyx_mm=[float(s) for s in thickest],
    )
    settings["train"]["patch_px"] = entry(
        "train", "patch_px", crops,
        f"{CROP_ATRIUM_EXTENTS} x the atrium's in-plane diameter in the view, "
        "at most the median slice, multiples of 16",
        la_extent_zyx_mm=la_extent, field_of_view_zyx_mm=fov,
    )  # fmt: skip
    settings["train"]["batch_size"] = entry(
        "train", "batch_size", batches,
        f"the same work per iteration for every crop: {preset.pixels_per_batch} pixels / crop pixels, "
        f"within {BATCH_LIMITS}",
    )  # fmt: skip

    # Intensity: MRI has no absolute unit, so each volume is put on its own scale.
    settings["model"]["intensity"] = _entry(
        "content_range",
        "MRI intensities have no absolute scale (the atrium's 99.5th percentile differs "
        f"{fingerprint['intensity_scale_ratio']:.1f}x between training cases): per volume, the 0.5th and 99.5th "
        "percentiles of its content (voxels above its minimum) become 0 and 1, clipped, a scale that does not "
        "follow the field of view's share of blood pool, nor a fill value",
        intensity_scale_ratio=round(fingerprint["intensity_scale_ratio"], 2),
        median_inside_la=med["intensity_inside_la"],
        median_outside_la=med["intensity_outside_la"],
    )

    # Amount of training: iterations per network from the number of cases, so a bigger cohort is seen as often.
    per_epoch = user("train", "iterations_per_epoch") or ITERATIONS_PER_EPOCH
    iterations = int(np.clip(preset.iterations_per_case * n_cases, preset.iterations_min, preset.iterations_max))
    epochs = user("train", "max_epochs") or max(1, round(iterations / per_epoch))
    amount_reason = (
        f"{preset.iterations_per_case} iterations per training case per network, within "
        f"{preset.iterations_min}..{preset.iterations_max}: {n_cases} cases -> {iterations}"
    )
    settings["train"]["iterations_per_epoch"] = entry(
        "train", "iterations_per_epoch", per_epoch, "an epoch is a unit of the schedule and the log"
    )
    settings["train"]["max_epochs"] = entry("train", "max_epochs", epochs, amount_reason, n_cases=n_cases)
    budget = user("train", "budget_minutes")
    settings["train"]["budget_minutes"] = entry(
        "train", "budget_minutes", float(budget) if budget is not None else preset.budget_minutes,  # type: ignore[arg-type]
        f"preset {preset.name}: a cap; training stops early only if the CPU is too slow, and says so",
    )  # fmt: skip
    return {
        "format": PLAN_FORMAT,
        "preset": preset.name,
        "fingerprint_cases": fingerprint["patients"],
        "settings": settings,
        **training_volume_range(fingerprint),
    }


def training_volume_range(fingerprint: dict) -> dict:
    """The training atria's smallest and largest volume, what laseg.qc judges a result's volume against; the
    plan carries it into the checkpoint, so a given model brings its own. Empty without per-case fingerprints."""
    volumes = [float(case["la_volume_ml"]) for case in fingerprint.get("cases", [])]
    if not volumes:
        return {}
    return {"training_la_volume_ml": {"min": min(volumes), "max": max(volumes), "n_cases": len(volumes)}}


def training_volume_range_ml(plan: dict | None) -> tuple[float, float] | None:
    """The training atria's smallest and largest volume as the plan records them (laseg.plan.make_plan); None for
    a plan written before 2026-12-08 or a checkpoint without a plan."""
    recorded = (plan or {}).get("training_la_volume_ml")
    if not recorded:
        return None
    return float(recorded["min"]), float(recorded["max"])


def stage2_enabled(config: dict) -> bool:
    """Whether the workflow runs the second stage: the config's stage2.enabled, else the preset's."""
    enabled = config.get("stage2", {}).get("enabled", "auto")
    preset = config.get("plan", {}).get("preset", "default")
    return STAGE2_PRESETS[preset].enabled if enabled == "auto" else bool(enabled)


def make_stage2_plan(fingerprint: dict, section: dict, preset_name: str = "default") -> dict:
    """The second stage's plan from a cohort fingerprint: its isotropic grid, patch, box margin and amount of
    training, each with its reason; `section` is the config's stage2 section, whose non-"auto" values win.

    A plan of its own (not in plan.json), so that a stage-2 setting never retrains the first stage."""
    preset = STAGE2_PRESETS[preset_name]
    med = fingerprint["median"]
    finest = min(med["spacing_zyx_mm"])

    def user(key: str) -> object:
        value = section.get(key, "auto")
        return None if value == "auto" else value

    def entry(key: str, value: object, reason: str, **figures: object) -> dict:
        """The plan's value with its reason, or the config's (already resolved into `value`) when the user set it."""
        if user(key) is not None:
            return _entry(value, f"set in the config (stage2.{key})", "config")
        return _entry(value, reason, "plan", **figures)

    margin = float(user("margin_mm") or STAGE2_MARGIN_MM)  # type: ignore[arg-type]
    settings: dict[str, dict] = {
        "margin_mm": entry("margin_mm", margin, "around the first stage's mask: room for what it missed")
    }
    box_mm = [extent + 2 * margin for extent in med["la_extent_zyx_mm"]]
    # The median box in patch_voxels grid voxels, never finer than the data: a patch shaped like the box.
    by_budget = (math.prod(box_mm) / preset.patch_voxels) ** (1 / 3)
    grid = float(user("grid_spacing_mm") or round(max(finest, by_budget), 3))  # type: ignore[arg-type]
    settings["grid_spacing_mm"] = entry(
        "grid_spacing_mm",
        grid,
        f"isotropic: max(the data's finest median spacing {finest:.3f} mm, the median atrium box "
        f"{' x '.join(f'{b:.0f}' for b in box_mm)} mm in {preset.patch_voxels} voxels = {by_budget:.3f} mm)",
        median_la_extent_zyx_mm=med["la_extent_zyx_mm"],
        median_spacing_zyx_mm=med["spacing_zyx_mm"],
    )
    patch = (
        [int(user("patch_vox"))] * 3  # type: ignore[arg-type]
        if user("patch_vox") is not None
        else [_round_to(b / grid, STAGE2_SIZE_MULTIPLE, 2 * STAGE2_SIZE_MULTIPLE) for b in box_mm]
    )
    settings["patch_zyx"] = entry(
        "patch_vox",
        patch,
        f"the median atrium box at the grid, multiples of {STAGE2_SIZE_MULTIPLE}; a bigger box is covered by "
        "overlapping windows",
        box_mm=[round(b, 1) for b in box_mm],
    )
    settings["batch_size"] = _entry(STAGE2_BATCH, "two 3D patches per step (instance norm needs no bigger batch)")
    steps = {kind: int(user("steps")) for kind in preset.steps} if user("steps") else dict(preset.steps)  # type: ignore[arg-type]
    settings["steps"] = entry(
        "steps",
        steps,
        f"preset {preset_name}, by the device that trains: a GPU step costs a fraction of a CPU's, so it trains "
        "longer in the same minutes; the same data on the same kind of device gives the same model",
    )
    budget = user("budget_minutes")
    settings["budget_minutes"] = entry(
        "budget_minutes",
        float(budget) if budget is not None else preset.budget_minutes,  # type: ignore[arg-type]
        f"preset {preset_name}: a cap; training stops early only if the machine is too slow, and says so",
    )
    return {
        "format": PLAN_FORMAT,
        "preset": preset_name,
        "fingerprint_cases": fingerprint["patients"],
        "settings": {"stage2": settings},
    }


def planned_stage2(plan: dict, section: dict, device_kind: str) -> tuple[Stage2Config, Stage2Settings]:
    """The stage-2 network and training settings a stage-2 plan resolves to on a device kind (cpu, cuda, mps)."""
    from laseg.stage2 import Stage2Config, Stage2Settings

    values = {key: entry["value"] for key, entry in plan["settings"]["stage2"].items()}
    config = Stage2Config(
        grid_spacing_mm=float(values["grid_spacing_mm"]),
        patch_zyx=tuple(int(n) for n in values["patch_zyx"]),  # type: ignore[arg-type]
        margin_mm=float(values["margin_mm"]),
        base_channels=int(section.get("base_channels", 16)),
        combine=str(section.get("combine", "stage2")),
    )
    settings = Stage2Settings(
        steps=int(values["steps"][device_kind]),
        batch_size=int(values["batch_size"]),
        learning_rate=float(section.get("learning_rate", 1e-3)),
        budget_minutes=float(values["budget_minutes"]),
        seed=int(section.get("seed", 0)),
    )
    return config, settings


def planned_values(plan: dict) -> dict[str, dict]:
    """{"model": {key: value}, "train": {key: value}}: the plan without its reasons."""
    return {
        section: {key: entry["value"] for key, entry in entries.items()}
        for section, entries in plan["settings"].items()
    }


def planned_training(plan: dict, model_config: dict, train_config: dict) -> tuple[ModelConfig, TrainSettings]:
    """The network and training settings a plan resolves to; the config's own sections give every key the
    plan does not set (those it sets are already resolved in the plan, explicit values included)."""
    from laseg.model import INTENSITY_SCHEMES, ModelConfig
    from laseg.train import TrainSettings

    values = planned_values(plan)
    model, train = values["model"], values["train"]
    views = list(model["views"])
    planned_model_keys = {key for section, key in PLANNED_KEYS if section == "model"}
    planned_train_keys = {key for section, key in PLANNED_KEYS if section == "train"}
    first = views[0]
    config = ModelConfig(
        **{k: v for k, v in model_config.items() if k not in planned_model_keys},
        views=tuple(views),
        # The scalar fields only back old checkpoints; the per-view fields are what runs.
        context_slices=int(model["context_slices"][first]),
        inplane_spacing_mm=float(min(model["grid_spacing_mm"][first])),
        grid_spacing_mm={view: [float(s) for s in model["grid_spacing_mm"][view]] for view in views},
        view_context_slices={view: int(model["context_slices"][view]) for view in views},
        # A plan written before 2026-12-07 described its one scheme, the z-score, in words.
        intensity=model["intensity"] if model["intensity"] in INTENSITY_SCHEMES else "zscore",
        view_slice_spacing_mm=(
            {view: float(model["trained_slice_spacing_mm"][view]) for view in views}
            if "trained_slice_spacing_mm" in model  # plans before 2026-12-07 lack it
            else None
        ),
    )
    settings = TrainSettings(
        **{k: v for k, v in train_config.items() if k not in planned_train_keys},
        max_epochs=int(train["max_epochs"]),
        iterations_per_epoch=int(train["iterations_per_epoch"]),
        budget_minutes=float(train["budget_minutes"]),
        batch_size=int(train["batch_size"][first]),
        patch_px=int(max(train["patch_px"][first])),
        view_patch_px={view: [int(n) for n in train["patch_px"][view]] for view in views},
        view_batch_size={view: int(train["batch_size"][view]) for view in views},
    )
    return config, settings


def explicit_settings(config: dict) -> dict[str, dict]:
    """The PLANNED_KEYS the user set (anything but "auto"), as {"model": {...}, "train": {...}}."""
    explicit: dict[str, dict] = {"model": {}, "train": {}}
    for section, key in PLANNED_KEYS:
        value = config.get(section, {}).get(key, "auto")
        if value != "auto":
            explicit[section][key] = value
    return explicit


def training_cap_minutes(config: dict) -> float:
    """The train job's wall-clock cap: the config's, else the preset's (for a cluster job's runtime)."""
    budget = config.get("train", {}).get("budget_minutes", "auto")
    return (
        PRESETS[config.get("plan", {}).get("preset", "default")].budget_minutes if budget == "auto" else float(budget)
    )


def stage2_cap_minutes(config: dict) -> float:
    """The stage-2 train job's wall-clock cap: the config's, else the preset's (for a cluster job's runtime)."""
    budget = config.get("stage2", {}).get("budget_minutes", "auto")
    return (
        STAGE2_PRESETS[config.get("plan", {}).get("preset", "default")].budget_minutes
        if budget == "auto"
        else float(budget)
    )


def planned_test_time_scales(config: dict) -> list[float]:
    """Inference's in-plane zooms: the config's, else the preset's."""
    scales = config.get("predict", {}).get("test_time_scales", "auto")
    return (
        list(PRESETS[config.get("plan", {}).get("preset", "default")].test_time_scales)
        if scales == "auto"
        else [float(s) for s in scales]
    )


def plan_summary(plan: dict) -> str:
    """One line per planned setting: key = value (source: reason), for logs and the report."""
    lines = [f"plan (preset {plan['preset']}, from {len(plan['fingerprint_cases'])} training cases):"]
    for section, entries in plan["settings"].items():
        for key, entry in entries.items():
            lines.append(f"  {section}.{key} = {json.dumps(entry['value'])}  ({entry['source']}: {entry['reason']})")
    return "\n".join(lines)
