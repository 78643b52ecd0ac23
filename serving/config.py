"""The service's settings, read from the environment once at start-up.

Secrets (API tokens) come from the environment only, never from a file in the repo.
Every problem is a :class:`postloan.errors.ConfigError` naming the variable, so the
service refuses to start with one clear sentence instead of serving half-configured.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from postloan.errors import ConfigError
from serving import schemas

TOKENS_ENV = "POSTLOAN_API_TOKENS"
INSECURE_ENV = "POSTLOAN_INSECURE_LOCAL"
MODEL_DIR_ENV = "POSTLOAN_MODEL_DIR"
ALIAS_ENV = "POSTLOAN_MODEL_ALIAS"
STRATEGY_ENV = "POSTLOAN_STRATEGY_CONFIG"
AUDIT_ENV = "POSTLOAN_AUDIT_LOG"
STORE_ENV = "POSTLOAN_ONLINE_STORE"
MAX_AGE_ENV = "POSTLOAN_SNAPSHOT_MAX_AGE_DAYS"
DEFAULT_MAX_AGE_DAYS = 45  # monthly materialisation plus two weeks of slack
MIN_TOKEN_LENGTH = 16
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def token_digest(token: str) -> bytes:
    """SHA-256 of a token: what the service keeps and compares (fixed length, no secret)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class ServingConfig:
    """Settings of one service process.

    Attributes:
        token_digests: SHA-256 digests of the accepted bearer tokens.
        insecure_local: no token configured and ``POSTLOAN_INSECURE_LOCAL=1``: no auth.
        max_batch: customers allowed in one request.
        model_dir: bundle folder (``<dir>/<model>/v<N>/``), or None for the registry.
        alias: registry alias of the champions (when ``model_dir`` is None).
        strategy_config: strategy YAML, or None for the packaged default.
        audit_log: JSON-lines file of the audit trail, or None for stderr.
        online_store: SQLAlchemy URL of the online snapshot store, or None (requests by
            ``customer_ids`` are then refused with a 422 that says so).
        snapshot_max_age_days: a stored snapshot older than this is flagged ``stale``.
    """

    token_digests: frozenset[bytes]
    insecure_local: bool
    max_batch: int
    model_dir: Path | None
    alias: str
    strategy_config: Path | None
    audit_log: Path | None
    online_store: str | None = None
    snapshot_max_age_days: int = DEFAULT_MAX_AGE_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingConfig:
        """Read and check the ``POSTLOAN_*`` variables of the service.

        Raises:
            ConfigError: no token and no insecure opt-in, a token shorter than 16
                characters, a bad batch limit, or a missing folder/file.
        """
        env = os.environ if env is None else env
        tokens = [t.strip() for t in env.get(TOKENS_ENV, "").split(",") if t.strip()]
        short = [i for i, t in enumerate(tokens) if len(t) < MIN_TOKEN_LENGTH]
        if short:
            raise ConfigError(f"{TOKENS_ENV}: token(s) at position {short} are shorter than "
                              f"{MIN_TOKEN_LENGTH} characters; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        flag = env.get(INSECURE_ENV, "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise ConfigError(f"{INSECURE_ENV}={flag!r}: use 1 or 0")
        insecure = flag in _TRUE and not tokens
        if not tokens and not insecure:
            raise ConfigError(f"no API token configured: set {TOKENS_ENV} (comma-separated "
                              f"bearer tokens), or {INSECURE_ENV}=1 to run without "
                              "authentication on a private machine")
        try:
            limit = schemas.max_batch(env)  # the request models read the same variable
        except ValueError as e:
            raise ConfigError(str(e)) from None
        model_dir = env.get(MODEL_DIR_ENV, "").strip() or None
        if model_dir is not None and not Path(model_dir).is_dir():
            raise ConfigError(f"{MODEL_DIR_ENV}={model_dir}: not a folder (expected "
                              "<dir>/<model>/v<N>/ bundles as written by `postloan train`)")
        strategy = env.get(STRATEGY_ENV, "").strip() or None
        if strategy is not None and not Path(strategy).is_file():
            raise ConfigError(f"{STRATEGY_ENV}={strategy}: no such file")
        audit = env.get(AUDIT_ENV, "").strip() or None
        if audit is not None and not Path(audit).parent.is_dir():
            raise ConfigError(f"{AUDIT_ENV}={audit}: its folder does not exist")
        store = env.get(STORE_ENV, "").strip() or None
        if store is None:  # the embedded default, when `postloan materialize` wrote it
            from postloan.settings import get_settings

            s = get_settings()
            if (s.root / "online.db").is_file():
                store = s.online_store_url
        raw_age = env.get(MAX_AGE_ENV, "").strip() or str(DEFAULT_MAX_AGE_DAYS)
        if not raw_age.isdigit() or int(raw_age) < 1:
            raise ConfigError(f"{MAX_AGE_ENV}={raw_age!r}: use a whole number of days >= 1")
        return cls(
            token_digests=frozenset(token_digest(t) for t in tokens),
            insecure_local=insecure,
            max_batch=limit,
            model_dir=None if model_dir is None else Path(model_dir),
            alias=env.get(ALIAS_ENV, "").strip() or "champion",
            strategy_config=None if strategy is None else Path(strategy),
            audit_log=None if audit is None else Path(audit),
            online_store=store,
            snapshot_max_age_days=int(raw_age),
        )
