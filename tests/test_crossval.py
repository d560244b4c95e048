"""Cross-validation: the DAG has one independent training job per fold, and the tables add up."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import run_snakemake, scheduled_jobs

from laseg.metrics import cross_validation_tables


def test_cv_tables_average_cases_and_report_training_minutes(tmp_path):
    cases, histories = [], []
    for fold, dices in enumerate([[0.9, 0.8], [0.7]]):
        for i, d in enumerate(dices):
            path = tmp_path / f"fold_{fold}" / "metrics" / f"p{fold}{i}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"patient": f"p{fold}{i}", "dice": d, "hd95_mm": 2.0 + fold, "assd_mm": 1.0}))
            cases.append(str(path))
        history = tmp_path / f"fold_{fold}" / "history.csv"
        if fold == 0:  # format-1 history: one network, no view column
            pd.DataFrame({"epoch": [1, 2], "seconds": [60.0, 120.0]}).to_csv(history, index=False)
        else:  # two views' networks, each timed from 0: 1.5 + 2.5 min
            pd.DataFrame(
                {
                    "view": ["axial", "axial", "coronal", "coronal"],
                    "epoch": [1, 2, 1, 2],
                    "seconds": [45.0, 90.0, 60.0, 150.0],
                }
            ).to_csv(history, index=False)
        histories.append(str(history))
    per_case, per_fold = cross_validation_tables(cases, histories)
    assert per_case["fold"].tolist() == [0, 0, 1]
    assert per_fold["dice"].tolist()[:2] == pytest.approx([0.85, 0.7])
    assert per_fold["train_minutes"].tolist()[:2] == pytest.approx([2.0, 4.0])
    mean = per_fold.iloc[-1]
    assert mean["fold"] == "mean" and mean["dice"] == pytest.approx(0.8) and mean["n_cases"] == 3


def test_cv_dag_trains_each_fold_as_its_own_job(tmp_path):
    jobs = scheduled_jobs(tmp_path, config={"synthetic": {"n_patients": 6}, "cv": {"folds": 3}})
    assert jobs["train_fold"] == 3 and jobs["predict_fold"] == 6 and jobs["evaluate_fold"] == 6
    assert jobs["aggregate_cv"] == 1 and jobs["train"] == 1


@pytest.mark.workflow
def test_cross_validation_runs_end_to_end_and_no_fold_trains_on_its_validation_patients(tmp_path):
    config = {
        "synthetic": {"n_patients": 4, "shape_zyx": [40, 80, 80]},
        "cv": {"folds": 2},
        "train": {"max_epochs": 2, "iterations_per_epoch": 4, "patch_px": 32, "budget_minutes": 20.0},
    }
    run_snakemake(tmp_path, "results/cv/per_fold.csv", "results/cv/per_case.csv", config=config)
    per_fold = pd.read_csv(tmp_path / "results/cv/per_fold.csv", dtype={"fold": str})
    assert list(per_fold["fold"]) == ["0", "1", "mean"] and per_fold["dice"].notna().all()
    per_case = pd.read_csv(tmp_path / "results/cv/per_case.csv", dtype={"patient": str})
    assert sorted(per_case["patient"]) == [f"syn_{i:03d}" for i in range(4)]  # every patient validated once
    for fold, cases in per_case.groupby("fold"):
        checkpoint = torch.load(tmp_path / f"results/cv/fold_{fold}/model.pt", map_location="cpu", weights_only=True)
        assert not set(checkpoint["train_patients"]) & set(cases["patient"]), fold
