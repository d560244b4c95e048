"""LA volume index: body surface area from patients.tsv, volume indexed to it, and its severity grade."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import yaml

from laseg.io import InputError

if TYPE_CHECKING:  # pandas only where the table is built: the workflow imports this module at start-up
    import pandas as pd

PATIENTS_COLUMNS = ("patient", "height_cm", "weight_kg", "sex")
PATIENTS_SCHEMA = Path(__file__).resolve().parents[1] / "config" / "patients.schema.yaml"
DEFAULT_PATIENTS_TSV = "config/patients.tsv"  # relative to the working directory; optional

# ASE/EACVI 2015 chamber quantification (Lang et al., JASE 2015; 28:1-39), LA volume index by
# echocardiography, both sexes: normal <= 34, mildly 35-41, moderately 42-48, severely > 48 mL/m^2.
ASE_2015_UPPER_ML_M2 = {"normal": 34.0, "mild": 41.0, "moderate": 48.0}
GRADES = ("normal", "mild", "moderate", "severe")

# Shown wherever a grade is: the echo reference ranges applied to MRI volumes.
MRI_VERSUS_ECHO_NOTE = (
    "Grades apply echocardiographic reference limits (ASE/EACVI 2015). MRI volumes run larger than echo "
    "volumes of the same atrium, and this segmentation includes the pulmonary-vein stumps and the "
    "appendage, so MRI-based LAVI overstates the grade relative to echo; read it as a screening aid, "
    "not a diagnosis."
)


@dataclass(frozen=True)
class Anthropometrics:
    patient: str
    height_cm: float
    weight_kg: float
    sex: str


def body_surface_area_m2(height_cm: float, weight_kg: float) -> float:
    """Mosteller's formula: sqrt(height_cm * weight_kg / 3600)."""
    if not (height_cm > 0 and weight_kg > 0):
        raise ValueError(f"height {height_cm} cm and weight {weight_kg} kg must both be positive")
    return math.sqrt(height_cm * weight_kg / 3600.0)


def volume_index_ml_m2(volume_ml: float, bsa_m2: float) -> float:
    """LA volume indexed to body surface area (LAVI), mL/m^2."""
    if not bsa_m2 > 0:
        raise ValueError(f"body surface area {bsa_m2} m^2 must be positive")
    return volume_ml / bsa_m2


def check_grade_limits(upper_ml_m2: dict[str, float]) -> None:
    """The three upper limits (normal, mild, moderate) must be given and strictly increasing."""
    missing = [g for g in GRADES[:-1] if g not in upper_ml_m2]
    if missing:
        raise InputError(f"config clinical.lavi_upper_limits_ml_m2: missing {', '.join(missing)}")
    limits = [float(upper_ml_m2[g]) for g in GRADES[:-1]]
    if not all(a < b for a, b in itertools.pairwise(limits)):
        raise InputError(
            f"config clinical.lavi_upper_limits_ml_m2: limits must increase normal < mild < moderate, got {limits}"
        )


def lavi_grade(lavi_ml_m2: float, upper_ml_m2: dict[str, float] = ASE_2015_UPPER_ML_M2) -> str:
    """normal / mild / moderate / severe: the first grade whose upper limit the LAVI does not exceed.

    Limits are inclusive upper bounds, so with the defaults 34.0 is normal and 34.1 mild (the guideline's
    integer ranges 35-41 etc. leave the gaps between integers to the next grade up).
    """
    check_grade_limits(upper_ml_m2)
    if math.isnan(lavi_ml_m2):
        raise ValueError("LAVI is NaN: no grade")
    for grade in GRADES[:-1]:
        if lavi_ml_m2 <= float(upper_ml_m2[grade]):
            return grade
    return GRADES[-1]


def patients_tsv_in_use(configured: str | None) -> str | None:
    """The patients table to read: the configured one (which must exist), or the default one when
    it is present; None when there is none (then no patient gets a LAVI). Reads it to fail early."""
    if not configured:
        return None
    if not Path(configured).is_file():
        if configured == DEFAULT_PATIENTS_TSV:
            return None
        raise InputError(
            f"{configured}: patients table not found (config clinical.patients_tsv; null switches LAVI off)"
        )
    read_patients_tsv(configured)
    return configured


