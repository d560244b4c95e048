"""What a full nnU-Net v2 training run would cost on this machine's CPU, next to its published Dice.

    python bench/nnunet_cost.py --out bench/results/nnunet_cost.json

Steps (all outside the project's own venv, nothing under ../shared is written):
  1. Make/reuse ``bench/.venv-nnunet`` with ``pip install nnunetv2==<pinned> torch==2.13.0``. A ``pip install
     --dry-run --report`` runs first and the install is refused unless pip would take torch 2.13.0 (the CPU build
     on this disk), never a multi-GB CUDA build.
  2. Convert ``../shared/data/msd_task02_heart`` to nnU-Net v2 raw format under ``bench/work/nnUNet_raw``
     (``Dataset002_Heart``: symlinks ``imagesTr/la_XXX_0000.nii.gz`` and ``labelsTr/la_XXX.nii.gz``, v2
     ``dataset.json``).
  3. Run nnU-Net's own fingerprint extraction and default experiment planner (``ExperimentPlanner``, the one
     ``nnUNetv2_plan_and_preprocess`` uses) through its python API. No preprocessing is run.
  4. For ``2d`` and ``3d_fullres``: instantiate nnU-Net's ``nnUNetTrainer`` from the plans and run its own
     ``initialize()`` (network from the plans with deep supervision, SGD lr 1e-2 momentum 0.99 nesterov,
     weight decay 3e-5, Dice+CE deep-supervision loss). Only its dataset-class lookup is stubbed, because there
     is no preprocessed data. Random tensors of the planned patch size and batch size (targets downsampled by
     nnU-Net's own ``DownsampleSegForDSTransform``) go through ``trainer.train_step`` (forward, loss, backward,
     gradient clipping, SGD step) on the CPU with 2 threads: 1 warm-up iteration, then N timed ones.
     If the full batch would not fit the time or memory budget, a smaller batch is timed and scaled linearly,
     and the JSON says so.
  5. Extrapolate to nnU-Net's schedule (1000 epochs x 250 iterations) and write one JSON plus a small table.

Each configuration is timed in its own process so its peak RSS (``getrusage``) is its own.
Only the standard library is used at the top level; the nnU-Net stages run inside the separate venv.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = REPO.parent / "shared" / "data" / "msd_task02_heart"
VENV = BENCH / ".venv-nnunet"
WORK = BENCH / "work"
RAW = WORK / "nnUNet_raw"
PREPROCESSED = WORK / "nnUNet_preprocessed"
RESULTS = WORK / "nnUNet_results"

NNUNET_VERSION = "2.8.1"  # newest nnunetv2 in this machine's PyPI listing
TORCH_VERSION = "2.13.0"  # the CPU build on this disk; anything else would be a CUDA download
DATASET_ID = 2
DATASET_NAME = "Dataset002_Heart"
CONFIGURATIONS = ("2d", "3d_fullres")
THREADS = 2
EPOCHS = 1000
ITERS_PER_EPOCH = 250
VAL_ITERS_PER_EPOCH = 50

# Published reference on exactly these 20 cases (nnU-Net v1 official models, 5-fold CV), as stated in
# ../shared/data/msd_task02_heart/README.md; checked against that file at run time.
PUBLISHED_DICE = {"2d": 0.9096, "3d_fullres": 0.9329}
PUBLISHED_GPU_HOURS = {"2d": "about 10 h on an A100", "3d_fullres": "about 13 h on an A100"}


# --------------------------------------------------------------------------------------------------------------
# outer driver (stdlib only)
# --------------------------------------------------------------------------------------------------------------


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _installed_versions() -> dict[str, str] | None:
    py = _venv_python()
    if not py.exists():
        return None
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for n in ('torch', 'nnunetv2', 'dynamic_network_architectures'):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return None
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def ensure_venv() -> dict[str, str]:
    """Create bench/.venv-nnunet with nnunetv2 and torch==2.13.0 (CPU), refusing any other torch."""
    versions = _installed_versions()
    if versions and versions.get("nnunetv2") == NNUNET_VERSION and versions.get("torch", "").startswith(TORCH_VERSION):
        return versions
    if not _venv_python().exists():
        print(f"[venv] creating {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(_venv_python()), "-m", "pip"]
    reqs = [f"nnunetv2=={NNUNET_VERSION}", f"torch=={TORCH_VERSION}"]
    report = WORK / "pip_dry_run.json"
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"[venv] dry run: pip install {' '.join(reqs)}", flush=True)
    subprocess.run([*pip, "install", "-q", "--dry-run", "--report", str(report), *reqs], check=True)
    planned = {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    torch_planned = planned.get("torch")
    torch_have = (_installed_versions() or {}).get("torch", "")
    cuda_pkgs = sorted(n for n in planned if n.startswith("nvidia-") or n == "triton")
    torch_ok = (torch_planned is None and torch_have.startswith(TORCH_VERSION)) or (
        torch_planned is not None and torch_planned == f"{TORCH_VERSION}+cpu"
    )
    if not torch_ok or cuda_pkgs:
        raise SystemExit(
            f"refusing to install: pip would take torch {torch_planned!r} and CUDA packages {cuda_pkgs}; "
            f"expected torch {TORCH_VERSION}+cpu from this disk"
        )
    print(f"[venv] dry run takes torch {torch_planned or torch_have}; installing {len(planned)} packages", flush=True)
    subprocess.run([*pip, "install", "-q", *reqs], check=True)
    versions = _installed_versions()
    if not versions or not versions.get("torch", "").startswith(TORCH_VERSION):
        raise SystemExit(f"venv ended up with torch {versions}; expected {TORCH_VERSION}")
    return versions


def _inner_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        nnUNet_raw=str(RAW),
        nnUNet_preprocessed=str(PREPROCESSED),
        nnUNet_results=str(RESULTS),
        nnUNet_compile="false",  # nnU-Net disables torch.compile on the CPU anyway; say so explicitly
        OMP_NUM_THREADS=str(THREADS),
        MKL_NUM_THREADS=str(THREADS),
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTHONPATH", None)
    return env


def _run_inner(stage: str, result: Path, extra: list[str]) -> dict[str, Any]:
    result.unlink(missing_ok=True)
    cmd = [str(_venv_python()), str(Path(__file__).resolve()), "--stage", stage, "--result", str(result), *extra]
    subprocess.run(cmd, check=True, env=_inner_env(), cwd=str(REPO))
    return dict(json.loads(result.read_text()))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wait_for_low_load(threshold: float, max_wait_s: float) -> list[float]:
    """Poll the 1-minute load average until it drops below threshold or max_wait_s passes."""
    start = time.monotonic()
    load = list(os.getloadavg())
    while load[0] >= threshold and time.monotonic() - start < max_wait_s:
        print(f"[load] 1-min load {load[0]:.2f} >= {threshold}; waiting", flush=True)
        time.sleep(15)
        load = list(os.getloadavg())
    return load


def _published_dice() -> dict[str, Any]:
    readme = DATA / "README.md"
    text = readme.read_text()
    for value in PUBLISHED_DICE.values():
        if f"{value:.4f}" not in text:
            raise SystemExit(f"{readme} no longer states Dice {value:.4f}; update PUBLISHED_DICE")
    return {
        **PUBLISHED_DICE,
        "protocol": "nnU-Net v1 official models, 5-fold cross-validation, per-case 3D Dice, these 20 cases",
        "published_training_cost": PUBLISHED_GPU_HOURS,
        "source": "../shared/data/msd_task02_heart/README.md",
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = [
        "config",
        "patch",
        "batch",
        "params (M)",
        "s/iter",
        "h (1000x250)",
        "h if uncontended",
        "peak RSS (GiB)",
        "load (1 min)",
        "pub. Dice",
    ]
    lines = [head]
    for r in rows:
        lines.append(
            [
                r["configuration"],
                "x".join(str(i) for i in r["patch_size"]),
                str(r["batch_size"]),
                f"{r['parameters'] / 1e6:.1f}",
                f"{r['seconds_per_iteration']:.1f}" + ("*" if r["timing"]["scaled_from_smaller_batch"] else ""),
                f"{r['extrapolated_hours']:.0f}",
                f"{r['uncontended_estimate']['extrapolated_hours']:.0f}",
                f"{r['peak_rss_mib'] / 1024:.1f}",
                f"{r['load_average_before'][0]:.1f}",
                f"{r['published_dice']:.4f}",
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def main_outer(args: argparse.Namespace) -> None:
    versions = ensure_venv()
    WORK.mkdir(parents=True, exist_ok=True)
    plan = _run_inner("plan", WORK / "plan_result.json", [])
    rows: list[dict[str, Any]] = []
    for cfg in args.configurations:
        load_before = _wait_for_low_load(args.load_below, args.max_load_wait)
        res = _run_inner(
            "time",
            WORK / f"time_{cfg}.json",
            ["--configuration", cfg, "--iters", str(args.iters), "--budget", str(args.budget)],
        )
        res["load_average_before"] = [round(x, 2) for x in load_before]
        res["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        res["published_dice"] = PUBLISHED_DICE.get(cfg)
        rows.append(res)
    result = {
        "what": (
            "Cost of nnU-Net v2's own training schedule on this CPU: planned with nnU-Net's default "
            "ExperimentPlanner on our 20 MSD Task02 cases, networks built by nnU-Net from those plans, "
            "training iterations (forward + deep-supervision Dice+CE loss + backward + grad clip + SGD step) "
            "timed on random tensors of the planned batch and patch size, extrapolated to 1000 epochs x 250 "
            "iterations."
        ),
        "command": "python bench/nnunet_cost.py --out " + str(args.out),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)),
            "torch_threads": THREADS,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
            "shared_with_other_jobs": True,
        },
        "versions": {**versions, "python": plan["python"]},
        "schedule": {
            "epochs": EPOCHS,
            "train_iterations_per_epoch": ITERS_PER_EPOCH,
            "val_iterations_per_epoch": VAL_ITERS_PER_EPOCH,
        },
        "dataset": plan["dataset"],
        "planner": plan["planner"],
        "published_dice": _published_dice(),
        "configurations": {r["configuration"]: r for r in rows},
        "caveats": [
            "Timing covers the training step only: no data loading or augmentation. nnU-Net runs those in "
            "background worker processes (12 by default); on a 2-core CPU they would compete with the network "
            "for the same cores, so a real run would be slower than this estimate.",
            "extrapolated_hours counts the 250 training iterations per epoch only; "
            "extrapolated_hours_with_validation adds nnU-Net's 50 forward-only validation iterations per epoch "
            "where one was timed.",
            "Planned with nnU-Net v2's default ExperimentPlanner (8 GB GPU memory target, PlainConvUNet); the "
            "published Dice comes from nnU-Net v1 official models, whose plans are similar but not identical.",
            "The CPU is shared with other jobs; load averages before/after each configuration are recorded, "
            "and cpu_seconds_per_iteration / seconds_per_iteration near 2 means the 2 threads were not starved.",
            "torchvision 0.28.0 is pulled in by timm (a dependency of dynamic-network-architectures) and does not "
            "import beside the CPU torch build; nnU-Net's trainer and networks do not need it.",
        ],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(_table(rows))
    if any(r["timing"]["scaled_from_smaller_batch"] for r in rows):
        print("* timed at a smaller batch and scaled linearly to the planned batch (see JSON)")
    print(f"\nwrote {out}")


# --------------------------------------------------------------------------------------------------------------
# inner stages (run inside bench/.venv-nnunet)
# --------------------------------------------------------------------------------------------------------------


def convert_dataset() -> dict[str, Any]:
    """Write Dataset002_Heart in nnU-Net v2 raw layout as symlinks to the shared files (never copies)."""
    src = json.loads((DATA / "dataset.json").read_text())
    target = RAW / DATASET_NAME
    if target.exists():
        shutil.rmtree(target)  # only symlinks and our dataset.json live here
    (target / "imagesTr").mkdir(parents=True)
    (target / "labelsTr").mkdir(parents=True)
    cases = []
    for entry in src["training"]:
        image = (DATA / entry["image"]).resolve()
        label = (DATA / entry["label"]).resolve()
        case = image.name.removesuffix(".nii.gz")
        if not image.is_file() or not label.is_file():
            raise SystemExit(f"missing file for case {case}: {image} / {label}")
        (target / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(image)
        (target / "labelsTr" / f"{case}.nii.gz").symlink_to(label)
        cases.append(case)
    dataset_json = {
        "name": "Heart",
        "description": src.get("description", ""),
        "reference": src.get("reference", ""),
        "licence": src.get("licence", ""),
        "release": src.get("release", ""),
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "left atrium": 1},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    if len(cases) != 20:
        raise SystemExit(f"expected 20 training cases, found {len(cases)}")
    (target / "dataset.json").write_text(json.dumps(dataset_json, indent=2) + "\n")
    return {"name": DATASET_NAME, "raw_folder": str(target.relative_to(REPO)), "cases": cases, **dataset_json}


def stage_plan() -> dict[str, Any]:
    dataset = convert_dataset()
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import (
        ExperimentPlanner,
    )
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
    )

    t0 = time.perf_counter()
    fingerprint = extract_fingerprint_dataset(
        DATASET_ID, num_processes=THREADS, check_dataset_integrity=True, clean=True, show_progress_bar=False
    )
    t1 = time.perf_counter()
    _, plans_identifier = plan_experiment_dataset(DATASET_ID, ExperimentPlanner)
    t2 = time.perf_counter()
    plans_file = PREPROCESSED / DATASET_NAME / f"{plans_identifier}.json"
    plans = json.loads(plans_file.read_text())
    configs = {}
    for name, cfg in plans["configurations"].items():
        if "patch_size" in cfg:
            configs[name] = {
                "patch_size": cfg["patch_size"],
                "batch_size": cfg["batch_size"],
                "spacing": cfg["spacing"],
                "median_image_size_in_voxels": cfg["median_image_size_in_voxels"],
            }
        else:
            configs[name] = {"inherits_from": cfg.get("inherits_from")}
    return {
        "python": platform.python_version(),
        "dataset": {k: dataset[k] for k in ("name", "raw_folder", "numTraining", "channel_names", "labels")},
        "planner": {
            "class": "ExperimentPlanner",
            "plans_identifier": plans_identifier,
            "plans_file": str(plans_file.relative_to(REPO)),
            "fingerprint_seconds": round(t1 - t0, 1),
            "planning_seconds": round(t2 - t1, 1),
            "median_shape_after_crop": [
                float(x) for x in __import__("numpy").median(fingerprint["shapes_after_crop"], axis=0)
            ],
            "median_spacing": [float(x) for x in __import__("numpy").median(fingerprint["spacings"], axis=0)],
            "transpose_forward": plans["transpose_forward"],
            "configurations": configs,
        },
    }


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024.0
    return float("inf")


def stage_time(configuration: str, n_iters: int, budget_s: float) -> dict[str, Any]:
    import nnunetv2
    import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as trainer_module
    import numpy as np
    import torch
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import (
        DownsampleSegForDSTransform,
    )
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    plans = json.loads((PREPROCESSED / DATASET_NAME / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((RAW / DATASET_NAME / "dataset.json").read_text())
    plans["continue_training"] = False  # what nnUNetv2_train sets before building the trainer

    # There is no preprocessed data (we only time the training step), so stub the one lookup in initialize()
    # that reads the preprocessed folder. Everything else is nnU-Net's own initialize().
    trainer_module.infer_dataset_class = lambda folder: None
    trainer = nnUNetTrainer(plans, configuration, 0, dataset_json, device=torch.device("cpu"))
    trainer.initialize()
    net = trainer.network
    net.train()
    cm = trainer.configuration_manager
    patch = [int(x) for x in cm.patch_size]
    planned_batch = int(trainer.batch_size)
    n_params = sum(p.numel() for p in net.parameters())
    ds_scales = trainer._get_deep_supervision_scales()
    ds = DownsampleSegForDSTransform(ds_scales)
    opt = trainer.optimizer

    def make_batch(b: int) -> dict[str, Any]:
        data = torch.randn((b, trainer.num_input_channels, *patch), dtype=torch.float32)
        # an ellipsoid foreground per sample (a stand-in for the LA); values do not change the cost
        grids = torch.meshgrid(*[torch.linspace(-1, 1, s) for s in patch], indexing="ij")
        r2 = sum(g**2 for g in grids)
        seg = (r2 < 0.3).to(torch.int16)[None]  # (1, *patch)
        per_sample = [ds._apply_to_segmentation(seg.clone()) for _ in range(b)]
        target = [torch.stack([s[k] for s in per_sample]) for k in range(len(ds_scales))]
        return {"data": data, "target": target}

    def timed_step(batch: dict[str, Any]) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step(batch)
        return time.perf_counter() - w0, time.process_time() - c0

    rss_start = _peak_rss_mib()
    mem_avail = _mem_available_mib()
    print(
        f"[{configuration}] patch {patch}, batch {planned_batch}, {n_params / 1e6:.1f} M parameters, "
        f"{len(ds_scales)} deep-supervision outputs; probing batch 1",
        flush=True,
    )
    t_start = time.perf_counter()
    # Probe at batch 1 (this is also the warm-up if batch 1 ends up being timed) to size the run against the
    # time and memory budget. If that is cheap (2D), a batch-2 probe follows, giving a linear model
    # t(b) = t(1) + (b - 1) * marginal, where the marginal time per sample is t(2) - t(1) (at least 20% of t(1),
    # against noise), and the marginal memory per sample (without weights, gradients and optimizer state).
    # Otherwise (3D) the estimate is t(b) = b * t(1) and memory b * (peak(1) - start), both conservative.
    probe_batches = [1]
    probe_walls = [timed_step(make_batch(1))[0]]
    rss_b1 = _peak_rss_mib()
    per_sample_mib = max(rss_b1 - rss_start, 1.0)
    fixed_s, marginal_s = 0.0, probe_walls[0]
    if probe_walls[0] < 30.0:
        probe_batches.append(2)
        probe_walls.append(timed_step(make_batch(2))[0])
        per_sample_mib = max(_peak_rss_mib() - rss_b1, 1.0)
        marginal_s = max(probe_walls[1] - probe_walls[0], 0.2 * probe_walls[0])
        fixed_s = max(probe_walls[0] - marginal_s, 0.0)

    def est_s(b: int) -> float:
        return fixed_s + marginal_s * b

    remaining = budget_s - (time.perf_counter() - t_start)

    # Largest batch b <= planned for which 1 warm-up + 1 timed iteration fit the remaining budget and the memory
    # estimate fits 70% of what is available; then as many timed iterations (<= n_iters) as fit.
    mem_cap = 0.7 * mem_avail
    batch = planned_batch
    while batch > 1 and (est_s(batch) * 2 > remaining or rss_start + per_sample_mib * batch > mem_cap):
        batch -= 1
    needs_warmup = batch not in probe_batches  # a probe already warmed up these shapes
    n = int(remaining // est_s(batch)) - (1 if needs_warmup else 0)
    n = max(1, min(n_iters, n))
    reason = None
    if batch < planned_batch:
        reason = (
            f"batch {planned_batch} would not fit the {budget_s:.0f} s budget per configuration or 70% of the "
            f"{mem_avail / 1024:.1f} GiB available memory (estimated from probes at batch "
            f"{probe_batches}: {', '.join(f'{w:.1f}' for w in probe_walls)} s, {per_sample_mib:.0f} MiB per "
            f"sample); timed batch {batch} and scaled linearly by {planned_batch}/{batch}"
        )
        print(f"[{configuration}] {reason}", flush=True)

    batch_data = make_batch(batch)
    warm_wall = None
    if needs_warmup:
        print(f"[{configuration}] warm-up iteration at batch {batch}", flush=True)
        warm_wall, _ = timed_step(batch_data)
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(n):
        w, c = timed_step(batch_data)
        walls.append(w)
        cpus.append(c)
        print(f"[{configuration}] iteration {i + 1}/{n} at batch {batch}: {w:.2f} s wall, {c:.2f} s CPU", flush=True)
    measured = float(np.median(walls))
    measured_cpu = float(np.median(cpus))
    scale = planned_batch / batch
    s_per_iter = measured * scale
    # If the 2 threads had the cores to themselves, wall time would be about CPU time / threads.
    s_per_iter_cpu = measured_cpu / THREADS * scale

    # One forward-only validation iteration (nnU-Net does 50 per epoch), if the budget allows.
    val_s = None
    if time.perf_counter() - t_start + measured / 2 < budget_s:
        net.eval()
        with torch.no_grad():
            w0 = time.perf_counter()
            out = net(batch_data["data"])
            trainer.loss(out, batch_data["target"])
            val_s = (time.perf_counter() - w0) * scale
        net.train()

    train_hours = s_per_iter * EPOCHS * ITERS_PER_EPOCH / 3600.0
    result = {
        "configuration": configuration,
        "patch_size": patch,
        "batch_size": planned_batch,
        "spacing": [float(x) for x in cm.spacing],
        "network": {
            "class": cm.network_arch_class_name,
            "n_stages": cm.network_arch_init_kwargs.get("n_stages"),
            "features_per_stage": cm.network_arch_init_kwargs.get("features_per_stage"),
            "deep_supervision_outputs": len(ds_scales),
            "deep_supervision": trainer.enable_deep_supervision,
        },
        "parameters": n_params,
        "optimizer": {
            "class": type(opt).__name__,
            "lr": opt.defaults["lr"],
            "momentum": opt.defaults["momentum"],
            "nesterov": opt.defaults["nesterov"],
            "weight_decay": opt.defaults["weight_decay"],
        },
        "loss": type(trainer.loss).__name__ + "(" + type(trainer.loss.loss).__name__ + ")",
        "seconds_per_iteration": round(s_per_iter, 3),
        "extrapolated_hours": round(train_hours, 1),
        "extrapolated_days": round(train_hours / 24.0, 1),
        "hours_per_epoch": round(s_per_iter * ITERS_PER_EPOCH / 3600.0, 3),
        "uncontended_estimate": {
            "what": "CPU seconds per iteration / 2 threads: the wall time if no other job had used the cores",
            "seconds_per_iteration": round(s_per_iter_cpu, 3),
            "extrapolated_hours": round(s_per_iter_cpu * EPOCHS * ITERS_PER_EPOCH / 3600.0, 1),
        },
        "extrapolated_hours_with_validation": (
            round((s_per_iter * ITERS_PER_EPOCH + val_s * VAL_ITERS_PER_EPOCH) * EPOCHS / 3600.0, 1)
            if val_s is not None
            else None
        ),
        "peak_rss_mib": round(_peak_rss_mib(), 0),
        "timing": {
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "timed_batch_size": batch,
            "scaled_from_smaller_batch": batch < planned_batch,
            "scale_factor": scale,
            "scaling_note": reason,
            "probe_batch_sizes": probe_batches,
            "probe_seconds": [round(w, 3) for w in probe_walls],
            "estimated_mib_per_sample": round(per_sample_mib, 0),
            "estimated_seconds_at_planned_batch": round(est_s(planned_batch), 1),
            "warmup_seconds": (
                round(warm_wall, 3) if warm_wall is not None else "the probe at this batch was the warm-up"
            ),
            "timed_iterations": n,
            "iteration_wall_seconds": [round(w, 3) for w in walls],
            "iteration_cpu_seconds": [round(c, 3) for c in cpus],
            "median_wall_seconds_at_timed_batch": round(measured, 3),
            "cpu_seconds_per_iteration_at_timed_batch": round(measured_cpu, 3),
            "cpu_per_wall": round(measured_cpu / measured, 2),
            "val_forward_seconds": round(val_s, 3) if val_s is not None else None,
            "budget_seconds": budget_s,
            "mem_available_mib_at_start": round(mem_avail, 0),
            "data": "random normal image, ellipsoid label; targets downsampled by DownsampleSegForDSTransform",
        },
        "versions": {"torch": torch.__version__, "nnunetv2": getattr(nnunetv2, "__version__", None)},
    }
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/results/nnunet_cost.json")
    p.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    p.add_argument("--iters", type=int, default=3, help="timed iterations per configuration (after 1 warm-up)")
    p.add_argument("--budget", type=float, default=270.0, help="seconds of timing per configuration (approx.)")
    p.add_argument("--load-below", type=float, default=1.0, help="wait for the 1-min load to drop below this")
    p.add_argument("--max-load-wait", type=float, default=300.0, help="longest wait for low load, seconds")
    p.add_argument("--stage", choices=["plan", "time"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--configuration", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage is None:
        main_outer(args)
        return
    if args.stage == "plan":
        res = stage_plan()
    else:
        res = stage_time(args.configuration, args.iters, args.budget)
    Path(args.result).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
