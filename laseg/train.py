"""Training the 2.5D U-Net: a plain loop, bounded by epochs and by a wall-clock budget."""

from __future__ import annotations

import csv
import io as _io
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import laseg
from laseg.checkpoint import CHECKPOINT_FORMAT
from laseg.io import CANONICAL_ORIENTATION, atomic_path
from laseg.masks import dice
from laseg.model import (
    ModelConfig,
    UNet2D,
    ViewNetworks,
    autocast,
    context_stack,
    predict_logits,
    prepare_volume,
    select_device,
    select_precision,
)
from laseg.slices import SliceStack, StoredStack


@dataclass(frozen=True)
class TrainSettings:
    max_epochs: int = 60
    budget_minutes: float = (
        8.0  # for the whole job (shared by the views' networks); stops at epochs or minutes, whichever first
    )
    iterations_per_epoch: int = 40
    batch_size: int = 16  # every view's, unless view_batch_size names it
    patch_px: int = 96  # square training crop at the network grid, unless view_patch_px names the view
    learning_rate: float = 1.5e-3  # the default plan measured best of 0.00075-0.006 (bench/README.md, 2026-12-07)
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # adamw | adam (the thesis prototype's)
    schedule: str = "cosine"  # cosine (to 0 over the nearer limit) | constant
    loss: str = "bce_dice"  # bce_dice | bce (the thesis prototype's)
    foreground_fraction: float = 0.6  # share of crops centred on the left atrium
    augment: bool = True
    validation_patients: int = 0  # held out of the training patients to pick the best epoch; 0: keep the last
    soft_labels: bool = False  # True: targets are each pixel's atrium area fraction at the network grid, not 0/1
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 (autocast); auto: bf16 on CUDA and on CPUs with AMX
    threads: int = 2  # CPU threads, as config train.threads (0: leave torch's default)
    # Per view, from the plan: the (rows, columns) training crop and the batch size that keeps pixels per
    # iteration fixed.
    view_patch_px: dict[str, list[int]] | None = None
    view_batch_size: dict[str, int] | None = None

    def patch_of(self, view: str) -> tuple[int, int]:
        if self.view_patch_px is None or view not in self.view_patch_px:
            return (self.patch_px, self.patch_px)
        rows, cols = self.view_patch_px[view]
        return (int(rows), int(cols))

    def batch_of(self, view: str) -> int:
        if self.view_batch_size is None or view not in self.view_batch_size:
            return self.batch_size
        return int(self.view_batch_size[view])


@dataclass
class PreparedVolume:
    """One patient at the network's in-plane spacing, intensities normalised."""

    patient: str
    image: np.ndarray  # (z, y, x) float32
    target: np.ndarray  # (z, y, x) float32 in [0, 1]: the training target, soft or 0/1
    mask: np.ndarray = field(init=False)  # target >= 0.5: where crops are centred, what validation scores
    foreground_slices: np.ndarray = field(init=False)
    background: float = field(init=False)  # the volume's minimum: the value crops are padded with

    def __post_init__(self) -> None:
        self.mask = self.target >= 0.5
        # Computed once: a per-crop min over the whole volume was two thirds of sample_batch's time.
        self.background = float(self.image.min())
        self.foreground_slices = np.flatnonzero(self.mask.reshape(len(self.mask), -1).any(axis=1))


