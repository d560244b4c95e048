"""5-fold cross-validation of the planned presets on a GPU machine whose Python has PyTorch with CUDA but
neither SimpleITK nor Snakemake, and no network: the CUDA path, bf16 autocast, minutes per fold and Dice.

Two steps, because the GPU machine receives only the repository's working tree (64 MiB at most):

    # here, with the project's venv: read and check every case with laseg, store its canonical arrays losslessly
    .venv/bin/python bench/gpu_cv.py pack --dataset la2018_lge_dev --out gpu_pack
    # on the GPU machine: every (preset, fold) as its own process, all at once on the one GPU
    python3 bench/gpu_cv.py run --pack gpu_pack/la2018_lge_dev.pkl --presets full default --budget 7.5 --out results_dir

Each job does what the workflow's CV rules do, with the package's own functions: the fold's plan from its
training cases' fingerprints (laseg.plan), training (laseg.train.train_model), prediction of the held-out cases
with the configured test-time zooms (laseg.predict.predict_canonical), post-processing and scoring
(laseg.postprocess, laseg.metrics). Metrics are computed on the canonical arrays with the canonical spacing:
flips and axis permutations change neither Dice, HD95 nor volume. The split is nnU-Net's (sorted ids,
KFold(5, shuffle, 12345)). Writes one JSON per job as it finishes, then gpu-cv-<dataset>.json and .md.
"""

from __future__ import annotations

import argparse
import bz2
import datetime as dt
import json
import os
import pickle
import resource
import subprocess
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name


def _allow_missing_simpleitk() -> None:
    """The GPU image has no SimpleITK and nothing can be installed there. The run step reads packed arrays,
    never a medical image file, so the package's I/O module only needs the name to import; the version
    string it reports for the checkpoint says why it is absent."""
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        absent = types.ModuleType("SimpleITK")
        absent.Version_VersionString = lambda: "not installed (bench/gpu_cv.py reads packed arrays)"  # type: ignore[attr-defined]
        sys.modules["SimpleITK"] = absent


def pack(dataset: str, out_dir: Path) -> Path:
    """Every labelled case of ../shared/data/<dataset>, checked by laseg, as canonical arrays + fingerprint."""
    from laseg.cohort import discover_cases
    from laseg.plan import fingerprint_case
    from laseg.slices import load_checked_case

    cases = []
    for case in discover_cases(REPO.parent / "shared" / "data" / dataset):
        stack = load_checked_case(case.patient, case.image, case.label)
        image = stack.image
        # The smallest integer type that holds the values exactly, else float32: lossless either way.
        for dtype in (np.uint8, np.int16):
            if np.array_equal(image, image.astype(dtype)):
                image = image.astype(dtype)
                break
        cases.append(
            {
                "patient": stack.patient,
                "shape": list(stack.image.shape),
                "dtype": str(image.dtype),
                "image_bz2": bz2.compress(np.ascontiguousarray(image).tobytes(), 9),
                "label_bits_bz2": bz2.compress(np.packbits(stack.label.astype(bool)).tobytes(), 9),
                "spacing_zyx_mm": list(stack.spacing_zyx_mm),
                "fingerprint": fingerprint_case(stack),
            }
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dataset}.pkl"
    path.write_bytes(pickle.dumps({"dataset": dataset, "cases": cases}))
    return path


def unpack(case: dict):
    from laseg.slices import SliceStack

    shape = tuple(case["shape"])
    image = np.frombuffer(bz2.decompress(case["image_bz2"]), dtype=case["dtype"]).reshape(shape).astype(np.float32)
    bits = np.frombuffer(bz2.decompress(case["label_bits_bz2"]), dtype=np.uint8)
    label = np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(np.uint8)
    # No source geometry: the run step stays in the canonical frame (module docstring).
    return SliceStack(case["patient"], image, label, None, tuple(case["spacing_zyx_mm"]))  # type: ignore[arg-type]


def recipe_plan(recipe: str, fingerprints: list[dict], budget: float | None) -> tuple[str, dict]:
    """(preset name, plan) of a recipe: a preset, optionally with explicit config values and changed preset
    constants, "+"-separated: "default+train.max_epochs=76", "default+preset.pixels_per_batch=32768"."""
    import yaml

    from laseg import plan as planning

    explicit: dict = {"model": {}, "train": {}}
    if budget is not None:
        explicit["train"]["budget_minutes"] = budget
    preset_name, *overrides = recipe.split("+")
    preset_changes = {}
    for override in overrides:
        dotted, value = override.split("=", 1)
        section, key = dotted.split(".", 1)
        if section == "preset":
            preset_changes[key] = yaml.safe_load(value)
        else:
            explicit[section][key] = yaml.safe_load(value)
    if preset_changes:  # a variant preset under the recipe's own name, in this process only
        planning.PRESETS[recipe] = replace(planning.PRESETS[preset_name], **preset_changes)
        preset_name = recipe
    plan = planning.make_plan(planning.cohort_fingerprint(fingerprints), explicit, preset_name)
    return preset_name, plan


