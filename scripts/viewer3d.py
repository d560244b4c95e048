"""Snakemake entry: one patient's interactive offline 3D viewer (HTML) and static render (PNG)."""

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.mesh import read_mesh_ply
from laseg.viewer3d import PREDICTION_RGB, REFERENCE_RGB, ViewedSurface, decimate, render_png, write_viewer_html


def viewed(name: str, ply_path: str, rgb: tuple[float, float, float], volume_ml: float) -> ViewedSurface:
    return ViewedSurface(name, decimate(read_mesh_ply(ply_path), snakemake.params.max_triangles), rgb, volume_ml)


with logged_step(snakemake.log[0]):
    patient = snakemake.wildcards.patient
    metrics = json.loads(Path(snakemake.input.metrics).read_text())
    surfaces = [viewed("prediction", snakemake.input.prediction, PREDICTION_RGB, metrics["volume_pred_ml"])]
    if snakemake.input.reference:
        surfaces.append(viewed("reference", snakemake.input.reference[0], REFERENCE_RGB, metrics["volume_true_ml"]))
    dice = metrics.get("dice")
    subtitle = (
        "no reference label"
        if dice is None or math.isnan(dice)
        else f"Dice {dice:.3f}, HD95 {metrics['hd95_mm']:.1f} mm"
    )
    write_viewer_html(surfaces, f"{patient}: left atrium", subtitle, snakemake.output.viewer)
    render_png(surfaces, f"{patient}: left-atrium surfaces ({subtitle})", snakemake.output.render)
    print(", ".join(f"{s.name}: {s.mesh.n_triangles} triangles" for s in surfaces), file=sys.stderr)
