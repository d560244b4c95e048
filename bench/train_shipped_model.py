"""Train the shipped model (models/la_unet.pt) on every labelled case of both real datasets in ../shared/data,
with this workflow's own rules, and score it on held-out cases in both of their orientations.

    .venv/bin/python bench/train_shipped_model.py          # about 30 min on 2 CPU cores (Xeon with AMX)
    .venv/bin/python bench/train_shipped_model.py --score OLD.pt models/la_unet.pt --tag TAG   # score checkpoints

`--score` only scores the checkpoints named (held-out cases in both orientations, one synthetic case) and writes
bench/results/shipped-model-<date>-<tag>.md and .json.

Neither dataset's files carry the orientation of the anatomy in them (bench/orientation.py), while a scanner's
DICOM, or dcm2niix's NIfTI of it, does. A model that learned only the files as stored found the atrium in la_007 as
stored (Dice 0.903 after post-processing) but not once its header said where the patient was (0.037): the networks
learn one plane's picture of the heart. So the model learns every case twice, as stored and with its anatomical
direction (`<id>_anatomical`), and is scored both ways on cases it never saw.

The training cases become one MSD-layout folder (bench/work/shipped/data: links to the files as stored, rewritten
copies for the anatomical ones; ids are unique across the datasets); the checkpoint is copied to models/la_unet.pt
and its facts, with the held-out scores, to models/la_unet.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.orientation import ANATOMICAL_DIRECTION, SHARED_DATA, with_direction
from bench.result_files import cpu_name, write_result
from laseg.checkpoint import checkpoint_facts
from laseg.cohort import discover_cases
from laseg.masks import dice
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import load_model, predict_canonical
from laseg.slices import load_checked_case
from laseg.synthetic import synthesize_case, write_case

DATASETS = tuple(ANATOMICAL_DIRECTION)
# One case of each dataset stays out of training (both orientations), for the checks on unseen scans.
HELD_OUT = ("la_007", "06SR5RBREL16DQ6M8LWS")
ANATOMICAL = "_anatomical"


def combined_dataset(target: Path) -> Path:
    """One MSD-layout folder with every labelled case of DATASETS twice: a link to the file as stored, and a copy
    with the dataset's anatomical direction."""
    (target / "imagesTr").mkdir(parents=True, exist_ok=True)
    (target / "labelsTr").mkdir(exist_ok=True)
    training = []
    for name in DATASETS:
        for case in discover_cases(SHARED_DATA / name):
            if case.label is None:
                continue
            for kind, source in (("imagesTr", case.image), ("labelsTr", case.label)):
                link = target / kind / f"{case.patient}.nii.gz"
                if not (link.is_symlink() and link.resolve() == source.resolve()):
                    link.unlink(missing_ok=True)
                    link.symlink_to(source.resolve())
                with_direction(source, target / kind / f"{case.patient}{ANATOMICAL}.nii.gz", ANATOMICAL_DIRECTION[name])
            for patient in (case.patient, case.patient + ANATOMICAL):
                training.append({"image": f"./imagesTr/{patient}.nii.gz", "label": f"./labelsTr/{patient}.nii.gz"})
    dataset = {"name": "laseg shipped model: " + " + ".join(DATASETS), "training": training, "test": []}
    text = json.dumps(dataset, indent=2)
    if not (target / "dataset.json").is_file() or (target / "dataset.json").read_text() != text:
        (target / "dataset.json").write_text(text)
    return target


def held_out_scores(model: Path, data: Path) -> dict[str, dict[str, float]]:
    """Dice of the model on each held-out case, as stored and anatomical: raw (probability >= 0.5), after the
    default post-processing, and each view's network alone; and on one synthetic case of the workflow's generator."""
    net, config, _ = load_model(model, "cpu")
    cases = [
        (p + suffix, data / "imagesTr" / f"{p}{suffix}.nii.gz", data / "labelsTr" / f"{p}{suffix}.nii.gz")
        for p in HELD_OUT
        for suffix in ("", ANATOMICAL)
    ]
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = synthesize_case(seed=7, patient_index=0, shape_zyx=(64, 128, 128))  # tests/test_shipped_model.py's
        cases.append(("synthetic seed 7", Path(tmp) / "image.nii.gz", Path(tmp) / "label.nii.gz"))
        write_case(synthetic, *cases[-1][1:])
        for patient, image, label in cases:
            stack = load_checked_case(patient, image, label)
            view_masks: dict = {}
            probability = predict_canonical(net, config, stack, view_masks=view_masks)
            truth = stack.label.astype(bool)
            mask = postprocess_mask(probability, stack.spacing_zyx_mm, PostprocessSettings())
            scores[patient] = {
                "dice": round(dice(mask, truth), 4),
                "dice_raw": round(dice(probability >= 0.5, truth), 4),
                **{f"dice_{view}": round(dice(m, truth), 4) for view, m in view_masks.items()},
            }
            print(patient, scores[patient], flush=True)
    return scores