def run_one(pack_path: Path, preset: str, fold: int, budget: float | None, out_dir: Path) -> None:
    """Plan, train, predict and score one fold with one preset; writes <preset>-fold<k>.json."""
    _allow_missing_simpleitk()
    import cv2
    import torch
    import yaml

    from laseg.cohort import kfold_splits
    from laseg.metrics import evaluate_case
    from laseg.model import select_device, select_precision
    from laseg.plan import planned_test_time_scales, planned_training
    from laseg.postprocess import PostprocessSettings, postprocess_mask
    from laseg.predict import predict_canonical, view_disagreement
    from laseg.train import train_model

    cv2.setNumThreads(1)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    packed = pickle.loads(pack_path.read_bytes())["cases"]
    by_id = {case["patient"]: case for case in packed}
    train_ids, test_ids = kfold_splits(sorted(by_id), 5)[fold]
    preset_name, plan = recipe_plan(preset, [by_id[p]["fingerprint"] for p in train_ids], budget)
    model_config, settings = planned_training(plan, config["model"], config["train"])
    settings = replace(settings, threads=1)
    log_path = out_dir / f"{preset}-fold{fold}.log"
    with log_path.open("w") as log_file:

        def log(line: str) -> None:
            print(line, file=log_file, flush=True)

        started = time.perf_counter()
        checkpoint, history = train_model([unpack(by_id[p]) for p in train_ids], model_config, settings, log, plan)
        train_minutes = (time.perf_counter() - started) / 60

        from laseg.model import ViewNetworks

        device = select_device(config["predict"]["device"])
        networks = ViewNetworks(model_config)
        networks.load_state_dict(checkpoint["state_dict"])
        networks = networks.to(device).to(memory_format=torch.channels_last).eval()
        precision = select_precision(config["predict"]["precision"], device)
        post = PostprocessSettings(**config["postprocess"])
        scales = planned_test_time_scales({**config, "plan": {"preset": preset_name}})  # the variant's own
        rows, predict_seconds = [], []
        for patient in test_ids:
            stack = unpack(by_id[patient])
            tic = time.perf_counter()
            view_masks: dict = {}
            probability = predict_canonical(networks, model_config, stack, scales, precision, device, view_masks)
            mask = postprocess_mask(probability, stack.spacing_zyx_mm, post)
            predict_seconds.append(time.perf_counter() - tic)
            rows.append(
                {
                    **evaluate_case(patient, mask, stack.label, stack.spacing_zyx_mm),
                    "qc_score": view_disagreement(view_masks),
                }
            )
            log(f"{patient}: Dice {rows[-1]['dice']:.4f}, QC {rows[-1]['qc_score']:.3f}, {predict_seconds[-1]:.1f} s")
    result = {
        "preset": preset,
        "fold": fold,
        "device": str(device),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "precision": checkpoint["precision"],
        "torch": torch.__version__,
        "plan": {section: {k: e["value"] for k, e in entries.items()} for section, entries in plan["settings"].items()},
        "training_amount": checkpoint["training_amount"],
        "train_minutes": train_minutes,
        "steps": sum(settings.iterations_per_epoch * n for n in checkpoint["training_amount"]["epochs_run"].values()),
        "predict_s_per_volume": float(np.mean(predict_seconds)),
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_case": rows,
        "history": history,
    }
    tmp = out_dir / f".{preset}-fold{fold}.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(out_dir / f"{preset}-fold{fold}.json")


