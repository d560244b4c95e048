"""Configuration checks that name the offending key in one line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


def config_problems(config: dict, schema_path: str | Path) -> list[str]:
    """One readable line per schema violation, e.g. `train.max_epochs: 'ten' is not of type 'integer'`."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed", "unknown key(s)")
        problems.append(f"{where}: {message}")
    return problems
