"""The run's HTML report: summary table, cohort figures, per-patient pictures, configuration and versions."""

from __future__ import annotations

import base64
import datetime as _dt
import html
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


def _number(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return '<span class="na">–</span>'
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def _review(flag: float, score: float) -> str:
    """The QC flag: "review" where the views' networks disagree (qc.review_above), "ok" where not."""
    if flag is None or math.isnan(flag):
        return '<span class="na">–</span>'
    label, colour = ("review", "#b45309") if flag == 1 else ("ok", "#15803d")
    title = f"views' networks disagree by {score:.3f} (1 - their mean Dice)"
    return f'<span class="review" style="background:{colour}" title="{html.escape(title)}">{label}</span>'


def _grade(grade: object) -> str:
    if not isinstance(grade, str) or not grade:
        return '<span class="na">–</span>'
    return f'<span class="grade" style="background:{GRADE_COLOURS.get(grade, "#555")}">{html.escape(grade)}</span>'


def _mean_sd(values: pd.Series, digits: int, unit: str = "") -> str:
    finite = values.dropna()
    if finite.empty:
        return "–"
    sd = f" ± {finite.std(ddof=1):.{digits}f}" if len(finite) > 1 else ""
    return f"{finite.mean():.{digits}f}{sd}{unit}"


def summary_table_html(content: ReportContent) -> str:
    merged = content.per_patient.merge(
        content.volumes[["patient", "bsa_m2", "lavi_pred_ml_m2", "grade_pred", "lavi_true_ml_m2", "grade_true"]],
        on="patient",
        how="left",
    )
    with_reference_lavi = merged["lavi_true_ml_m2"].notna().any()
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
    rows = []
    for r in merged.sort_values("patient").itertuples(index=False):
        cells = [
            f'<a href="#patient-{html.escape(r.patient)}">{html.escape(r.patient)}</a>',
            html.escape(str(r.role)),
            _review(getattr(r, "qc_flag", math.nan), getattr(r, "qc_score", math.nan)),
            _number(r.dice, 3),
            _number(r.iou, 3),
            _number(r.hd95_mm, 2),
            _number(r.assd_mm, 2),
            _number(r.volume_pred_ml, 1),
            _number(r.volume_true_ml, 1),
            _number(r.bsa_m2, 2),
            _number(r.lavi_pred_ml_m2, 1),
            _grade(r.grade_pred),
        ]
        if with_reference_lavi:
            cells += [_number(r.lavi_true_ml_m2, 1), _grade(r.grade_true)]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return (
        f'<table class="data" id="summary-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def key_numbers_html(content: ReportContent) -> str:
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
        cards.append(("flagged for review: views disagree", str(int(flagged.sum()))))
    if content.agreement and content.agreement.get("n"):
        a = content.agreement
        limits = "" if math.isnan(a["sd_ml"]) else f" (95% limits {a['loa_low_ml']:+.1f} to {a['loa_high_ml']:+.1f})"
        cards.append(("volume bias, predicted − reference", f"{a['bias_ml']:+.1f} mL{limits}"))
    with_lavi = content.volumes["lavi_pred_ml_m2"].notna().sum()
    cards.append(("patients with LAVI (patients.tsv)", str(int(with_lavi))))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{html.escape(v)}</div><div class="label">{html.escape(k)}</div></div>'
            for k, v in cards
        )
        + "</div>"
    )


def grade_limits_html(limits: dict[str, float]) -> str:
    """`normal ≤ 34, mild ≤ 41, moderate ≤ 48, severe > 48 mL/m²`: each grade up to its inclusive upper limit."""
    bounds = [f"{grade} ≤ {float(limits[grade]):g}" for grade in GRADES[:-1]]
    bounds.append(f"{GRADES[-1]} > {float(limits[GRADES[-2]]):g}")
    return ", ".join(bounds) + " mL/m²"


def patient_section_html(media: PatientMedia, row: pd.Series | None) -> str:
    title = html.escape(media.patient)
    facts = []
    if row is not None:
        if not math.isnan(row["dice"]):
            facts.append(f"Dice {row['dice']:.3f}, HD95 {row['hd95_mm']:.1f} mm")
        facts.append(f"predicted LA volume {row['volume_pred_ml']:.1f} mL")
        if not math.isnan(row["volume_true_ml"]):
            facts.append(f"reference {row['volume_true_ml']:.1f} mL")
    parts = [
        f'<section class="patient" id="patient-{title}"><h3>{title} <small>({html.escape(media.role)}; {html.escape(", ".join(facts))})</small></h3><div class="media">'
    ]
    if media.montage is not None:
        parts.append(
            f'<figure class="wide"><img src="{png_data_uri(media.montage)}" alt="{title} montage"><figcaption>Axial slices through the atrium: prediction green, reference red.</figcaption></figure>'
        )
    if media.render is not None:
        viewer = ""
        if media.viewer_href:
            href = html.escape(media.viewer_href)
            viewer = (
                f' <a class="button" href="{href}" target="_blank" rel="noopener">open the interactive 3D viewer</a>'
            )
        parts.append(
            f'<figure><img src="{png_data_uri(media.render)}" alt="{title} 3D surfaces"><figcaption>LA surfaces in world mm (LPS), reference translucent.{viewer}</figcaption></figure>'
        )
    if media.video_href:
        href = html.escape(media.video_href)
        poster = f' poster="{html.escape(media.poster_href)}"' if media.poster_href else ""
        parts.append(
            f'<figure><video controls muted preload="metadata"{poster} src="{href}"></video><figcaption>Every axial slice with both contours (<a href="{href}">MP4</a>).</figcaption></figure>'
        )
    parts.append("</div></section>")
    return "".join(parts)


