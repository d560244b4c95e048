"""Snakemake entry: a DICOM series' predicted mask as a DICOM Segmentation referencing the series."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.dicom_seg import write_dicom_seg
from laseg.entry import logged_step
from laseg.io import read_volume

with logged_step(snakemake.log[0]):
    mask, _ = read_volume(snakemake.input.mask)
    write_dicom_seg(mask, list(snakemake.input.series), snakemake.output.seg)
    print(f"{snakemake.output.seg}: {int((mask != 0).any(axis=(1, 2)).sum())} frames", file=sys.stderr)