def summarise(results: list[dict], dataset: str, budget: float | None, machine: str) -> tuple[dict, str]:
    """One row per preset over the folds that finished: Dice, HD95, Bland-Altman volume bias, minutes."""
    lines = [
        f"Dataset {dataset}, 5-fold CV (sorted ids, KFold(5, shuffle, 12345)); {machine}; "
        f"every (preset, fold) job ran at once on the one GPU (1 CPU thread each); "
        f"cap {budget if budget is not None else 'the preset'} min per fold.",
        "",
        "| preset | folds done | Dice mean ± sd | Dice per fold | HD95 mm | LA volume bias mL (95% limits) "
        "| epochs run / planned | train min / fold | steps / s per job | inference s / volume | peak GPU MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary = {}
    for preset in dict.fromkeys(r["preset"] for r in results):
        done = sorted((r for r in results if r["preset"] == preset), key=lambda r: r["fold"])
        cases = [c for r in done for c in r["per_case"]]
        dice = np.array([c["dice"] for c in cases])
        diff = np.array([c["volume_pred_ml"] - c["volume_true_ml"] for c in cases])
        bias, spread = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        per_fold = [float(np.mean([c["dice"] for c in r["per_case"]])) for r in done]
        epochs = "; ".join(
            f"{'/'.join(str(n) for n in r['training_amount']['epochs_run'].values())} "
            f"of {r['training_amount']['planned_epochs']}"
            for r in done
        )
        row = {
            "folds": [r["fold"] for r in done],
            "dice_mean": float(dice.mean()),
            "dice_sd": float(dice.std(ddof=1)) if len(dice) > 1 else 0.0,
            "dice_per_fold": per_fold,
            "hd95_mm": float(np.nanmean([c["hd95_mm"] for c in cases])),
            "volume_bias_ml": bias,
            "volume_limits_of_agreement_ml": [bias - 1.96 * spread, bias + 1.96 * spread],
            "train_minutes_per_fold": [r["train_minutes"] for r in done],
            "steps_per_second": [r["steps"] / (60 * r["train_minutes"]) for r in done],
            "predict_s_per_volume": float(np.mean([r["predict_s_per_volume"] for r in done])),
            "peak_gpu_memory_mb": max(r["peak_gpu_memory_mb"] or 0 for r in done),
        }
        summary[preset] = row
        low, high = row["volume_limits_of_agreement_ml"]
        lines.append(
            f"| {preset} | {len(done)} | {row['dice_mean']:.4f} ± {row['dice_sd']:.4f} | "
            f"{', '.join(f'{d:.4f}' for d in per_fold)} | "
            f"{row['hd95_mm']:.2f} | {bias:+.1f} ({low:+.1f} to {high:+.1f}) | {epochs} | "
            f"{', '.join(f'{m:.1f}' for m in row['train_minutes_per_fold'])} | "
            f"{', '.join(f'{s:.0f}' for s in row['steps_per_second'])} | "
            f"{row['predict_s_per_volume']:.1f} | {row['peak_gpu_memory_mb']:.0f} |"
        )
    return summary, "\n".join(lines)


def run_all(
    pack_path: Path, presets: list[str], folds: list[int], budget: float | None, out_dir: Path, deadline_s: float
) -> None:
    """Every (preset, fold) job as its own process at once; after deadline_s the unfinished ones are stopped
    and the table holds the folds that finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    jobs = {}
    for preset in presets:
        for fold in folds:
            command = [
                sys.executable,
                __file__,
                "run-one",
                "--pack",
                str(pack_path),
                "--preset",
                preset,
                "--fold",
                str(fold),
                "--out",
                str(out_dir),
            ]
            if budget is not None:
                command += ["--budget", str(budget)]
            stderr = open(out_dir / f"{preset}-fold{fold}.stderr", "w")  # noqa: SIM115 (the child process writes it)
            jobs[(preset, fold)] = subprocess.Popen(command, env=env, stderr=stderr)
    started = time.monotonic()
    while any(p.poll() is None for p in jobs.values()) and time.monotonic() - started < deadline_s:
        time.sleep(5)
    for (preset, fold), process in jobs.items():
        if process.poll() is None:
            process.kill()
            print(f"{preset} fold {fold}: stopped at the {deadline_s:.0f} s deadline", flush=True)
        elif process.returncode:
            print(
                f"{preset} fold {fold}: failed, exit {process.returncode}; see {preset}-fold{fold}.stderr", flush=True
            )
    results = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*-fold*.json"))]
    if not results:
        raise SystemExit("no fold finished")
    gpu = next((r["gpu"] for r in results if r["gpu"]), "no GPU")
    machine = f"{gpu}, torch {results[0]['torch']}, {results[0]['precision']}, host CPU {cpu_name()} x{os.cpu_count()}"
    dataset = pickle.loads(pack_path.read_bytes())["dataset"]
    summary, markdown = summarise(results, dataset, budget, machine)
    stem = out_dir / f"gpu-cv-{dataset}"
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "date": f"{dt.date.today()}",
                "machine": machine,
                "budget": budget,
                "summary": summary,
                "jobs": [{k: v for k, v in r.items() if k != "history"} for r in results],
            },
            indent=1,
            default=float,
        )
    )
    stem.with_suffix(".md").write_text(markdown + "\n")
    print(markdown, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", type=Path, required=True)
    r.add_argument(
        "--presets",
        nargs="+",
        default=["default", "full"],
        help='presets, each optionally with config values: "default+train.max_epochs=76"',
    )
    r.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    r.add_argument("--budget", type=float, default=None, help="cap per fold in minutes (default: the preset's)")
    r.add_argument("--deadline", type=float, default=3600, help="seconds after which unfinished jobs are stopped")
    r.add_argument("--out", type=Path, required=True)
    o = sub.add_parser("run-one")
    o.add_argument("--pack", type=Path, required=True)
    o.add_argument("--preset", required=True)
    o.add_argument("--fold", type=int, required=True)
    o.add_argument("--budget", type=float, default=None)
    o.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "pack":
        print(pack(args.dataset, args.out))
    elif args.step == "run":
        run_all(args.pack, args.presets, args.folds, args.budget, args.out, args.deadline)
    else:
        run_one(args.pack, args.preset, args.fold, args.budget, args.out)


if __name__ == "__main__":
    main()
