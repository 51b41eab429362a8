"""The sector's themes as ``corpus/themes.yaml`` defines them: slug, label, definition and
Swedish keyword stems, validated on load so that a typo fails loudly with the file, theme and
key named.

Kept apart from the classifier in :mod:`pipeline.nlp.themes` so that what only needs the
taxonomy (the batch's main process syncing the ``themes`` table, the CLI) does not import
scikit-learn and SciPy, which take over a second to import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import REPO_ROOT

DEFAULT_THEMES = REPO_ROOT / "corpus" / "themes.yaml"

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_THEME_KEYS = ("slug", "label", "definition", "keywords")


class ThemesError(ValueError):
    """The themes file is unreadable or breaks the schema; the message names file, theme, key."""


@dataclass(frozen=True)
class Theme:
    """One theme of the taxonomy, with its keyword rule compiled once."""

    slug: str
    label: str
    definition: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    def count(self, text: str) -> int:
        """Number of (non-overlapping) keyword matches in an already normalised text."""
        return sum(1 for _ in self.pattern.finditer(text))

    def matches(self, text: str) -> list[str]:
        """The matched words, lower-cased, in order of appearance."""
        return [m.group(0).lower() for m in self.pattern.finditer(text)]


def compile_keywords(keywords: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive alternation in which every keyword starts at a word beginning.

    Starting at a word beginning keeps "vräk" out of "avräkning" and "gäng" out of
    "tillgänglig"; the trailing ``\\w*`` lets a stem take any Swedish ending.
    """
    alternatives = "|".join(f"(?:{keyword})" for keyword in keywords)
    return re.compile(rf"(?<!\w)(?:{alternatives})\w*", re.IGNORECASE)


def load_themes(path: Path = DEFAULT_THEMES) -> list[Theme]:
    """Read and validate the taxonomy; raise :class:`ThemesError` naming file, theme and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ThemesError(f"{path}: cannot read themes file: {error}") from error
    except yaml.YAMLError as error:
        raise ThemesError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("themes"), list):
        raise ThemesError(f"{path}: key 'themes': expected a list of themes at the top level")
    if not data["themes"]:
        raise ThemesError(f"{path}: key 'themes': the list is empty")
    themes: list[Theme] = []
    for index, entry in enumerate(data["themes"]):
        theme = _parse_theme(path, index, entry)
        if any(known.slug == theme.slug for known in themes):
            raise ThemesError(f"{path}: theme '{theme.slug}': key 'slug': duplicate slug")
        themes.append(theme)
    return themes


def _parse_theme(path: Path, index: int, entry: Any) -> Theme:
    """Validate one theme entry; the theme is named by slug when it has one, else by position."""
    name = f"#{index + 1}"
    if not isinstance(entry, dict):
        raise ThemesError(f"{path}: theme '{name}': expected a mapping with keys {_THEME_KEYS}")
    slug = entry.get("slug")
    if isinstance(slug, str) and slug:
        name = slug

    def fail(key: str, problem: str) -> ThemesError:
        return ThemesError(f"{path}: theme '{name}': key '{key}': {problem}")

    for key in entry:
        if key not in _THEME_KEYS:
            raise fail(str(key), f"unknown key (allowed: {', '.join(_THEME_KEYS)})")
    for key in _THEME_KEYS:
        if key not in entry:
            raise fail(key, "missing")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise fail("slug", "must be lower-case ASCII letters, digits or '_', e.g. 'hemloshet'")
    for key in ("label", "definition"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise fail(key, "must be a non-empty string")
    keywords = entry["keywords"]
    if not isinstance(keywords, list) or not keywords:
        raise fail("keywords", "must be a non-empty list of keyword stems or regexes")
    for keyword in keywords:
        if not isinstance(keyword, str) or not keyword.strip():
            raise fail("keywords", f"entry {keyword!r} is not a non-empty string")
        try:
            re.compile(keyword)
        except re.error as error:
            raise fail("keywords", f"{keyword!r} is not a valid regex: {error}") from error
    return Theme(
        slug=slug,
        label=entry["label"].strip(),
        definition=" ".join(entry["definition"].split()),
        keywords=tuple(keywords),
        pattern=compile_keywords(keywords),
    )
