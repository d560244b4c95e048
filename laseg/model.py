"""The 2.5D U-Net and the preprocessing that must be identical in training and inference."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from laseg.slices import SliceStack

# Axis order of each view's slice stack, from the canonical (z, y, x) LPS arrays: slices along axis 0.
VIEW_AXES: dict[str, tuple[int, int, int]] = {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}
INTENSITY_SCHEMES = ("content_range", "zscore")  # normalize_intensity's
# A scan whose slices in a view are more than this many times thicker than the thickest the view's network learned
# from gets slices interpolated between its own before that network sees it (slice_refinement): its context slices
# would otherwise reach several times further than in training (the shipped model on an LGE scan resampled to 4 mm
# slices: Dice 0.842 fed as they are, 0.879 with slices interpolated, 0.909 at 0.625 mm; bench/robustness.py).
THICK_SLICE_REFINE_RATIO = 1.5


def to_view(volume: np.ndarray, view: str) -> np.ndarray:
    """The canonical (z, y, x) volume as a stack of `view` slices (a transpose, so exactly invertible)."""
    return np.ascontiguousarray(volume.transpose(VIEW_AXES[view]))


def from_view(volume: np.ndarray, view: str) -> np.ndarray:
    """Undo to_view: a `view` slice stack back to canonical (z, y, x)."""
    return np.ascontiguousarray(volume.transpose(np.argsort(VIEW_AXES[view])))


def in_view_order(values_zyx: tuple, view: str) -> tuple:
    """A per-axis (z, y, x) triple, e.g. spacing or shape, in the `view` stack's axis order:
    (between slices, rows, columns)."""
    return tuple(values_zyx[axis] for axis in VIEW_AXES[view])


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the networks and feed them; stored inside every checkpoint."""

    context_slices: int = 2  # neighbours on each side fed as channels: 2.5D input of 2k+1 slices
    base_channels: int = 16  # width of the first level, doubling per level
    depth: int = 4  # number of 2x downsamplings
    inplane_spacing_mm: float = 2.5  # the grid of every view when grid_spacing_mm does not name it
    # Slicing planes, one network each (trained one after the other, sharing the training budget);
    # the mean of their probabilities is a 3D consensus that slices of one plane lack.
    views: tuple[str, ...] = ("axial",)
    # Per view, from the plan: the network grid's (row, column) spacing and the context slices each side.
    grid_spacing_mm: dict[str, list[float]] | None = None
    view_context_slices: dict[str, int] | None = None
    # How each scan is put on one intensity scale (normalize_intensity); checkpoints without it used "zscore".
    intensity: str = "content_range"
    # Per view, the thickest slices the network learned from (the plan's trained_slice_spacing_mm); None: unknown
    # (checkpoints before 2026-12-07), slices are never interpolated.
    view_slice_spacing_mm: dict[str, float] | None = None

    def __post_init__(self) -> None:
        views = tuple(self.views)
        unknown = [v for v in views if v not in VIEW_AXES]
        if not views or unknown or len(set(views)) != len(views):
            raise ValueError(f"model.views must be distinct names from {sorted(VIEW_AXES)}, got {list(self.views)}")
        object.__setattr__(self, "views", views)
        for name, per_view in (
            ("grid_spacing_mm", self.grid_spacing_mm),
            ("view_context_slices", self.view_context_slices),
        ):
            missing = [v for v in views if per_view is not None and v not in per_view]
            if missing:
                raise ValueError(f"model.{name} has no entry for view(s) {missing}")
        if self.intensity not in INTENSITY_SCHEMES:
            raise ValueError(f"model.intensity must be one of {INTENSITY_SCHEMES}, got {self.intensity!r}")

    def grid_of(self, view: str) -> tuple[float, float]:
        """The network grid's (row, column) spacing in mm for `view`'s slices."""
        if self.grid_spacing_mm is None:
            return (float(self.inplane_spacing_mm), float(self.inplane_spacing_mm))
        rows, cols = self.grid_spacing_mm[view]
        return (float(rows), float(cols))

    def context_of(self, view: str) -> int:
        return self.context_slices if self.view_context_slices is None else int(self.view_context_slices[view])

    def in_channels_of(self, view: str) -> int:
        return 2 * self.context_of(view) + 1

    def slice_refinement(self, view: str, slice_spacing_mm: float) -> int:
        """How many slices `view`'s network gets per slice of a scan with this slice spacing: 1, or as many as
        bring the spacing down to the thickest it learned from when the scan's are THICK_SLICE_REFINE_RATIO
        times thicker."""
        trained = (self.view_slice_spacing_mm or {}).get(view)
        if not trained or slice_spacing_mm <= THICK_SLICE_REFINE_RATIO * trained:
            return 1
        return math.ceil(slice_spacing_mm / trained - 1e-6)

    @property
    def in_channels(self) -> int:
        return 2 * self.context_slices + 1

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNetForward(nn.Module):
    """The U-Net's way through, whatever its dimension: `down` blocks with `pool` between, `up` and `up_conv` with
    the skips, one `head` logit (UNet2D here, laseg.stage2.UNet3D)."""

    down: nn.ModuleList
    pool: nn.Module
    up: nn.ModuleList
    up_conv: nn.ModuleList
    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, conv, skip in zip(self.up, self.up_conv, reversed(skips)):
            x = conv(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class UNet2D(UNetForward):
    """A plain U-Net: double 3x3 conv blocks, strided max-pool down, transposed conv up, one logit out."""

    def __init__(self, config: ModelConfig, in_channels: int | None = None) -> None:
        super().__init__()
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]
        self.down = nn.ModuleList()
        c_in = in_channels or config.in_channels
        for width in widths:
            self.down.append(_double_conv(c_in, width))
            c_in = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(width * 2, width, 2, stride=2))
            self.up_conv.append(_double_conv(width * 2, width))
        self.head = nn.Conv2d(widths[0], 1, 1)


