"""The second stage: a 3D U-Net on the box around the atrium that the first stage found, at an isotropic grid.

The 2.5D first stage finds the atrium reliably, and a slice network cannot see the third dimension; the box
around the atrium is small (about 60 mm across), so a 3D network on it costs a fraction of a whole-volume one.
Training crops come from the label's box, shifted as the first stage's box and the sliding window would shift
them; prediction crops the first stage's mask plus a margin, so the network sees what it learned on.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from laseg.masks import bounding_box
from laseg.model import UNetForward, autocast, normalize_intensity, select_device, select_precision
from laseg.slices import SliceStack, StoredStack

STAGE2_KIND = "stage2"  # the checkpoint's "kind": a stage-2 checkpoint is not a first-stage model


@dataclass(frozen=True)
class Stage2Config:
    """Everything needed to rebuild the stage-2 network and feed it; stored in its checkpoint."""

    grid_spacing_mm: float  # isotropic
    patch_zyx: tuple[int, int, int]  # the network's input, grid voxels (multiples of 2**depth)
    margin_mm: float  # around the first stage's mask: the box the network segments
    base_channels: int = 16
    depth: int = 3  # 2x downsamplings
    intensity: str = "content_range"  # laseg.model.normalize_intensity's scheme, on the whole scan
    # Inside the box, the final logits: the network's ("stage2") or the mean of both stages' ("mean").
    combine: str = "stage2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_zyx", tuple(int(n) for n in self.patch_zyx))
        multiple = 2**self.depth
        if any(n % multiple or n <= 0 for n in self.patch_zyx):
            raise ValueError(f"stage2 patch {list(self.patch_zyx)} must be positive multiples of {multiple}")
        if self.grid_spacing_mm <= 0 or self.margin_mm < 0:
            raise ValueError(f"stage2 grid {self.grid_spacing_mm} mm must be > 0 and margin {self.margin_mm} >= 0")
        if self.combine not in ("stage2", "mean"):
            raise ValueError(f"stage2.combine must be 'stage2' or 'mean', got {self.combine!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "patch_zyx": list(self.patch_zyx)}


@dataclass(frozen=True)
class Stage2Settings:
    """The amount and kind of training; execution-only fields (device, threads) do not change the model."""

    steps: int
    steps_per_epoch: int = 50
    batch_size: int = 2
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    jitter_mm: float = 12.0  # how far a training crop's centre strays from the atrium's box centre, per axis
    budget_minutes: float = 45.0
    seed: int = 0
    augment: bool = True
    device: str = "auto"
    precision: str = "auto"
    threads: int = 2


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # Instance norm: batches of two crops are too small for batch statistics.
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, padding=1, bias=False),
        nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1, bias=False),
        nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3D(UNetForward):
    """A plain 3D U-Net: double 3x3x3 conv blocks, max-pool down, transposed conv up, one logit out."""

    def __init__(self, base_channels: int = 16, depth: int = 3, in_channels: int = 1) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels
        for width in widths:
            self.down.append(_conv_block(c_in, width))
            c_in = width
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList(nn.ConvTranspose3d(w * 2, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.up_conv = nn.ModuleList(_conv_block(w * 2, w) for w in reversed(widths[:-1]))
        self.head = nn.Conv3d(widths[0], 1, 1)


def network_of(config: Stage2Config) -> UNet3D:
    return UNet3D(config.base_channels, config.depth)


# ---- boxes and grids -------------------------------------------------------------------------------------------


def box_around(
    mask: np.ndarray, spacing_zyx_mm: Sequence[float], margin_mm: float
) -> tuple[slice, slice, slice] | None:
    """The voxel box holding every True voxel of a (z, y, x) mask, grown by margin_mm on each side (whole voxels,
    rounded up) and clipped to the volume; None for an empty mask."""
    tight = bounding_box(mask)
    if tight is None:
        return None
    box = []
    for axis, (part, spacing) in enumerate(zip(tight, spacing_zyx_mm)):
        grow = math.ceil(margin_mm / spacing - 1e-9)
        box.append(slice(max(0, part.start - grow), min(mask.shape[axis], part.stop + grow)))
    return tuple(box)  # type: ignore[return-value]


def widen_box(
    box: tuple[slice, ...], shape_zyx: Sequence[int], spacing_zyx_mm: Sequence[float], min_extent_mm: Sequence[float]
) -> tuple[slice, slice, slice]:
    """The box grown symmetrically to min_extent_mm per axis (whole voxels, rounded down, so that a box that fits a
    patch stays one window) where the volume allows: the network then sees real anatomy around a small atrium
    instead of padding."""
    wide = []
    for part, n, spacing, extent in zip(box, shape_zyx, spacing_zyx_mm, min_extent_mm):
        want = max(part.stop - part.start, math.floor(extent / spacing + 1e-9))
        start = part.start - (want - (part.stop - part.start)) // 2
        start = int(np.clip(start, 0, max(0, n - want)))
        wide.append(slice(start, min(n, start + want)))
    return tuple(wide)  # type: ignore[return-value]


def grid_shape(shape_zyx: Sequence[int], spacing_zyx_mm: Sequence[float], grid_mm: float) -> tuple[int, ...]:
    return tuple(max(1, round(n * s / grid_mm)) for n, s in zip(shape_zyx, spacing_zyx_mm))  # type: ignore[return-value]


def to_grid(volume: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """A (z, y, x) block resampled to shape_zyx voxels over the same extent (trilinear); axes that shrink are
    smoothed first (Gaussian, sigma from the shrink factor), so fine scans are not aliased."""
    factors = [n / m for n, m in zip(volume.shape, shape_zyx)]
    sigma = [0.5 * math.sqrt(f * f - 1) if f > 1 else 0.0 for f in factors]
    block = ndimage.gaussian_filter(volume.astype(np.float32), sigma, mode="nearest") if any(sigma) else volume
    return _trilinear(block, shape_zyx)


def _trilinear(volume: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    if tuple(volume.shape) == tuple(shape_zyx):
        return np.ascontiguousarray(volume, dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=tuple(shape_zyx), mode="trilinear", align_corners=False)[0, 0].numpy()


def from_grid(logits: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """Grid logits back onto the block's voxels (trilinear, the inverse mapping of to_grid's): logits, not
    probabilities, so the boundary stays where the network puts it."""
    return _trilinear(logits, shape_zyx)


def window_starts(n: int, patch: int, overlap: float = 0.5) -> list[int]:
    """Start indices of patch-long windows covering 0..n, neighbours overlapping by at least `overlap`."""
    if n <= patch:
        return [0]
    count = math.ceil((n - patch) / (patch * (1 - overlap))) + 1
    return sorted({round(i * (n - patch) / (count - 1)) for i in range(count)})


def _window_weight(patch_zyx: Sequence[int]) -> np.ndarray:
    # Windows overlap; a window's edge sees least context, so its centre counts most (nnU-Net's Gaussian).
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n / 8)) ** 2) for n in patch_zyx]
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return np.maximum(weight / weight.max(), 1e-3).astype(np.float32)


@torch.no_grad()
def sliding_window_logits(
    net: nn.Module, image: np.ndarray, patch_zyx: Sequence[int], device: torch.device, precision: str = "fp32"
) -> np.ndarray:
    """The network's logits for every voxel of a prepared grid block, window by window (Gaussian-weighted where
    windows overlap); a block smaller than the patch is padded with its minimum and cropped back."""
    net.eval()
    pads = [(max(0, p - n) // 2, max(0, p - n) - max(0, p - n) // 2) for n, p in zip(image.shape, patch_zyx)]
    padded = np.pad(image, pads, constant_values=float(image.min()))
    total = np.zeros(padded.shape, np.float32)
    weights = np.zeros(padded.shape, np.float32)
    weight = _window_weight(patch_zyx)
    pz, py, px = patch_zyx
    for z in window_starts(padded.shape[0], pz):
        for y in window_starts(padded.shape[1], py):
            for x in window_starts(padded.shape[2], px):
                crop = torch.from_numpy(np.ascontiguousarray(padded[z : z + pz, y : y + py, x : x + px]))
                with autocast(device, precision):
                    out = net(crop[None, None].to(device))
                total[z : z + pz, y : y + py, x : x + px] += out.float().cpu().numpy()[0, 0] * weight
                weights[z : z + pz, y : y + py, x : x + px] += weight
    logits = total / weights
    return logits[tuple(slice(before, before + n) for (before, _), n in zip(pads, image.shape))]


# ---- prediction ------------------------------------------------------------------------------------------------


def refine_logits(
    net: nn.Module,
    config: Stage2Config,
    stack: SliceStack,
    first_logits: np.ndarray,
    device: torch.device,
    precision: str = "fp32",
) -> tuple[np.ndarray, dict]:
    """The final logits on the stack's canonical (z, y, x) voxels: the second stage's inside the box around the
    first stage's mask (logit >= 0) plus config.margin_mm, the first stage's outside it. An empty first-stage
    mask leaves the first stage's logits as they are, with a warning. Returns (logits, what was done)."""
    spacing = stack.spacing_zyx_mm
    box = box_around(first_logits >= 0.0, spacing, config.margin_mm)
    if box is None:
        warnings.warn(
            f"patient {stack.patient}: the first stage found no atrium, so there is no box for the second stage; "
            "the first stage's result stands",
            stacklevel=2,
        )
        return first_logits, {"stage2": "skipped: the first stage found no atrium"}
    patch_mm = [n * config.grid_spacing_mm for n in config.patch_zyx]
    region = widen_box(box, stack.image.shape, spacing, patch_mm)
    block = normalize_intensity(stack.image, config.intensity)[region]
    on_grid = to_grid(block, grid_shape(block.shape, spacing, config.grid_spacing_mm))
    grid_logits = sliding_window_logits(net, on_grid, config.patch_zyx, device, precision)
    second = from_grid(grid_logits, block.shape)
    inner = tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(box, region))
    logits = first_logits.copy()
    if config.combine == "mean":
        logits[box] = 0.5 * (first_logits[box] + second[inner])
    else:
        logits[box] = second[inner]
    return logits, {
        "stage2": "applied",
        "stage2_box_zyx": [[int(s.start), int(s.stop)] for s in box],
        "stage2_grid_zyx": list(on_grid.shape),
    }


