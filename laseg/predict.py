"""Inference: a checkpoint and a slice stack in, a probability volume on the source grid out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from laseg.checkpoint import read_checkpoint
from laseg.io import InputError, from_canonical
from laseg.masks import dice
from laseg.model import (
    ModelConfig,
    UNet2D,
    ViewNetworks,
    from_view,
    in_view_order,
    interpolate_slices,
    predict_logits,
    prepare_volume,
    resample_inplane,
    select_device,
    sigmoid,
)
from laseg.slices import SliceStack
from laseg.stage2 import Stage2Config, refine_logits


def load_model(path: str | Path, device: str = "auto") -> tuple[ViewNetworks, ModelConfig, dict]:
    """Rebuild the networks from a checkpoint; a missing or incompatible file is a one-line InputError."""
    checkpoint = read_checkpoint(path)
    # Checkpoints from before 2026-12-07 do not name their intensity scheme: they all z-scored.
    config = ModelConfig(**{"intensity": "zscore", **checkpoint["model_config"]})
    state_dict = checkpoint["state_dict"]
    if checkpoint["format"] == 1:  # format 1 held a single network (axial unless its config names another view)
        state_dict = {f"networks.{config.views[0]}.{key}": value for key, value in state_dict.items()}
    net = ViewNetworks(config)
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit the stored model config ({str(err).splitlines()[0]})") from None
    torch_device = select_device(device)
    # channels_last: the layout training used; 1.5x faster on 2 CPU cores (bench/inference_ablation.py).
    return net.to(torch_device).to(memory_format=torch.channels_last).eval(), config, checkpoint


# How a view's logits go from the network's grid to the scan's: resampling logits rather than probabilities keeps
# the boundary where the network puts it. Between a pixel the sigmoid has saturated and a less certain one,
# interpolated probabilities cross 0.5 nearer the saturated pixel than the logits do. On MSD's 5 folds (2.5 mm grid,
# 1.25 mm scans) bicubic logits scored +0.0031 Dice over bilinear probabilities, better on all 20 cases
# (bench/inference_ablation.py, 2026-12-07).
LOGIT_UPSAMPLING = "bicubic"


def atrium_region(found: np.ndarray, margin_px: int, margin_slices: int) -> tuple[slice, slice, slice] | None:
    """The box around the True voxels of `found` grown by margin_px in-plane and margin_slices across, within the
    volume; None when there are none."""
    if not found.any():
        return None
    region = []
    for axis, margin in ((0, margin_slices), (1, margin_px), (2, margin_px)):
        present = np.flatnonzero(found.any(axis=tuple(a for a in range(3) if a != axis)))
        region.append(slice(max(0, int(present[0]) - margin), min(found.shape[axis], int(present[-1]) + 1 + margin)))
    return tuple(region)  # type: ignore[return-value]


def _zoomed_logits(
    net: UNet2D, config: ModelConfig, image: np.ndarray, device: torch.device, scale: float, precision: str, view: str
) -> np.ndarray:
    shape_yx = tuple(max(1, round(n * scale)) for n in image.shape[1:])
    zoomed = resample_inplane(image, shape_yx, "bilinear")
    return resample_inplane(
        predict_logits(net, zoomed, config, device, precision, view=view), image.shape[1:], "bilinear"
    )


def multiscale_logits(
    net: UNet2D,
    config: ModelConfig,
    image: np.ndarray,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    precision: str = "fp32",
    view: str = "axial",
    zoom_region: str = "atrium",
) -> np.ndarray:
    """Test-time augmentation: the mean logits over in-plane zooms of a prepared volume, at the network's grid.

    Each zoom resamples the slices to `scale` times as many pixels (the network sees the heart
    `scale` times larger, as in training's scale augmentation), predicts, and resamples back.
    Zooms rather than flips: training never flips, since left and right atria differ.

    The first zoom covers the whole volume. With zoom_region "atrium" the others cover only the box
    around what the first found (logit >= 0, probability >= 0.5), grown by 2 cells of the network's coarsest
    level in-plane and by as many slices: zooms move the atrium's boundary, and far from it every zoom says
    background. Each costs about half a whole-volume zoom on MSD's scans (bench/inference_ablation.py).
    Outside the box, and everywhere when the first zoom found nothing, the first zoom's logits
    stand for the others; "volume" zooms every slice whole.
    """
    if not scales or min(scales) <= 0:
        raise ValueError(f"test-time scales must be positive, got {list(scales)}")
    if zoom_region not in ("atrium", "volume"):
        raise ValueError(f"zoom_region must be 'atrium' or 'volume', got {zoom_region!r}")
    first = _zoomed_logits(net, config, image, device, scales[0], precision, view)
    if len(scales) == 1:
        return first
    if zoom_region == "volume":
        total = first.copy()
        for scale in scales[1:]:
            total += _zoomed_logits(net, config, image, device, scale, precision, view)
        return total / len(scales)
    margin = 2 * config.size_multiple
    region = atrium_region(first >= 0.0, margin, margin)
    if region is None:
        return first
    # The box's slices plus their context neighbours, so each box slice sees the neighbours it would see in the
    # whole volume.
    context = config.context_of(view)
    z0, z1 = max(0, region[0].start - context), min(len(image), region[0].stop + context)
    boxed = np.ascontiguousarray(image[z0:z1, region[1], region[2]])
    box_slices = slice(region[0].start - z0, region[0].stop - z0)
    box_total = first[region].copy()
    for scale in scales[1:]:
        box_total += _zoomed_logits(net, config, boxed, device, scale, precision, view)[box_slices]
    logits = first.copy()
    logits[region] = box_total / len(scales)
    return logits


def view_logits_on_scan(
    logits: np.ndarray, native_zyx: tuple[int, ...], view: str, upsampling: str = LOGIT_UPSAMPLING
) -> np.ndarray:
    """A view's logits at the network's grid (in the view's slice order) -> logits on the scan's canonical
    (z, y, x) voxels of shape native_zyx."""
    native_yx = in_view_order(native_zyx, view)[1:]
    return from_view(resample_inplane(logits, native_yx, upsampling), view)


def canonical_logits(
    net: ViewNetworks,
    config: ModelConfig,
    stack: SliceStack,
    scales: Sequence[float] = (1.0,),
    precision: str = "fp32",
    device: torch.device | None = None,
    view_masks: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The first stage's left-atrium logit for every voxel of the stack, in its canonical (z, y, x) frame: the
    mean logit over the model's views, each view's network predicting its own slices, at a resolved precision
    (model.select_precision), on the networks' device unless told. `view_masks`, when given, receives each
    view's own mask (logit >= 0, probability >= 0.5), for the quality score.

    Views are averaged as logits, as zooms are: a view sure of a voxel outweighs two that lean the other way
    a little. With two views the 0.5 threshold gives the same mask either way (p1 + p2 >= 1 exactly when
    l1 + l2 >= 0); with full's three and its three zooms, logits scored +0.0029 Dice over probabilities on MSD folds 0
    and 4, 7 of 8 cases better (bench/inference_ablation.py, 2026-12-07).
    """
    device = device or next(net.parameters()).device
    logit_sum = np.zeros(stack.image.shape, np.float32)
    for view in config.views:
        image, _ = prepare_volume(stack, config, view)
        # Slices thicker than the network learned from: it predicts on interpolated ones in between too, so its
        # context slices lie as close as in training, and keeps its logits on the scan's own.
        factor = config.slice_refinement(view, in_view_order(stack.spacing_zyx_mm, view)[0])
        view_image = interpolate_slices(image, factor)
        logits = multiscale_logits(net[view], config, view_image, device, scales, precision, view)[::factor]
        view_logits = view_logits_on_scan(logits, stack.image.shape, view)
        if view_masks is not None:
            view_masks[view] = view_logits >= 0.0
        logit_sum += view_logits
    return logit_sum / len(config.views)


def predict_canonical(net: ViewNetworks, config: ModelConfig, stack: SliceStack, *args, **kwargs) -> np.ndarray:
    """The first stage's left-atrium probability on the stack's canonical voxels: the sigmoid of
    `canonical_logits` (same further arguments)."""
    return sigmoid(canonical_logits(net, config, stack, *args, **kwargs))


def view_disagreement(view_masks: dict[str, np.ndarray]) -> float:
    """The quality score: 1 - the mean Dice between the views' networks' masks. The networks see the scan
    sliced differently, so where they disagree the segmentation is uncertain; NaN with a single view."""
    views = list(view_masks)
    pairs = [(a, b) for i, a in enumerate(views) for b in views[i + 1 :]]
    if not pairs:
        return float("nan")
    return float(1.0 - np.mean([dice(view_masks[a], view_masks[b]) for a, b in pairs]))


def predict_stack(
    net: ViewNetworks,
    config: ModelConfig,
    stack: SliceStack,
    scales: Sequence[float] = (1.0,),
    precision: str = "fp32",
    device: torch.device | None = None,
    view_masks: dict[str, np.ndarray] | None = None,
    stage2: tuple[torch.nn.Module, Stage2Config] | None = None,
    stage2_report: dict | None = None,
) -> np.ndarray:
    """The left-atrium probability on the source scan's voxels ((z, y, x) as in the file): the first stage's
    (`canonical_logits`), refined inside the atrium's box by the second stage when `stage2` (its network and
    config) is given; `stage2_report` then receives what the second stage did."""
    logits = canonical_logits(net, config, stack, scales, precision, device, view_masks)
    if stage2 is not None:
        stage2_net, stage2_config = stage2
        device = next(stage2_net.parameters()).device
        logits, done = refine_logits(stage2_net, stage2_config, stack, logits, device, precision)
        if stage2_report is not None:
            stage2_report.update(done)
    return from_canonical(sigmoid(logits), stack.source_geometry)
