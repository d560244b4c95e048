"""The offline 3D viewer: embedded geometry, no network, and what headless Chromium actually draws."""

from __future__ import annotations

import base64
import json
import re

import imageio.v2 as imageio
import numpy as np
import pytest
from browser import HeadlessChromium, require_chromium

from laseg.io import Geometry
from laseg.mesh import SurfaceMesh, enclosed_volume_mm3, surface_mesh
from laseg.viewer3d import (
    PREDICTION_RGB,
    REFERENCE_RGB,
    ViewedSurface,
    decimate,
    render_png,
    viewer_html,
    viewer_payload,
    write_viewer_html,
)

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def ball(centre_xyz, radius_vox, n=48) -> np.ndarray:
    z, y, x = np.indices((n, n, n))
    return (((x - centre_xyz[0]) ** 2 + (y - centre_xyz[1]) ** 2 + (z - centre_xyz[2]) ** 2) <= radius_vox**2).astype(
        np.uint8
    )


@pytest.fixture(scope="module")
def surfaces() -> list[ViewedSurface]:
    geometry = Geometry(
        size=(48, 48, 48), spacing_mm=(1.2, 1.2, 1.4), origin_mm=(-30.0, 20.0, 95.0), direction=IDENTITY
    )
    # Prediction left of the reference (world x, towards the patient's left), overlapping it in the middle.
    prediction = surface_mesh(ball((20, 24, 24), 12), geometry)
    reference = surface_mesh(ball((28, 24, 24), 12), geometry)
    return [
        ViewedSurface("prediction", decimate(prediction, 4000), PREDICTION_RGB, 10.1),
        ViewedSurface("reference", decimate(reference, 4000), REFERENCE_RGB, 10.3),
    ]


def test_decimation_keeps_the_shape_and_respects_the_budget(surfaces):
    geometry = Geometry(size=(48, 48, 48), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    full = surface_mesh(ball((24, 24, 24), 18), geometry)
    reduced = decimate(full, 2000)
    assert full.n_triangles > 2000 >= reduced.n_triangles > 1500
    assert enclosed_volume_mm3(reduced) == pytest.approx(enclosed_volume_mm3(full), rel=0.02)
    assert decimate(reduced, 5000) is reduced  # already small enough: untouched


def test_payload_decodes_back_to_the_meshes(surfaces):
    payload = viewer_payload(surfaces)
    for item, surface in zip(payload["surfaces"], surfaces):
        positions = np.frombuffer(base64.b64decode(item["positions"]), dtype="<f4").reshape(-1, 3)
        indices = np.frombuffer(base64.b64decode(item["indices"]), dtype="<u2").reshape(-1, 3)
        np.testing.assert_allclose(positions, surface.mesh.vertices_mm, atol=1e-4)
        np.testing.assert_array_equal(indices, surface.mesh.faces)
        assert item["triangles"] == surface.mesh.n_triangles


def test_too_many_vertices_for_webgl1_is_refused():
    mesh = SurfaceMesh(np.zeros((70_000, 3)), np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="decimate"):
        viewer_payload([ViewedSurface("prediction", mesh, PREDICTION_RGB, 1.0)])


def test_page_is_self_contained(surfaces):
    page = viewer_html(surfaces, "la_001 <LA>", "Dice 0.9")
    assert "la_001 &lt;LA&gt;" in page  # titles are escaped
    # Nothing is fetched: no external script, stylesheet, image or font.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    data = json.loads(
        re.search(r'<script id="surface-data" type="application/json">(.*?)</script>', page, re.DOTALL).group(1)
    )
    assert [s["name"] for s in data["surfaces"]] == ["prediction", "reference"]


def test_static_render_is_a_png_with_both_colours(surfaces, tmp_path):
    path = tmp_path / "render.png"
    render_png(surfaces, "la_001: surfaces", path)
    image = imageio.imread(path)[:, :, :3].astype(int)
    assert image.shape[0] > 300 and image.shape[1] > 600
    greenish = (image[:, :, 1] > image[:, :, 0] + 40) & (image[:, :, 1] > image[:, :, 2] + 40)
    reddish = (image[:, :, 0] > image[:, :, 1] + 60) & (image[:, :, 0] > image[:, :, 2] + 60)
    assert greenish.sum() > 2000 and reddish.sum() > 500


