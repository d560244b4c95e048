"""What the 3D second stage costs on this machine at the size its plan picks for a real dataset: seconds per
training step (a batch of two patches, forward, backward, AdamW) and per box prediction, and peak memory.

    .venv/bin/python bench/stage2_cost.py --dataset msd_task02_heart --preset full
    .venv/bin/python bench/stage2_cost.py --dataset la2018_lge_dev --preset full --steps 10

The plan comes from the fingerprint of the dataset's labelled cases (laseg.plan.make_stage2_plan, as the
workflow's plan_stage2 rule makes it); the steps run the workflow's own sampling, augmentation and loss on the
first cases' boxes, and one case's box is predicted with the workflow's own refine_logits. The first step is a
warm-up and not counted. Writes bench/results/stage2-cost-<dataset>-<date>[-tag].json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.orientation import SHARED_DATA
from bench.result_files import cpu_name, write_result
from laseg.cohort import discover_cases
from laseg.model import cpu_has_amx_bf16, select_device, select_precision
from laseg.plan import cohort_fingerprint, fingerprint_case, make_stage2_plan, planned_stage2
from laseg.slices import load_checked_case
from laseg.stage2 import augment_patches, network_of, prepare_box_volume, refine_logits, sample_patches
from laseg.train import bce_dice_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="msd_task02_heart")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--cases", type=int, default=4, help="cases whose boxes the steps sample from")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = dt.datetime.now(dt.UTC)

    labelled = [c for c in discover_cases(SHARED_DATA / args.dataset) if c.label is not None]
    stacks = [load_checked_case(c.patient, c.source, c.label) for c in labelled]
    plan = make_stage2_plan(cohort_fingerprint([fingerprint_case(s) for s in stacks]), {}, args.preset)
    device = select_device(args.device)
    config, settings = planned_stage2(plan, {}, device.type)
    settings = replace(settings, device=args.device, threads=args.threads)
    precision = select_precision("auto", device)
    reach = config.margin_mm + settings.jitter_mm
    prepare_started = time.perf_counter()
    volumes = [prepare_box_volume(s, config, reach) for s in stacks[: args.cases]]
    prepare_seconds = (time.perf_counter() - prepare_started) / len(volumes)

    net = network_of(config).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate)
    rng, generator = np.random.default_rng(0), torch.Generator(device=device).manual_seed(0)
    step_seconds = []
    for _ in range(args.steps + 1):
        began = time.perf_counter()
        images, labels = (torch.from_numpy(a).to(device) for a in sample_patches(volumes, config, settings, rng))
        images, labels = augment_patches(images, labels, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = net(images)
        loss = bce_dice_loss(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_seconds.append(time.perf_counter() - began)
    step = statistics.median(step_seconds[1:])

    # One box prediction: the case's own label stands for the first stage's mask.
    case = stacks[0]
    first = np.where(case.label > 0, 4.0, -4.0).astype(np.float32)
    predict_seconds = []
    for _ in range(3):
        began = time.perf_counter()
        _, done = refine_logits(net, config, case, first, device, precision)
        predict_seconds.append(time.perf_counter() - began)
    predict = statistics.median(predict_seconds[1:])

    steps_planned = settings.steps
    result = {
        "date": started.isoformat(timespec="seconds"),
        "dataset": args.dataset,
        "preset": args.preset,
        "cpu": cpu_name(),
        "amx_bf16": cpu_has_amx_bf16(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "precision": precision,
        "threads": args.threads,
        "stage2_plan": {key: entry["value"] for key, entry in plan["settings"]["stage2"].items()},
        "seconds_per_step": step,
        "step_seconds": step_seconds,
        "seconds_per_box_prediction": predict,
        "box_prediction": done,
        "seconds_preparing_a_box": prepare_seconds,
        "planned_steps": steps_planned,
        "planned_training_minutes": steps_planned * step / 60,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    machine = (
        f"{result['cpu']} ({'AMX' if result['amx_bf16'] else 'no AMX'}), {device}, {precision}, {args.threads} threads"
    )
    markdown = (
        f"# Stage-2 cost, {args.dataset}, preset {args.preset}\n\n{machine}\n\n"
        "| grid mm | patch | batch | s/step | planned steps | training min | s/box prediction | windows grid | "
        "peak RSS MB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {config.grid_spacing_mm} | {'x'.join(map(str, config.patch_zyx))} | {settings.batch_size} | {step:.2f} | "
        f"{steps_planned} | {result['planned_training_minutes']:.1f} | {predict:.2f} | "
        f"{'x'.join(map(str, done.get('stage2_grid_zyx', [])))} | {result['peak_rss_mb']:.0f} |\n"
    )
    out = write_result(f"stage2-cost-{args.dataset}", args.tag, started, result, markdown)
    print(markdown)
    print(f"written {out}.json")


if __name__ == "__main__":
    main()
