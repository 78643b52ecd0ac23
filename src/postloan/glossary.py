"""The one en/zh glossary (``config/glossary.yaml``): domain terms and feature definitions.

Chinese texts say a domain term with the glossary's word (逾期, 违约概率, 流失, 满意度,
预警等级, 重组, 还款提醒, 挽留, 服务补救回访, ...). :func:`term` gives a term in a language,
:func:`feature_definition` a feature's definition, and :func:`untranslated` finds the
English terms left in a Chinese text (the check behind tests/reporting/test_glossary.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, Field

from postloan.config_files import read_mapping, shipped_text, validate
from postloan.errors import ConfigError

LANGS = ("en", "zh")
"""The languages every reviewer-facing text exists in."""

_CODE = re.compile(r"<code\b[^>]*>.*?</code>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_DATA_URI = re.compile(r"data:[^\"')\s]+")


class Term(BaseModel):
    """A domain term: its English forms and its Chinese word."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)
    also: list[str] = Field(default_factory=list)


class Glossary(BaseModel):
    """The glossary file."""

    terms: dict[str, Term]
    kept: list[str] = Field(default_factory=list)
    features: dict[str, dict[str, str]] = Field(default_factory=dict)


@lru_cache(maxsize=1)
def load_glossary() -> Glossary:
    """The shipped glossary (validated, cached).

    Raises:
        ConfigError: the file is not a valid glossary.
    """
    src = "postloan:config/glossary.yaml"
    g = validate(Glossary, read_mapping(shipped_text("config/glossary.yaml"), "glossary", src),
                 "glossary", src)
    for name, d in g.features.items():
        missing = [lang for lang in LANGS if not d.get(lang)]
        if missing:
            raise ConfigError(f"glossary {src}: feature '{name}' has no {missing} text")
    return g


def check_lang(lang: str) -> str:
    """`lang` if it is a supported language.

    Raises:
        ConfigError: any other value (the message lists the languages).
    """
    if lang not in LANGS:
        raise ConfigError(f"unknown language '{lang}'; use one of {', '.join(LANGS)}")
    return lang


def term(key: str, lang: str) -> str:
    """A glossary term in `lang` (``term("churn", "zh") == "流失"``).

    Raises:
        ConfigError: unknown term or language.
    """
    t = load_glossary().terms.get(key)
    if t is None:
        raise ConfigError(f"glossary has no term '{key}'")
    return getattr(t, check_lang(lang))


def feature_definition(feature: str, lang: str) -> str:
    """A feature's definition in `lang`; the feature's name when the glossary lacks it."""
    d = load_glossary().features.get(feature, {})
    return d.get(check_lang(lang)) or feature.replace("_", " ")


@lru_cache(maxsize=1)
def _english_pattern() -> re.Pattern[str]:
    forms: set[str] = set()
    for t in load_glossary().terms.values():
        if t.zh.strip().lower() == t.en.strip().lower():
            continue  # nothing to translate
        forms.update([t.en, *t.also])
    kept = {k.lower() for k in load_glossary().kept}
    forms = {f for f in forms if f.lower() not in kept}
    # Longest first, so "service-recovery call" is reported rather than its parts. An
    # abbreviation (all capitals) matches in capitals only: "PD" is a term, "pd" in an
    # identifier is not. Word boundaries also skip identifiers (default_risk).
    parts = []
    for f in sorted(forms, key=len, reverse=True):
        body = re.escape(f).replace(r"\ ", r"[\s-]+")
        parts.append(f"(?-i:{body})" if f.isupper() else body)
    # ASCII boundaries, not \b: a Chinese character is a word character to `re`, and
    # "客户PD为" must still report "PD".
    return re.compile(r"(?<![A-Za-z0-9_-])(?:" + "|".join(parts) + r")(?![A-Za-z0-9_-])",
                      re.I)


def visible_text(html: str) -> str:
    """The words a reader sees in an HTML page: no tags, no ``<code>`` identifiers, no
    embedded images (a ``<code>`` holds a column or feature name, not English prose)."""
    text = _CODE.sub(" ", html)
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = _DATA_URI.sub(" ", text)
    return _TAG.sub(" ", text)


def untranslated(text: str) -> list[str]:
    """The English glossary terms found in a Chinese `text` (distinct, in order of first
    appearance); empty when the text uses the glossary's Chinese words throughout."""
    seen: dict[str, None] = {}
    for m in _english_pattern().finditer(text):
        seen.setdefault(m.group(0), None)
    return list(seen)


__all__ = ["LANGS", "Glossary", "Term", "check_lang", "feature_definition", "load_glossary",
           "term", "untranslated", "visible_text"]
