"""Snakemake entry: the per-patient LA size-and-shape table and its predicted-vs-reference agreement."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.metrics import read_patient_table, write_csv
from laseg.shape import shape_agreement, shape_table

with logged_step(snakemake.log[0]):
    rows = [json.loads(Path(path).read_text()) for path in snakemake.input.cases]
    table = shape_table(rows, read_patient_table(snakemake.input.per_patient))
    agreement = shape_agreement(table)
    write_csv(table, snakemake.output.table)
    write_csv(agreement, snakemake.output.agreement)
    print(table.to_string(), file=sys.stderr)
    print(agreement.to_string(), file=sys.stderr)