def read_patients_tsv(path: str | os.PathLike) -> dict[str, Anthropometrics]:
    """Rows of patients.tsv by patient id; any malformed row is a one-line InputError naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: patients table not found (set clinical.patients_tsv to null to go without)")
    schema = yaml.safe_load(PATIENTS_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    numbered = [(n, line.rstrip("\r\n")) for n, line in enumerate(p.read_text().splitlines(), start=1)]
    numbered = [(n, line) for n, line in numbered if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise InputError(f"{p}: empty, expected a header line {chr(9).join(PATIENTS_COLUMNS)!r}")
    header = [h.strip() for h in numbered[0][1].split("\t")]
    if sorted(header) != sorted(PATIENTS_COLUMNS):
        raise InputError(
            f"{p}: line {numbered[0][0]}: header must be the tab-separated columns "
            f"{', '.join(PATIENTS_COLUMNS)}, got {header}"
        )
    rows: dict[str, Anthropometrics] = {}
    for line_number, line in numbered[1:]:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != len(header):
            raise InputError(
                f"{p}: line {line_number}: {len(fields)} tab-separated fields, "
                f"expected {len(header)} ({', '.join(header)})"
            )
        record: dict[str, object] = dict(zip(header, fields))
        for column in ("height_cm", "weight_kg"):
            try:
                value = float(record[column])  # type: ignore[arg-type]
            except ValueError:
                continue  # left a string, so the schema names the column and the bad value
            if math.isfinite(value):  # 'nan' parses as a float but passes every range check
                record[column] = value
        errors = sorted(validator.iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            column = ".".join(str(part) for part in errors[0].absolute_path) or "row"
            raise InputError(f"{p}: line {line_number}: {column}: {errors[0].message}")
        patient = str(record["patient"])
        if patient in rows:
            raise InputError(f"{p}: line {line_number}: patient {patient!r} appears twice")
        rows[patient] = Anthropometrics(
            patient, float(record["height_cm"]), float(record["weight_kg"]), str(record["sex"])
        )  # type: ignore[arg-type]
    return rows


def volume_index_table(
    volumes: pd.DataFrame, anthropometrics: dict[str, Anthropometrics], upper_ml_m2: dict[str, float]
) -> pd.DataFrame:
    """Per patient: predicted (and reference) LA volume, BSA, LAVI and grade; empty where patients.tsv has no row.

    `volumes` needs the columns patient, volume_pred_ml, volume_true_ml (per_patient.csv). A prediction whose
    qc_reason (when there is the column) says the mask is empty or cut off by the scan's edge gets no predicted
    LAVI and no grade, and no_grade_reason says why: its volume is not the atrium's.
    """
    import pandas as pd

    from laseg.qc import grade_withheld_reason

    check_grade_limits(upper_ml_m2)
    rows = []
    for record in volumes.sort_values("patient").itertuples(index=False):
        withheld = grade_withheld_reason(getattr(record, "qc_reason", ""))
        row: dict[str, object] = {
            "patient": record.patient,
            "volume_pred_ml": float(record.volume_pred_ml),
            "volume_true_ml": float(record.volume_true_ml),
            "height_cm": math.nan,
            "weight_kg": math.nan,
            "sex": "",
            "bsa_m2": math.nan,
            "lavi_pred_ml_m2": math.nan,
            "grade_pred": "",
            "no_grade_reason": withheld,
            "lavi_true_ml_m2": math.nan,
            "grade_true": "",
        }
        person = anthropometrics.get(str(record.patient))
        if person is not None:
            bsa = body_surface_area_m2(person.height_cm, person.weight_kg)
            row.update(height_cm=person.height_cm, weight_kg=person.weight_kg, sex=person.sex, bsa_m2=bsa)
            for which in ("true",) if withheld else ("pred", "true"):
                volume = float(getattr(record, f"volume_{which}_ml"))
                if not math.isnan(volume):
                    lavi = volume_index_ml_m2(volume, bsa)
                    row[f"lavi_{which}_ml_m2"] = lavi
                    row[f"grade_{which}"] = lavi_grade(lavi, upper_ml_m2)
        rows.append(row)
    return pd.DataFrame(rows)
