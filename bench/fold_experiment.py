"""Train and score one cross-validation fold of the real MSD data outside Snakemake (for quick experiments).

    .venv/bin/python bench/fold_experiment.py --fold 0 --budget 10 [--set model.base_channels=24 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laseg.cohort import discover_cases, kfold_splits
from laseg.metrics import evaluate_case
from laseg.model import ModelConfig, UNet2D
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import predict_stack
from laseg.slices import load_checked_case
from laseg.train import TrainSettings, train_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msd_task02_heart"


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--set", nargs="*", default=[], help="model.x=v / train.x=v / post.x=v")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, train, post = ModelConfig(), TrainSettings(budget_minutes=args.budget, max_epochs=10_000), PostprocessSettings()
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".")
        target = {"model": model, "train": train, "post": post}[section]
        new = replace(target, **{name: parse_value(value)})
        model, train, post = (new if section == "model" else model, new if section == "train" else train, new if section == "post" else post)
    cases = {c.patient: c for c in discover_cases(DATA)}
    train_ids, val_ids = kfold_splits(sorted(cases), 5)[args.fold]
    stacks = {p: load_checked_case(p, cases[p].image, cases[p].label) for p in sorted(cases)}
    start = time.perf_counter()
    checkpoint, history = train_model([stacks[p] for p in train_ids], model, train, log=lambda line: print(line, flush=True))
    train_minutes = (time.perf_counter() - start) / 60
    net = UNet2D(model)
    net.load_state_dict(checkpoint["state_dict"])
    rows = []
    for p in val_ids:
        t = time.perf_counter()
        probability = predict_stack(net, model, stacks[p], torch.device("cpu"))
        seconds = time.perf_counter() - t
        mask = postprocess_mask(probability, stacks[p].source_geometry.spacing_zyx_mm, post)
        truth = (stacks[p].label is not None) and __import__("laseg.io", fromlist=["x"]).from_canonical(stacks[p].label, stacks[p].source_geometry)
        row = evaluate_case(p, mask, truth, stacks[p].source_geometry.spacing_zyx_mm)
        row["infer_s"] = seconds
        rows.append(row)
        print(p, round(row["dice"], 4), round(row["hd95_mm"], 2), f"{seconds:.1f}s", flush=True)
    result = {"fold": args.fold, "settings": args.set, "train_minutes": train_minutes, "epochs": len(history),
              "dice": float(np.mean([r["dice"] for r in rows])), "hd95": float(np.mean([r["hd95_mm"] for r in rows]))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
