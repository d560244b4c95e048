"""5-fold cross-validation of recipes (bench/configs/<recipe>.yaml) on a real dataset in ../shared/data, through
this workflow's CV rules (nnU-Net's split: sorted ids, KFold(5, shuffle, 12345)), one recipe after the other on
the same machine, beside nnU-Net v2's published figures and its measured cost here (bench/nnunet_cost.py).

    .venv/bin/python bench/run_benchmark.py --dataset msd_task02_heart --recipes ours        # the default plan
    .venv/bin/python bench/run_benchmark.py --dataset la2018_lge_dev --recipes ours full
    .venv/bin/python bench/run_benchmark.py --recipes constants --budget 10 --folds 0    # the pre-plan settings
    .venv/bin/python bench/run_benchmark.py --dataset msd_task02_heart --anatomical    # headers as a scanner's

Each recipe trains as its plan says (train.budget_minutes is its cap) unless --budget sets the cap.
Writes bench/results/benchmark-<date>-<dataset>[-tag].json and .md and prints the table. A 5-fold run split
over sessions (--folds 0 1, then --folds 2 3 4, on the same machine) is combined afterwards with
    .venv/bin/python bench/run_benchmark.py --merge bench/results/<A>.json bench/results/<B>.json --tag 5fold
and two runs of the same cases are compared case by case (cases better, mean change, per fold) with
    .venv/bin/python bench/run_benchmark.py --compare bench/results/<base>.json bench/results/<new>.json
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.orientation import SHARED_DATA, anatomical_dataset
from bench.result_files import cpu_name, write_result
from laseg.cohort import discover_cases, kfold_splits
from laseg.metrics import cross_validation_tables
from laseg.model import cpu_has_amx_bf16

RECIPES = {
    "ours": "default plan (preset default)",
    "full": "full plan (preset full: the default's first stage + the 3D second stage)",
    "ours_stage2": "default plan + the 3D second stage (stage2.enabled: true; the first stage as in ours)",
    "ours_fp32_training": "default plan, networks trained in fp32",
    "ours_seed1": "default plan, training seed 1 (the default trains with seed 0)",
    "constants": "pre-plan constants (2.5 mm, 96 px, 2 views), wall-clock bound",
    "thesis": "thesis recipe (64-wide 2D U-Net, Adam 1e-4, BCE)",
}
PUBLISHED = {
    "msd_task02_heart": {
        "nnU-Net v1 2D (published 5-fold CV)": 0.9096,
        "nnU-Net v1 3D full-res (published 5-fold CV)": 0.9329,
    },
    "la2018_lge_dev": {"3D V-Net (UA-MT paper, its 80/20 split, not this CV)": 0.9114},
}


def run_recipe(recipe: str, data: Path, folds: list[int], budget: float | None, workdir: Path, cores: int) -> dict:
    """Run the CV rules for the given folds of one recipe; return its row of the table."""
    folds = sorted(folds)  # the per-fold lists below come out in fold order, whatever order the folds were given in
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "bench" / "configs" / f"{recipe}.yaml").read_text())
    config["data"] = {"source": "folder", "path": str(data)}
    config.setdefault("train", {})["threads"] = cores
    if budget is not None:  # the train job's cap per fold, shared by a multi-view recipe's networks
        config["train"]["budget_minutes"] = budget
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The settings that ran, defaults included, so a result file still says what it measured after the defaults move.
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = {
        section: {**defaults[section], **config.get(section, {})}
        for section in ("plan", "model", "train", "stage2", "predict", "postprocess")
    }
    splits = kfold_splits([c.patient for c in discover_cases(data)], config["cv"]["folds"])
    metrics = [f"results/cv/fold_{k}/metrics/{p}.json" for k in folds for p in splits[k][1]]
    histories = [f"results/cv/fold_{k}/history.csv" for k in folds]
    command = [
        str(REPO / ".venv" / "bin" / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        str(cores),
        "--quiet",
        "rules",
        "--",
        *metrics,
        *histories,
    ]
    called = time.perf_counter()
    subprocess.run(command, check=True)
    # The whole call: on a fresh workdir, slicing and fingerprinting every case, planning, training, prediction and
    # scoring of these folds (the "fold 0 within 20 minutes wall" is this figure for --folds 0).
    workflow_minutes = (time.perf_counter() - called) / 60
    per_case, per_fold = cross_validation_tables(
        [str(workdir / m) for m in metrics], [str(workdir / h) for h in histories]
    )
    fold_rows = per_fold[per_fold["fold"] != "mean"]
    train_bench = [pd.read_csv(workdir / f"benchmarks/cv/train_fold_{k}.tsv", sep="\t") for k in folds]
    predict_bench = pd.concat(
        [pd.read_csv(p, sep="\t") for k in folds for p in (workdir / f"benchmarks/cv/predict_fold_{k}").glob("*.tsv")]
    )
    plans = {k: json.loads((workdir / f"results/cv/fold_{k}/plan.json").read_text()) for k in folds}
    # The 3D second stage's train job, where the recipe has one: its minutes count in the fold's training.
    stage2_paths = {k: workdir / f"benchmarks/cv/train_stage2_fold_{k}.tsv" for k in folds}
    stage2_bench = {k: pd.read_csv(path, sep="\t") for k, path in stage2_paths.items() if path.is_file()}
    stage2_minutes = [round(float(stage2_bench[k]["s"].iloc[0]) / 60, 2) if k in stage2_bench else 0.0 for k in folds]
    epochs_run = {
        k: pd.read_csv(workdir / h).groupby("view")["epoch"].max().to_dict() for k, h in zip(folds, histories)
    }
    return {
        "recipe": recipe,
        "description": RECIPES[recipe],
        "settings": settings,
        "folds": folds,
        **case_statistics(per_case),
        "dice_per_fold": [round(float(d), 4) for d in fold_rows["dice"]],
        "planned_epochs_per_fold": {k: plans[k]["settings"]["train"]["max_epochs"]["value"] for k in folds},
        "epochs_run_per_fold": epochs_run,
        "plans": plans,
        "train_minutes_per_fold": [round(float(m) + x, 2) for m, x in zip(fold_rows["train_minutes"], stage2_minutes)],
        "stage2_train_minutes_per_fold": stage2_minutes,
        "inference_s_per_volume": float(predict_bench["s"].mean()),
        "peak_rss_mb_train": float(max(b["max_rss"].max() for b in [*train_bench, *stage2_bench.values()])),
        "workflow_wall_minutes": {" ".join(map(str, folds)): round(workflow_minutes, 2)},
        # Epochs run, and the validation curve when there is one: what epoch selection would gain.
        "history_per_fold": {k: pd.read_csv(workdir / h).to_dict(orient="records") for k, h in zip(folds, histories)},
        "per_case": per_case.to_dict(orient="records"),
    }


def case_statistics(per_case: pd.DataFrame) -> dict:
    """Dice mean and sd, mean HD95 and the Bland-Altman LA volume bias over the scored cases of a recipe."""
    difference = per_case["volume_pred_ml"] - per_case["volume_true_ml"]
    bias, spread = float(difference.mean()), float(difference.std(ddof=1))
    return {
        "dice_mean": float(per_case["dice"].mean()),
        "dice_sd": float(per_case["dice"].std(ddof=1)),
        "hd95_mm": float(per_case["hd95_mm"].mean()),
        # Bland-Altman: mean predicted - reference LA volume and its 95% limits of agreement.
        "volume_bias_ml": bias,
        "volume_limits_of_agreement_ml": [bias - 1.96 * spread, bias + 1.96 * spread],
    }


def _what_trains(settings: dict) -> dict:
    """A run's settings without the CPU threads, which change its minutes, not the plan it trains."""
    return {**settings, "train": {k: v for k, v in settings["train"].items() if k != "threads"}}


