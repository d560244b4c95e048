"""Our offline 3D viewer (laseg/viewer3d.py) beside plotly's Mesh3d page, on one surface pair of the workflow's
size: a synthetic case's LA label as the reference, the label grown by a voxel and shifted by two as the
prediction, both meshed (laseg.mesh.surface_mesh) and decimated to mesh.viewer_max_triangles (20000) each.

    .venv/bin/python bench/viewer_comparison.py

For each page: its size; whether it loads anything from the network as it opens (script src, link href,
img/iframe src, CSS url(), @import), whether its code fetches a literal network address (fetch, XMLHttpRequest,
import(), element.src) and every http(s) string in it, by host; and which viewing features it has, with the
lines of Python each one took here where it is not built in.
Pages go to bench/work/viewer-comparison/ (ignored by git); the tables to
bench/results/viewer-comparison-<date>.json and .md.

trimesh is not a dependency and is never imported here. Its three.js page (trimesh.viewer.scene_to_html) is
measured on the same surfaces when a Python that has it is named, e.g. a throwaway venv:

    python3 -m venv /tmp/trimeshvenv && /tmp/trimeshvenv/bin/pip install trimesh numpy
    .venv/bin/python bench/viewer_comparison.py --trimesh-python /tmp/trimeshvenv/bin/python --browser

--browser opens every page in the system's headless Chromium (/usr/bin/chromium through Playwright, as
tests/browser.py does), aborts and records every request that is not file:/data:/blob:, and counts the green
(prediction) and red (reference) pixels it draws; for plotly it also clicks the "posterior" view button.
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result
from laseg.colours import rgb8
from laseg.mesh import surface_mesh
from laseg.synthetic import synthesize_case
from laseg.viewer3d import (
    PREDICTION_RGB,
    REFERENCE_RGB,
    STANDARD_VIEWS,
    ViewedSurface,
    decimate,
    write_viewer_html,
)

KINDS = ("js", "html", "css")
VIEW_NAMES = ("anterior", "posterior", "left", "right", "superior", "inferior")


def surface_pair(seed: int, patient: int, max_triangles: int) -> list[ViewedSurface]:
    """Reference: the synthetic case's LA label; prediction: the label grown by one voxel, shifted two along x."""
    case = synthesize_case(seed, patient)
    reference = case.label.astype(bool)
    prediction = np.roll(ndimage.binary_dilation(reference), 2, axis=2)
    voxel_ml = float(np.prod(case.geometry.spacing_mm)) / 1000
    return [
        ViewedSurface(
            name,
            decimate(surface_mesh(mask.astype(np.uint8), case.geometry), max_triangles),
            rgb,
            mask.sum() * voxel_ml,
        )
        for name, mask, rgb in (("prediction", prediction, PREDICTION_RGB), ("reference", reference, REFERENCE_RGB))
    ]


# --- plotly: each feature that is not built in is one helper, so its lines can be counted -------------------


def plotly_lps_axes() -> dict:
    """Axis titles in world mm, LPS (the ticks are the data's own mm)."""
    return {
        "xaxis": {"title": {"text": "x: right → left (mm)"}},
        "yaxis": {"title": {"text": "y: anterior → posterior (mm)"}},
        "zaxis": {"title": {"text": "z: inferior → superior (mm)"}},
        "aspectmode": "data",
    }


def plotly_view_buttons() -> list[dict]:
    """The six standard views as camera presets: laseg.viewer3d.STANDARD_VIEWS' "towards the viewer" as the eye
    direction (at plotly's default distance 2) and its screen-up as up."""
    cameras = {name: (tuple(2 * c for c in towards), up) for name, (_, up, towards) in STANDARD_VIEWS.items()}
    xyz = lambda v: dict(zip("xyz", v))
    buttons = [
        {"label": name, "method": "relayout", "args": [{"scene.camera": {"eye": xyz(eye), "up": xyz(up)}}]}
        for name, (eye, up) in cameras.items()
    ]
    return [{"type": "buttons", "direction": "right", "x": 0, "y": 1.08, "xanchor": "left", "buttons": buttons}]


