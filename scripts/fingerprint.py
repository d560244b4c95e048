"""Snakemake entry: the training cohort's fingerprint, from its cases' fingerprints."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import write_json
from laseg.plan import cohort_fingerprint

with logged_step(snakemake.log[0]):
    cases = [json.loads(Path(path).read_text()) for path in snakemake.input.cases]
    write_json(snakemake.output.fingerprint, cohort_fingerprint(cases))