def load_stage2(path: str | Path, device: str = "auto") -> tuple[nn.Module, Stage2Config, dict]:
    """The stage-2 network from its checkpoint; a missing, foreign or first-stage file is a one-line InputError."""
    from laseg.checkpoint import read_checkpoint
    from laseg.io import InputError

    checkpoint = read_checkpoint(path)
    if checkpoint.get("kind") != STAGE2_KIND:
        raise InputError(f"{path}: not a stage-2 checkpoint (kind {checkpoint.get('kind')!r})")
    config = Stage2Config(**checkpoint["stage2_config"])
    net = network_of(config)
    try:
        net.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit the stored stage-2 config ({str(err).splitlines()[0]})") from None
    return net.to(select_device(device)).eval(), config, checkpoint


# ---- training --------------------------------------------------------------------------------------------------


@dataclass
class BoxVolume:
    """One training case around its atrium, at the stage's grid: image normalised, label 0/1."""

    patient: str
    image: np.ndarray  # (z, y, x) float32
    label: np.ndarray  # (z, y, x) float32 0/1
    atrium_centre: np.ndarray  # grid voxel index of the label box's centre
    atrium_voxels: np.ndarray  # (n, 3) grid indices of label voxels (a subsample), for crops on the atrium's edge


def prepare_box_volume(stack: SliceStack, config: Stage2Config, reach_mm: float) -> BoxVolume:
    """The case's label box grown by reach_mm (and to at least a patch), resampled to the grid."""
    if stack.label is None:
        raise ValueError(f"patient {stack.patient}: stage-2 training needs a label")
    spacing = stack.spacing_zyx_mm
    box = box_around(stack.label.astype(bool), spacing, reach_mm)
    if box is None:
        raise ValueError(f"patient {stack.patient}: the label is empty")
    region = widen_box(box, stack.image.shape, spacing, [n * config.grid_spacing_mm for n in config.patch_zyx])
    image = normalize_intensity(stack.image, config.intensity)[region]
    shape = grid_shape(image.shape, spacing, config.grid_spacing_mm)
    on_grid = to_grid(image, shape)
    label = (_trilinear(stack.label[region].astype(np.float32), shape) >= 0.5).astype(np.float32)
    voxels = np.argwhere(label > 0)
    if not len(voxels):
        raise ValueError(f"patient {stack.patient}: the atrium vanishes at the stage-2 grid")
    tight = bounding_box(label > 0)
    centre = np.array([(s.start + s.stop - 1) / 2 for s in tight])  # type: ignore[union-attr]
    keep = np.random.default_rng(0).permutation(len(voxels))[:5000]
    return BoxVolume(stack.patient, on_grid, label, centre, voxels[np.sort(keep)])


