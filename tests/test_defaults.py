"""config/schema.yaml holds the defaults; the package's dataclasses may not drift from it (planned keys, "auto" in
the schema, are the plan's to set: the dataclasses hold what a call without a plan uses)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import REPO

from laseg.model import ModelConfig
from laseg.postprocess import PostprocessSettings
from laseg.train import TrainSettings

SCHEMA = yaml.safe_load((REPO / "config/schema.yaml").read_text())["properties"]


@pytest.mark.parametrize(
    ("section", "settings"), [("model", ModelConfig), ("train", TrainSettings), ("postprocess", PostprocessSettings)]
)
def test_dataclass_defaults_equal_the_schemas(section, settings):
    properties = SCHEMA[section]["properties"]
    compared = []
    for field in dataclasses.fields(settings):
        if field.name not in properties or "default" not in properties[field.name]:
            continue
        default = properties[field.name]["default"]
        if default == "auto":
            continue
        value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        assert value == default or (isinstance(value, tuple) and list(value) == default), (
            section,
            field.name,
            value,
            default,
        )
        compared.append(field.name)
    assert compared, f"no {section} default compared"