def _crop_origin(n: int, patch: int, centre: int | None, rng: np.random.Generator) -> int:
    if n <= patch:
        return 0
    if centre is None:
        return int(rng.integers(0, n - patch + 1))
    jitter = int(rng.integers(-patch // 4, patch // 4 + 1))
    return int(np.clip(centre - patch // 2 + jitter, 0, n - patch))


def sample_batch(
    volumes: list[PreparedVolume],
    settings: TrainSettings,
    config: ModelConfig,
    rng: np.random.Generator,
    view: str = "axial",
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of `view`'s 2.5D crops; a share of them centred on a random left-atrium voxel."""
    patch_y, patch_x = settings.patch_of(view)
    batch_size = settings.batch_of(view)
    images = np.full((batch_size, config.in_channels_of(view), patch_y, patch_x), 0.0, np.float32)
    labels = np.zeros((batch_size, 1, patch_y, patch_x), np.float32)
    for b in range(batch_size):
        vol = volumes[int(rng.integers(len(volumes)))]
        on_atrium = rng.random() < settings.foreground_fraction and len(vol.foreground_slices) > 0
        z = int(rng.choice(vol.foreground_slices)) if on_atrium else int(rng.integers(len(vol.image)))
        centre_y = centre_x = None
        if on_atrium:
            ys, xs = np.nonzero(vol.mask[z])
            pick = int(rng.integers(len(ys)))
            centre_y, centre_x = int(ys[pick]), int(xs[pick])
        ny, nx = vol.image.shape[1:]
        y0, x0 = _crop_origin(ny, patch_y, centre_y, rng), _crop_origin(nx, patch_x, centre_x, rng)
        crop_image = context_stack(vol.image, np.array([z]), config.context_of(view))[
            0, :, y0 : y0 + patch_y, x0 : x0 + patch_x
        ]
        crop_label = vol.target[z, y0 : y0 + patch_y, x0 : x0 + patch_x]
        h, w = crop_label.shape
        # Volumes smaller than the patch sit in the middle of a background-valued canvas.
        oy, ox = (patch_y - h) // 2, (patch_x - w) // 2
        images[b, :, :, :] = vol.background
        images[b, :, oy : oy + h, ox : ox + w] = crop_image
        labels[b, 0, oy : oy + h, ox : ox + w] = crop_label
    return images, labels


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, soft_labels: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Small rotations/scalings and intensity changes; no flips, since left and right atria differ.

    Labels are interpolated bilinearly; 0/1 targets are thresholded back to 0/1, soft ones stay soft.
    """
    n = images.shape[0]
    device = images.device

    # Random draws come from the generator's device (the training device's own generator: no large host
    # arrays per step on a GPU), then move to the images' device.
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator, device=generator.device).to(device)

    angle = uniform(-math.pi / 12, math.pi / 12)
    scale = uniform(0.85, 1.15)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid works in coordinates normalised per axis: the aspect factors keep a rotation of a
    # non-square crop a rotation in pixels.
    height, width = images.shape[-2:]
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, torch.zeros_like(cos)], 1),
            torch.stack([sin * width / height, cos, torch.zeros_like(cos)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    background = images.amin(dim=(1, 2, 3), keepdim=True)
    images = (
        F.grid_sample(images - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        + background
    )
    labels = F.grid_sample(labels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if not soft_labels:
        labels = (labels >= 0.5).float()
    gain = uniform(0.85, 1.15).view(n, 1, 1, 1)
    shift = uniform(-0.15, 0.15).view(n, 1, 1, 1)
    noise = 0.05 * torch.randn(images.shape, generator=generator, device=generator.device).to(device)
    return images * gain + shift + noise, labels


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE for per-pixel calibration plus batch soft Dice, which copes with the small atrium fraction."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    intersection = (prob * target).sum()
    soft_dice = (2 * intersection + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + (1.0 - soft_dice)


def library_versions() -> dict[str, str]:
    import SimpleITK

    return {
        "laseg": laseg.__version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "SimpleITK": SimpleITK.Version_VersionString(),
        "opencv": cv2.__version__,
        "python": platform.python_version(),
    }


def _progress_line(epoch: int, planned_epochs: int, loss: float, val_dice: float, elapsed: float) -> str:
    frac = min(1.0, epoch / planned_epochs)
    bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
    return f"[{bar}] {100 * frac:5.1f}% epoch {epoch:3d} loss {loss:.4f} val_dice {val_dice:.4f} {elapsed:6.1f}s"


def prepared_volumes(
    stacks: Sequence[SliceStack | StoredStack], config: ModelConfig, view: str, soft_labels: bool
) -> list[PreparedVolume]:
    """The labelled stacks as `view` slices at the network's grid, with 0/1 or area-fraction targets.
    Stored stacks are read one at a time and dropped once prepared: memory holds network-grid data."""
    prepared = []
    for item in stacks:
        stack = item.load() if isinstance(item, StoredStack) else item
        image, fraction = prepare_volume(stack, config, view)
        if fraction is None:
            raise ValueError(f"patient {stack.patient}: training needs a label")
        prepared.append(
            PreparedVolume(stack.patient, image, fraction if soft_labels else (fraction >= 0.5).astype(np.float32))
        )
    return prepared


def train_model(
    train_stacks: Sequence[SliceStack | StoredStack],
    config: ModelConfig,
    settings: TrainSettings,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    plan: dict | None = None,
    resume_path: str | Path | None = None,
) -> tuple[dict, list[dict]]:
    """Train one network per view in config.views on the given patients; returns (checkpoint dict,
    per-epoch history with a "view" column). `plan` (laseg.plan) is stored in the checkpoint as is.

    With `resume_path`, the training state (weights, optimiser, RNG states, history, finished views,
    time spent) is written there atomically after every epoch, and a run that finds a state of the same
    job there continues after its last finished epoch: an epoch-bound run killed and resumed ends with
    the same weights as an uninterrupted one, a budget-bound one counts the time already spent.

    The networks are trained one after the other, each with the same settings and seed, for
    max_epochs: the amount of training does not depend on the machine. budget_minutes is the job's
    cap: each network may use what is left of it divided by the networks still to train, so a
    view's network is independent of the others unless the cap binds, and a cut is logged and stored.
    The last `validation_patients` (in sorted order) are held out to choose each network's best epoch.
    """
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    device = select_device(settings.device)
    stacks = sorted(train_stacks, key=lambda s: s.patient)
    n_val = settings.validation_patients if len(stacks) > settings.validation_patients else 0
    train_names = [s.patient for s in stacks[: len(stacks) - n_val]]
    val_names = [s.patient for s in stacks[len(stacks) - n_val :]]
    precision = select_precision(settings.precision, device)
    log(
        f"device {device}, {precision}; views {list(config.views)}; "
        f"training on {train_names}, validating on {val_names}"
    )

    networks = ViewNetworks(config)
    history: list[dict] = []
    best_epochs: dict[str, int] = {}
    epochs_run: dict[str, int] = {}
    job = resume_key(config, settings, [s.patient for s in stacks], plan)
    resumed = read_resume_state(resume_path, job, log) if resume_path is not None else None
    finished: dict[str, dict] = resumed["finished"] if resumed else {}
    started = time.perf_counter() - (resumed["meta"]["elapsed_seconds"] if resumed else 0.0)
    for i, view in enumerate(config.views):
        if view in finished:
            log(f"resuming: {view} network already trained")
        else:
            current = resumed["current"] if resumed and resumed["meta"]["current_view"] == view else None
            if current is None:
                left_minutes = settings.budget_minutes - (time.perf_counter() - started) / 60
                budget = max(left_minutes, 0.0) / (len(config.views) - i)
            else:
                budget = current["meta"]["budget_minutes"]  # the share this network was given when it started
                log(f"resuming {view} from epoch {current['meta']['epoch']} (its last finished epoch)")
            per_network = replace(settings, budget_minutes=budget)

            def save_epoch(state: dict, view: str = view) -> None:
                write_resume_state(resume_path, job, finished, view, state, time.perf_counter() - started)

            # One view at a time: a view's prepared volumes are freed before the next view's are made.
            prepared = prepared_volumes(stacks, config, view, settings.soft_labels)
            state_dict, view_history, best_epoch = train_network(
                prepared[: len(stacks) - n_val],
                prepared[len(stacks) - n_val :],
                config,
                per_network,
                device,
                lambda line, view=view: log(f"{view}: {line}"),
                view,
                resume=current,
                save_epoch=save_epoch if resume_path is not None else None,
            )
            del prepared
            finished[view] = {"state_dict": state_dict, "history": view_history, "best_epoch": best_epoch}
        networks[view].load_state_dict(finished[view]["state_dict"])
        best_epochs[view] = finished[view]["best_epoch"]
        history += [{"view": view, **row} for row in finished[view]["history"]]
        epochs_run[view] = len(finished[view]["history"])
    cut = {view: n for view, n in epochs_run.items() if n < settings.max_epochs}
    if cut:
        log(
            f"training cut short by the {settings.budget_minutes:g} min budget: "
            + ", ".join(
                f"{view} {n} of {settings.max_epochs} epochs ({100 * (1 - n / settings.max_epochs):.0f}% short)"
                for view, n in cut.items()
            )
        )
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu().clone() for k, v in networks.state_dict().items()},
        "model_config": config.to_dict(),
        "preprocessing": {
            "orientation": CANONICAL_ORIENTATION,
            "intensity": config.intensity,
            "grid_spacing_mm": {view: list(config.grid_of(view)) for view in config.views},
            "resampling": "area to the model grid, bilinear back",
        },
        "plan": plan,
        # The amount of training planned and done: a budget cut shows here and in the report.
        "training_amount": {
            "planned_epochs": settings.max_epochs,
            "iterations_per_epoch": settings.iterations_per_epoch,
            "epochs_run": epochs_run,
            "cut_short_by_budget": bool(cut),
            "minutes": round((time.perf_counter() - started) / 60, 2),
        },
        "train_settings": asdict(settings),
        "train_patients": train_names,
        "validation_patients": val_names,
        "best_epoch": best_epochs,
        "device": str(device),
        "precision": precision,
        "versions": library_versions(),
    }
    return checkpoint, history


def train_network(
    train_volumes: list[PreparedVolume],
    val_volumes: list[PreparedVolume],
    config: ModelConfig,
    settings: TrainSettings,
    device: torch.device,
    log: Callable[[str], None],
    view: str = "axial",
    resume: dict | None = None,
    save_epoch: Callable[[dict], None] | None = None,
) -> tuple[dict, list[dict], int]:
    """Train one U-Net on prepared volumes of one view; returns (kept state_dict, history, kept epoch).

    `save_epoch` receives the network's whole training state after every epoch (`epoch_state`), and
    `resume`, such a state, makes the loop continue after that epoch exactly as if it had never stopped.

    With validation volumes the epoch of best validation Dice is kept; without, the last epoch, the
    one the cosine schedule has annealed.
    The learning rate follows a cosine over the planned epochs: max_epochs, or, when the epoch
    times show the wall-clock budget is nearer, as many epochs as fit in it (re-planned after every
    epoch), so a short budget still ends annealed.
    The schedule depends on the clock only through that integer, so runs whose epoch limit binds
    are bit-for-bit repeatable.
    """
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    net = UNet2D(config, config.in_channels_of(view)).to(device).to(memory_format=torch.channels_last)
    optimizer_class = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[settings.optimizer]
    optimizer = optimizer_class(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loss_function = {"bce_dice": bce_dice_loss, "bce": F.binary_cross_entropy_with_logits}[settings.loss]
    precision = select_precision(settings.precision, device)
    history: list[dict] = []
    best_score, best_state, best_epoch = -math.inf, None, 0
    planned_epochs = settings.max_epochs
    epoch_seconds: list[float] = []
    start = time.perf_counter()
    first_epoch = 1
    if resume is not None:
        meta = restore_epoch_state(resume, net, optimizer, rng, generator)
        history, epoch_seconds = meta["history"], meta["epoch_seconds"]
        best_score, best_epoch, best_state = meta["best_score"], meta["best_epoch"], resume["best_state"]
        planned_epochs, first_epoch = meta["planned_epochs"], meta["epoch"] + 1
        start -= sum(epoch_seconds)
        if meta["epoch"] >= planned_epochs:  # killed after its last epoch, before the next view began
            first_epoch = settings.max_epochs + 1
    for epoch in range(first_epoch, settings.max_epochs + 1):
        net.train()
        losses = []
        for iteration in range(settings.iterations_per_epoch):
            progress = (epoch - 1 + iteration / settings.iterations_per_epoch) / planned_epochs
            if settings.schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = settings.learning_rate * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
            images_np, labels_np = sample_batch(train_volumes, settings, config, rng, view)
            images, labels = torch.from_numpy(images_np).to(device), torch.from_numpy(labels_np).to(device)
            if settings.augment:
                images, labels = augment_batch(images, labels, generator, settings.soft_labels)
            images = images.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                logits = net(images)
            loss = loss_function(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        train_loss = float(np.mean(losses))
        val_dice = float("nan")
        if val_volumes:
            val_dice = float(
                np.mean(
                    [
                        dice(predict_logits(net, v.image, config, device, precision, view=view) >= 0.0, v.mask)
                        for v in val_volumes
                    ]
                )
            )
        elapsed = time.perf_counter() - start
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_dice": val_dice,
                "seconds": elapsed,
                "lr": optimizer.param_groups[0]["lr"],
            }
        )
        epoch_seconds.append(elapsed - sum(epoch_seconds))
        # Re-plan from the recent epoch time (the machine may get busier or quieter): the epochs that
        # still fit in the budget, never more than max_epochs.
        recent = float(np.mean(epoch_seconds[-3:]))
        fitting = epoch + int(max(0.0, 60 * settings.budget_minutes - elapsed) / recent)
        if min(fitting, settings.max_epochs) != planned_epochs:
            planned_epochs = max(epoch, min(fitting, settings.max_epochs))
            log(
                f"the {settings.budget_minutes:.1f} min budget left fits {planned_epochs} of {settings.max_epochs} "
                "epochs: learning-rate schedule set to that"
            )
        score = val_dice if val_volumes else float(epoch)
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        if save_epoch is not None:
            save_epoch(
                epoch_state(
                    net,
                    optimizer,
                    rng,
                    generator,
                    best_state,
                    epoch,
                    settings.budget_minutes,
                    history,
                    epoch_seconds,
                    best_score,
                    best_epoch,
                    planned_epochs,
                )
            )
        # After the save: an epoch the log shows as done is one a rerun does not repeat.
        log(_progress_line(epoch, planned_epochs, train_loss, val_dice, elapsed))
        if epoch >= planned_epochs:
            if planned_epochs < settings.max_epochs:
                log(f"wall-clock budget of {settings.budget_minutes:.1f} min used up after epoch {epoch}")
            break
    log(
        f"best epoch {best_epoch} "
        + (f"(val_dice {best_score:.4f})" if val_volumes else "(the last; no validation patients)")
    )
    return best_state, history, best_epoch  # type: ignore[return-value]


RESUME_FORMAT = 1


def resume_path_for(checkpoint_path: str | Path) -> Path:
    """Where a train job keeps its resumable state: a hidden file beside its checkpoint, which is no
    declared output (Snakemake would delete it with a failed job's outputs)."""
    path = Path(checkpoint_path)
    return path.with_name(f".{path.name}.resume")


def resume_key(config: ModelConfig, settings: TrainSettings, patients: list[str], plan: dict | None) -> str:
    """What makes two runs the same training job; execution-only settings (threads, device) are left out."""
    import hashlib
    import json

    job = {
        "model": config.to_dict(),
        "train": {k: v for k, v in asdict(settings).items() if k not in ("threads", "device")},
        "patients": patients,
        "plan": plan,
    }
    return hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()


def epoch_state(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    generator: torch.Generator,
    best_state: dict | None,
    epoch: int,
    budget_minutes: float,
    history: list[dict],
    epoch_seconds: list[float],
    best_score: float,
    best_epoch: int,
    planned_epochs: int,
) -> dict:
    """One network's training state after an epoch: tensors as tensors, the rest in "meta"."""
    return {
        "net": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "generator": generator.get_state(),
        "best_state": best_state,
        "meta": {
            "epoch": epoch,
            "budget_minutes": budget_minutes,
            "numpy_rng": rng.bit_generator.state,
            "history": list(history),
            "epoch_seconds": list(epoch_seconds),
            "best_score": best_score,
            "best_epoch": best_epoch,
            "planned_epochs": planned_epochs,
        },
    }


def restore_epoch_state(
    state: dict,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> dict:
    """Undo `epoch_state`: weights, optimiser and every random state back as they were after that epoch; returns
    its "meta" (epoch, history, schedule)."""
    meta = state["meta"]
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = meta["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    generator.set_state(state["generator"])
    return meta


def write_resume_state(
    path: str | Path, job: str, finished: dict[str, dict], view: str, current: dict, elapsed_seconds: float
) -> None:
    """The job's whole state, atomically: a kill leaves the previous epoch's state or this one."""
    import json

    state = {
        "format": RESUME_FORMAT,
        "finished": finished,
        "current": current,
        # Numbers that do not fit weights_only loading's types (big RNG integers, NaN) travel as JSON.
        "meta": json.dumps({"job": job, "current_view": view, "elapsed_seconds": elapsed_seconds}),
    }
    state["current"] = {**current, "meta": json.dumps(current["meta"])}
    state["finished"] = {v: {**f, "history": json.dumps(f["history"])} for v, f in finished.items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_resume_state(path: str | Path, job: str, log: Callable[[str], None]) -> dict | None:
    """The state a killed run of the same job left, or None (none there, another job's, or unreadable:
    then training starts from the beginning, and the log says why)."""
    import json

    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state["meta"])
        state["meta"] = meta
        state["current"] = {**state["current"], "meta": json.loads(state["current"]["meta"])}
        state["finished"] = {v: {**f, "history": json.loads(f["history"])} for v, f in state["finished"].items()}
    except Exception as err:  # noqa: BLE001 (a damaged file of ours, whatever torch raises: start over)
        log(f"{path}: unreadable resume state ({type(err).__name__}); training from the beginning")
        return None
    if state.get("format") != RESUME_FORMAT or meta.get("job") != job:
        log(
            f"{path}: resume state of another training job (settings, patients or plan differ); "
            "training from the beginning"
        )
        return None
    return state


def write_history(history: list[dict], csv_path: str | Path, png_path: str | Path) -> None:
    """Per-epoch CSV (one block of rows per view) and a two-panel training curve (loss, validation Dice) as PNG."""
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["view", "epoch", "train_loss", "val_dice", "seconds", "lr"])
    writer.writeheader()
    writer.writerows(history)
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Without validation patients there is no validation curve to draw: the loss panel alone, and its title
    # says that the last epoch was kept.
    validated = any(not math.isnan(h["val_dice"]) for h in history)
    fig, axes = plt.subplots(
        1, 2 if validated else 1, figsize=(10, 4) if validated else (6, 4), constrained_layout=True
    )
    ax_loss, ax_dice = (axes[0], axes[1]) if validated else (axes, None)
    for view in dict.fromkeys(h["view"] for h in history):
        rows = [h for h in history if h["view"] == view]
        epochs = [h["epoch"] for h in rows]
        ax_loss.plot(epochs, [h["train_loss"] for h in rows], label=f"{view} network")
        if ax_dice is not None:
            ax_dice.plot(epochs, [h["val_dice"] for h in rows], marker="o", markersize=3, label=f"{view} network")
    loss_title = "Training loss" if validated else "Training loss (no validation patients: last epoch kept)"
    ax_loss.set(xlabel="epoch", ylabel="training loss (BCE + Dice)", title=loss_title)
    ax_loss.legend()
    if ax_dice is not None:
        ax_dice.set(xlabel="epoch", ylabel="validation Dice", title="Validation Dice", ylim=(0, 1))
    for ax in (ax_loss, ax_dice):
        if ax is not None:
            ax.grid(alpha=0.3)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
