# Cohort discovery, the train/test split, and the input functions every other rule file uses.
import functools
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # the laseg package sits beside the Snakefile

from laseg.clinical import check_grade_limits, patients_tsv_in_use
from laseg.cohort import Case, discover_cases, kfold_splits, split_patients
from laseg.code import code_digest
from laseg.colours import PREDICTION_RGB, REFERENCE_RGB
from laseg.config import config_problems
from laseg.resources import predict_memory_mb, stage2_train_memory_mb, train_memory_mb
from laseg.plan import (
    STAGE2_PLANNED_KEYS,
    explicit_settings,
    planned_test_time_scales,
    stage2_cap_minutes,
    stage2_enabled,
    training_cap_minutes,
)
from laseg.io import InputError
from laseg.synthetic import patient_id as synthetic_patient_id

SCHEMA = Path(workflow.basedir) / "config" / "schema.yaml"
problems = config_problems(config, SCHEMA)
if problems:
    raise WorkflowError("invalid configuration: " + "; ".join(problems))
validate(config, str(SCHEMA), set_default=True)
# The planned keys the user set (not "auto"): they win over the plan, and the plan rule records them.
EXPLICIT_SETTINGS = explicit_settings(config)
TRAINING_CAP_MINUTES = training_cap_minutes(config)
TEST_TIME_SCALES = planned_test_time_scales(config)
# The 3D second stage: trained here when on (its preset's or stage2.enabled), or given with predict.checkpoint.
STAGE2 = stage2_enabled(config) and not config["predict"]["checkpoint"]
STAGE2_CAP_MINUTES = stage2_cap_minutes(config)

SYNTHETIC_DIR = "resources/synthetic"


@functools.cache
def code_of(script):
    """Every rule's `code` param: a digest of the package modules its script imports. Snakemake reruns a job
    whose params changed, so editing a module reruns exactly the jobs that run it."""
    return code_digest(Path(workflow.basedir) / "scripts" / f"{script}.py")


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
    TRAINED_ON = []
    if config["predict"]["checkpoint"]:
        # A given model: nothing trains here, so every labelled scan is scored (or those in split.test).
        TRAIN, TEST = [], sorted(config["split"]["test"] or LABELLED)
        unknown = sorted(set(TEST) - set(LABELLED))
        if unknown:
            raise InputError(f"config split.test: {', '.join(unknown)} not among the labelled patients")
    else:
        TRAIN, TEST = split_patients(
            LABELLED, config["split"]["test"], config["split"]["test_fraction"], config["split"]["seed"]
        )
    # Heights and weights for the LA volume index, read now so that a bad row stops the run early.
    PATIENTS_TSV = patients_tsv_in_use(config["clinical"]["patients_tsv"])
    check_grade_limits(config["clinical"]["lavi_upper_limits_ml_m2"])
except InputError as err:
    raise WorkflowError(str(err)) from None

# Inference with a given checkpoint: a missing or incompatible one stops the run here, before any job.
if config["predict"]["checkpoint"]:
    if Path(config["predict"]["checkpoint"]).resolve() == Path("results/model/model.pt").resolve():
        raise WorkflowError(
            "config predict.checkpoint: results/model/model.pt is where the train rule writes its model; "
            "copy the checkpoint elsewhere (e.g. models/la_unet.pt) and point predict.checkpoint there"
        )
    from laseg.predict import load_model  # imports torch: only in this mode

    try:
        _, _, given_checkpoint = load_model(config["predict"]["checkpoint"], "cpu")
    except InputError as err:
        raise WorkflowError(f"config predict.checkpoint: {err}") from None
    # Scans the model has seen in training are segmented but not scored: their Dice says nothing of new scans.
    seen = set(given_checkpoint.get("train_patients", [])) | set(given_checkpoint.get("validation_patients", []))
    TRAINED_ON = sorted(seen & set(LABELLED))
    if TRAINED_ON:
        TEST = [p for p in TEST if p not in seen]
        print(
            f"warning: config predict.checkpoint was trained on {len(TRAINED_ON)} of these labelled patients "
            f"({', '.join(TRAINED_ON)}): they are segmented with role 'train' and left out of the test summary",
            file=sys.stderr,
        )

# Cross-validation over every labelled patient, nnU-Net's fold rule, when cv.folds > 0.
try:
    FOLDS = kfold_splits(LABELLED, config["cv"]["folds"], config["cv"]["seed"]) if config["cv"]["folds"] else []
except InputError as err:
    raise WorkflowError(str(err)) from None

# Segmented: held-out labelled patients (scored), every unlabelled scan (volumes and visuals only) and, with
# a given checkpoint, the patients it was trained on (role train, not scored).
PREDICTED = sorted(TEST + UNLABELLED + TRAINED_ON)
SCORED = sorted(TEST)


wildcard_constraints:
    patient="|".join(re.escape(p) for p in sorted(CASES)) or "(?!)",  # ids are text, not patterns
    fold=r"\d+",


def case_image(wildcards):
    """The scan file, or every file of a DICOM series (a change to any of them re-slices the patient)."""
    return CASES[wildcards.patient].source


def case_label(wildcards):
    label = CASES[wildcards.patient].label
    return [str(label)] if label is not None else []


def required_label(wildcards):
    return str(CASES[wildcards.patient].label)


