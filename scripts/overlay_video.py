"""Snakemake entry: overlay video (truth red, prediction green) and a key frame through the atrium."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import read_volume
from laseg.visualize import overlay_frames, write_keyframe, write_overlay_video

with logged_step(snakemake.log[0]):
    image, geometry = read_volume(snakemake.input.image)
    pred, _ = read_volume(snakemake.input.mask)
    truth = read_volume(snakemake.input.label[0])[0] if snakemake.input.label else None
    frames = overlay_frames(
        image, pred, truth, geometry, max_size_px=snakemake.params.max_size_px, patient=snakemake.wildcards.patient
    )
    write_overlay_video(frames, snakemake.output.video, fps=snakemake.params.fps)
    write_keyframe(frames, pred, truth, geometry, snakemake.output.keyframe)
