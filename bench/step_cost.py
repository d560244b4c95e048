"""What a recipe's planned training costs on this CPU: seconds per training iteration of each view's network,
and the minutes a fold's train job would take, from the same packed cases bench/gpu_cv.py trains on the GPU.

The GPU run gives a recipe's Dice (the plan, not the device, fixes it: bench/README.md); this gives its price
on a 2-core CPU without running the whole fold there:

    .venv/bin/python bench/step_cost.py --pack gpu_pack/la2018_lge_dev.pkl \\
        --recipes default "default+preset.pixels_per_batch=32768"

For each recipe, fold 0's plan: each view's volumes are prepared (timed), then its network trains two epochs of
--steps iterations with the workflow's own loop (laseg.train.train_network) and the second epoch is timed
(the first carries the warm-up). Recipes alternate view by view, so a busier moment hits all of them.
Writes bench/results/step-cost-<date>-<dataset>[-tag].json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gpu_cv import recipe_plan, unpack
from bench.result_files import cpu_name, write_result
from laseg.cohort import kfold_splits
from laseg.model import cpu_has_amx_bf16, select_precision
from laseg.plan import planned_training
from laseg.train import prepared_volumes, train_network


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--recipes", nargs="+", default=["default"])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20, help="timed iterations per view (after as many warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC)
    packed = pickle.loads(args.pack.read_bytes())
    by_id = {case["patient"]: case for case in packed["cases"]}
    train_ids, _ = kfold_splits(sorted(by_id), 5)[args.fold]
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    stacks = [unpack(by_id[p]) for p in train_ids]
    plans = {}
    for recipe in args.recipes:
        _, plan = recipe_plan(recipe, [by_id[p]["fingerprint"] for p in train_ids], None)
        plans[recipe] = planned_training(plan, config["model"], config["train"])
    device = torch.device("cpu")
    precision = select_precision("auto", device)
    views = dict.fromkeys(v for model_config, _ in plans.values() for v in model_config.views)
    rows: dict[str, dict] = {recipe: {"views": {}} for recipe in args.recipes}
    for view in views:
        for recipe, (model_config, settings) in plans.items():
            if view not in model_config.views:
                continue
            tic = time.perf_counter()
            volumes = prepared_volumes(stacks, model_config, view, settings.soft_labels)
            prepare_s = time.perf_counter() - tic
            timing = replace(
                settings, max_epochs=2, iterations_per_epoch=args.steps, budget_minutes=1e6, threads=args.threads
            )
            _, history, _ = train_network(volumes, [], model_config, timing, device, lambda line: None, view)
            step_s = (history[1]["seconds"] - history[0]["seconds"]) / args.steps
            rows[recipe]["views"][view] = {
                "prepare_s": prepare_s,
                "step_s": step_s,
                "iterations": settings.max_epochs * settings.iterations_per_epoch,
                "batch": settings.batch_of(view),
                "crop": list(settings.patch_of(view)),
            }
            print(recipe, view, rows[recipe]["views"][view], flush=True)
            del volumes
    lines = [
        f"Training cost per fold on {cpu_name()} "
        f"({'with' if cpu_has_amx_bf16() else 'without'} AMX-bf16, {precision}), "
        f"{args.threads} threads; {packed['dataset']} fold {args.fold} plan ({len(train_ids)} training cases); "
        f"{args.steps} timed iterations per view.",
        "",
        "| recipe | view: batch x crop, s / iteration, iterations | prepare s | predicted train min / fold |",
        "| --- | --- | --- | --- |",
    ]
    for recipe, row in rows.items():
        views_text = "; ".join(
            f"{v}: {r['batch']} x {r['crop'][0]}x{r['crop'][1]}, {r['step_s']:.3f}, {r['iterations']}"
            for v, r in row["views"].items()
        )
        prepare = sum(r["prepare_s"] for r in row["views"].values())
        row["predicted_minutes"] = (prepare + sum(r["step_s"] * r["iterations"] for r in row["views"].values())) / 60
        lines.append(f"| {recipe} | {views_text} | {prepare:.0f} | {row['predicted_minutes']:.1f} |")
    result = {"date": f"{started:%Y-%m-%d}", "cpu": cpu_name(), "amx": cpu_has_amx_bf16(), "precision": precision,
              "dataset": packed["dataset"], "fold": args.fold, "steps": args.steps, "recipes": rows}  # fmt: skip
    write_result(
        "step-cost", packed["dataset"] + (f"-{args.tag}" if args.tag else ""), started, result, "\n".join(lines)
    )
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
