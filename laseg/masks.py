"""Mask geometry, one home for each fact: overlap scores and bounding boxes of binary masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def as_mask(array: np.ndarray) -> np.ndarray:
    return np.asarray(array) != 0


def check_same_shape(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {truth.shape}")


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P and T| / (|P| + |T|); 1.0 when both are empty (nothing to find, nothing found)."""
    check_same_shape(pred, truth)
    p, t = as_mask(pred), as_mask(truth)
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(t))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(p & t)) / total


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P and T| / |P or T| (Jaccard); 1.0 when both are empty."""
    check_same_shape(pred, truth)
    p, t = as_mask(pred), as_mask(truth)
    union = int(np.count_nonzero(p | t))
    return 1.0 if union == 0 else int(np.count_nonzero(p & t)) / union


def per_slice_dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """2D Dice of each slice along axis 0; NaN where neither mask has a voxel (nothing to score)."""
    check_same_shape(np.asarray(pred), np.asarray(truth))
    p, t = as_mask(pred), as_mask(truth)
    overlap = (p & t).reshape(len(p), -1).sum(axis=1)
    total = p.reshape(len(p), -1).sum(axis=1) + t.reshape(len(t), -1).sum(axis=1)
    return np.where(total > 0, 2.0 * overlap / np.maximum(total, 1), np.nan)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding all of a mask's foreground; None for an empty mask."""
    boxes = ndimage.find_objects(as_mask(mask).astype(np.uint8))
    return boxes[0] if boxes else None
