"""How the shipped model holds up when a scan differs from its training data the way hospital scans do.

    .venv/bin/python bench/robustness.py                       # models/la_unet.pt, about 12 min on 2 CPU cores
    .venv/bin/python bench/robustness.py --model OTHER.pt --tag TAG --variants reference oblique
    .venv/bin/python bench/robustness.py --variants slices --without-slice-interpolation --tag TAG   # ablation

Each held-out case of bench/train_shipped_model.py, with its anatomical header (as a scanner writes it), is
rewritten in ways real acquisitions differ, with the scan's physical content unchanged; the label goes through the
same resampling (linear, then >= 0.5), and Dice is taken on the rewritten grid after the default post-processing
(each view network's own, in brackets, in the canonical frame the workflow slices):

- `oblique <axis> <deg>`: the same anatomy on a grid rotated about one world axis (a double-oblique acquisition
  planned on the heart's axes; until 2026-12-07 the workflow only flipped and swapped a scan's axes, so the networks
  saw the heart turned by that angle);
- `slices <mm>`: thicker slices along the scan's slice axis (its third voxel axis), as in a faster acquisition;
- `isotropic <mm>`: resampled to another isotropic spacing;
- `intensity x<a> +<b>` and `int16`: another scanner's intensity scale and storage type;
- `crop to atrium +<mm>`: the field of view cut to the atrium's box with a margin (LA2018's cropping);
- `pad <mm>`: the field of view widened with zeros (a zero-filled border).

Writes bench/results/robustness-<date>[-tag].json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import train_shipped_model as shipped
from bench.orientation import ANATOMICAL_DIRECTION, SHARED_DATA, with_direction
from bench.result_files import cpu_name, write_result
from laseg.io import Geometry, read_volume, resample_onto
from laseg.masks import dice
from laseg.postprocess import PostprocessSettings, postprocess_mask
from laseg.predict import load_model, predict_stack
from laseg.slices import load_checked_case

HELD_OUT = dict(zip(shipped.DATASETS, shipped.HELD_OUT, strict=True))  # the shipped model's, per dataset

Variant = Callable[[sitk.Image, sitk.Image], tuple[sitk.Image, sitk.Image]]


def resampled(image: sitk.Image, label: sitk.Image, reference: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    """Image and label on `reference`'s grid, by the workflow's own resampling of oblique scans
    (laseg.io.resample_onto: trilinear, the image's minimum outside, the label by area fraction >= 0.5)."""
    source, target = Geometry.of(image), Geometry.of(reference)
    return tuple(  # type: ignore[return-value]
        target.apply_to(sitk.GetImageFromArray(resample_onto(sitk.GetArrayFromImage(x), source, target, mask)))
        for x, mask in ((image, False), (label, True))
    )


def grid(centre: np.ndarray, direction: np.ndarray, spacing: np.ndarray, extent_mm: np.ndarray) -> sitk.Image:
    """An empty image whose voxels (spacing, direction columns) cover `extent_mm` per axis around `centre`."""
    size = np.maximum(np.ceil(extent_mm / spacing).astype(int), 2)
    reference = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    reference.SetSpacing([float(s) for s in spacing])
    reference.SetDirection([float(d) for d in direction.ravel()])
    reference.SetOrigin([float(o) for o in centre - direction @ (spacing * (size - 1) / 2)])
    return reference


def geometry_of(image: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre (world mm), direction (columns = voxel axes), spacing and physical extent per voxel axis."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    size = np.array(image.GetSize())
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint([float(s - 1) / 2 for s in size]))
    return centre, direction, spacing, spacing * size


def oblique(axis: int, degrees: float) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        centre, direction, spacing, extent = geometry_of(image)
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        i, j = [a for a in range(3) if a != axis]
        rotation = np.eye(3)
        rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
        # The rotated grid keeps the spacing and covers the old field of view's extent (the corners fall outside).
        return resampled(image, label, grid(centre, rotation @ direction, spacing, extent))

    return rewrite


def slice_thickness(mm: float) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        centre, direction, spacing, extent = geometry_of(image)
        # A thick slice averages what it covers: smooth along the slice axis before sampling it coarsely.
        # (a Gaussian of FWHM = the slice thickness, along the slice axis only, sigma in mm)
        smooth = sitk.RecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), sigma=mm / 2.355, direction=2)
        smooth = sitk.Cast(smooth, image.GetPixelID())
        return resampled(smooth, label, grid(centre, direction, np.array([*spacing[:2], mm]), extent))

    return rewrite


def isotropic(mm: float) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        centre, direction, _, extent = geometry_of(image)
        return resampled(image, label, grid(centre, direction, np.full(3, mm), extent))

    return rewrite


def intensity(gain: float, offset: float, pixel_type: int = sitk.sitkFloat32) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        return sitk.Cast(sitk.Cast(image, sitk.sitkFloat32) * gain + offset, pixel_type), label

    return rewrite


def crop_to_atrium(margin_mm: float) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(label)
        x, y, z, sx, sy, sz = stats.GetBoundingBox(1)
        margin = [math.ceil(margin_mm / s) for s in image.GetSpacing()]
        low = [max(0, v - m) for v, m in zip((x, y, z), margin)]
        high = [min(n, v + s + m) for v, s, m, n in zip((x, y, z), (sx, sy, sz), margin, image.GetSize())]
        region = [slice(a, b) for a, b in zip(low, high)]
        return image[region[0], region[1], region[2]], label[region[0], region[1], region[2]]

    return rewrite


