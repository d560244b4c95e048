"""Snakemake entry: gather per-patient metrics into per_patient.csv and summary.csv."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.metrics import aggregate_case_metrics, write_csv

with logged_step(snakemake.log[0]):
    per_patient, summary = aggregate_case_metrics(
        snakemake.input, set(snakemake.params.test), set(snakemake.params.train)
    )
    write_csv(per_patient, snakemake.output.per_patient)
    write_csv(summary, snakemake.output.summary, index=True)
    print(summary.to_string(), file=sys.stderr)
