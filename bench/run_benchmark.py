"""Side-by-side benchmark on the real MSD Task02_Heart cases: our pipeline vs the thesis recipe at the
same wall-clock budget per fold (both through this workflow's cross-validation rules, same folds, same
machine, one run), beside nnU-Net v2's measured cost on this machine (bench/nnunet_cost.py).

    .venv/bin/python bench/run_benchmark.py                 # 5 folds x 2 recipes x 10 min
    .venv/bin/python bench/run_benchmark.py --folds 0 1 --budget 10 --repeat-fold 0
    .venv/bin/python bench/run_benchmark.py --recipes axial --tag 5fold-axial   # bench/configs/axial.yaml

Writes bench/results/benchmark-<date>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name  # noqa: E402
from laseg.cohort import discover_cases, kfold_splits  # noqa: E402
from laseg.metrics import cross_validation_tables  # noqa: E402
from laseg.model import cpu_has_amx_bf16  # noqa: E402

DATA = (REPO / ".." / "shared" / "data" / "msd_task02_heart").resolve()
RECIPES = {
    "ours": "default config (axial + coronal 2.5D U-Nets, half the budget each)",
    "thesis": "thesis recipe (64-wide 2D U-Net, Adam 1e-4, BCE)",
    "axial": "one axial 2.5D U-Net (the default until 2026-12-02)",
    "three_views": "axial + coronal + sagittal networks, a third of the budget each",
}
PUBLISHED = {"nnU-Net v1 2D (published)": 0.9096, "nnU-Net v1 3D full-res (published)": 0.9329}


def run_recipe(recipe: str, folds: list[int], budget: float, workdir: Path, cores: int) -> dict:
    """Run the CV rules for the given folds of one recipe; return its row of the table."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "bench" / "configs" / f"{recipe}.yaml").read_text())
    config["data"] = {"source": "folder", "path": str(DATA)}
    # The budget is per fold: the train job shares it between the networks of a multi-view recipe.
    config.setdefault("train", {}).update(budget_minutes=budget, max_epochs=100_000, threads=cores)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The settings that ran, defaults included, so a result file still says what it measured after the defaults move.
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = {section: {**defaults[section], **config.get(section, {})} for section in ("model", "train", "predict", "postprocess")}
    splits = kfold_splits([c.patient for c in discover_cases(DATA)], config["cv"]["folds"])
    metrics = [f"results/cv/fold_{k}/metrics/{p}.json" for k in folds for p in splits[k][1]]
    histories = [f"results/cv/fold_{k}/history.csv" for k in folds]
    command = [str(REPO / ".venv" / "bin" / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), "--quiet", "rules", "--", *metrics, *histories]
    subprocess.run(command, check=True)
    per_case, per_fold = cross_validation_tables([str(workdir / m) for m in metrics], [str(workdir / h) for h in histories])
    fold_rows = per_fold[per_fold["fold"] != "mean"]
    train_bench = [pd.read_csv(workdir / f"benchmarks/cv/train_fold_{k}.tsv", sep="\t") for k in folds]
    predict_bench = pd.concat(
        [pd.read_csv(p, sep="\t") for k in folds for p in (workdir / f"benchmarks/cv/predict_fold_{k}").glob("*.tsv")]
    )
    return {
        "recipe": recipe,
        "description": RECIPES[recipe],
        "settings": settings,
        "folds": folds,
        "dice_mean": float(per_case["dice"].mean()),
        "dice_sd": float(per_case["dice"].std(ddof=1)),
        "dice_per_fold": [round(float(d), 4) for d in fold_rows["dice"]],
        "hd95_mm": float(per_case["hd95_mm"].mean()),
        "train_minutes_per_fold": [round(float(m), 2) for m in fold_rows["train_minutes"]],
        "inference_s_per_volume": float(predict_bench["s"].mean()),
        "peak_rss_mb_train": float(max(b["max_rss"].max() for b in train_bench)),
        # Epochs run, and the validation curve when there is one: what epoch selection would gain.
        "history_per_fold": {k: pd.read_csv(workdir / h).to_dict(orient="records") for k, h in zip(folds, histories)},
        "per_case": per_case.to_dict(orient="records"),
    }


