"""The HTML report: its tables and notes from known inputs, and the page as headless Chromium shows it."""

from __future__ import annotations

import math
import shutil

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch
from browser import HeadlessChromium, require_chromium

from laseg.checkpoint import checkpoint_facts
from laseg.clinical import ASE_2015_UPPER_ML_M2, Anthropometrics, volume_index_table
from laseg.io import Geometry, InputError
from laseg.mesh import surface_mesh
from laseg.montage import write_montage
from laseg.plots import plot_bland_altman, plot_dice_distribution, plot_volume_scatter
from laseg.report import PatientMedia, ReportContent, grade_limits_html, report_html, write_report
from laseg.viewer3d import PREDICTION_RGB, REFERENCE_RGB, ViewedSurface, render_png, write_viewer_html
from laseg.visualize import overlay_frames, write_keyframe, write_overlay_video

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
CONFIG = {
    "data": {"source": "synthetic", "path": None},
    "clinical": {"lavi_upper_limits_ml_m2": dict(ASE_2015_UPPER_ML_M2)},
}


def per_patient_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient": ["la_001", "la_002", "la_101"],
            "role": ["test", "test", "unlabelled"],
            "dice": [0.912, 0.874, math.nan],
            "iou": [0.838, 0.776, math.nan],
            "hd95_mm": [3.2, 5.9, math.nan],
            "assd_mm": [0.9, 1.4, math.nan],
            "volume_pred_ml": [70.0, 95.0, 120.0],
            "volume_true_ml": [66.0, 101.0, math.nan],
            "failed": [0, 0, math.nan],
            "qc_score": [0.02, 0.21, 0.05],
            "qc_flag": [0.0, 1.0, 0.0],
            "qc_reason": [math.nan, "views' networks disagree by 0.210 (above 0.1)", math.nan],  # "" reads back NaN
        }
    )


def volumes_table() -> pd.DataFrame:
    people = {"la_001": Anthropometrics("la_001", 180, 80, "M"), "la_101": Anthropometrics("la_101", 160, 90, "F")}
    return volume_index_table(per_patient_table(), people, ASE_2015_UPPER_ML_M2)