def plotly_opacity_slider(trace: int, start: float) -> list[dict]:
    """A slider that restyles one trace's opacity (plotly has no opacity control of its own)."""
    steps = [
        {"label": f"{v:.2f}", "method": "restyle", "args": [{"opacity": v}, [trace]]}
        for v in np.arange(0.1, 1.01, 0.05)
    ]
    active = int(np.argmin([abs(s["args"][0]["opacity"] - start) for s in steps]))
    return [{"active": active, "currentvalue": {"prefix": "reference opacity "}, "steps": steps, "len": 0.4}]


def write_plotly_html(surfaces: list[ViewedSurface], title: str, path: Path) -> None:
    import plotly.graph_objects as go

    traces = [
        go.Mesh3d(
            x=s.mesh.vertices_mm[:, 0].astype(np.float32),
            y=s.mesh.vertices_mm[:, 1].astype(np.float32),
            z=s.mesh.vertices_mm[:, 2].astype(np.float32),
            i=s.mesh.faces[:, 0].astype(np.uint16),
            j=s.mesh.faces[:, 1].astype(np.uint16),
            k=s.mesh.faces[:, 2].astype(np.uint16),
            color="rgb({},{},{})".format(*rgb8(s.rgb)),
            opacity=0.45 if s.name == "reference" else 1.0,
            name=f"{s.name} ({s.volume_ml:.1f} mL)",
            showlegend=True,  # Mesh3d hides its legend entry by default; the legend entry is the toggle
        )
        for s in surfaces
    ]
    reference = [n for n, s in enumerate(surfaces) if s.name == "reference"]
    figure = go.Figure(traces)
    figure.update_layout(
        title=title,
        scene=plotly_lps_axes(),
        updatemenus=plotly_view_buttons(),
        sliders=plotly_opacity_slider(reference[0], 0.45) if reference else [],
        scene_camera={"eye": {"x": 0, "y": -2, "z": 0}, "up": {"x": 0, "y": 0, "z": 1}},  # open anterior
    )
    figure.write_html(path, include_plotlyjs=True, full_html=True)


