"""Where an fp32 training iteration's time goes on this CPU, and which execution settings make it faster.

Times, alternating the variants round by round so that a busier or quieter moment hits all of them:
the data path (sample_batch, augment_batch) and the network step (forward + backward + AdamW) of the
default U-Net in fp32, in NCHW and channels_last layouts, with torch.compile, on 1 and 2 threads, and
at smaller crops. Ratios within one run are what to read; absolute times on shared machines are noisy.

    .venv/bin/python bench/fp32_speed.py            # about 5 min on 2 cores

Writes bench/results/fp32-speed-<date>[-tag].json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result
from laseg.model import ModelConfig, UNet2D, cpu_has_amx_bf16
from laseg.train import PreparedVolume, TrainSettings, augment_batch, bce_dice_loss, sample_batch

# name -> (memory format, compiled, threads, batch, crop px)
VARIANTS = {
    "channels_last (default)": ("channels_last", False, 2, 16, 96),
    "NCHW": ("contiguous", False, 2, 16, 96),
    "channels_last, 1 thread": ("channels_last", False, 1, 16, 96),
    "channels_last, torch.compile": ("channels_last", True, 2, 16, 96),
    "channels_last, crop 80": ("channels_last", False, 2, 16, 80),
    "channels_last, crop 64": ("channels_last", False, 2, 16, 64),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=6, help="timed steps per variant and round (after 2 warm-up steps)"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    config, settings = ModelConfig(), TrainSettings()
    rng = np.random.default_rng(0)
    # A prepared volume the size of an MSD scan at 2.5 mm: 115 slices of 128 x 128 px with a 30-px atrium.
    zz, yy, xx = np.mgrid[:115, :128, :128]
    target = (((zz - 57) / 30) ** 2 + ((yy - 64) / 15) ** 2 + ((xx - 64) / 12) ** 2 <= 1).astype(np.float32)
    volume = PreparedVolume("bench", rng.standard_normal(target.shape).astype(np.float32), target)
    generator = torch.Generator().manual_seed(0)

    seconds: dict[str, list[float]] = {name: [] for name in args.variants}
    data_seconds: dict[str, list[float]] = {"sample_batch": [], "augment_batch": []}
    networks: dict[str, tuple] = {}
    for name in args.variants:
        memory_format, compiled, _, _, _ = VARIANTS[name]
        torch.manual_seed(0)
        net = UNet2D(config).to(
            memory_format=getattr(torch, memory_format if memory_format == "channels_last" else "contiguous_format")
        )
        optimizer = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate)
        compile_seconds = float("nan")
        if compiled:
            net = torch.compile(net)
            compile_seconds = -1.0  # torch.compile compiles on the first call: timed there, below
        networks[name] = (net, optimizer, compile_seconds)
    for _ in range(args.rounds):
        for name in args.variants:
            memory_format, compiled, threads, batch, crop = VARIANTS[name]
            torch.set_num_threads(threads)
            net, optimizer, compile_seconds = networks[name]
            step_settings = TrainSettings(batch_size=batch, patch_px=crop)
            for step in range(2 + args.steps):
                start = time.perf_counter()
                images_np, labels_np = sample_batch([volume], step_settings, config, rng)
                sampled = time.perf_counter()
                images, labels = augment_batch(torch.from_numpy(images_np), torch.from_numpy(labels_np), generator)
                augmented = time.perf_counter()
                images = images.contiguous(
                    memory_format=getattr(
                        torch, memory_format if memory_format == "channels_last" else "contiguous_format"
                    )
                )
                loss = bce_dice_loss(net(images).float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done = time.perf_counter()
                if compiled and compile_seconds == -1.0:
                    compile_seconds = done - augmented
                    networks[name] = (net, optimizer, compile_seconds)
                if step >= 2:
                    seconds[name].append(done - augmented)
                    if name == args.variants[0]:
                        data_seconds["sample_batch"].append(sampled - start)
                        data_seconds["augment_batch"].append(augmented - sampled)

    median = {name: float(np.median(times)) for name, times in seconds.items()}
    reference = median[args.variants[0]]
    lines = [
        "| variant | batch x crop | network step s (median) | vs default | pixels per s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in args.variants:
        _, _, _, batch, crop = VARIANTS[name]
        extra = f" (compiling took {networks[name][2]:.0f} s)" if VARIANTS[name][1] else ""
        lines.append(
            f"| {name}{extra} | {batch} x {crop} | {median[name]:.3f} | {reference / median[name]:.2f}x "
            f"| {batch * crop * crop / median[name] / 1e3:.0f} k |"
        )
    for part, times in data_seconds.items():
        lines.append(f"| data path: {part} (batch 16 x 96) | | {np.median(times):.3f} | | |")
    table = "\n".join(lines)
    started = dt.datetime.now(dt.UTC)
    cpu = cpu_name()
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {"cpu": cpu, "amx_bf16": cpu_has_amx_bf16(), "torch": torch.__version__},
        "median_seconds": median,
        "step_seconds": seconds,
        "data_seconds": data_seconds,
        "table_markdown": table,
    }
    amx = "with" if result["machine"]["amx_bf16"] else "without"
    write_result(
        "fp32-speed",
        args.tag,
        started,
        result,
        f"fp32 training step {result['date']} on {cpu} ({amx} AMX-bf16)\n\n{table}",
    )
    print(table)


if __name__ == "__main__":
    main()