def score_checkpoints(models: list[Path], data: Path, tag: str) -> None:
    """Held-out scores of each checkpoint, side by side, to bench/results/shipped-model-<date>-<tag>."""
    started = dt.datetime.now()
    scores = {str(model): held_out_scores(model, data) for model in models}
    command = " ".join([".venv/bin/python", "bench/train_shipped_model.py", *sys.argv[1:]])
    lines = [
        f"Shipped-model checkpoints on the held-out cases of {' and '.join(DATASETS)} (../shared/data), each as stored",
        f"and with its anatomical header (bench/orientation.py); {cpu_name()}, CPU inference, fp32.",
        f"Command: `{command}`",
        "",
        "| checkpoint | case | Dice (post-processed) | Dice (p >= 0.5) | Dice per view network |",
        "| --- | --- | --- | --- | --- |",
    ]
    for model, per_case in scores.items():
        trained_on = set(checkpoint_facts(model)["train_patients"])
        for case, s in per_case.items():
            views = ", ".join(f"{k[5:]} {v:.4f}" for k, v in s.items() if k not in ("dice", "dice_raw"))
            seen = " (a training case of this checkpoint)" if case in trained_on else ""
            lines.append(f"| {model} | {case}{seen} | {s['dice']:.4f} | {s['dice_raw']:.4f} | {views} |")
    result = {
        "cpu": cpu_name(),
        "command": command,
        "held_out": list(HELD_OUT),
        "anatomical_direction": ANATOMICAL_DIRECTION,
        "scores": scores,
    }
    print(write_result("shipped-model", tag, started, result, "\n".join(lines)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--score", type=Path, nargs="+", help="only score these checkpoints")
    parser.add_argument("--tag", default="", help="suffix of the --score result files")
    args = parser.parse_args()
    work = REPO / "bench" / "work" / "shipped"
    data = combined_dataset(work / "data")
    if args.score:
        score_checkpoints(args.score, data, args.tag)
        return
    # Twice 58 cases: 150 epochs x 40 iterations per network, 52 per case and orientation (the default plan gives
    # 150 per case to a cohort of 16, 94 to one of 32); about 30 min on a 2-core Xeon with AMX (bf16).
    config = {
        "data": {"source": "folder", "path": str(data)},
        "split": {"test": [p + suffix for p in HELD_OUT for suffix in ("", ANATOMICAL)]},
        "train": {"max_epochs": 150, "budget_minutes": 90},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    command = [str(REPO / ".venv/bin/snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(work)]
    command += ["--configfile", str(work / "config.yaml"), "--cores", "2", "--", "results/model/model.pt"]
    subprocess.run(command, check=True)
    target = REPO / "models" / "la_unet.pt"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(work / "results/model/model.pt", target)
    facts = checkpoint_facts(target)
    summary = {
        "file": str(target.relative_to(REPO)),
        "size_mb": round(target.stat().st_size / 2**20, 1),
        "datasets": list(DATASETS),
        "anatomical_direction": ANATOMICAL_DIRECTION,
        "train_patients": len(facts["train_patients"]),
        "held_out": list(HELD_OUT),
        "held_out_dice": held_out_scores(target, data),
        "plan": {k: v["value"] for section in facts["plan"]["settings"].values() for k, v in section.items()},
        "training_amount": facts["training_amount"],
        "trained_on": {"device": facts["device"], "precision": facts["precision"], "cpu": cpu_name()},
        "versions": facts["versions"],
    }
    (REPO / "models" / "la_unet.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
