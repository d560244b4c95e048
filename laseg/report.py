"""The run's HTML report: summary table, cohort figures, per-patient pictures, configuration and versions."""

from __future__ import annotations

import base64
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup

from laseg.clinical import GRADES, MRI_VERSUS_ECHO_NOTE
from laseg.io import atomic_path
from laseg.metrics import scored_rows
from laseg.plan import training_volume_range_ml
from laseg.qc import EDGE_CUT_FRACTION, LARGE_COMPONENT_FRACTION, VOLUME_RANGE_FACTOR
from laseg.templating import template_text

REPORTED_PACKAGES = (
    "laseg",
    "snakemake",
    "torch",
    "numpy",
    "scipy",
    "pandas",
    "SimpleITK",
    "scikit-image",
    "open3d",
    "matplotlib",
    "imageio",
    "imageio-ffmpeg",
)
GRADE_COLOURS = {"normal": "#2e7d32", "mild": "#b59a00", "moderate": "#e65100", "severe": "#c62828"}
REVIEW_COLOUR = "#c62828"  # a flagged case's badge; its whole row is tinted FLAGGED_ROW_BACKGROUND
FLAGGED_ROW_BACKGROUND = "#fde8e8"
# The size and shape columns of the patient table (the prediction's): la_shape.csv column, header, digits.
SHAPE_CELLS = (
    ("diameter_lr_pred_mm", "LR diameter (mm)", 1),
    ("diameter_ap_pred_mm", "AP diameter (mm)", 1),
    ("diameter_si_pred_mm", "SI diameter (mm)", 1),
    ("diameter_max_pred_mm", "max diameter (mm)", 1),
    ("surface_area_pred_cm2", "surface area (cm²)", 1),
    ("sphericity_pred", "sphericity", 2),
)
SHAPE_NAMES = {
    "volume": ("LA volume", "mL", 1),
    "diameter_lr": ("LR (medio-lateral) diameter", "mm", 1),
    "diameter_ap": ("AP diameter", "mm", 1),
    "diameter_si": ("SI diameter", "mm", 1),
    "diameter_max": ("maximal diameter", "mm", 1),
    "surface_area": ("surface area", "cm²", 1),
    "sphericity": ("sphericity", "", 3),
}


@dataclass(frozen=True)
class PatientMedia:
    patient: str
    role: str  # "test" (scored against its label), "train" (a given model was trained on it) or "unlabelled"
    montage: Path | None = None
    render: Path | None = None
    viewer_href: str | None = None  # relative to the report
    video_href: str | None = None
    poster_href: str | None = None  # the key frame, shown before the video plays