def trimesh_page(python: str, surfaces: list[ViewedSurface], path: Path) -> str:
    """trimesh.viewer.scene_to_html on the same surfaces, run by another interpreter; returns trimesh's version."""
    program = (
        "import sys, numpy as np, trimesh\n"
        "from trimesh.viewer import scene_to_html\n"
        "data, scene = np.load(sys.argv[1]), trimesh.Scene()\n"
        "for name in ('prediction', 'reference'):\n"
        "    mesh = trimesh.Trimesh(data[name + '_v'], data[name + '_f'], process=False)\n"
        "    mesh.visual.vertex_colors = data[name + '_rgba']  # face colours would need scipy\n"
        "    scene.add_geometry(mesh, geom_name=name)\n"
        "open(sys.argv[2], 'w').write(scene_to_html(scene))\n"
        "print(trimesh.__version__)\n"
    )
    arrays = {}
    for s in surfaces:
        alpha = 115 if s.name == "reference" else 255
        arrays |= {
            f"{s.name}_v": s.mesh.vertices_mm,
            f"{s.name}_f": s.mesh.faces,
            f"{s.name}_rgba": [*rgb8(s.rgb), alpha],
        }
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "surfaces.npz"
        np.savez(npz, **arrays)
        done = subprocess.run([python, "-c", program, str(npz), str(path)], check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{python}: trimesh page failed:\n{done.stderr}")
    return done.stdout.strip()


# --- measurements --------------------------------------------------------------------------------------------

URL = re.compile(r"""https?://[^\s"'`<>)\\]+""")
NET = r"""["'`]?(?:https?:)?//"""  # an absolute or protocol-relative network address
LOADS = {  # what a browser fetches by itself as the page loads
    "script/link/img/iframe tag": re.compile(
        r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*\b(?:src|href|data)\s*=\s*" + NET,
        re.IGNORECASE,
    ),
    "css url()/@import": re.compile(r"(?:url\(\s*|@import\s+)" + NET, re.IGNORECASE),
}
CODE_LOADS = {  # what script fetches from a literal address when that code runs
    "fetch/XHR/importScripts/import()": re.compile(
        r"(?:\b(?:fetch|importScripts|import)\(\s*|\.open\(\s*[\"'][A-Z]+[\"']\s*,\s*)" + NET
    ),
    "element.src = URL": re.compile(r"\.src\s*=\s*" + NET),
}
CLICKS = re.compile(r"(?:\bhref\s*=\s*|window\.open\(\s*)" + NET, re.IGNORECASE)  # links: nothing until clicked
CDN = re.compile(r"cdn|jsdelivr|unpkg|googleapis|cloudflare")


def network_references(page: str) -> dict:
    """What could make the page go online: loads of a network URL as it opens (must be none), fetches in code
    (plotly.js: its map and geo traces' tiles, styles, icons and topojson), links that open only when clicked,
    and every URL string, by host."""
    hosts = Counter(urlparse(url).netloc for url in URL.findall(page))
    return {
        "loads_on_open": {kind: len(pattern.findall(page)) for kind, pattern in LOADS.items()},
        "fetches_in_code": {kind: len(pattern.findall(page)) for kind, pattern in CODE_LOADS.items()},
        "click_only_links": len(CLICKS.findall(page)),
        "url_strings": sum(hosts.values()),
        "url_hosts": dict(hosts.most_common()),
        "cdn_hosts": sorted(h for h in hosts if CDN.search(h)),
    }


def offline_text(network: dict, requests: list[str] | None) -> str:
    """yes: nothing loads on open, no code fetches, no CDN named; 'yes*' when code that this figure does not
    run could fetch (confirmed by Chromium when --browser ran); NO when the page loads anything or Chromium saw
    a request."""
    if any(network["loads_on_open"].values()) or requests:
        return "NO"
    if any(network["fetches_in_code"].values()) or network["cdn_hosts"]:
        return "yes* (0 requests in Chromium)" if requests is not None else "yes* (unchecked: run --browser)"
    return "yes (0 requests in Chromium)" if requests is not None else "yes"


def lines_of(*functions) -> int:
    return sum(len(inspect.getsource(f).splitlines()) for f in functions)


def features_ours(page: str) -> dict:
    """Read from the page itself (laseg/templates/viewer3d.{html,js} inlined), not assumed."""
    has = lambda *needles: all(n in page for n in needles)
    views = [v for v in VIEW_NAMES if f'data-view="{v}"' in page]
    return {
        "rotate": has('addEventListener("pointermove"', "axisRotation"),
        "zoom": has('addEventListener("wheel"'),
        "pan": has("e.shiftKey || e.button === 2"),
        "reset": has('addEventListener("dblclick"'),
        "toggles": has('box.type = "checkbox"', '"show-" + s.name'),
        "opacity": "reference only, slider 0.1-1" if has('id="opacity"', 'type="range"') else False,
        "standard_views": views,
        "lps_axes": "L/P/S orientation triad; mm and LPS named in the help line; no mm ticks"
        if has('["L", [1, 0, 0]', '["P", [0, 1, 0]', '["S", [0, 0, 1]', "world coordinates in mm, LPS")
        else False,
        "volume_in_legend": has("volume_ml.toFixed(1)"),
        "extra_lines": 0,
    }


def features_plotly(page: str) -> dict:
    views = [v for v in VIEW_NAMES if f'"label":"{v}"' in page]
    return {
        "rotate": "built in (turntable / orbit in the mode bar)",
        "zoom": "built in (wheel, mode bar)",
        "pan": "built in (right-drag, mode bar)",
        "reset": "built in (mode bar: reset camera)",
        "toggles": "legend click; 1 line per trace (showlegend=True: Mesh3d hides its legend entry)",
        "opacity": f"fixed per trace; a slider is {lines_of(plotly_opacity_slider)} lines (layout.sliders, restyle)",
        "standard_views": views,
        "standard_views_lines": lines_of(plotly_view_buttons),
        "lps_axes": f"mm ticks, grid and box built in; LPS axis titles {lines_of(plotly_lps_axes)} lines",
        "hover": "built in: vertex x, y, z in mm",
        "extra_lines": lines_of(plotly_view_buttons, plotly_opacity_slider, plotly_lps_axes) + 1,
    }


TRIMESH_FEATURES = {
    # From its template (trimesh/resources/templates/viewer.zip: three.js r140 minified inline, TrackballControls,
    # no HTML controls). Adding any of these means shipping and maintaining a patched copy of that template.
    "rotate": "built in (TrackballControls)",
    "zoom": "built in",
    "pan": "built in",
    "toggles": "none (no UI; template edit)",
    "opacity": "none (material alpha only; template edit)",
    "standard_views": [],
    "lps_axes": "none (template edit)",
}


def check_in_browser(pages: dict[str, Path]) -> dict:
    """Open each page offline in headless Chromium: requests attempted, errors, green/red pixels drawn (its
    screenshot beside the page)."""
    import imageio.v2 as imageio
    from playwright.sync_api import sync_playwright

    ready = {
        "ours": "window.viewerState && window.viewerState.ready",
        "plotly": "document.querySelector('.js-plotly-plot') && document.querySelector('.js-plotly-plot')._fullLayout",
        "trimesh": "document.querySelector('canvas') !== null",
    }
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        for viewer, path in pages.items():
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            requests, errors = [], []

            def route(r, requests=requests):
                if r.request.url.split(":", 1)[0] in ("file", "data", "blob"):
                    return r.continue_()
                requests.append(r.request.url)
                return r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            start = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_function(ready[viewer], timeout=60_000, polling=200)
            page.wait_for_timeout(1500)  # let WebGL draw (plotly and trimesh draw asynchronously)
            row = {"ready_s": round(time.perf_counter() - start, 2), "requests": requests, "errors": errors}
            shot = path.with_suffix(".png")
            page.screenshot(path=shot)
            image = imageio.imread(shot)[:, :, :3].astype(int)
            r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
            row["green_fraction"] = round(float(((g > r + 40) & (g > b + 40)).mean()), 4)
            row["red_fraction"] = round(float(((r > g + 40) & (r > b + 40)).mean()), 4)
            if viewer == "plotly":
                page.get_by_text("posterior", exact=True).click()
                page.wait_for_timeout(500)
                row["camera_after_posterior_button"] = page.evaluate(
                    "document.querySelector('.js-plotly-plot')._fullLayout.scene.camera.eye"
                )
            page.close()
            results[viewer] = row
        browser.close()
    return results


def yes_no(value) -> str:
    return value if isinstance(value, str) else ("yes" if value else "no")


def markdown_table(result: dict) -> str:
    rows, browser = result["viewers"], result.get("browser", {})
    lines = [
        f"# Offline 3D viewer: ours beside plotly{' and trimesh' if 'trimesh' in rows else ''} ({result['date']})",
        "",
        f"Surfaces: {result['surfaces']}. Machine: {result['cpu']}. Offline: the page "
        "loads nothing from the network as it opens (script src, link href, img/iframe src, CSS url(), @import) and "
        "no code of it fetches a literal network address or names a CDN; yes* where code the figure never runs "
        "could (plotly.js: its map and geo traces' tiles, styles, icons and topojson). Lines: Python written here "
        "for a feature that is not built in.",
        "",
        "| viewer | file size (MB) | offline | rotate/zoom/pan | toggles | opacity | standard views | LPS / mm axes "
        "| notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        f = row["features"]
        views = f["standard_views"]
        views_text = f"{len(views)}/6" + (
            f" ({f['standard_views_lines']} lines)" if "standard_views_lines" in f else ""
        )
        rzp = "/".join(yes_no(f[k]) if isinstance(f[k], bool) else "built in" for k in ("rotate", "zoom", "pan"))
        offline = offline_text(row["network"], browser[name]["requests"] if name in browser else None)
        lines.append(
            f"| {row['label']} | {row['bytes'] / 1e6:.2f} | {offline} | {rzp} | {yes_no(f['toggles'])} "
            f"| {yes_no(f['opacity'])} | {views_text} | {yes_no(f['lps_axes'])} | {row['notes']} |"
        )
    if "trimesh" not in rows:
        lines += ["", "trimesh: not measured in this run (--trimesh-python names a Python that has it)."]
    if browser:
        lines += [
            "",
            "Opened in headless Chromium (SwiftShader WebGL), every non-file request aborted and recorded:",
            "",
        ]
        lines += ["| viewer | ready (s) | requests | errors | green px | red px |", "|---|---|---|---|---|---|"]
        for name, b in browser.items():
            lines.append(
                f"| {name} | {b['ready_s']} | {len(b['requests'])} | {len(b['errors'])} "
                f"| {b['green_fraction']:.3f} | {b['red_fraction']:.3f} |"
            )
        if eye := browser.get("plotly", {}).get("camera_after_posterior_button"):
            lines += ["", f"plotly's posterior button, clicked, moved the camera eye to {eye} (from y = -2)."]
    lines += ["", "## Verdict", "", verdict(result), "", "Command:", "", "```bash", result["command"], "```"]
    return "\n".join(lines)


def verdict(result: dict) -> str:
    """Which to keep and why, from this run's figures."""
    ours, plotly = result["viewers"]["ours"], result["viewers"]["plotly"]
    text = (
        f"Keep ours. Its page is {ours['bytes'] / 1e6:.2f} MB against plotly's {plotly['bytes'] / 1e6:.2f} MB "
        f"({plotly['bytes'] / ours['bytes']:.1f}x, one page per patient), {plotly['plotly_js_bytes'] / 1e6:.2f} MB "
        "of it the plotly.js bundle, inlined again into every page. Both are offline, but ours holds no URL at all "
        f"while plotly.js carries {plotly['network']['url_strings']} (CDNs "
        f"{', '.join(plotly['network']['cdn_hosts'])} among them) for traces a Mesh3d figure never draws, so an "
        "offline audit of plotly pages rests on that argument and on a browser check"
        + (f" ({len(result['browser']['plotly']['requests'])} requests here). " if "browser" in result else ". ")
        + "Ours already has every feature the issue names except mm axes: rotate, zoom, pan, double-click reset, a "
        "checkbox per surface with its volume, a reference opacity slider, six standard views and an L/P/S "
        "orientation triad (drawing, toggles, a view button and zoom are tested in headless Chromium by "
        "tests/test_viewer3d.py); plotly has rotate/zoom/pan and legend toggles built in but needed "
        f"{plotly['features']['extra_lines']} lines here for the view buttons, opacity slider and LPS axis titles, "
        f"and using it means a new declared dependency (plotly today: {result['plotly_dependency']}). "
        "What plotly has that ours "
        "lacks: mm tick marks and grid on the axes, vertex coordinates on hover, PNG download; ours shows "
        "orientation, not a mm scale."
    )
    if "trimesh" in result["viewers"]:
        trimesh = result["viewers"]["trimesh"]
        text += (
            f" trimesh's page ({trimesh['label']}) now inlines three.js and is offline ({trimesh['bytes'] / 1e6:.2f} "
            "MB) but has only trackball rotate/zoom/pan: no toggles, opacity control, standard views or axes "
            "without patching its minified template, so it is no candidate."
        )
    return text


def measure(label: str, path: Path, features: dict, notes: str, seconds: float) -> dict:
    page = path.read_text(encoding="utf-8")
    return {
        "label": label,
        "path": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "bytes": path.stat().st_size,
        "write_s": round(seconds, 2),
        "network": network_references(page),
        "features": features(page) if callable(features) else features,
        "notes": notes,
    }


def template_lines() -> int:
    return sum(len((REPO / "laseg" / "templates" / f"viewer3d.{kind}").read_text().splitlines()) for kind in KINDS)


def declared_or_pulled_in(package: str) -> str:
    """Whether pyproject.toml declares the package, or which installed distributions pull it into the venv."""
    import tomllib
    from importlib import metadata

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for ds in project.get("optional-dependencies", {}).values() for d in ds]
    if any(re.match(rf"{package}\b", d, re.IGNORECASE) for d in declared):
        return f"{package} is declared in pyproject.toml"

    def requirers(name: str) -> list[str]:
        return sorted(
            {
                d.metadata["Name"]
                for d in metadata.distributions()
                if any(re.match(rf"{name}\b", r, re.IGNORECASE) and "extra ==" not in r for r in d.requires or [])
            }
        )

    chain = [" / ".join(requirers(parent)) + f" -> {parent} -> {package}" for parent in requirers(package)]
    return f"not in pyproject.toml; in the venv only through {'; '.join(chain) or 'nothing (installed by hand)'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="synthetic dataset seed")
    parser.add_argument("--patient", type=int, default=0, help="synthetic patient index")
    parser.add_argument("--max-triangles", type=int, default=20000, help="per surface (mesh.viewer_max_triangles)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "bench" / "work" / "viewer-comparison")
    parser.add_argument("--trimesh-python", help="a Python with trimesh (never this venv): also measure its page")
    parser.add_argument("--browser", action="store_true", help="open the pages in headless Chromium, offline")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    import plotly

    plotly_dependency = declared_or_pulled_in("plotly")
    surfaces = surface_pair(args.seed, args.patient, args.max_triangles)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    title = f"syn_{args.patient:03d}: left atrium"
    pages, viewers = {}, {}

    start = time.perf_counter()
    pages["ours"] = args.out_dir / "ours.html"
    write_viewer_html(surfaces, title, "synthetic prediction vs reference", pages["ours"])
    viewers["ours"] = measure(
        "ours (laseg.viewer3d)",
        pages["ours"],
        features_ours,
        f"no library: {template_lines()} lines of JS/HTML/CSS in laseg/templates; volumes in the toggles; "
        "double-click resets",
        time.perf_counter() - start,
    )

    start = time.perf_counter()
    pages["plotly"] = args.out_dir / "plotly.html"
    write_plotly_html(surfaces, title, pages["plotly"])
    viewers["plotly"] = measure(
        f"plotly {plotly.__version__} Mesh3d",
        pages["plotly"],
        features_plotly,
        f"whole plotly.js inlined; mode bar adds PNG download, hover shows mm; {plotly_dependency}",
        time.perf_counter() - start,
    )
    viewers["plotly"]["plotly_js_bytes"] = len(plotly.offline.get_plotlyjs().encode("utf-8"))
    viewers["plotly"]["notes"] += (
        f"; plotly.js is {viewers['plotly']['plotly_js_bytes'] / 1e6:.2f} MB of the page and holds "
        f"{viewers['plotly']['network']['url_strings']} URL strings"
    )

    if args.trimesh_python:
        start = time.perf_counter()
        pages["trimesh"] = args.out_dir / "trimesh.html"
        version = trimesh_page(args.trimesh_python, surfaces, pages["trimesh"])
        viewers["trimesh"] = measure(
            f"trimesh {version} scene_to_html",
            pages["trimesh"],
            TRIMESH_FEATURES,
            "three.js r140 inlined, no CDN; no UI; the reference's vertex alpha (115) is drawn "
            "opaque; the camera is the scene's, not a standard view",
            time.perf_counter() - start,
        )

    result = {
        "date": f"{started:%Y-%m-%d}",
        "cpu": cpu_name(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "plotly_dependency": plotly_dependency,
        "surfaces": ", ".join(
            f"{s.name} {s.mesh.n_triangles} triangles, {len(s.mesh.vertices_mm)} vertices" for s in surfaces
        )
        + f" (synthetic seed {args.seed}, patient {args.patient})",
        "viewers": viewers,
    }
    if args.browser:
        result["browser"] = check_in_browser(pages)
    markdown = markdown_table(result)
    out = write_result("viewer-comparison", "", started, result, markdown)
    print(markdown)
    print(f"\nwrote {out}.json, {out}.md; pages in {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
