"""Reading configuration YAML: one way for every shipped file and every user override.

Strategy, training, monitoring, data-quality and stress-scenario files are all a YAML
mapping validated by a pydantic model. Each problem is a
:class:`~postloan.errors.ConfigError` naming the file (``postloan:config/<name>`` for a
shipped one) and, for a validation error, every offending field by its dotted path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from postloan.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)


def shipped_text(name: str) -> str:
    """The text of a shipped file, e.g. ``config/strategy.yaml`` (inside the package)."""
    return resources.files("postloan").joinpath(name).read_text("utf-8")


def read_text(path: str | Path, what: str, hint: str = "") -> str:
    """A user file's text.

    Raises:
        ConfigError: ``cannot read <what> <path>: <reason><hint>``.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e}{hint}") from e


def read_mapping(text: str, what: str, src: str) -> dict:
    """Parse YAML `text` that must hold a mapping (an empty file is an empty mapping).

    Args:
        text: the YAML.
        what: what the file is, for messages (``strategy config``, ``scenario``).
        src: where it came from, for messages.

    Raises:
        ConfigError: not YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot read {what} {src}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {src} must hold a mapping")
    return data


def field_errors(e: ValidationError) -> str:
    """Every error of `e` as ``dotted.path: message``, joined by ``; ``."""
    return "; ".join(f"{'.'.join(map(str, x['loc'])) or '(top level)'}: {x['msg']}"
                     for x in e.errors())


def validate(model: type[_M], data: dict, what: str, src: str) -> _M:
    """``model(**data)``, a validation error turned into one ConfigError naming the fields."""
    try:
        return model(**data)
    except ValidationError as e:
        raise ConfigError(f"invalid {what} {src}: {field_errors(e)}") from e
