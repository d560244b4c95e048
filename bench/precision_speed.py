"""fp32 against bf16 autocast for this project's U-Net on this machine's CPU, timed side by side in one run.

Times one training step (default batch and crop, forward + backward + AdamW) and one inference pass
(32 slices at 128 x 128 px, about one volume's batch), alternating fp32 and bf16 rounds so that a busier
or quieter moment hits both. The ratio is what `precision: auto` weighs (laseg.model.select_precision):
a CPU with AMX multiplies bf16 in hardware; one without emulates it, slowly.

    .venv/bin/python bench/precision_speed.py            # about 1 min on 2 cores

Writes bench/results/precision-speed-<date>[-tag].json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result
from laseg.model import ModelConfig, UNet2D, autocast, cpu_has_amx_bf16
from laseg.train import TrainSettings

PRECISIONS = ("fp32", "bf16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4, help="alternating fp32/bf16 rounds")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round (after 2 warm-up steps)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    config, settings = ModelConfig(), TrainSettings()
    channels = 2 * config.context_slices + 1
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(settings.batch_size, channels, settings.patch_px, settings.patch_px, generator=generator)
    labels = (
        torch.rand(settings.batch_size, 1, settings.patch_px, settings.patch_px, generator=generator) > 0.5
    ).float()
    slices = torch.randn(32, channels, 128, 128, generator=generator)
    images, slices = (t.contiguous(memory_format=torch.channels_last) for t in (images, slices))

    train_seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    infer_seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for _ in range(args.rounds):
        for precision in PRECISIONS:
            torch.manual_seed(0)
            net = UNet2D(config).to(memory_format=torch.channels_last)
            optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate)
            for step in range(2 + args.steps):
                start = time.perf_counter()
                with autocast(device, precision):
                    logits = net(images)
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step >= 2:
                    train_seconds[precision].append(time.perf_counter() - start)
            net.eval()
            with torch.no_grad():
                for step in range(1 + args.steps // 2):
                    start = time.perf_counter()
                    with autocast(device, precision):
                        net(slices)
                    if step >= 1:
                        infer_seconds[precision].append(time.perf_counter() - start)

    cpu = cpu_name()
    median = {
        kind: {p: float(np.median(times[p])) for p in PRECISIONS}
        for kind, times in (("train_step", train_seconds), ("inference_pass", infer_seconds))
    }
    lines = ["| | fp32 s (median) | bf16 s (median) | fp32 / bf16 |", "| --- | --- | --- | --- |"]
    for kind, label in (
        ("train_step", f"training step, batch {settings.batch_size} x {settings.patch_px} px"),
        ("inference_pass", "inference, 32 slices x 128 px"),
    ):
        fp32, bf16 = median[kind]["fp32"], median[kind]["bf16"]
        lines.append(f"| {label} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x |")
    table = "\n".join(lines)
    started = dt.datetime.now(dt.UTC)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {"cpu": cpu, "threads": args.threads, "amx_bf16": cpu_has_amx_bf16(), "torch": torch.__version__},
        "median_seconds": median,
        "train_step_seconds": train_seconds,
        "inference_pass_seconds": infer_seconds,
        "table_markdown": table,
    }
    amx = "with" if result["machine"]["amx_bf16"] else "without"
    write_result(
        "precision-speed",
        args.tag,
        started,
        result,
        f"Precision speed {result['date']} on {cpu} ({amx} AMX-bf16), {args.threads} threads\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
