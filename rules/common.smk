# Cohort discovery, the train/test split, and the input functions every other rule file uses.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # the laseg package sits beside the Snakefile

from laseg.cohort import Case, discover_cases, kfold_splits, split_patients
from laseg.config import config_problems
from laseg.io import InputError
from laseg.synthetic import patient_id as synthetic_patient_id

SCHEMA = Path(workflow.basedir) / "config" / "schema.yaml"
problems = config_problems(config, SCHEMA)
if problems:
    raise WorkflowError("invalid configuration: " + "; ".join(problems))
validate(config, str(SCHEMA), set_default=True)

SYNTHETIC_DIR = "resources/synthetic"


def _cohort() -> list[Case]:
    if config["data"]["source"] == "synthetic":
        ids = [synthetic_patient_id(i) for i in range(config["synthetic"]["n_patients"])]
        return [
            Case(p, Path(f"{SYNTHETIC_DIR}/imagesTr/{p}.nii.gz"), Path(f"{SYNTHETIC_DIR}/labelsTr/{p}.nii.gz"))
            for p in ids
        ]
    if not config["data"]["path"]:
        raise InputError("config data.path: required when data.source is 'folder'")
    return discover_cases(config["data"]["path"])


try:
    CASES = {case.patient: case for case in _cohort()}
    LABELLED = sorted(p for p, case in CASES.items() if case.label is not None)
    UNLABELLED = sorted(p for p, case in CASES.items() if case.label is None)
    TRAIN, TEST = split_patients(
        LABELLED, config["split"]["test"], config["split"]["test_fraction"], config["split"]["seed"]
    )
except InputError as err:
    raise WorkflowError(str(err)) from None

# Cross-validation over every labelled patient, nnU-Net's fold rule, when cv.folds > 0.
try:
    FOLDS = kfold_splits(LABELLED, config["cv"]["folds"], config["cv"]["seed"]) if config["cv"]["folds"] else []
except InputError as err:
    raise WorkflowError(str(err)) from None

# Segmented: held-out labelled patients (scored) and every unlabelled scan (volumes and visuals only).
PREDICTED = sorted(TEST + UNLABELLED)
SCORED = sorted(TEST)


wildcard_constraints:
    patient="|".join(sorted(CASES)) or "(?!)",
    fold=r"\d+",


def case_image(wildcards):
    return str(CASES[wildcards.patient].image)


def case_label(wildcards):
    label = CASES[wildcards.patient].label
    return [str(label)] if label is not None else []


def required_label(wildcards):
    return str(CASES[wildcards.patient].label)


def case_inputs(wildcards):
    return {"image": case_image(wildcards), "label": case_label(wildcards)}


def checkpoint_path():
    return config["predict"]["checkpoint"] or "results/model/model.pt"


def fold_training_inputs(wildcards):
    train = FOLDS[int(wildcards.fold)][0]
    return {
        "slices": expand("results/slices/{patient}.npz", patient=train),
        "sidecars": expand("results/slices/{patient}.json", patient=train),
    }


def cv_case_metrics():
    return [f"results/cv/fold_{k}/metrics/{p}.json" for k, (_, val) in enumerate(FOLDS) for p in val]


def final_outputs():
    outputs = [
        "results/metrics/per_patient.csv",
        "results/metrics/summary.csv",
        *expand("results/masks/{patient}.nii.gz", patient=PREDICTED),
        *expand("results/videos/{patient}.mp4", patient=PREDICTED),
        *expand("results/overlays/{patient}.png", patient=PREDICTED),
        *expand("results/pointclouds/{patient}_pred.ply", patient=PREDICTED),
        *expand("results/pointclouds/{patient}_true.ply", patient=SCORED),
    ]
    if FOLDS:
        outputs += ["results/cv/per_fold.csv", "results/cv/per_case.csv"]
    if not config["predict"]["checkpoint"]:
        outputs += ["results/model/model.pt", "results/model/training_curve.png"]
    return outputs
