"""Cross-validation Dice of an ensemble: the fold networks of several finished `run_benchmark.py` runs
(e.g. one trained on axial slices, one on coronal), their probabilities averaged per held-out case.

No training: every run's fold checkpoint predicts its own held-out cases exactly as the predict rule
does (its views, the default test-time zooms), then the mean probability is post-processed and scored
like the evaluate rule. The ensemble's training cost is the sum of its members'.

    .venv/bin/python bench/ensemble_cv.py --workdirs bench/work/ours_axial bench/work/ours_coronal --tag axial+coronal

Writes bench/results/ensemble-cv-<date>[-tag].json and .md and prints the table. About 20 s per case
on 2 cores for two members (6 min for 20 cases).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result
from laseg.cohort import discover_cases, kfold_splits
from laseg.metrics import dice
from laseg.model import cpu_has_amx_bf16, select_precision
from laseg.plan import planned_test_time_scales
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import load_model, predict_canonical
from laseg.slices import load_slices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workdirs", type=Path, nargs="+", required=True, help="finished run_benchmark.py work folders"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = [yaml.safe_load((workdir / "config.yaml").read_text()) for workdir in args.workdirs]
    if len({(c["data"]["path"], c["cv"]["folds"]) for c in configs}) != 1:
        raise SystemExit("error: the work folders differ in data path or number of folds; their folds would not match")
    patients = [c.patient for c in discover_cases(Path(configs[0]["data"]["path"]))]
    splits = kfold_splits(patients, configs[0]["cv"]["folds"])
    default_predict = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["predict"]
    # What the predict rule used: its zooms, and its precision resolved on this machine.
    scales = planned_test_time_scales(
        {"predict": {**default_predict, **configs[0].get("predict", {})}, "plan": configs[0].get("plan", {})}
    )
    precision = select_precision(
        configs[0].get("predict", {}).get("precision", default_predict["precision"]), torch.device("cpu")
    )
    members = [workdir.name for workdir in args.workdirs]

    rows = []
    for fold, (_, test_patients) in enumerate(splits):
        nets = [load_model(workdir / f"results/cv/fold_{fold}/model.pt", "cpu") for workdir in args.workdirs]
        for patient in test_patients:
            stack = load_slices(
                args.workdirs[0] / f"results/slices/{patient}.npz", args.workdirs[0] / f"results/slices/{patient}.json"
            )
            truth = stack.label.astype(bool)
            start = time.perf_counter()
            # Canonical probabilities: the stack's label is canonical too.
            probabilities = [predict_canonical(net, config, stack, scales, precision) for net, config, _ in nets]
            seconds = time.perf_counter() - start
            row = {"fold": fold, "patient": patient, "seconds": seconds}
            for name, probability in [*zip(members, probabilities), ("ensemble", np.mean(probabilities, axis=0))]:
                row[name] = dice(postprocess_mask(probability, stack.spacing_zyx_mm, PostprocessSettings()), truth)
            rows.append(row)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)

    lines = [
        "| model | views | Dice mean ± sd | Dice per fold | cases better than the best member |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, workdir, (_, config, _) in [*zip(members, args.workdirs, nets), ("ensemble", None, (None, None, None))]:
        values = np.array([row[name] for row in rows])
        per_fold = ", ".join(f"{np.mean([r[name] for r in rows if r['fold'] == f]):.4f}" for f in range(len(splits)))
        views = ", ".join(config.views) if config else "mean of the above"
        better = (
            f"{sum(r['ensemble'] > max(r[m] for m in members) for r in rows)} of {len(rows)}" if workdir is None else ""
        )
        lines.append(f"| {name} | {views} | {values.mean():.4f} ± {values.std(ddof=1):.4f} | {per_fold} | {better} |")
    table = "\n".join(lines)
    started = dt.datetime.now(dt.UTC)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "workdirs": [str(w) for w in args.workdirs],
        "test_time_scales": scales,
        "threads": args.threads,
        "cpu": cpu_name(),
        "cpu_has_amx_bf16": cpu_has_amx_bf16(),
        "per_case": rows,
        "network_seconds_per_volume_all_members": float(np.mean([r["seconds"] for r in rows])),
        "table_markdown": table,
    }
    write_result(
        "ensemble-cv",
        args.tag,
        started,
        result,
        f"Ensemble CV {result['date']}, members {', '.join(members)}, on {result['cpu']}, {args.threads} threads, "
        f"{'with' if result['cpu_has_amx_bf16'] else 'without'} AMX-bf16\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
