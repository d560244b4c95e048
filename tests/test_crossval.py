"""Cross-validation: the DAG has one independent training job per fold, and the tables add up."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import scheduled_jobs

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