def sample_patches(
    volumes: Sequence[BoxVolume], config: Stage2Config, settings: Stage2Settings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of patches: two in three centred on the atrium's box centre shifted by up to jitter_mm per axis
    (the first stage's box and the sliding window's offsets), one in three on a random atrium voxel."""
    patch = np.array(config.patch_zyx)
    images = np.zeros((settings.batch_size, 1, *patch), np.float32)
    labels = np.zeros((settings.batch_size, 1, *patch), np.float32)
    jitter = settings.jitter_mm / config.grid_spacing_mm
    for b in range(settings.batch_size):
        vol = volumes[int(rng.integers(len(volumes)))]
        if rng.random() < 2 / 3:
            centre = vol.atrium_centre + rng.uniform(-jitter, jitter, 3)
        else:
            centre = vol.atrium_voxels[int(rng.integers(len(vol.atrium_voxels)))].astype(float)
        start = np.round(centre - (patch - 1) / 2).astype(int)
        source, target = [], []
        for axis in range(3):
            lo, hi = max(0, start[axis]), min(vol.image.shape[axis], start[axis] + patch[axis])
            lo, hi = min(lo, hi), max(lo, hi)
            source.append(slice(lo, hi))
            target.append(slice(lo - start[axis], hi - start[axis]))
        images[b, 0] = float(vol.image.min())
        images[(b, 0, *target)] = vol.image[tuple(source)]
        labels[(b, 0, *target)] = vol.label[tuple(source)]
    return images, labels


def augment_patches(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Small 3D rotations and scalings and intensity changes; no flips, since left and right atria differ."""
    n = images.shape[0]
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        draw = torch.rand(n, *shape, generator=generator, device=generator.device).to(device)
        return low + (high - low) * draw

    angles = uniform(-math.pi / 12, math.pi / 12, 3)
    scale = uniform(0.85, 1.15).view(n, 1, 1)
    cos, sin = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)

    def rotation(axis: int) -> torch.Tensor:
        c, s = cos[:, axis], sin[:, axis]
        rows = {
            0: [[one, zero, zero], [zero, c, -s], [zero, s, c]],
            1: [[c, zero, s], [zero, one, zero], [-s, zero, c]],
            2: [[c, -s, zero], [s, c, zero], [zero, zero, one]],
        }[axis]
        return torch.stack([torch.stack(row, 1) for row in rows], 1)

    matrix = rotation(0) @ rotation(1) @ rotation(2) / scale
    theta = torch.cat([matrix, torch.zeros(n, 3, 1, device=device)], 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    background = images.amin(dim=(1, 2, 3, 4), keepdim=True)
    images = F.grid_sample(images - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    labels = (F.grid_sample(labels, grid, mode="bilinear", padding_mode="zeros", align_corners=False) >= 0.5).float()
    gain, shift = uniform(0.85, 1.15).view(n, 1, 1, 1, 1), uniform(-0.15, 0.15).view(n, 1, 1, 1, 1)
    noise = 0.05 * torch.randn(images.shape, generator=generator, device=generator.device).to(device)
    return (images + background) * gain + shift + noise, labels


def planned_steps(settings: Stage2Settings) -> int:
    return settings.steps_per_epoch * max(1, math.ceil(settings.steps / settings.steps_per_epoch))


def train_stage2(
    train_stacks: Sequence[SliceStack | StoredStack],
    config: Stage2Config,
    settings: Stage2Settings,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    plan: dict | None = None,
    resume_path: str | Path | None = None,
) -> tuple[dict, list[dict]]:
    """Train the stage-2 network on the training cases' atrium boxes; returns (checkpoint dict, per-epoch history).

    A plain loop of settings.steps AdamW steps (whole epochs of steps_per_epoch), cosine-annealed; the wall-clock
    budget is a cap that re-plans the schedule, as the first stage's. With `resume_path` the state is saved after
    every epoch, and a killed run continues from its last epoch with the same result as an uninterrupted one.
    """
    from laseg.checkpoint import CHECKPOINT_FORMAT
    from laseg.train import (
        bce_dice_loss,
        epoch_state,
        library_versions,
        read_resume_state,
        restore_epoch_state,
        resume_key,
        write_resume_state,
    )

    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    device = select_device(settings.device)
    precision = select_precision(settings.precision, device)
    stacks = sorted(train_stacks, key=lambda s: s.patient)
    patients = [s.patient for s in stacks]
    reach_mm = config.margin_mm + settings.jitter_mm
    volumes = []
    for item in stacks:  # one full scan in memory at a time; the boxes are small
        volumes.append(prepare_box_volume(item.load() if isinstance(item, StoredStack) else item, config, reach_mm))
    log(
        f"stage 2: device {device}, {precision}; {len(volumes)} boxes, grid {config.grid_spacing_mm} mm, "
        f"patch {list(config.patch_zyx)}, {settings.steps} steps of {settings.batch_size}"
    )

    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    net = network_of(config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    max_epochs = planned_steps(settings) // settings.steps_per_epoch
    job = resume_key(config, settings, patients, plan)  # type: ignore[arg-type]
    resumed = read_resume_state(resume_path, job, log) if resume_path is not None else None
    history: list[dict] = []
    epoch_seconds: list[float] = []
    planned_epochs, first_epoch = max_epochs, 1
    if resumed is not None:
        meta = restore_epoch_state(resumed["current"], net, optimizer, rng, generator)
        history, epoch_seconds = meta["history"], meta["epoch_seconds"]
        planned_epochs, first_epoch = meta["planned_epochs"], meta["epoch"] + 1
        log(f"stage 2: resuming after epoch {meta['epoch']}")
    start = time.perf_counter() - sum(epoch_seconds)
    for epoch in range(first_epoch, planned_epochs + 1):
        net.train()
        losses = []
        for step in range(settings.steps_per_epoch):
            progress = min(1.0, (epoch - 1 + step / settings.steps_per_epoch) / planned_epochs)
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
            images_np, labels_np = sample_patches(volumes, config, settings, rng)
            images, labels = torch.from_numpy(images_np).to(device), torch.from_numpy(labels_np).to(device)
            if settings.augment:
                images, labels = augment_patches(images, labels, generator)
            with autocast(device, precision):
                logits = net(images)
            loss = bce_dice_loss(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        elapsed = time.perf_counter() - start
        epoch_seconds.append(elapsed - sum(epoch_seconds))
        history.append(
            {
                "view": STAGE2_KIND,
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "val_dice": float("nan"),
                "seconds": elapsed,
                "lr": optimizer.param_groups[0]["lr"],
            }
        )
        # The cap: the epochs that still fit re-plan the cosine, so a cut run still ends annealed.
        recent = float(np.mean(epoch_seconds[-3:]))
        fitting = epoch + int(max(0.0, 60 * settings.budget_minutes - elapsed) / recent)
        if min(fitting, max_epochs) != planned_epochs:
            planned_epochs = max(epoch, min(fitting, max_epochs))
            log(f"stage 2: the {settings.budget_minutes:.1f} min budget fits {planned_epochs} of {max_epochs} epochs")
        if resume_path is not None:
            state = epoch_state(
                net,
                optimizer,
                rng,
                generator,
                None,
                epoch,
                settings.budget_minutes,
                history,
                epoch_seconds,
                float(epoch),
                epoch,
                planned_epochs,
            )
            write_resume_state(resume_path, job, {}, STAGE2_KIND, state, elapsed)
        log(f"stage 2: epoch {epoch}/{planned_epochs} loss {history[-1]['train_loss']:.4f} {elapsed:7.1f}s")
        if epoch >= planned_epochs:
            break
    epochs_run = len(history)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "kind": STAGE2_KIND,
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "stage2_config": config.to_dict(),
        "plan": plan,
        "training_amount": {
            "planned_steps": planned_steps(settings),
            "steps_run": epochs_run * settings.steps_per_epoch,
            "cut_short_by_budget": epochs_run < max_epochs,
            "minutes": round((time.perf_counter() - start) / 60, 2),
        },
        "train_settings": asdict(settings),
        "train_patients": patients,
        "device": str(device),
        "precision": precision,
        "versions": library_versions(),
    }
    return checkpoint, history