def merge_rows(rows: list[dict]) -> dict:
    """One recipe's row from runs of disjoint folds (a 5-fold run split over sessions), as if run at once."""
    first = rows[0]
    if any(
        r["recipe"] != first["recipe"] or _what_trains(r["settings"]) != _what_trains(first["settings"]) for r in rows
    ):
        raise SystemExit(f"--merge: recipe {first['recipe']!r} ran with different settings in the files given")
    settings = copy.deepcopy(first["settings"])
    threads = sorted({r["settings"]["train"].get("threads") for r in rows}, key=str)
    if len(threads) > 1:  # parts run with --cores 1 beside another run, and parts with the machine to itself
        settings["train"]["threads"] = threads
    folds = [k for r in rows for k in r["folds"]]
    if len(set(folds)) != len(folds):
        raise SystemExit(f"--merge: recipe {first['recipe']!r} has fold(s) in more than one file: {sorted(folds)}")
    by_fold = sorted((k, r, i) for r in rows for i, k in enumerate(r["folds"]))
    per_case = pd.DataFrame([case for r in rows for case in r["per_case"]])
    # Inference time is a mean per volume: weight each run by the volumes it predicted.
    volumes = [len(r["per_case"]) for r in rows]
    # The whole workflow call's wall clock per part, keyed by its folds (runs before 2026-12-07 did not time it).
    walls: dict[str, float | None] = {}
    for r in rows:
        walls.update(r.get("workflow_wall_minutes") or {" ".join(map(str, r["folds"])): None})
    return {
        **{key: first[key] for key in ("recipe", "description")},
        "settings": settings,
        "folds": [k for k, _, _ in by_fold],
        **case_statistics(per_case),
        "dice_per_fold": [r["dice_per_fold"][i] for _, r, i in by_fold],
        **{
            key: {k: r[key][str(k)] for k, r, _ in by_fold}  # JSON made the fold keys strings
            for key in ("planned_epochs_per_fold", "epochs_run_per_fold", "plans", "history_per_fold")
        },
        "train_minutes_per_fold": [r["train_minutes_per_fold"][i] for _, r, i in by_fold],
        # Runs before the second stage existed did not record it: none.
        "stage2_train_minutes_per_fold": [r.get("stage2_train_minutes_per_fold", [0.0] * 5)[i] for _, r, i in by_fold],
        "inference_s_per_volume": sum(r["inference_s_per_volume"] * n for r, n in zip(rows, volumes)) / sum(volumes),
        "peak_rss_mb_train": max(r["peak_rss_mb_train"] for r in rows),
        "workflow_wall_minutes": walls,
        "per_case": per_case.to_dict(orient="records"),
    }


