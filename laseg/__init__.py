"""laseg: left-atrium segmentation of 3D cardiac MRI, the logic behind the Snakemake workflow."""

__version__ = "0.1.0"
