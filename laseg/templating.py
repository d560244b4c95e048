"""Markup, style and script live as files in laseg/templates/, read here when a page is made."""

from __future__ import annotations

from importlib.resources import files


def template_text(name: str) -> str:
    """The text of laseg/templates/<name>."""
    return files("laseg").joinpath("templates", name).read_text(encoding="utf-8")
