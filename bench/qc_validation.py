"""How well the QC score (the views' networks' disagreement, laseg.predict.view_disagreement) ranks the worst
cases, on the cross-validation predictions of a finished bench/run_benchmark.py run: each held-out case is
predicted again by its fold's model, its score set beside the Dice the workflow measured.

    .venv/bin/python bench/qc_validation.py --workdir bench/work/msd_task02_heart/ours --dataset msd_task02_heart

or on the per-case rows of a bench/gpu_cv.py run (each job scores its held-out cases there, QC score included):

    .venv/bin/python bench/qc_validation.py --gpu-cv bench/results/gpu-cv-<...>.json \\
        --recipe default --dataset la2018_lge_dev

Reports AUROC of the score for "Dice below --bad" (0.85), Spearman's rho between score and Dice, and mean Dice
of the cases flagged at each threshold vs the rest. Writes bench/results/qc-validation-<date>-<dataset>.md/json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result
from laseg.model import select_precision
from laseg.plan import planned_test_time_scales
from laseg.predict import load_model, predict_canonical, view_disagreement
from laseg.slices import load_slices


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive (bad) case scores above a negative one; ties count half."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x)).astype(float) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", type=Path, help="a finished bench/run_benchmark.py run: predict again on this CPU")
    source.add_argument("--gpu-cv", type=Path, help="a bench/gpu_cv.py result JSON: its per-case rows as they are")
    parser.add_argument("--recipe", help="with --gpu-cv: the recipe (preset) whose folds to read")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--bad", type=float, default=0.85, help="Dice below this is a case to catch")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.gpu_cv is not None:
        rows, where = gpu_cv_rows(args.gpu_cv, args.recipe), f"{args.gpu_cv.name}, recipe {args.recipe}"
    else:
        rows, where = predicted_rows(args.workdir), f"{args.workdir}; {cpu_name()}"
    summarise(rows, args.dataset, where, args.bad, args.thresholds)


def gpu_cv_rows(path: Path, recipe: str) -> list[dict]:
    """The held-out cases of every fold the recipe finished in a bench/gpu_cv.py result."""
    jobs = [job for job in json.loads(path.read_text())["jobs"] if job["preset"] == recipe]
    if not jobs:
        raise SystemExit(f"{path}: no job of recipe {recipe!r}")
    return [
        {"fold": f"fold_{job['fold']}", "patient": case["patient"], "dice": case["dice"], "qc_score": case["qc_score"]}
        for job in sorted(jobs, key=lambda job: job["fold"])
        for case in job["per_case"]
    ]


def predicted_rows(workdir: Path) -> list[dict]:
    """Each held-out case of a run_benchmark.py work folder predicted again by its fold's model, for its score."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    scales = planned_test_time_scales(config)
    rows = []
    for fold_dir in sorted((workdir / "results/cv").glob("fold_*")):
        net, model_config, _ = load_model(fold_dir / "model.pt", "cpu")
        precision = select_precision("auto", torch.device("cpu"))
        for metrics_path in sorted((fold_dir / "metrics").glob("*.json")):
            measured = json.loads(metrics_path.read_text())
            slices = workdir / "results/slices" / f"{measured['patient']}.npz"
            view_masks: dict[str, np.ndarray] = {}
            predict_canonical(net, model_config, load_slices(slices), scales, precision, view_masks=view_masks)
            rows.append({"fold": fold_dir.name, "patient": measured["patient"], "dice": measured["dice"],
                         "qc_score": view_disagreement(view_masks)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def summarise(rows: list[dict], dataset: str, where: str, bad_below: float, thresholds: list[float]) -> None:
    """AUROC, Spearman and the flagged/not-flagged table; writes the result files and prints the table."""
    score, dice = np.array([r["qc_score"] for r in rows]), np.array([r["dice"] for r in rows])
    bad = dice < bad_below
    result = {
        "dataset": dataset,
        "source": where,
        "cases": len(rows),
        "bad_below": bad_below,
        "n_bad": int(bad.sum()),
        "auroc_bad": auroc(score, bad),
        "spearman_score_dice": spearman(score, dice),
        "thresholds": [
            {
                "review_above": t,
                "flagged": int((score > t).sum()),
                "bad_caught": int((bad & (score > t)).sum()),
                "mean_dice_flagged": float(dice[score > t].mean()) if (score > t).any() else None,
                "mean_dice_not_flagged": float(dice[score <= t].mean()) if (score <= t).any() else None,
            }
            for t in thresholds
        ],
        "rows": rows,
    }
    started = dt.datetime.now(dt.UTC)
    lines = [
        f"QC score on {dataset} cross-validation ({len(rows)} held-out cases, {where}).",
        f"Cases with Dice < {bad_below}: {result['n_bad']}; AUROC of the score for them: {result['auroc_bad']:.3f}; "
        f"Spearman rho(score, Dice): {result['spearman_score_dice']:.3f}.",
        "",
        "| qc.review_above | flagged | of them Dice < bad | mean Dice flagged | mean Dice not flagged |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in result["thresholds"]:
        flagged = "–" if t["mean_dice_flagged"] is None else f"{t['mean_dice_flagged']:.4f}"
        kept = "–" if t["mean_dice_not_flagged"] is None else f"{t['mean_dice_not_flagged']:.4f}"
        lines.append(f"| {t['review_above']} | {t['flagged']} | {t['bad_caught']} | {flagged} | {kept} |")
    write_result("qc-validation", dataset, started, result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