def colour_fractions(png_path) -> tuple[float, float]:
    image = imageio.imread(png_path)[:, :, :3].astype(int)
    green = (image[:, :, 1] > 80) & (image[:, :, 1] > image[:, :, 0] + 40) & (image[:, :, 1] > image[:, :, 2] + 40)
    red = (image[:, :, 0] > 80) & (image[:, :, 0] > image[:, :, 1] + 40) & (image[:, :, 0] > image[:, :, 2] + 40)
    return float(green.mean()), float(red.mean())


def left_right_centroids(png_path) -> tuple[float, float]:
    image = imageio.imread(png_path)[:, :, :3].astype(int)
    green = (image[:, :, 1] > image[:, :, 0] + 40) & (image[:, :, 1] > image[:, :, 2] + 40)
    red = (image[:, :, 0] > image[:, :, 1] + 40) & (image[:, :, 0] > image[:, :, 2] + 40)
    # Ignore the panel (top left) and the axis triad (bottom left): only the middle of the canvas.
    middle = np.s_[150:-150, 400:-100]
    return float(np.argwhere(green[middle])[:, 1].mean()), float(np.argwhere(red[middle])[:, 1].mean())


def test_viewer_opens_in_headless_chromium_and_draws_both_surfaces(surfaces, tmp_path):
    require_chromium()
    page = tmp_path / "la_001.html"
    write_viewer_html(surfaces, "la_001: left atrium", "Dice 0.9", page)
    with HeadlessChromium(width=1200, height=800) as browser:
        browser.open(page)
        browser.wait_until("window.viewerState && window.viewerState.ready")
        state = browser.evaluate("window.viewerState")
        assert state["surfacesDrawn"] == ["prediction", "reference"]
        assert state["triangles"] == sum(s.mesh.n_triangles for s in surfaces)
        assert "triangles drawn" in browser.evaluate("document.getElementById('status').textContent")
        both = browser.screenshot(tmp_path / "both.png")
        green, red = colour_fractions(both)
        assert green > 0.02 and red > 0.005, (green, red)
        # Anterior view: the patient's left (world +x, the reference here) on the viewer's right.
        green_x, red_x = left_right_centroids(both)
        assert red_x > green_x + 20

        # Toggle the reference off: its red goes, the prediction stays.
        browser.evaluate("document.getElementById('show-reference').click()")
        assert browser.evaluate("window.viewerState.surfacesDrawn") == ["prediction"]
        green_only, red_only = colour_fractions(browser.screenshot(tmp_path / "prediction.png"))
        assert red_only < 0.001 < green_only

        # Posterior view mirrors left and right.
        browser.evaluate("document.getElementById('show-reference').click()")
        browser.evaluate("document.querySelector('[data-view=posterior]').click()")
        green_x, red_x = left_right_centroids(browser.screenshot(tmp_path / "posterior.png"))
        assert green_x > red_x + 20

        # Zoom in with the wheel: the atrium fills more of the canvas.
        browser.page.mouse.move(700, 400)
        browser.page.mouse.wheel(0, -600)
        zoomed_green, zoomed_red = colour_fractions(browser.screenshot(tmp_path / "zoomed.png"))
        assert zoomed_green + zoomed_red > 1.5 * (green + red)
        assert browser.console_errors() == []


def test_viewer_of_an_empty_segmentation_says_so_without_errors(tmp_path):
    require_chromium()
    empty = ViewedSurface(
        "prediction", SurfaceMesh(np.empty((0, 3)), np.empty((0, 3), dtype=np.int64)), PREDICTION_RGB, 0.0
    )
    page = tmp_path / "empty.html"
    write_viewer_html([empty], "la_009: left atrium", "no reference label", page)
    with HeadlessChromium(width=800, height=600) as browser:
        browser.open(page)
        browser.wait_until("window.viewerState && window.viewerState.ready")
        assert "empty segmentation" in browser.evaluate("document.getElementById('status').textContent")
        assert browser.console_errors() == []
