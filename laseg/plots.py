"""Cohort figures and their numbers: volume agreement (Bland-Altman, predicted vs reference) and the Dice
distribution."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from laseg.io import atomic_path
from laseg.metrics import scored_rows

LIMITS_OF_AGREEMENT_Z = 1.96  # 95 % limits of agreement, Bland & Altman (Lancet 1986)


def bland_altman(pred_ml: np.ndarray, true_ml: np.ndarray) -> dict[str, float]:
    """Bias (mean of predicted - reference), sample SD of the differences and the 95 % limits of
    agreement, in mL; SD and limits are NaN with fewer than two patients."""
    pred, true = np.asarray(pred_ml, dtype=float), np.asarray(true_ml, dtype=float)
    if pred.shape != true.shape:
        raise ValueError(f"{pred.shape} predicted volumes but {true.shape} reference volumes")
    difference = pred - true
    n = int(difference.size)
    bias = float(difference.mean()) if n else math.nan
    sd = float(difference.std(ddof=1)) if n >= 2 else math.nan
    return {
        "n": n,
        "bias_ml": bias,
        "sd_ml": sd,
        "loa_low_ml": bias - LIMITS_OF_AGREEMENT_Z * sd,
        "loa_high_ml": bias + LIMITS_OF_AGREEMENT_Z * sd,
        "mean_abs_difference_ml": float(np.abs(difference).mean()) if n else math.nan,
        "mean_relative_difference_percent": float((difference / true).mean() * 100.0) if n else math.nan,
    }


def labelled_volumes(per_patient: pd.DataFrame) -> pd.DataFrame:
    """The patients with both a predicted and a reference volume, sorted by id."""
    scored = scored_rows(per_patient).dropna(subset=["volume_pred_ml", "volume_true_ml"])
    return scored.sort_values("patient").reset_index(drop=True)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)


def _label_points(ax, x: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    # Names beside the points only while they stay legible.
    if len(names) <= 20:
        for xi, yi, name in zip(x, y, names):
            ax.annotate(name, (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=7, color="#444444")


def plot_bland_altman(volumes: pd.DataFrame, path: str | os.PathLike) -> dict[str, float]:
    """Difference (predicted - reference) against the mean of both, with bias and limits of agreement."""
    plt = _pyplot()
    pred, true = volumes["volume_pred_ml"].to_numpy(float), volumes["volume_true_ml"].to_numpy(float)
    stats = bland_altman(pred, true)
    mean, difference = (pred + true) / 2, pred - true
    fig, ax = plt.subplots(figsize=(6.6, 5.0), constrained_layout=True)
    ax.scatter(mean, difference, color="tab:blue", zorder=3, label="patient")
    _label_points(ax, mean, difference, list(volumes["patient"]))
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axhline(stats["bias_ml"], color="tab:red", lw=1.5, label=f"bias {stats['bias_ml']:+.1f} mL")
    if not math.isnan(stats["sd_ml"]):
        for key in ("loa_low_ml", "loa_high_ml"):
            ax.axhline(stats[key], color="tab:red", lw=1.0, ls="--")
        ax.plot(
            [],
            [],
            color="tab:red",
            ls="--",
            label=f"95% limits {stats['loa_low_ml']:+.1f} to {stats['loa_high_ml']:+.1f} mL",
        )
    spread = np.nanmax(np.abs(np.concatenate([difference, [stats["loa_low_ml"], stats["loa_high_ml"], 1.0]])))
    ax.set_ylim(-1.35 * spread, 1.35 * spread)
    ax.margins(x=0.15)  # room for the patient names beside the outermost points
    ax.set(
        xlabel="mean of predicted and reference LA volume (mL)",
        ylabel="predicted − reference LA volume (mL)",
        title=f"Bland-Altman: LA volume agreement (n = {stats['n']})",
    )
    # Below the axes, where it can hide no patient.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return stats


def plot_volume_scatter(volumes: pd.DataFrame, path: str | os.PathLike) -> None:
    """Predicted against reference LA volume with the line of identity."""
    plt = _pyplot()
    pred, true = volumes["volume_pred_ml"].to_numpy(float), volumes["volume_true_ml"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5.2, 5.6), constrained_layout=True)
    both = np.concatenate([pred, true])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    pad = max(0.12 * (high - low), 2.0)  # room for the patient names beside the outermost points
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", lw=1, ls="--", label="identity")
    ax.scatter(true, pred, color="tab:green", zorder=3, label="patient")
    _label_points(ax, true, pred, list(volumes["patient"]))
    title = f"Predicted vs reference LA volume (n = {len(pred)})"
    if len(pred) >= 3 and np.std(pred) > 0 and np.std(true) > 0:
        title += f"\nPearson r = {np.corrcoef(true, pred)[0, 1]:.3f}"
    ax.set(
        xlim=(low - pad, high + pad),
        ylim=(low - pad, high + pad),
        aspect="equal",
        xlabel="reference LA volume (mL)",
        ylabel="predicted LA volume (mL)",
        title=title,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def plot_dice_distribution(per_patient: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per-patient Dice and HD95 of the scored patients: box plot with every patient as a point."""
    plt = _pyplot()
    scored = scored_rows(per_patient).dropna(subset=["dice"]).sort_values("patient")
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), constrained_layout=True)
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(scored))  # seeded: the same picture every run
    for ax, column, label, colour, digits in (
        (axes[0], "dice", "Dice", "tab:green", 3),
        (axes[1], "hd95_mm", "HD95 (mm)", "tab:purple", 1),
    ):
        values = scored[column].to_numpy(float)
        finite = values[np.isfinite(values)]
        if finite.size:
            ax.boxplot([finite], widths=0.4, showfliers=False, medianprops={"color": "black"})
        ax.scatter(1 + jitter[: len(values)], values, color=colour, zorder=3, alpha=0.85)
        ax.set_xticks([1], [f"test patients (n = {len(values)})"])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
        if finite.size:
            ax.set_title(
                f"{label}: mean {finite.mean():.{digits}f}, median {np.median(finite):.{digits}f}", fontsize=10
            )
    axes[0].set_ylim(min(0.5, float(np.nanmin(scored["dice"])) - 0.05) if len(scored) else 0.0, 1.0)
    hd95 = scored["hd95_mm"].to_numpy(float)
    axes[1].set_ylim(0, 1.12 * float(np.nanmax(hd95)) if np.isfinite(hd95).any() else 1.0)
    fig.suptitle("Segmentation accuracy per patient", fontsize=11)
    _save(fig, path)
    plt.close(fig)
