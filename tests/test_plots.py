"""Bland-Altman numbers on known volumes, and the cohort figures written from a per-patient table."""

from __future__ import annotations

import math

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest

from laseg.plots import bland_altman, labelled_volumes, plot_bland_altman, plot_dice_distribution, plot_volume_scatter


def test_bland_altman_known_values():
    # Differences 2, 4, 6 mL: bias 4, sample SD 2, limits 4 -/+ 1.96 * 2.
    stats = bland_altman(np.array([52.0, 64.0, 106.0]), np.array([50.0, 60.0, 100.0]))
    assert stats["n"] == 3
    assert stats["bias_ml"] == pytest.approx(4.0)
    assert stats["sd_ml"] == pytest.approx(2.0)
    assert stats["loa_low_ml"] == pytest.approx(4.0 - 3.92)
    assert stats["loa_high_ml"] == pytest.approx(4.0 + 3.92)
    assert stats["mean_abs_difference_ml"] == pytest.approx(4.0)
    assert stats["mean_relative_difference_percent"] == pytest.approx((4 + 100 * 4 / 60 + 6) / 3)


def test_bland_altman_of_one_patient_has_a_bias_but_no_limits():
    stats = bland_altman(np.array([80.0]), np.array([75.0]))
    assert stats["bias_ml"] == 5.0 and math.isnan(stats["sd_ml"]) and math.isnan(stats["loa_high_ml"])


def per_patient() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": ["la_003", "la_001", "la_002", "la_100"],
            "dice": [0.91, 0.88, 0.93, math.nan],
            "hd95_mm": [3.0, 6.5, 2.4, math.nan],
            "volume_pred_ml": [82.0, 64.0, 106.0, 90.0],
            "volume_true_ml": [80.0, 60.0, 100.0, math.nan],
        }
    )


def test_only_labelled_patients_enter_the_agreement():
    assert list(labelled_volumes(per_patient())["patient"]) == ["la_001", "la_002", "la_003"]


@pytest.mark.parametrize("plot", ["bland_altman", "scatter", "dice"])
def test_figures_are_written_as_pngs(tmp_path, plot):
    path = tmp_path / f"{plot}.png"
    if plot == "bland_altman":
        stats = plot_bland_altman(labelled_volumes(per_patient()), path)
        assert stats["bias_ml"] == pytest.approx(4.0)
    elif plot == "scatter":
        plot_volume_scatter(labelled_volumes(per_patient()), path)
    else:
        plot_dice_distribution(per_patient(), path)
    picture = imageio.imread(path)
    assert picture.shape[0] > 400 and picture.shape[1] > 500
    assert [p.name for p in tmp_path.iterdir()] == [f"{plot}.png"]
