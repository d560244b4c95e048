"""Snakemake entry: the second stage's plan (grid, patch, box margin, amount of training) from the fingerprint."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import write_json
from laseg.plan import make_stage2_plan, plan_summary

with logged_step(snakemake.log[0]):
    fingerprint = json.loads(Path(snakemake.input.fingerprint).read_text())
    plan = make_stage2_plan(fingerprint, snakemake.params.stage2, snakemake.params.preset)
    print(plan_summary(plan), file=sys.stderr)
    write_json(snakemake.output.plan, plan)
