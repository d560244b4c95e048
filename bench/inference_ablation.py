"""Inference-side ablation on a finished cross-validation run: test-time zooms, numeric precision (fp32 or
bf16 autocast), mirroring, how the networks' output goes back to the scan's grid and how the views combine,
post-processing, the network's memory layout, and the resolution ceiling of its in-plane grid.

Reuses the fold checkpoints and slices of a `bench/run_benchmark.py` work folder (no training), so every
variant is scored on the same 20 held-out cases with the same networks:

    .venv/bin/python bench/inference_ablation.py                       # bench/work/ours, ~10 min on 2 cores
    .venv/bin/python bench/inference_ablation.py --workdir bench/work/ours --tag 5fold

Writes bench/results/inference-ablation-<date>[-tag].json and .md and prints the table.
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
from laseg.model import cpu_has_amx_bf16, from_view, in_view_order, prepare_volume, resample_inplane, sigmoid
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import LOGIT_UPSAMPLING, load_model, multiscale_logits, view_logits_on_scan
from laseg.slices import load_slices

DEFAULT_SCALES, DEFAULT_POSTPROCESS = "3 zooms", "threshold 0.5, largest component (default)"
WHOLE_SLICE_ZOOMS = "3 zooms, every zoom on whole slices"
MIRRORED = "no zoom + left-right mirror"
CONTIGUOUS = "no zoom, contiguous memory layout (channels_last off)"
# How a view's output reaches the scan's grid: the default resamples logits (LOGIT_UPSAMPLING, bicubic); until
# 2026-12-07 it resampled probabilities bilinearly.
PROBABILITY_BILINEAR = "no zoom, probabilities resampled bilinearly to the scan (before 2026-12-07)"
LOGIT_BILINEAR = "no zoom, logits resampled bilinearly to the scan"
# The default averages the views' logits on the scan's grid, then the sigmoid; until 2026-12-07 (evening) it
# averaged their probabilities.
VIEWS_AS_PROBABILITIES = "no zoom, views averaged as probabilities (before 2026-12-07 evening)"
ZOOMED_VIEWS_AS_PROBABILITIES = "3 zooms, views averaged as probabilities (before 2026-12-07 evening)"
BF16_SUFFIX = ", bf16"  # the same zooms with bf16 autocast (predict.precision auto picks it on CPUs with AMX)
RESOLUTION_CEILING = "no network: the reference label taken to the network's grid as 0/1 and back"
SOFT_RESOLUTION_CEILING = "no network: the reference label taken to the network's grid as area fractions and back"
# Zooms after the first cover the box around the atrium (multiscale_logits' default) unless named here.
TEST_TIME_SCALES = {
    "no zoom": [1.0],
    DEFAULT_SCALES: [1.0, 0.9, 1.1],
    WHOLE_SLICE_ZOOMS: [1.0, 0.9, 1.1],
    "5 zooms": [1.0, 0.9, 1.1, 0.8, 1.2],
    MIRRORED: [1.0],
    CONTIGUOUS: [1.0],
    PROBABILITY_BILINEAR: [1.0],
    LOGIT_BILINEAR: [1.0],
    VIEWS_AS_PROBABILITIES: [1.0],
    ZOOMED_VIEWS_AS_PROBABILITIES: [1.0, 0.9, 1.1],
}
TEST_TIME_SCALES |= {name + BF16_SUFFIX: TEST_TIME_SCALES[name] for name in ("no zoom", DEFAULT_SCALES)}
POSTPROCESS = {
    DEFAULT_POSTPROCESS: PostprocessSettings(),
    "threshold 0.4": PostprocessSettings(threshold=0.4),
    "threshold 0.6": PostprocessSettings(threshold=0.6),
    "no component selection": PostprocessSettings(largest_component=False),
    "closing 2 mm": PostprocessSettings(closing_radius_mm=2.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "work" / "ours")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    parser.add_argument("--folds", type=int, nargs="+", help="only these folds (default: all the work folder's)")
    parser.add_argument(
        "--zooms",
        nargs="+",
        choices=list(TEST_TIME_SCALES),
        default=list(TEST_TIME_SCALES),
        metavar="NAME",
        help=f"the test-time zoom rows to run (default: all): {', '.join(map(repr, TEST_TIME_SCALES))}",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load((args.workdir / "config.yaml").read_text())
    patients = [c.patient for c in discover_cases(Path(config["data"]["path"]))]
    splits = kfold_splits(patients, config["cv"]["folds"])

    dice_by_variant: dict[str, list[float]] = {}
    seconds_by_scales: dict[str, list[float]] = {}
    for fold, (_, test_patients) in enumerate(splits):
        if args.folds is not None and fold not in args.folds:
            continue
        net, model_config, _ = load_model(args.workdir / f"results/cv/fold_{fold}/model.pt", "cpu")
        for patient in test_patients:
            stack = load_slices(
                args.workdir / f"results/slices/{patient}.npz", args.workdir / f"results/slices/{patient}.json"
            )
            prepared = {view: prepare_volume(stack, model_config, view) for view in model_config.views}
            truth = stack.label.astype(bool)
            # The best any network at this in-plane spacing could do, with the same way back to the scan
            # (in the first view's slices). 0/1 targets are the default; area fractions are what
            # train.soft_labels: true trains on.
            first_view = model_config.views[0]
            label_at_network_grid = prepared[first_view][1]
            for name, label_at_grid in (
                (RESOLUTION_CEILING, (label_at_network_grid >= 0.5).astype(np.float32)),
                (SOFT_RESOLUTION_CEILING, label_at_network_grid),
            ):
                label_back = resample_inplane(
                    label_at_grid, in_view_order(stack.image.shape, first_view)[1:], "bilinear"
                )
                dice_by_variant.setdefault(name, []).append(dice(from_view(label_back, first_view) >= 0.5, truth))
            for scales_name in args.zooms:
                scales = TEST_TIME_SCALES[scales_name]
                zoom_region = "volume" if scales_name == WHOLE_SLICE_ZOOMS else "atrium"
                # load_model returns the network channels_last; this row times the layout it replaced.
                net = net.to(
                    memory_format=torch.contiguous_format if scales_name == CONTIGUOUS else torch.channels_last
                )
                precision = "bf16" if scales_name.endswith(BF16_SUFFIX) else "fp32"
                start = time.perf_counter()
                # Each view's output on the scan's grid: logits, or probabilities for the rows that average those.
                averages_probabilities = scales_name in (
                    PROBABILITY_BILINEAR,
                    VIEWS_AS_PROBABILITIES,
                    ZOOMED_VIEWS_AS_PROBABILITIES,
                )
                upsampling = "bilinear" if scales_name in (PROBABILITY_BILINEAR, LOGIT_BILINEAR) else LOGIT_UPSAMPLING
                view_outputs = []
                for view, (image, _) in prepared.items():  # the mean over the model's views, as predict_stack
                    view_logits = multiscale_logits(
                        net[view], model_config, image, torch.device("cpu"), scales, precision, view, zoom_region
                    )
                    if scales_name == MIRRORED:  # what mirroring at test time would add; training never mirrors
                        mirrored = multiscale_logits(
                            net[view],
                            model_config,
                            np.ascontiguousarray(image[:, :, ::-1]),
                            torch.device("cpu"),
                            scales,
                            precision,
                            view,
                        )
                        view_logits = (view_logits + mirrored[:, :, ::-1]) / 2
                    if scales_name == PROBABILITY_BILINEAR:  # probabilities, not logits, to the scan's grid
                        native_yx = in_view_order(stack.image.shape, view)[1:]
                        view_outputs.append(
                            from_view(resample_inplane(sigmoid(view_logits), native_yx, upsampling), view)
                        )
                        continue
                    scan_logits = view_logits_on_scan(view_logits, stack.image.shape, view, upsampling)
                    view_outputs.append(sigmoid(scan_logits) if averages_probabilities else scan_logits)
                mean_output = np.mean(view_outputs, axis=0)
                probability = mean_output if averages_probabilities else sigmoid(mean_output)
                seconds_by_scales.setdefault(scales_name, []).append(time.perf_counter() - start)
                # Post-processing variants only on the default zooms: the two axes are independent enough.
                variants = (
                    POSTPROCESS
                    if scales_name == DEFAULT_SCALES
                    else {DEFAULT_POSTPROCESS: POSTPROCESS[DEFAULT_POSTPROCESS]}
                )
                for pp_name, settings in variants.items():
                    name = f"{scales_name}; {pp_name}"
                    mask = postprocess_mask(probability, stack.spacing_zyx_mm, settings)
                    dice_by_variant.setdefault(name, []).append(dice(mask, truth))
            print(fold, patient, {k: round(v[-1], 4) for k, v in dice_by_variant.items()}, flush=True)

    n_cases = len(next(iter(dice_by_variant.values())))
    lines = [
        f"| test-time zooms; post-processing | Dice mean ± sd ({n_cases} cases) | network seconds / volume |",
        "| --- | --- | --- |",
    ]
    for name, values in dice_by_variant.items():
        seconds = seconds_by_scales.get(name.split(";")[0])
        lines.append(
            f"| {name} | {np.mean(values):.4f} ± {np.std(values, ddof=1):.4f} "
            f"| {f'{np.mean(seconds):.1f}' if seconds else '–'} |"
        )
    table = "\n".join(lines)
    started = dt.datetime.now(dt.UTC)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "workdir": str(args.workdir),
        "threads": args.threads,
        "cpu": cpu_name(),
        "cpu_has_amx_bf16": cpu_has_amx_bf16(),
        "dice": dice_by_variant,
        "network_seconds": seconds_by_scales,
        "table_markdown": table,
    }
    write_result(
        "inference-ablation",
        args.tag,
        started,
        result,
        f"Inference ablation {result['date']}, checkpoints of {args.workdir.name}, on {result['cpu']}, "
        f"{args.threads} threads, "
        f"{'a CPU with' if result['cpu_has_amx_bf16'] else 'a CPU without'} AMX-bf16; "
        f"rows without bf16 are fp32\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
