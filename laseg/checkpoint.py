"""The checkpoint file, one home for its format: what train writes, what predict and the report read.

A checkpoint is a dict saved with torch.save and read with weights_only=True: "format", "state_dict" (one
U-Net per view, keys "networks.<view>.*"), "model_config", "preprocessing", "plan", "training_amount",
"train_settings", "train_patients", "validation_patients", "best_epoch", "device", "precision", "versions".
"""

from __future__ import annotations

import os
from pathlib import Path

from laseg.io import InputError, atomic_path

CHECKPOINT_FORMAT = 2  # bump when the layout changes (2: one network per view)
READABLE_FORMATS = (1, CHECKPOINT_FORMAT)  # 1: a single network, keys without the view prefix


def save_checkpoint(checkpoint: dict, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict, on the CPU; a missing, damaged, foreign or too new file is a one-line InputError."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (train first, or set predict.checkpoint)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch raises many types for a damaged or foreign file)
        raise InputError(f"{path}: not a readable laseg checkpoint ({type(err).__name__})") from None
    found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
    if found not in READABLE_FORMATS:
        formats = " and ".join(str(f) for f in READABLE_FORMATS)
        raise InputError(f"{path}: checkpoint format {found!r}, this laseg reads formats {formats}")
    return checkpoint


def checkpoint_facts(path: str | os.PathLike) -> dict:
    """What a checkpoint says about itself (format, model, training, library versions), without the weights."""
    return {key: value for key, value in read_checkpoint(path).items() if key != "state_dict"}
