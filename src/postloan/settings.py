"""One settings object: paths, MLflow URI, horizons, seeds.

Read from environment variables prefixed ``POSTLOAN_`` and optionally a YAML file.
Nothing happens at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from postloan.errors import ConfigError


def _find_root() -> Path:
    """The project root: POSTLOAN_ROOT, else the nearest folder with pyproject.toml, else cwd."""
    env = os.environ.get("POSTLOAN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "src" / "postloan").exists():
            return p
    return here


class Settings(BaseSettings):
    """postloan settings (env ``POSTLOAN_*`` overrides defaults; YAML overrides env)."""

    model_config = SettingsConfigDict(env_prefix="POSTLOAN_", extra="forbid")

    root: Path = Field(default_factory=_find_root)
    seed: int = 42
    n_customers: int = Field(20_000, ge=10)
    n_months: int = Field(36, ge=4)
    start_month: str = "2023-01"
    mlflow_tracking_uri: str | None = None
    online_store: str | None = None  # POSTLOAN_ONLINE_STORE: SQLAlchemy URL of the store

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.data_dir / "processed"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI, else POSTLOAN_MLFLOW_TRACKING_URI, else SQLite at the root."""
        return (os.environ.get("MLFLOW_TRACKING_URI") or self.mlflow_tracking_uri
                or f"sqlite:///{self.root / 'mlflow.db'}")

    @property
    def online_store_url(self) -> str:
        """POSTLOAN_ONLINE_STORE, else an embedded SQLite file next to the MLflow store."""
        return self.online_store or f"sqlite:///{self.root / 'online.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"


def get_settings(config_file: Path | None = None) -> Settings:
    """Build settings from the environment and an optional YAML file.

    Raises:
        ConfigError: the file is unreadable, not a mapping, or has wrong types/fields.
    """
    data: dict = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config file {config_file}: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file} must hold a mapping of settings")
        data = loaded or {}
    try:
        return Settings(**data)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ConfigError(f"invalid settings{' in ' + str(config_file) if config_file else ''}: "
                          f"{errs}") from e
