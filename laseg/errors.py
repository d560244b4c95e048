"""The error every module raises for bad user input, in a module of its own so that any module can raise it
without importing the readers (laseg.io imports laseg.dicom, which must not import laseg.io back)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the file and the problem in one line."""