@dataclass
class ReportContent:
    per_patient: pd.DataFrame  # per_patient.csv
    volumes: pd.DataFrame  # la_volume_index.csv
    config: dict
    grade_limits_ml_m2: dict[str, float]
    patients: list[PatientMedia]
    figures: dict[str, Path] = field(default_factory=dict)  # caption -> PNG
    agreement: dict | None = None
    model: dict | None = None  # checkpoint facts (not weights)
    checkpoint_path: str = ""
    trained_in_this_run: bool = True
    cv_per_fold: pd.DataFrame | None = None
    shape: pd.DataFrame | None = None  # la_shape.csv
    shape_agreement: pd.DataFrame | None = None  # la_shape_agreement.csv
    generated: str = field(default_factory=lambda: _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for package in REPORTED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import cv2  # named as the checkpoint names it, so the two columns line up

    versions["opencv"] = cv2.__version__
    return versions


def _kept_epochs(best_epoch: object) -> str:
    """The kept epoch of each view's network ("axial 30, coronal 29"); format-1 checkpoints store one number."""
    if isinstance(best_epoch, dict):
        return ", ".join(f"{view} {epoch}" for view, epoch in best_epoch.items())
    return str(best_epoch)


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _number(value: object, digits: int) -> str | None:
    """A number as the page shows it; None where there is none (the page shows a dash)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _cell(kind: str, text: str | None, **more: str) -> dict:
    return {"kind": kind, "text": text, **more}


def _text(value: object) -> str:
    """A text cell of a table read back from CSV: an empty one comes back as NaN."""
    return value if isinstance(value, str) else ""


def _review(flag: float, score: float, reason: str) -> dict:
    """The QC flag (laseg.qc): "review" with its reasons where a check fired, "ok" where none did."""
    if flag is None or math.isnan(flag):
        return _cell("review", None)
    label, colour = ("review", REVIEW_COLOUR) if flag == 1 else ("ok", "#15803d")
    disagreement = "" if math.isnan(score) else f"views' networks disagree by {score:.3f} (1 - their mean Dice)"
    return _cell("review", label, colour=colour, title=disagreement, reason=reason)


def _grade(grade: object, withheld: str = "") -> dict:
    if withheld:
        return _cell("withheld", f"no grade: {withheld}")
    if not isinstance(grade, str) or not grade:
        return _cell("grade", None)
    return _cell("grade", grade, colour=GRADE_COLOURS.get(grade, "#555"))


def _mean_sd(values: pd.Series, digits: int, unit: str = "") -> str:
    finite = values.dropna()
    if finite.empty:
        return "–"
    sd = f" ± {finite.std(ddof=1):.{digits}f}" if len(finite) > 1 else ""
    return f"{finite.mean():.{digits}f}{sd}{unit}"


def summary_table(content: ReportContent) -> dict:
    """The per-patient table: {"header": [...], "rows": [[cell, ...], ...], "flagged": [bool per row], ...}, a cell
    {"kind", "text", ...}; a flagged row (qc_flag 1) is tinted red on the page."""
    volume_columns = ["patient", "bsa_m2", "lavi_pred_ml_m2", "grade_pred", "lavi_true_ml_m2", "grade_true"]
    volume_columns += [c for c in ("no_grade_reason",) if c in content.volumes]  # tables before 2026-12-08 lack it
    merged = content.per_patient.merge(content.volumes[volume_columns], on="patient", how="left")
    with_reference_lavi = merged["lavi_true_ml_m2"].notna().any()
    if content.shape is not None:
        merged = merged.merge(content.shape[["patient", *(c for c, _, _ in SHAPE_CELLS)]], on="patient", how="left")
    header = [
        "patient",
        "role",
        "review",
        "Dice",
        "IoU",
        "HD95 (mm)",
        "ASSD (mm)",
        "LA volume, predicted (mL)",
        "LA volume, reference (mL)",
        "BSA (m²)",
        "LAVI, predicted (mL/m²)",
        "grade, predicted",
    ]
    if with_reference_lavi:
        header += ["LAVI, reference (mL/m²)", "grade, reference"]
    if content.shape is not None:
        header += [name for _, name, _ in SHAPE_CELLS]
    rows, flagged = [], []
    for r in merged.sort_values("patient").itertuples(index=False):
        flag = getattr(r, "qc_flag", math.nan)
        numbers = [(r.dice, 3), (r.iou, 3), (r.hd95_mm, 2), (r.assd_mm, 2), (r.volume_pred_ml, 1)]
        numbers += [(r.volume_true_ml, 1), (r.bsa_m2, 2), (r.lavi_pred_ml_m2, 1)]
        cells = [
            _cell("link", str(r.patient)),
            _cell("text", str(r.role)),
            _review(flag, getattr(r, "qc_score", math.nan), _text(getattr(r, "qc_reason", ""))),
            *(_cell("number", _number(value, digits)) for value, digits in numbers),
            _grade(r.grade_pred, _text(getattr(r, "no_grade_reason", ""))),
        ]
        if with_reference_lavi:
            cells += [_cell("number", _number(r.lavi_true_ml_m2, 1)), _grade(r.grade_true)]
        if content.shape is not None:
            cells += [_cell("number", _number(getattr(r, column), digits)) for column, _, digits in SHAPE_CELLS]
        rows.append(cells)
        flagged.append(flag == 1)
    return {"header": header, "rows": rows, "flagged": flagged, "flagged_background": FLAGGED_ROW_BACKGROUND}


def key_numbers(content: ReportContent) -> list[tuple[str, str]]:
    """The summary's cards: (label, value)."""
    scored = scored_rows(content.per_patient).dropna(subset=["dice"])
    cards = [
        ("patients segmented", str(len(content.per_patient))),
        ("scored against a label", str(len(scored))),
    ]
    if len(scored):
        cards += [
            ("Dice, mean ± SD", _mean_sd(scored["dice"], 3)),
            ("HD95, mean ± SD", _mean_sd(scored["hd95_mm"], 1, " mm")),
            # Counted in the means above (Dice 0, HD95 the scan's diagonal), never left out.
            ("failed: empty prediction", str(int((scored["failed"] == 1).sum())) if "failed" in scored else "0"),
        ]
    flagged = content.per_patient["qc_flag"] == 1 if "qc_flag" in content.per_patient else None
    if flagged is not None:
        cards.append(("flagged for review (QC)", str(int(flagged.sum()))))
    if content.agreement and content.agreement.get("n"):
        a = content.agreement
        limits = "" if math.isnan(a["sd_ml"]) else f" (95% limits {a['loa_low_ml']:+.1f} to {a['loa_high_ml']:+.1f})"
        cards.append(("volume bias, predicted − reference", f"{a['bias_ml']:+.1f} mL{limits}"))
    with_lavi = content.volumes["lavi_pred_ml_m2"].notna().sum()
    cards.append(("patients with LAVI (patients.tsv)", str(int(with_lavi))))
    return cards


def qc_note(content: ReportContent) -> str:
    """What the review flag checks, with this run's thresholds and the model's training volume range."""
    review_above = content.config.get("qc", {}).get("review_above")
    training_range = training_volume_range_ml((content.model or {}).get("plan"))
    checks = [
        "an empty mask",
        f"a mask cut off by the scan's edge (on a face of the volume, at least {EDGE_CUT_FRACTION:.0%} of its "
        "widest cross-section parallel to that face)",
        f"a second component before post-processing at least {LARGE_COMPONENT_FRACTION:.0%} of the largest",
    ]
    unchecked = ""
    if training_range is None:
        unchecked = (
            " The LA volume is not checked: the model's plan records no training volume range (a model trained "
            "before 2026-12-08)."
        )
    else:
        smallest, largest = training_range
        checks.append(
            f"an LA volume outside {smallest / VOLUME_RANGE_FACTOR:.1f}-{largest * VOLUME_RANGE_FACTOR:.1f} mL (the "
            f"training atria's {smallest:.1f}-{largest:.1f} mL, /{VOLUME_RANGE_FACTOR:g} and x{VOLUME_RANGE_FACTOR:g})"
        )
    if review_above is not None:
        checks.append(f"views' networks disagreeing by more than {review_above:g} (qc.review_above)")
    return (
        f"A case is flagged for review (red row) on any of: {'; '.join(checks)}.{unchecked} An empty or edge-cut "
        "mask gets no LA volume index grade: its volume is not the atrium's."
    )


def shape_agreement_rows(content: ReportContent) -> list[dict[str, str | None]]:
    """Predicted against reference size and shape over the scored patients, one row per measure with n > 0:
    {"measure", "n", "bias", "limits"} as the page shows them (limits None with a single patient)."""
    if content.shape_agreement is None:
        return []
    rows = []
    for r in content.shape_agreement.itertuples(index=False):
        if not r.n > 0 or r.measure not in SHAPE_NAMES:
            continue
        name, unit, digits = SHAPE_NAMES[r.measure]
        rows.append(
            {
                "measure": f"{name} ({unit})" if unit else name,
                "n": str(int(r.n)),
                "bias": f"{r.bias:+.{digits}f}",
                "limits": None if math.isnan(r.sd) else f"{r.loa_low:+.{digits}f} to {r.loa_high:+.{digits}f}",
            }
        )
    return rows


def grade_limits_html(limits: dict[str, float]) -> str:
    """`normal ≤ 34, mild ≤ 41, moderate ≤ 48, severe > 48 mL/m²`: each grade up to its inclusive upper limit."""
    bounds = [f"{grade} ≤ {float(limits[grade]):g}" for grade in GRADES[:-1]]
    bounds.append(f"{GRADES[-1]} > {float(limits[GRADES[-2]]):g}")
    return ", ".join(bounds) + " mL/m²"


def patient_section(media: PatientMedia, row: pd.Series | None) -> dict:
    """One patient's heading facts and pictures (PNGs inlined as data URIs, videos and viewers linked)."""
    facts = []
    if row is not None:
        if not math.isnan(row["dice"]):
            facts.append(f"Dice {row['dice']:.3f}, HD95 {row['hd95_mm']:.1f} mm")
        facts.append(f"predicted LA volume {row['volume_pred_ml']:.1f} mL")
        if not math.isnan(row["volume_true_ml"]):
            facts.append(f"reference {row['volume_true_ml']:.1f} mL")
    flagged = row is not None and row.get("qc_flag") == 1
    return {
        "patient": media.patient,
        "role": media.role,
        "facts": ", ".join(facts),
        "qc_reason": (_text(row.get("qc_reason")) or "flagged") if flagged else None,
        "montage_uri": png_data_uri(media.montage) if media.montage is not None else None,
        "render_uri": png_data_uri(media.render) if media.render is not None else None,
        "viewer_href": media.viewer_href,
        "video_href": media.video_href,
        "poster_href": media.poster_href,
    }


def software_rows(content: ReportContent) -> list[tuple[str, str, str]]:
    """(package, version here, version the model was trained with)."""
    runtime = software_versions()
    trained = (content.model or {}).get("versions", {})
    return [(n, str(runtime.get(n, "–")), str(trained.get(n, "–"))) for n in dict.fromkeys([*runtime, *trained])]


def model_facts(content: ReportContent) -> dict | None:
    if not content.model:
        return None
    m = content.model
    return {
        "checkpoint_path": None if content.trained_in_this_run else content.checkpoint_path,
        "format": str(m.get("format")),
        "device": str(m.get("device", "?")),
        "precision": str(m.get("precision", "fp32")),
        "architecture": yaml.safe_dump(m.get("model_config", {}), default_flow_style=True, width=400).strip(),
        "train_patients": len(m.get("train_patients") or []),
        "kept_epochs": _kept_epochs(m.get("best_epoch")),
        "validation": ", ".join(m.get("validation_patients", [])) or "none (last epoch kept)",
    }


def plan_facts(content: ReportContent) -> dict | None:
    """The plan the model was trained with (each setting, where it came from and why) and how much of its
    training ran; None for checkpoints that predate plans."""
    m = content.model or {}
    plan, amount = m.get("plan"), m.get("training_amount")
    if not plan:
        return None
    rows = [
        {"setting": f"{section}.{key}", "value": json.dumps(entry["value"]), "source": entry["source"],
         "reason": entry["reason"]}
        for section, entries in plan["settings"].items()
        for key, entry in entries.items()
    ]  # fmt: skip
    done = None
    if amount:
        done = {
            "planned_epochs": amount["planned_epochs"],
            "iterations_per_epoch": amount["iterations_per_epoch"],
            "runs": ", ".join(f"{view} {n}" for view, n in amount["epochs_run"].items()),
            "minutes": f"{amount['minutes']:.1f}",
            "cut": bool(amount["cut_short_by_budget"]),
            "budget": m.get("train_settings", {}).get("budget_minutes", "?"),
        }
    return {
        "preset": str(plan.get("preset")),
        "n_cases": len(plan.get("fingerprint_cases", [])),
        "amount": done,
        "rows": rows,
    }


def report_html(content: ReportContent) -> str:
    per_patient = content.per_patient.set_index("patient")
    cv_table = None
    if content.cv_per_fold is not None and len(content.cv_per_fold):
        # pandas writes this table's markup; everything else on the page is the template's.
        cv_table = Markup(
            content.cv_per_fold.to_html(classes="data", index=False, float_format=lambda v: f"{v:.3f}", border=0)
        )
    data = content.config.get("data", {})
    source = "built-in synthetic cohort" if data.get("source") == "synthetic" else f"folder {data.get('path')}"
    return _report_template().render(
        style=Markup(template_text("report.css")),
        generated=content.generated,
        source=source,
        nav=["summary", "figures", "patients", "configuration", "software"],
        key_numbers=key_numbers(content),
        summary=summary_table(content),
        limits=grade_limits_html(content.grade_limits_ml_m2),
        with_shape=content.shape is not None,
        shape_agreement=shape_agreement_rows(content),
        echo_note=MRI_VERSUS_ECHO_NOTE,
        qc_note=qc_note(content),
        figures=[(caption, png_data_uri(path)) for caption, path in content.figures.items()],
        cv_table=cv_table,
        patients=[
            patient_section(m, per_patient.loc[m.patient] if m.patient in per_patient.index else None)
            for m in content.patients
        ],
        model=model_facts(content),
        plan=plan_facts(content),
        config_yaml=yaml.safe_dump(content.config, sort_keys=False, default_flow_style=None, width=100),
        versions=software_rows(content),
    )


def _report_template() -> jinja2.Template:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(template_text("report.html.j2"))


def write_report(content: ReportContent, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(report_html(content), encoding="utf-8")
