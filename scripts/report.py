"""Snakemake entry: the run's HTML report (results/report.html)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import pandas as pd

from laseg.checkpoint import checkpoint_facts
from laseg.entry import logged_step
from laseg.metrics import read_patient_table
from laseg.report import PatientMedia, ReportContent, write_report


def relative(path: str) -> str:
    """A link from the report's folder, so the results folder can be moved or served as a whole."""
    return Path(os.path.relpath(path, Path(snakemake.output.report).parent)).as_posix()


def one_per_patient(files: list[str]) -> list[str | None]:
    return list(files) if files else [None] * len(snakemake.params.patients)


with logged_step(snakemake.log[0]):
    inputs = snakemake.input
    test, train = set(snakemake.params.test), set(snakemake.params.train)
    patients = [
        PatientMedia(
            patient=patient,
            role="test" if patient in test else "train" if patient in train else "unlabelled",
            montage=Path(montage) if montage else None,
            render=Path(render) if render else None,
            viewer_href=relative(viewer) if viewer else None,
            video_href=relative(video) if video else None,
            poster_href=relative(keyframe) if keyframe else None,
        )
        for patient, montage, render, viewer, video, keyframe in zip(
            snakemake.params.patients,
            *(one_per_patient(getattr(inputs, k)) for k in ("montages", "renders", "viewers", "videos", "keyframes")),
        )
    ]
    figures = {
        caption: Path(getattr(inputs, key)[0])
        for key, caption in (
            ("training_curve", "Training: loss and validation Dice per epoch"),
            ("dice_distribution", "Dice and HD95 of the test patients"),
            ("bland_altman", "Bland-Altman plot of LA volume, predicted vs reference"),
            ("volume_scatter", "Predicted vs reference LA volume"),
        )
        if getattr(inputs, key)
    }
    content = ReportContent(
        per_patient=read_patient_table(inputs.per_patient),
        volumes=read_patient_table(inputs.volumes),
        config=dict(snakemake.params.config),
        grade_limits_ml_m2=dict(snakemake.params.config["clinical"]["lavi_upper_limits_ml_m2"]),
        patients=patients,
        figures=figures,
        agreement=json.loads(Path(inputs.agreement[0]).read_text()) if inputs.agreement else None,
        model=checkpoint_facts(inputs.checkpoint),
        checkpoint_path=str(inputs.checkpoint),
        trained_in_this_run=snakemake.params.trained_in_this_run,
        cv_per_fold=pd.read_csv(inputs.cv_per_fold[0]) if inputs.cv_per_fold else None,
        shape=read_patient_table(inputs.shape),
        shape_agreement=pd.read_csv(inputs.shape_agreement),
    )
    write_report(content, snakemake.output.report)
    print(f"report with {len(patients)} patients and {len(figures)} figures", file=sys.stderr)
