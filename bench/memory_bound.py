"""Peak memory of training against the cohort's size: stacks read as needed (what the train rule does) vs every
scan held in memory (what it did before 2026-12-04), beside laseg.resources.train_memory_mb (what the rule asks
SLURM for). Each measurement is a fresh process that plans from the cases' fingerprints and trains one epoch of
two iterations per view: the data held is the whole run's, the time is not.

    .venv/bin/python bench/memory_bound.py --slices WORKDIR/results/slices --sizes 4 8 16 20

WORKDIR is a finished run (e.g. bench/run_benchmark.py's work folder); writes bench/results/memory-bound-<date>.md/json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result


def measure(sidecars: list[Path], lazy: bool) -> dict:
    """In this (fresh) process: plan, train one short epoch per view, report the peak RSS."""
    from dataclasses import replace

    import yaml

    from laseg.plan import cohort_fingerprint, fingerprint_case, make_plan, planned_training
    from laseg.resources import train_memory_mb
    from laseg.slices import StoredStack
    from laseg.train import train_model

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    stored = [StoredStack.of(path.with_suffix(".npz"), path) for path in sidecars]
    plan = make_plan(cohort_fingerprint([fingerprint_case(s.load()) for s in stored]), {}, "default")
    model_config, settings = planned_training(plan, config["model"], config["train"])
    settings = replace(settings, max_epochs=1, iterations_per_epoch=2, threads=2)
    stacks = stored if lazy else [s.load() for s in stored]
    train_model(stacks, model_config, settings, log=lambda line: None, plan=plan)
    plan_path = Path(sidecars[0]).parent / ".memory_bound_plan.json"
    plan_path.write_text(json.dumps(plan))
    estimate = train_memory_mb(sidecars, plan_path, fallback_mb=0)
    plan_path.unlink()
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "estimate_mb": estimate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=Path, required=True, help="a results/slices folder of a finished run")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # internal: sidecars to measure
    parser.add_argument("--lazy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure([Path(p) for p in args.measure], args.lazy)))
        return
    sidecars = sorted(p for p in args.slices.glob("*.json") if not p.name.startswith("."))
    started = dt.datetime.now(dt.UTC)
    rows = []
    for size in args.sizes:
        chosen = [str(p) for p in sidecars[:size]]
        row = {"cases": len(chosen)}
        for lazy in (True, False):
            command = [sys.executable, __file__, "--slices", str(args.slices), "--measure", *chosen]
            output = subprocess.run(command + (["--lazy"] if lazy else []), capture_output=True, text=True, check=True)
            result = json.loads(output.stdout.strip().splitlines()[-1])
            row["lazy_mb" if lazy else "all_loaded_mb"] = round(result["peak_rss_mb"])
            row["estimate_mb"] = result["estimate_mb"]
        rows.append(row)
        print(row, flush=True)
    lines = [
        f"Peak RSS of a train job against cohort size ({args.slices}); {cpu_name()}, {started:%Y-%m-%d}.",
        "",
        "| training cases | read as needed (train rule) MB | all scans held (before) MB | mem_mb asked (estimate) MB |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r['cases']} | {r['lazy_mb']} | {r['all_loaded_mb']} | {r['estimate_mb']} |" for r in rows]
    write_result("memory-bound", args.tag, started, {"slices": str(args.slices), "rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