def versions_html(content: ReportContent) -> str:
    runtime = software_versions()
    trained = (content.model or {}).get("versions", {})
    names = list(dict.fromkeys([*runtime, *trained]))
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(str(runtime.get(n, '–')))}</td><td>{html.escape(str(trained.get(n, '–')))}</td></tr>"
        for n in names
    )
    return f'<table class="data" id="versions"><thead><tr><th>software</th><th>this report</th><th>training of the model</th></tr></thead><tbody>{rows}</tbody></table>'


def model_html(content: ReportContent) -> str:
    if not content.model:
        return ""
    m = content.model
    origin = (
        "trained in this run"
        if content.trained_in_this_run
        else f"given checkpoint <code>{html.escape(content.checkpoint_path)}</code>"
    )
    items = [
        f"<li>model: {origin}, checkpoint format {html.escape(str(m.get('format')))}, trained on {html.escape(str(m.get('device', '?')))} ({html.escape(str(m.get('precision', 'fp32')))})</li>",
        f"<li>architecture: <code>{html.escape(yaml.safe_dump(m.get('model_config', {}), default_flow_style=True, width=400).strip())}</code></li>",
    ]
    if m.get("train_patients"):
        items.append(
            f"<li>trained on {len(m['train_patients'])} patients, kept epoch {html.escape(_kept_epochs(m.get('best_epoch')))} chosen on {html.escape(', '.join(m.get('validation_patients', [])) or 'none (last epoch kept)')}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def plan_html(content: ReportContent) -> str:
    """The plan the model was trained with (each setting, where it came from and why) and how much of its
    training ran; empty for checkpoints that predate plans."""
    m = content.model or {}
    plan, amount = m.get("plan"), m.get("training_amount")
    if not plan:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(section)}.{html.escape(key)}</td><td><code>{html.escape(json.dumps(entry['value']))}</code></td>"
        f"<td>{html.escape(entry['source'])}</td><td>{html.escape(entry['reason'])}</td></tr>"
        for section, entries in plan["settings"].items()
        for key, entry in entries.items()
    )
    done = ""
    if amount:
        runs = ", ".join(f"{view} {n}" for view, n in amount["epochs_run"].items())
        verdict = (
            f'<b class="warn">cut short by the {m.get("train_settings", {}).get("budget_minutes", "?")} min budget</b> (this CPU is slower than the plan assumes; raise train.budget_minutes or use a GPU)'
            if amount["cut_short_by_budget"]
            else "completed as planned"
        )
        done = (
            f"<p id='training-amount'>Training: {amount['planned_epochs']} epochs x {amount['iterations_per_epoch']} iterations planned per network; "
            f"epochs run: {html.escape(runs)} in {amount['minutes']:.1f} min: {verdict}.</p>"
        )
    return (
        f"<h3 id='plan'>Plan <small>preset {html.escape(str(plan.get('preset')))}, from the fingerprint of "
        f"{len(plan.get('fingerprint_cases', []))} training cases</small></h3>{done}"
        f"<table class='data' id='plan-table'><thead><tr><th>setting</th><th>value</th><th>source</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def report_html(content: ReportContent) -> str:
    per_patient = content.per_patient.set_index("patient")
    figures = "".join(
        f'<figure><img src="{png_data_uri(path)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        for caption, path in content.figures.items()
    )
    patients = "".join(
        patient_section_html(m, per_patient.loc[m.patient] if m.patient in per_patient.index else None)
        for m in content.patients
    )
    cv = ""
    if content.cv_per_fold is not None and len(content.cv_per_fold):
        cv = "<h2 id='cv'>Cross-validation</h2>" + content.cv_per_fold.to_html(
            classes="data", index=False, float_format=lambda v: f"{v:.3f}", border=0
        )
    data = content.config.get("data", {})
    source = "built-in synthetic cohort" if data.get("source") == "synthetic" else f"folder {data.get('path')}"
    config_yaml = yaml.safe_dump(content.config, sort_keys=False, default_flow_style=None, width=100)
    nav = ["summary", "figures", "patients", "configuration", "software"]
    # The page is a jinja2 template with autoescape: text goes in escaped, the fragments built above as Markup.
    return _report_template().render(
        style=Markup(template_text("report.css")),
        generated=content.generated,
        source=source,
        nav=Markup("".join(f'<a href="#{n}">{n}</a>' for n in nav)),
        key_numbers=Markup(key_numbers_html(content)),
        summary_table=Markup(summary_table_html(content)),
        limits=grade_limits_html(content.grade_limits_ml_m2),
        echo_note=MRI_VERSUS_ECHO_NOTE,
        figures=Markup(figures or "<p>No cohort figures in this run (no labelled test patients and no training).</p>"),
        cv=Markup(cv),
        patients=Markup(patients),
        model=Markup(model_html(content) + plan_html(content)),
        config_yaml=config_yaml,
        versions=Markup(versions_html(content)),
    )


def _report_template() -> jinja2.Template:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(template_text("report.html.j2"))


def write_report(content: ReportContent, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(report_html(content), encoding="utf-8")
