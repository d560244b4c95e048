"""Snakemake entry: per patient LA volume, body surface area, LA volume index and grade (patients.tsv)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow


from laseg.clinical import read_patients_tsv, volume_index_table
from laseg.entry import logged_step
from laseg.metrics import read_patient_table, write_csv

with logged_step(snakemake.log[0]):
    per_patient = read_patient_table(snakemake.input.per_patient)
    anthropometrics = read_patients_tsv(snakemake.input.patients[0]) if snakemake.input.patients else {}
    table = volume_index_table(per_patient, anthropometrics, dict(snakemake.params.upper_limits_ml_m2))
    write_csv(table, snakemake.output.table)
    unmatched = sorted(set(anthropometrics) - set(per_patient["patient"]))
    if unmatched:
        print(
            f"patients.tsv rows for patients not segmented in this run (ignored): {', '.join(unmatched)}",
            file=sys.stderr,
        )
    for record in table[table["no_grade_reason"] != ""].itertuples(index=False):
        print(f"{record.patient}: no LAVI grade: {record.no_grade_reason}", file=sys.stderr)
    print(table.to_string(), file=sys.stderr)