def markdown_table(rows: list[dict], nnunet: dict | None, budget: float) -> str:
    lines = [
        "| system | Dice mean ± sd | Dice per fold | HD95 mm | train min / fold | inference s / volume | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['description']}{' (repeat)' if r.get('repeat') else ''} | {r['dice_mean']:.4f} ± {r['dice_sd']:.4f} | "
            f"{', '.join(f'{d:.4f}' for d in r['dice_per_fold'])} | {r['hd95_mm']:.2f} | "
            f"{', '.join(f'{m:.1f}' for m in r['train_minutes_per_fold'])} | {r['inference_s_per_volume']:.1f} | {r['peak_rss_mb_train']:.0f} |"
        )
    for name, dice in PUBLISHED.items():
        cost = ""
        if nnunet:
            key = "2d" if "2D" in name else "3d_fullres"
            entry = nnunet.get("configurations", {}).get(key, {})
            if entry:
                idle = entry.get("uncontended_estimate", {})
                cost = (f"{60 * entry['extrapolated_hours']:.0f} min = {entry['extrapolated_hours'] / 24:.0f} days extrapolated "
                        f"({entry['seconds_per_iteration']:.0f} s/iteration at batch {entry['batch_size']}; "
                        f"idle-machine estimate {idle.get('extrapolated_hours', float('nan')) / 24:.0f} days)")
                rss = f"{entry.get('peak_rss_mib', float('nan')):.0f}"
        lines.append(f"| {name} | {dice:.4f} | (5-fold CV, published) | – | {cost or 'not measured here'} | – | {rss if cost else '–'} |")
    lines.append("")
    lines.append(f"Budget {budget} min of training per fold for each recipe (split between the networks of a multi-view recipe), same folds (nnU-Net's split).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=float, default=10.0, help="training minutes per fold")
    parser.add_argument("--recipes", nargs="+", default=["ours", "thesis"], choices=list(RECIPES))
    parser.add_argument("--repeat-fold", type=int, default=None, help="run this fold of 'ours' a second time (run-to-run spread)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. folds0-1")
    args = parser.parse_args()

    started = dt.datetime.now(dt.timezone.utc)
    rows = [run_recipe(r, args.folds, args.budget, args.workdir / r, args.cores) for r in args.recipes]
    if args.repeat_fold is not None:
        repeat = run_recipe("ours", [args.repeat_fold], args.budget, args.workdir / "ours_repeat", args.cores)
        rows.append({**repeat, "repeat": True})
    nnunet_path = REPO / "bench" / "results" / "nnunet_cost.json"
    nnunet = json.loads(nnunet_path.read_text()) if nnunet_path.is_file() else None
    table = markdown_table(rows, nnunet, args.budget)
    cpu = cpu_name()
    result = {
        "date": started.isoformat(timespec="seconds"),
        "load_average_at_end": os.getloadavg(),
        # amx_bf16: whether precision auto trained and predicted in bf16 here (laseg.model.select_precision)
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "amx_bf16": cpu_has_amx_bf16()},
        "budget_minutes": args.budget,
        "rows": rows,
        "nnunet": nnunet,
        "table_markdown": table,
    }
    out = REPO / "bench" / "results" / f"benchmark-{started:%Y-%m-%d}{'-' + args.tag if args.tag else ''}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    out.with_suffix(".md").write_text(f"Benchmark {result['date']} on {cpu}, {os.cpu_count()} cores, {'with' if result['machine']['amx_bf16'] else 'without'} AMX-bf16 "
        f"(precision auto: {'bf16' if result['machine']['amx_bf16'] else 'fp32'})\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