def merge_results(paths: list[Path]) -> dict:
    """Combine benchmark result files of one dataset, one machine and disjoint folds into one result."""
    results = [json.loads(p.read_text()) for p in paths]
    first = results[0]
    for path, result in zip(paths, results):
        if result["dataset"] != first["dataset"] or result["machine"]["cpu"] != first["machine"]["cpu"]:
            raise SystemExit(f"--merge: {path} is another dataset or CPU than {paths[0]}; times would not compare")
        if result["budget_minutes"] != first["budget_minutes"]:
            raise SystemExit(f"--merge: {path} ran with another --budget than {paths[0]}")
        if result.get("anatomical_header", False) != first.get("anatomical_header", False):
            raise SystemExit(f"--merge: {path} and {paths[0]} differ in --anatomical")
    recipes = dict.fromkeys(row["recipe"] for result in results for row in result["rows"] if not row.get("repeat"))
    rows = [
        merge_rows(
            [row for result in results for row in result["rows"] if row["recipe"] == recipe and not row.get("repeat")]
        )
        for recipe in recipes
    ]
    return {
        **first,
        "date": min(result["date"] for result in results),
        "merged_from": [p.name for p in paths],
        "load_average_at_end": [result["load_average_at_end"] for result in results],
        "rows": rows,
    }


