"""Configuration checks that name the offending key in one line, before anything runs."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


def _describe(schema: dict) -> str:
    """A schema alternative in words: "'auto'", "of type 'integer' (minimum 1)"."""
    if "const" in schema:
        return repr(schema["const"])
    bounds = ", ".join(
        f"{k} {schema[k]}" for k in ("minimum", "exclusiveMinimum", "maximum", "multipleOf") if k in schema
    )
    kind = f"of type {schema['type']!r}" if "type" in schema else "a valid value"
    return kind + (f" ({bounds})" if bounds else "")


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
        if error.validator == "anyOf":  # "auto" or a value: name both choices instead of "not valid under any"
            deeper = [e for e in error.context if e.validator not in ("const", "type")]
            if deeper:  # the right type, a wrong value: say which
                message = jsonschema.exceptions.best_match(deeper).message
            else:
                message = f"{error.instance!r} must be " + " or ".join(
                    _describe(option) for option in error.validator_value
                )
        problems.append(f"{where}: {message}")
    return problems