class ViewNetworks(nn.Module):
    """One U-Net per slicing view, keyed by view name; inference averages their probabilities."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.networks = nn.ModuleDict({view: UNet2D(config, config.in_channels_of(view)) for view in config.views})

    def __getitem__(self, view: str) -> UNet2D:
        return self.networks[view]  # type: ignore[return-value]


def normalize_intensity(volume: np.ndarray, scheme: str = "content_range") -> np.ndarray:
    """Put a scan on its own intensity scale (MRI has no absolute unit): scanner gains differ, anatomy contrast
    does not.

    content_range: the 0.5th and 99.5th percentiles of the scan's content become 0 and 1 (clipped), content being
    every voxel above the scan's minimum: a fill value (zero padding, the outside of a resampled oblique scan) is
    not anatomy. zscore (checkpoints before 2026-12-07): clip to the 0.5..99.5th percentile of every voxel, z-score.
    The z-score's mean and spread follow what share of the field of view the bright blood pool fills: the
    shipped model trained with it scored 0.774 on la_007 cropped to the atrium (0.910 whole) and 0.852 on an LGE
    scan padded by 40 mm of zeros (0.902), bench/robustness.py.
    """
    values = volume.astype(np.float32)
    if scheme == "zscore":
        low, high = np.percentile(values, [0.5, 99.5])
        clipped = np.clip(values, low, high)
        return ((clipped - clipped.mean()) / max(float(clipped.std()), 1e-6)).astype(np.float32)
    if scheme != "content_range":
        raise ValueError(f"unknown intensity scheme {scheme!r}; expected one of {INTENSITY_SCHEMES}")
    content = values[values > values.min()]
    low, high = np.percentile(content if content.size else values, [0.5, 99.5])
    return ((np.clip(values, low, high) - low) / max(float(high - low), 1e-6)).astype(np.float32)


def inplane_shape(
    shape_yx: tuple[int, int], spacing_yx_mm: tuple[float, float], target_mm: float | tuple[float, float]
) -> tuple[int, int]:
    """Rows and columns of a slice resampled from spacing_yx_mm to target_mm (one spacing, or one per axis)."""
    targets = (target_mm, target_mm) if isinstance(target_mm, (int, float)) else target_mm
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape_yx, spacing_yx_mm, targets))  # type: ignore[return-value]


def resample_inplane(volume: np.ndarray, shape_yx: tuple[int, int], mode: str) -> np.ndarray:
    """Resize every axial slice of a (z, y, x) volume to shape_yx: mode "area" to shrink, "bilinear" or "bicubic"
    to grow.

    torch rather than cv2: cv2 5 only resizes up to 4 channels at non-integer area ratios.
    """
    if volume.shape[1:] == tuple(shape_yx):
        return volume.astype(np.float32, copy=False)
    slices = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[:, None]
    options = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(slices, size=tuple(shape_yx), mode=mode, **options)[:, 0].numpy()


def context_stack(volume: np.ndarray, index: np.ndarray, context: int) -> np.ndarray:
    """(len(index), 2k+1, y, x): each slice with its k neighbours each side, clamped at the ends."""
    offsets = np.arange(-context, context + 1)
    rows = np.clip(index[:, None] + offsets[None, :], 0, volume.shape[0] - 1)
    return volume[rows]


def pad_to_multiple(volume: np.ndarray, multiple: int, value: float) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Pad y and x up to a multiple (the U-Net's need); return the crop that undoes it."""
    pads, crop = [], []
    for n in volume.shape[1:]:
        extra = (-n) % multiple
        pads.append((extra // 2, extra - extra // 2))
        crop.append(slice(extra // 2, extra // 2 + n))
    return np.pad(volume, [(0, 0), *pads], constant_values=value), (crop[0], crop[1])


def select_device(requested: str = "auto") -> torch.device:
    """CUDA, else Apple MPS, else CPU; a forced choice that is unavailable is an error, not a fallback."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config train.device is 'cuda' but no CUDA device is available")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("config train.device is 'mps' but no MPS device is available")
    return torch.device(requested)


def cpu_has_amx_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX), which is what makes bf16 pay on a CPU."""
    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return all(probe is not None and probe() for probe in probes)


def select_precision(requested: str, device: torch.device) -> str:
    """'bf16' (autocast) or 'fp32' for a device. auto: bf16 on CUDA with bf16 support and on CPUs with
    AMX (a training step 2.0x, inference 3.6x faster on a 2-core Xeon, bench/precision_speed.py);
    fp32 elsewhere (on a CPU without AMX, bf16 ran about 10x slower than fp32: measured on an AMD EPYC)."""
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and cpu_has_amx_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The forward pass's autocast context for a resolved precision ('bf16' or 'fp32': off)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def interpolate_slices(volume: np.ndarray, factor: int) -> np.ndarray:
    """`factor - 1` linearly interpolated slices between each two of a (z, y, x) volume: the original slices
    stay, exactly, at every `factor`-th place of the (z - 1) * factor + 1 returned."""
    if factor <= 1 or len(volume) < 2:
        return volume
    weights = (np.arange(factor, dtype=np.float32) / factor)[None, :, None, None]
    between = volume[:-1, None] * (1 - weights) + volume[1:, None] * weights
    return np.concatenate([between.reshape(-1, *volume.shape[1:]), volume[-1:]]).astype(volume.dtype)


def prepare_volume(stack: SliceStack, config: ModelConfig, view: str = "axial") -> tuple[np.ndarray, np.ndarray | None]:
    """Normalise and resample a slice stack, sliced as `view`, to the model's grid; the label becomes each
    pixel's area fraction of atrium (float32, 0..1), which keeps the sub-pixel boundary the coarser grid would lose."""
    image = to_view(stack.image, view)
    shape_yx = inplane_shape(image.shape[1:], in_view_order(stack.spacing_zyx_mm, view)[1:], config.grid_of(view))
    image = resample_inplane(normalize_intensity(image, config.intensity), shape_yx, "area")
    fraction = None
    if stack.label is not None:
        fraction = np.clip(resample_inplane(to_view(stack.label, view).astype(np.float32), shape_yx, "area"), 0.0, 1.0)
    return image, fraction


@torch.no_grad()
def predict_logits(
    net: torch.nn.Module,
    image: np.ndarray,
    config: ModelConfig,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 32,
    view: str = "axial",
) -> np.ndarray:
    """The network's logits for every slice of a prepared (z, y, x) `view` volume, at the model's grid."""
    net.eval()
    padded, crop = pad_to_multiple(image, config.size_multiple, float(image.min()))
    out = np.empty((len(image), *image.shape[1:]), np.float32)
    for start in range(0, len(image), batch_size):
        index = np.arange(start, min(start + batch_size, len(image)))
        batch = torch.from_numpy(context_stack(padded, index, config.context_of(view))).to(device)
        with autocast(device, precision):
            logits = net(batch)
        out[index] = logits.float().cpu().numpy()[:, 0][:, crop[0], crop[1]]
    return out


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, float32, without overflow warnings far from the boundary."""
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))).astype(np.float32)