def compare_per_case(base: dict, new: dict) -> str:
    """How one recipe's row differs from another's on the same cases: cases better, mean and range, per fold."""
    base_dice = {c["patient"]: c["dice"] for c in base["per_case"]}
    missing = sorted(c["patient"] for c in new["per_case"] if c["patient"] not in base_dice)
    if missing:
        raise SystemExit(f"--compare: the base run did not score {', '.join(missing)}")
    change = [c["dice"] - base_dice[c["patient"]] for c in new["per_case"]]
    base_fold = dict(zip(base["folds"], base["dice_per_fold"]))
    per_fold = ", ".join(f"{d - base_fold[k]:+.4f}" for k, d in zip(new["folds"], new["dice_per_fold"]))
    return (
        f"{new['description']} against {base['description']}: Dice {new['dice_mean']:.4f} against "
        f"{base['dice_mean']:.4f}, better on {sum(d > 0 for d in change)} of {len(change)} cases, "
        f"{sum(change) / len(change):+.4f} on average ({min(change):+.4f} to {max(change):+.4f}); per fold {per_fold}"
    )


def markdown_table(rows: list[dict], nnunet: dict | None, dataset: str, budget: float | None) -> str:
    lines = [
        "| system | Dice mean ± sd | Dice per fold | HD95 mm | LA volume bias mL (95% limits) "
        "| epochs run / planned per network | train min / fold | inference s / volume | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        low, high = r["volume_limits_of_agreement_ml"]
        epochs = "; ".join(
            f"{'/'.join(str(n) for n in r['epochs_run_per_fold'][k].values())} of {r['planned_epochs_per_fold'][k]}"
            for k in r["folds"]
        )
        lines.append(
            f"| {r['description']}{' (repeat)' if r.get('repeat') else ''} "
            f"| {r['dice_mean']:.4f} ± {r['dice_sd']:.4f} | "
            f"{', '.join(f'{d:.4f}' for d in r['dice_per_fold'])} | {r['hd95_mm']:.2f} | "
            f"{r['volume_bias_ml']:+.1f} ({low:+.1f} to {high:+.1f}) | {epochs} | "
            f"{', '.join(f'{m:.1f}' for m in r['train_minutes_per_fold'])} | {r['inference_s_per_volume']:.1f} "
            f"| {r['peak_rss_mb_train']:.0f} |"
        )
    for name, dice in PUBLISHED.get(dataset, {}).items():
        cost, rss = "not measured here", "–"
        entry = (
            (nnunet or {}).get("configurations", {}).get("2d" if "2D" in name else "3d_fullres", {})
            if "nnU-Net" in name
            else {}
        )
        if entry:
            idle = entry.get("uncontended_estimate", {})
            cost = (
                f"{60 * entry['extrapolated_hours']:.0f} min = "
                f"{entry['extrapolated_hours'] / 24:.0f} days extrapolated "
                f"({entry['seconds_per_iteration']:.0f} s/iteration at batch {entry['batch_size']}; "
                f"idle-machine estimate {idle.get('extrapolated_hours', float('nan')) / 24:.0f} days)"
            )
            rss = f"{entry.get('peak_rss_mib', float('nan')):.0f}"
        lines.append(f"| {name} | {dice:.4f} | – | – | – | – | {cost} | – | {rss} |")
    lines.append("")
    for r in rows:
        walls = [
            f"folds {folds}: " + (f"{minutes:.1f} min" if minutes is not None else "not timed")
            for folds, minutes in r.get("workflow_wall_minutes", {}).items()
        ]
        if walls:
            lines.append(
                f"Wall clock of the workflow call (what it had to run of slicing, planning, training, prediction and "
                f"scoring) for "
                f"{r['description']}{' (repeat)' if r.get('repeat') else ''}: {'; '.join(walls)}.  "
            )
    cap = f"a {budget} min cap per fold set by --budget" if budget is not None else "each plan's own cap"
    lines.append(
        f"Dataset {dataset}; training amount from each fold's plan ({cap}); "
        "same folds as nnU-Net (sorted ids, KFold(5, shuffle, 12345))."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", default="msd_task02_heart", choices=sorted(PUBLISHED), help="a folder in ../shared/data"
    )
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--budget", type=float, default=None, help="cap on training minutes per fold (default: the plan's)"
    )
    parser.add_argument("--recipes", nargs="+", default=["ours"], choices=list(RECIPES))
    parser.add_argument(
        "--repeat-fold", type=int, default=None, help="run this fold of 'ours' a second time (run-to-run spread)"
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. folds0-1")
    parser.add_argument(
        "--anatomical",
        action="store_true",
        help="run on a copy of the dataset whose headers say where the anatomy lies, as a scanner's would "
        "(bench/orientation.py); the files as stored otherwise",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="RESULT_JSON",
        help="run nothing: combine these result files (disjoint folds, same dataset and CPU) into one table",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("BASE_JSON", "NEW_JSON"),
        help="run nothing: print, case by case, how the first row of NEW_JSON differs from the first of BASE_JSON",
    )
    args = parser.parse_args()

    if args.compare:
        base, new = (json.loads(p.read_text())["rows"][0] for p in args.compare)
        print(compare_per_case(base, new))
        return
    if args.merge:
        result = merge_results(args.merge)
        table = markdown_table(result["rows"], result["nnunet"], result["dataset"], result["budget_minutes"])
        result["table_markdown"] = table
        machine = result["machine"]
        heading = (
            f"Benchmark merged from {', '.join(result['merged_from'])} (first started {result['date']}), "
            f"on {machine['cpu']}, {machine['cores']} cores, {'with' if machine['amx_bf16'] else 'without'} AMX-bf16 "
            f"(precision auto: {'bf16' if machine['amx_bf16'] else 'fp32'})"
        )
        write_result(
            "benchmark",
            "-".join(filter(None, [result["dataset"], args.tag])),
            dt.datetime.now(dt.UTC),
            result,
            f"{heading}\n\n{table}",
        )
        print(table)
        return

    data = SHARED_DATA / args.dataset
    started = dt.datetime.now(dt.UTC)
    work = args.workdir / (args.dataset + ("_anatomical" if args.anatomical else ""))
    if args.anatomical:
        data = anatomical_dataset(data, args.dataset, work / "data")
    rows = [run_recipe(r, data, args.folds, args.budget, work / r, args.cores) for r in args.recipes]
    if args.repeat_fold is not None:
        repeat = run_recipe("ours", data, [args.repeat_fold], args.budget, work / "ours_repeat", args.cores)
        rows.append({**repeat, "repeat": True})
    nnunet_path = REPO / "bench" / "results" / "nnunet_cost.json"
    nnunet = (
        json.loads(nnunet_path.read_text()) if nnunet_path.is_file() and args.dataset == "msd_task02_heart" else None
    )
    table = markdown_table(rows, nnunet, args.dataset, args.budget)
    cpu = cpu_name()
    amx = cpu_has_amx_bf16()
    result = {
        "date": started.isoformat(timespec="seconds"),
        "dataset": args.dataset,
        "load_average_at_end": os.getloadavg(),
        # amx_bf16: whether precision auto trained and predicted in bf16 here (laseg.model.select_precision)
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "amx_bf16": amx},
        "budget_minutes": args.budget,
        "anatomical_header": args.anatomical,
        "rows": rows,
        "nnunet": nnunet,
        "table_markdown": table,
    }
    heading = (
        f"Benchmark {result['date']} on {cpu}, {os.cpu_count()} cores, {'with' if amx else 'without'} AMX-bf16 "
        f"(precision auto: {'bf16' if amx else 'fp32'})"
        + (", scans with their anatomical header (bench/orientation.py)" if args.anatomical else "")
    )
    write_result(
        "benchmark", "-".join(filter(None, [args.dataset, args.tag])), started, result, f"{heading}\n\n{table}"
    )
    print(table)


if __name__ == "__main__":
    main()