def pad(mm: float) -> Variant:
    def rewrite(image: sitk.Image, label: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
        voxels = [math.ceil(mm / s) for s in image.GetSpacing()]
        return sitk.ConstantPad(image, voxels, voxels, 0.0), sitk.ConstantPad(label, voxels, voxels, 0)

    return rewrite


VARIANTS: dict[str, Variant | None] = {
    "as a scanner writes it (reference)": None,
    "oblique about the left-right axis, 15 deg": oblique(0, 15),
    "oblique about the left-right axis, 30 deg": oblique(0, 30),
    "oblique about the head-foot axis, 30 deg": oblique(2, 30),
    "oblique about the front-back axis, 30 deg": oblique(1, 30),
    "slices 2.5 mm": slice_thickness(2.5),
    "slices 4 mm": slice_thickness(4.0),
    "isotropic 1.0 mm": isotropic(1.0),
    "isotropic 1.5 mm": isotropic(1.5),
    "intensity x7.3 +100": intensity(7.3, 100.0),
    "intensity x7.3 +100, int16": intensity(7.3, 100.0, sitk.sitkInt16),
    "crop to atrium +15 mm": crop_to_atrium(15.0),
    "pad 40 mm with zeros": pad(40.0),
}


def score(
    model: Path, work: Path, variants: list[str], slice_interpolation: bool = True
) -> dict[str, dict[str, dict[str, float]]]:
    """Dice (post-processed), each view network's Dice and seconds, per held-out case and variant named."""
    net, config, _ = load_model(model, "cpu")
    if not slice_interpolation:  # the ablation: thick slices fed to the networks as they are
        config = dataclasses.replace(config, view_slice_spacing_mm=None)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for dataset, patient in HELD_OUT.items():
        source = {kind: SHARED_DATA / dataset / kind / f"{patient}.nii.gz" for kind in ("imagesTr", "labelsTr")}
        anatomical = {kind: work / f"{patient}_{kind}.nii.gz" for kind in source}
        for kind, path in source.items():
            with_direction(path, anatomical[kind], ANATOMICAL_DIRECTION[dataset])
        image, label = (sitk.ReadImage(str(anatomical[k])) for k in ("imagesTr", "labelsTr"))
        scores[patient] = {}
        for name in variants:
            variant = VARIANTS[name]
            new_image, new_label = (image, label) if variant is None else variant(image, label)
            paths = work / "variant_image.nii.gz", work / "variant_label.nii.gz"
            sitk.WriteImage(new_image, str(paths[0]))
            sitk.WriteImage(new_label, str(paths[1]))
            started = time.perf_counter()
            stack = load_checked_case(patient, *paths)
            view_masks: dict[str, np.ndarray] = {}
            # As the workflow does: the probability on the rewritten scan's own grid, post-processed there.
            probability = predict_stack(net, config, stack, view_masks=view_masks)
            truth, geometry = read_volume(paths[1])
            mask = postprocess_mask(probability, geometry.spacing_zyx_mm, PostprocessSettings())
            scores[patient][name] = {
                "dice": round(dice(mask, truth), 4),
                # each view's network alone, in the canonical frame its masks come in
                **{f"dice_{view}": round(dice(m, stack.label), 4) for view, m in view_masks.items()},
                "seconds": round(time.perf_counter() - started, 1),
                "size": list(new_image.GetSize()),
                "spacing_mm": [round(s, 3) for s in new_image.GetSpacing()],
            }
            print(patient, name, scores[patient][name], flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "la_unet.pt")
    parser.add_argument("--tag", default="")
    parser.add_argument("--variants", nargs="+", default=[], help="only the variants whose names contain one of these")
    parser.add_argument(
        "--without-slice-interpolation",
        action="store_true",
        help="feed thick slices to the networks as they are (ModelConfig.slice_refinement off)",
    )
    args = parser.parse_args()
    variants = [name for name in VARIANTS if not args.variants or any(part in name for part in args.variants)]
    started = dt.datetime.now()
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        scores = score(args.model, Path(tmp), variants, not args.without_slice_interpolation)
    command = " ".join([".venv/bin/python", "bench/robustness.py", *sys.argv[1:]])
    patients = list(scores)
    lines = [
        f"Checkpoint {args.model.relative_to(REPO) if args.model.is_relative_to(REPO) else args.model} on its held-out "
        f"cases ({', '.join(f'{p} of {d}' for d, p in HELD_OUT.items())}, ../shared/data), each with its anatomical",
        "header (bench/orientation.py) and rewritten as below; Dice after the default post-processing on the",
        f"rewritten grid (per view network in brackets). {cpu_name()}, CPU inference, fp32, one test-time zoom.",
        f"Command: `{command}` (laseg at {commit})",
        "",
        "| variant | " + " | ".join(patients) + " |",
        "| --- | " + " | ".join("---" for _ in patients) + " |",
    ]
    for name in variants:
        cells = []
        for patient in patients:
            s = scores[patient][name]
            views = ", ".join(f"{k[5:]} {v:.3f}" for k, v in s.items() if k.startswith("dice_"))
            cells.append(f"{s['dice']:.4f} ({views})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    result = {
        "cpu": cpu_name(),
        "command": command,
        "commit": commit,
        "slice_interpolation": not args.without_slice_interpolation,
        "model": str(args.model),
        "scores": scores,
    }
    print(write_result("robustness", args.tag, started, result, "\n".join(lines)))


if __name__ == "__main__":
    main()