def case_inputs(wildcards):
    return {"image": case_image(wildcards), "label": case_label(wildcards)}


def checkpoint_path():
    return config["predict"]["checkpoint"] or "results/model/model.pt"


def stage2_checkpoint():
    """The stage-2 checkpoint predict refines with: none, the one trained here, or the one given."""
    if config["predict"]["checkpoint"]:
        return [config["predict"]["stage2_checkpoint"]] if config["predict"]["stage2_checkpoint"] else []
    return ["results/model/stage2.pt"] if STAGE2 else []


def fold_stage2_checkpoint(wildcards):
    return [f"results/cv/fold_{wildcards.fold}/stage2.pt"] if STAGE2 else []


def _fold_training_files(fold, plan):
    train = FOLDS[int(fold)][0]
    return {
        "slices": expand("results/slices/{patient}.npz", patient=train),
        "sidecars": expand("results/slices/{patient}.json", patient=train),
        "plan": f"results/cv/fold_{fold}/{plan}",
    }


def fold_training_inputs(wildcards):
    return _fold_training_files(wildcards.fold, "plan.json")


def fold_stage2_inputs(wildcards):
    return _fold_training_files(wildcards.fold, "stage2_plan.json")


def fold_fingerprint_inputs(wildcards):
    return expand("results/plan/cases/{patient}.json", patient=FOLDS[int(wildcards.fold)][0])


def cv_case_metrics():
    return [f"results/cv/fold_{k}/metrics/{p}.json" for k, (_, val) in enumerate(FOLDS) for p in val]


def final_outputs():
    outputs = [
        "results/metrics/per_patient.csv",
        "results/metrics/summary.csv",
        *expand("results/masks/{patient}.nii.gz", patient=PREDICTED),
        *expand("results/pointclouds/{patient}_pred.ply", patient=PREDICTED),
        *expand("results/pointclouds/{patient}_true.ply", patient=SCORED),
        # A DICOM series gets its mask as a DICOM Segmentation too.
        *expand("results/dicom_seg/{patient}.dcm", patient=[p for p in PREDICTED if CASES[p].series_files]),
    ]
    outputs += clinical_and_report_outputs()  # videos, key frames and the training curve are listed there
    if FOLDS:
        outputs += ["results/cv/per_fold.csv", "results/cv/per_case.csv"]
    if not config["predict"]["checkpoint"]:
        outputs.append("results/model/model.pt")
    return outputs + stage2_checkpoint()


def reference_mesh(wildcards):
    return [f"results/meshes/{wildcards.patient}_true.ply"] if CASES[wildcards.patient].label is not None else []


def patient_pictures() -> dict[str, list[str]]:
    """Per-patient report pictures, each list empty when switched off (else one file per segmented patient)."""
    on_mesh, on_montage = config["mesh"]["enabled"], config["visualize"]["montage"]
    return {
        "montages": expand("results/montages/{patient}.png", patient=PREDICTED) if on_montage else [],
        "renders": expand("results/renders/{patient}.png", patient=PREDICTED) if on_mesh else [],
        "viewers": expand("results/viewers/{patient}.html", patient=PREDICTED) if on_mesh else [],
        "videos": expand("results/videos/{patient}.mp4", patient=PREDICTED),
        "keyframes": expand("results/overlays/{patient}.png", patient=PREDICTED),
    }


def cohort_figures() -> dict[str, list[str]]:
    """Cohort plots: accuracy and volume agreement need labelled test patients, the curve a training."""
    scored = bool(SCORED)
    agreement = scored and config["clinical"]["volume_agreement"]
    return {
        "training_curve": [] if config["predict"]["checkpoint"] else ["results/model/training_curve.png"],
        "dice_distribution": ["results/plots/dice_distribution.png"] if scored else [],
        "bland_altman": ["results/plots/bland_altman.png"] if agreement else [],
        "volume_scatter": ["results/plots/volume_scatter.png"] if agreement else [],
        "agreement": ["results/metrics/volume_agreement.json"] if agreement else [],
    }


def report_inputs(wildcards):
    return {
        "per_patient": "results/metrics/per_patient.csv",
        "volumes": "results/clinical/la_volume_index.csv",
        "shape": "results/clinical/la_shape.csv",
        "shape_agreement": "results/clinical/la_shape_agreement.csv",
        "checkpoint": checkpoint_path(),
        "cv_per_fold": ["results/cv/per_fold.csv"] if FOLDS else [],
        **cohort_figures(),
        **patient_pictures(),
    }


def clinical_and_report_outputs() -> list[str]:
    outputs = [
        "results/clinical/la_volume_index.csv",
        "results/clinical/la_shape.csv",
        "results/clinical/la_shape_agreement.csv",
    ]
    outputs += [path for paths in cohort_figures().values() for path in paths]
    outputs += [path for paths in patient_pictures().values() for path in paths]
    if config["mesh"]["enabled"]:
        outputs += expand("results/meshes/{patient}_pred.{ext}", patient=PREDICTED, ext=["ply", "stl"])
        outputs += expand("results/meshes/{patient}_true.{ext}", patient=SCORED, ext=["ply", "stl"])
    if config["report"]["enabled"]:
        outputs.append("results/report.html")
    return outputs