def content(**changes) -> ReportContent:
    base = ReportContent(
        per_patient=per_patient_table(),
        volumes=volumes_table(),
        config=CONFIG,
        grade_limits_ml_m2=dict(ASE_2015_UPPER_ML_M2),
        patients=[PatientMedia("la_001", "test"), PatientMedia("la_002", "test"), PatientMedia("la_101", "unlabelled")],
        agreement={"n": 2, "bias_ml": -1.0, "sd_ml": 7.07, "loa_low_ml": -14.9, "loa_high_ml": 12.9},
        model={
            "format": 1,
            "model_config": {"depth": 4},
            "versions": {"torch": "2.13.0+cpu", "python": "3.11.7"},
            "train_patients": ["a", "b"],
            "best_epoch": 7,
            "validation_patients": ["b"],
        },
        generated="2026-01-01 12:00 UTC",
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_grade_limits_text():
    assert grade_limits_html(ASE_2015_UPPER_ML_M2) == "normal ≤ 34, mild ≤ 41, moderate ≤ 48, severe > 48 mL/m²"


def test_summary_table_has_every_patient_with_lavi_where_known():
    page = report_html(content())
    table = page.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    assert len(rows) == 3
    first, second, unlabelled = rows
    # la_001: BSA 2.0, 70 mL -> LAVI 35.0 (mild); reference 66 mL -> 33.0 (normal).
    assert (
        "0.912" in first
        and "3.20" in first
        and ">2.00<" in first
        and ">35.0<" in first
        and ">mild<" in first
        and ">33.0<" in first
        and ">normal<" in first
    )
    assert second.count('class="na"') == 5  # no patients.tsv row: BSA, LAVIs and grades empty
    # la_101: unlabelled, BSA 2.0, 120 mL -> 60.0, severe; no Dice.
    assert ">60.0<" in unlabelled and ">severe<" in unlabelled and unlabelled.count('class="na"') >= 4
    assert "MRI volumes run larger than echo" in page
    assert "normal ≤ 34" in page
    assert "-1.0 mL (95% limits -14.9 to +12.9)" in page
    assert "torch" in page and "2.13.0+cpu" in page


def test_failed_cases_are_counted_on_the_page():
    assert '<div class="value">0</div><div class="label">failed: empty prediction' in report_html(content())
    table = per_patient_table()
    table.loc[1, ["dice", "hd95_mm", "failed"]] = [0.0, 180.0, 1]
    assert '<div class="value">1</div><div class="label">failed: empty prediction' in report_html(
        content(per_patient=table)
    )


def summary_rows(page: str) -> list[str]:
    table = page.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    return table.split("<tbody>", 1)[1].split("</tr>")[:-1]


def test_cases_whose_views_disagree_are_flagged_for_review():
    page = report_html(content())
    first, second, unlabelled = summary_rows(page)
    assert ">ok<" in first and ">review<" in second and "disagree by 0.210" in second and ">ok<" in unlabelled
    assert ">views&#39; networks disagree by 0.210 (above 0.1)<" in second  # the reason, shown, not only a tooltip
    assert '<tr class="flagged"' in second and "flagged" not in first and "flagged" not in unlabelled
    assert '<div class="value">1</div><div class="label">flagged for review (QC)' in page
    assert "flagged for review: views&#39; networks disagree by 0.210" in page.split('id="patient-la_002"', 1)[1]


def test_an_empty_mask_is_flagged_red_with_its_reason_and_gets_no_grade():
    per_patient = per_patient_table()
    per_patient.loc[2, ["volume_pred_ml", "qc_flag", "qc_reason"]] = [0.0, 1.0, "empty mask: no atrium found"]
    people = {"la_001": Anthropometrics("la_001", 180, 80, "M"), "la_101": Anthropometrics("la_101", 160, 90, "F")}
    volumes = volume_index_table(per_patient, people, ASE_2015_UPPER_ML_M2)
    page = report_html(content(per_patient=per_patient, volumes=volumes))
    first, _, empty = summary_rows(page)
    assert '<tr class="flagged"' in empty and ">empty mask: no atrium found<" in empty
    assert ">no grade: empty mask: no atrium found<" in empty and ">normal<" not in empty
    assert ">2.00<" in empty  # BSA known: only the index and its grade are withheld
    assert ">mild<" in first and "no grade" not in first
    assert '<div class="value">2</div><div class="label">flagged for review (QC)' in page


def test_the_qc_note_states_the_checks_and_the_training_volume_range_or_that_it_is_unknown():
    unchecked = "The LA volume is not checked: the model&#39;s plan records no training volume range"
    assert unchecked in report_html(content())
    volumes = {"training_la_volume_ml": {"min": 40.25, "max": 150.0, "n_cases": 12}}
    model = dict(content().model, plan={"preset": "default", "fingerprint_cases": [], "settings": {}, **volumes})
    note = report_html(content(model=model)).split('id="qc-note"', 1)[1].split("</p>", 1)[0]
    assert "an LA volume outside 20.1-300.0 mL (the training atria&#39;s 40.2-150.0 mL, /2 and x2)" in note
    assert "at least 10% of its widest cross-section" in note and "at least 10% of the largest" in note


def shape_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """la_shape.csv and la_shape_agreement.csv of the three patients, as the la_shape rule writes them."""
    shape = pd.DataFrame(
        {
            "patient": ["la_001", "la_002", "la_101"],
            "role": ["test", "test", "unlabelled"],
            "diameter_lr_pred_mm": [41.25, 50.0, 55.0],
            "diameter_ap_pred_mm": [33.5, 40.0, 42.0],
            "diameter_si_pred_mm": [45.0, 47.0, 52.0],
            "diameter_max_pred_mm": [61.0, 66.0, 70.0],
            "surface_area_pred_cm2": [98.04, 120.0, 135.0],
            "sphericity_pred": [0.591, 0.63, math.nan],
        }
    )
    agreement = pd.DataFrame(
        {
            "measure": ["volume", "diameter_max", "sphericity", "surface_area"],
            "unit": ["ml", "mm", "", "cm2"],
            "n": [2, 2, 2, 1],
            "bias": [-1.0, 1.5, -0.0123, 4.0],
            "sd": [7.07, 2.0, 0.01, math.nan],
            "loa_low": [-14.9, -2.42, -0.0319, math.nan],
            "loa_high": [12.9, 5.42, 0.0073, math.nan],
        }
    )
    return shape, agreement


def test_size_and_shape_in_the_patient_table_with_their_agreement():
    shape, agreement = shape_tables()
    page = report_html(content(shape=shape, shape_agreement=agreement))
    table = page.split('id="summary-table"', 1)[1].split("</table>", 1)[0]
    assert "max diameter (mm)" in table and "sphericity" in table and "surface area (cm²)" in table
    first, _, unlabelled = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    assert ">41.2<" in first and ">33.5<" in first and ">61.0<" in first and ">98.0<" in first and ">0.59<" in first
    assert unlabelled.rstrip().endswith('<span class="na">–</span></td>')  # no sphericity: a dash
    rows = page.split('id="shape-agreement"', 1)[1].split("</table>", 1)[0]
    assert "maximal diameter (mm)</td><td>2</td><td>+1.5</td><td>-2.4 to +5.4" in rows
    assert "sphericity</td><td>2</td><td>-0.012</td><td>-0.032 to +0.007" in rows
    assert 'surface area (cm²)</td><td>1</td><td>+4.0</td><td><span class="na">' in rows  # one patient: no limits
    assert "V / (π/6 · D<sub>max</sub>³)" in page
    plain = report_html(content())  # runs without the shape tables leave the page as it was
    assert 'id="shape-agreement"' not in plain and "max diameter" not in plain


def test_checkpoint_facts_leave_out_the_weights_and_refuse_garbage(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format": 1, "state_dict": {"w": torch.zeros(3)}, "versions": {"torch": "x"}}, path)
    assert checkpoint_facts(path) == {"format": 1, "versions": {"torch": "x"}}
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        checkpoint_facts(tmp_path / "bad.pt")


@pytest.fixture(scope="module")
def report_on_disk(tmp_path_factory):
    """A report with every kind of content, written as the workflow lays it out under results/."""
    results = tmp_path_factory.mktemp("results")
    geometry = Geometry(size=(40, 40, 24), spacing_mm=(1.25, 1.25, 1.5), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    z, y, x = np.indices((24, 40, 40))
    image = (400 + 100 * np.random.default_rng(0).normal(size=(24, 40, 40))).astype(np.int16)
    truth = (((x - 20) ** 2 + (y - 20) ** 2 + ((z - 12) * 1.2) ** 2) < 80).astype(np.uint8)
    pred = (((x - 21) ** 2 + (y - 20) ** 2 + ((z - 12) * 1.2) ** 2) < 75).astype(np.uint8)
    image[truth > 0] += 800
    for name in ("la_001", "la_101"):
        labelled = name != "la_101"
        write_montage(image, pred, truth if labelled else None, geometry, name, results / f"montages/{name}.png", 8)
        frames = overlay_frames(image, pred, truth if labelled else None, geometry, max_size_px=160, patient=name)
        write_overlay_video(frames, results / f"videos/{name}.mp4", fps=10)
        write_keyframe(frames, pred, truth if labelled else None, geometry, results / f"overlays/{name}.png")
        surfaces = [ViewedSurface("prediction", surface_mesh(pred, geometry), PREDICTION_RGB, 1.0)]
        if labelled:
            surfaces.append(ViewedSurface("reference", surface_mesh(truth, geometry), REFERENCE_RGB, 1.1))
        render_png(surfaces, f"{name}: surfaces", results / f"renders/{name}.png")
        write_viewer_html(surfaces, f"{name}: left atrium", "test", results / f"viewers/{name}.html")
    for pattern in ("montages/{}.png", "videos/{}.mp4", "overlays/{}.png", "renders/{}.png", "viewers/{}.html"):
        shutil.copy(results / pattern.format("la_001"), results / pattern.format("la_002"))  # same pictures, less time
    scored = per_patient_table().dropna(subset=["dice"])
    plot_dice_distribution(per_patient_table(), results / "plots/dice_distribution.png")
    agreement = plot_bland_altman(scored, results / "plots/bland_altman.png")
    plot_volume_scatter(scored, results / "plots/volume_scatter.png")
    patients = [
        PatientMedia(
            name,
            "unlabelled" if name == "la_101" else "test",
            results / f"montages/{name}.png",
            results / f"renders/{name}.png",
            f"viewers/{name}.html",
            f"videos/{name}.mp4",
            f"overlays/{name}.png",
        )
        for name in ("la_001", "la_002", "la_101")
    ]
    figures = {
        "Dice and HD95": results / "plots/dice_distribution.png",
        "Bland-Altman": results / "plots/bland_altman.png",
        "Predicted vs reference": results / "plots/volume_scatter.png",
    }
    write_report(content(patients=patients, figures=figures, agreement=agreement), results / "report.html")
    return results / "report.html"


def test_report_links_only_to_files_beside_it(report_on_disk):
    page = report_on_disk.read_text()
    assert "http://" not in page and "https://" not in page
    for href in ("viewers/la_001.html", "videos/la_002.mp4", "overlays/la_101.png"):
        assert f'"{href}"' in page and (report_on_disk.parent / href).is_file()


def test_report_opens_in_headless_chromium_and_shows_its_content(report_on_disk, tmp_path):
    require_chromium()
    with HeadlessChromium(width=1400, height=1000) as browser:
        browser.open(report_on_disk)
        # Every picture decoded, every video's metadata read (H.264 plays in the browser).
        browser.wait_until("[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout_s=30)
        images = browser.evaluate("[...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
        assert len(images) == 3 + 3 * 2 and all(complete and width > 100 for _, complete, width in images), images
        videos = browser.evaluate("[...document.querySelectorAll('video')].map(v => [v.videoWidth, v.duration])")
        assert len(videos) == 3 and all(
            width > 0 and duration == pytest.approx(2.4, abs=0.15) for width, duration in videos
        )
        assert browser.evaluate("document.querySelectorAll('#summary-table tbody tr').length") == 3
        assert browser.evaluate("[...document.querySelectorAll('.grade')].map(g => g.textContent)") == [
            "mild",
            "normal",
            "severe",
        ]
        text = browser.evaluate("document.body.innerText")
        for expected in (
            "Left-atrium segmentation report",
            "MRI volumes run larger than echo",
            "la_101",
            "Configuration",
            "Software",
        ):
            assert expected in text
        # Nothing wider than the window: no table or figure cut off at the right edge.
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot = imageio.imread(browser.screenshot(tmp_path / "report.png"))[:, :, :3]
        assert shot.std() > 20  # a page with content, not a blank
        header_blue = np.all(np.abs(shot[20:60, 20:200].astype(int) - [0x16, 0x32, 0x4F]) < 10, axis=2).mean()
        assert header_blue > 0.5
        assert browser.console_errors() == []
