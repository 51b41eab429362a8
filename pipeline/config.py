"""Loading and validating ``sources.yaml``.

The sources file is edited by hand by users who are not programmers, so every mistake must come
back as one readable line that names the file, the line, the source and the key, and says what
was expected. Validation is done by pydantic models; the YAML node tree is kept so that a
pydantic error location (``sources.2.discover.0.feed``) can be turned back into a line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = REPO_ROOT / "corpus" / "sources.yaml"
SAMPLE_SOURCES = REPO_ROOT / "corpus" / "sample" / "sources.yaml"

DOCUMENT_KINDS = ("press_release", "blog_post", "news", "opinion")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A problem in a user-edited configuration file, phrased for the person who edits it."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def parse_duration(value: str | int | float) -> int:
    """Turn ``"6h"``, ``"30m"``, ``"1d"`` or a number of seconds into seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 6h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 30m, 6h or 1d, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return int(seconds)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    return value


# --------------------------------------------------------------------------- pydantic schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Defaults(_Strict):
    user_agent: str = "svpipeline/0.1 (+https://github.com/svpipeline/pipeline)"
    delay: float = Field(1.0, ge=0, description="seconds between two requests to one host")
    timeout: float = Field(20.0, gt=0)
    max_bytes: int = Field(5_000_000, gt=0)
    retries: int = Field(3, ge=0, le=10)
    recrawl: str | int = "6h"
    allow_private_addresses: bool = False

    @field_validator("recrawl")
    @classmethod
    def _recrawl(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value


class _Discovery(_Strict):
    feed: str | None = None
    sitemap: str | None = None
    listing: str | None = None
    start: str | None = None
    links: str | None = None
    next: str | None = None
    max_pages: int = Field(20, ge=1, le=10_000)

    @field_validator("feed", "sitemap", "listing", "start")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    def method(self) -> tuple[str, str]:
        given = [(m, getattr(self, m)) for m in ("feed", "sitemap", "listing", "start")]
        given = [(m, u) for m, u in given if u]
        if len(given) != 1:
            raise ValueError("needs exactly one of: feed, sitemap, listing, start")
        return given[0]


class _Selectors(_Strict):
    title: str | None = None
    date: str | None = None
    author: str | None = None
    body: str | None = None
    remove: list[str] = []


class _Source(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    kind: Literal["press_release", "blog_post", "news", "opinion"] = "news"
    language: str = "sv"
    hosts: list[str] = Field(min_length=1)
    paths: list[str] = [".*"]
    discover: list[_Discovery] = Field(min_length=1)
    recrawl: str | int | None = None
    delay: float | None = Field(None, ge=0)
    selectors: _Selectors = _Selectors()

    @field_validator("paths")
    @classmethod
    def _regexes(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from exc
        return values

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        for value in values:
            if "/" in value or ":" in value:
                raise ValueError(f"a host is a name like www.malmo.se, not a URL ({value!r})")
        return [v.lower() for v in values]

    @field_validator("recrawl")
    @classmethod
    def _recrawl(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value


class _SourcesFile(_Strict):
    defaults: _Defaults = _Defaults()
    sources: list[_Source] = Field(min_length=1)


# --------------------------------------------------------------------------- public data model


@dataclass(frozen=True)
class Discovery:
    """One way of finding a source's documents: a feed, a sitemap, listing pages or a start page."""

    method: Literal["feed", "sitemap", "listing", "start"]
    url: str
    links: str | None = None
    next: str | None = None
    max_pages: int = 20


@dataclass(frozen=True)
class Selectors:
    """CSS selectors that override generic extraction for one source."""

    title: str | None = None
    date: str | None = None
    author: str | None = None
    body: str | None = None
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrawlSettings:
    """How politely and how patiently to fetch."""

    user_agent: str
    timeout: float
    max_bytes: int
    retries: int
    delay: float
    # Host names resolving to loopback, private or link-local addresses are refused unless
    # this is set (an intranet source); a host listed as an IP address is always allowed.
    allow_private_addresses: bool = False


@dataclass(frozen=True)
class Source:
    """A site the users follow, and the rules for which of its URLs are documents."""

    id: str
    name: str
    kind: str
    language: str
    hosts: tuple[str, ...]
    paths: tuple[re.Pattern[str], ...]
    discover: tuple[Discovery, ...]
    recrawl_seconds: int
    delay: float
    selectors: Selectors

    def allows(self, url: str) -> bool:
        """True when ``url`` is an http(s) URL on one of the source's hosts."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in self.hosts

    def is_document(self, url: str) -> bool:
        """True when ``url`` belongs to the source and its path matches a document pattern."""
        if not self.allows(url):
            return False
        path = urlsplit(url).path or "/"
        return any(p.search(path) for p in self.paths)


@dataclass(frozen=True)
class SourcesConfig:
    """A validated sources file."""

    path: Path
    settings: CrawlSettings
    sources: tuple[Source, ...]

    def get(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources)
        raise KeyError(f"no source {source_id!r} in {self.path} (known: {known})")


# --------------------------------------------------------------------------- loading


def load_sources(path: Path = DEFAULT_SOURCES) -> SourcesConfig:
    """Read and validate a sources file; raise :class:`ConfigError` naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text ({exc.reason})") from None
    return parse_sources(text, path)


def parse_sources(text: str, path: Path) -> SourcesConfig:
    """Validate the YAML text of a sources file (``path`` is used in messages)."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, f"not valid YAML: {problem}", line) from None
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping with the keys 'defaults' and 'sources'", 1)
    try:
        parsed = _SourcesFile.model_validate(data)
        for index, source in enumerate(parsed.sources):
            for dindex, entry in enumerate(source.discover):
                try:
                    entry.method()
                except ValueError as exc:
                    raise _LocatedError(("sources", index, "discover", dindex), str(exc)) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        raise _config_error(path, node, data, tuple(error["loc"]), _explain(error)) from None
    except _LocatedError as exc:
        raise _config_error(path, node, data, exc.loc, exc.message) from None
    _check_unique_ids(path, node, data, parsed)
    return _to_config(path, parsed)


class _LocatedError(Exception):
    def __init__(self, loc: tuple[Any, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def _check_unique_ids(path: Path, node: yaml.Node, data: dict, parsed: _SourcesFile) -> None:
    seen: set[str] = set()
    for index, source in enumerate(parsed.sources):
        if source.id in seen:
            message = f"duplicate source id {source.id!r}: every source needs its own id"
            raise _config_error(path, node, data, ("sources", index, "id"), message)
        seen.add(source.id)


def _explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known key (check the spelling; see corpus/sources.yaml for examples)"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message


def _config_error(
    path: Path, root: yaml.Node | None, data: Any, loc: tuple[Any, ...], message: str
) -> ConfigError:
    """Build a ConfigError for a pydantic location: the source, the key and the line."""
    line = _line_of(root, loc)
    source_id = None
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        try:
            source_id = data["sources"][loc[1]].get("id")
        except (KeyError, IndexError, TypeError, AttributeError):
            source_id = None
    key = ".".join(str(p) for p in loc)
    prefix = f"source {source_id!r}, " if source_id else ""
    return ConfigError(path, f"{prefix}key '{key}': {message}", line)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow ``loc`` down the composed YAML tree; return the line of the deepest match."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            key_node = next((k for k, _ in node.value if k.value == part), None)
            if child is None:
                return line
            line = key_node.start_mark.line + 1 if key_node is not None else line
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _to_config(path: Path, parsed: _SourcesFile) -> SourcesConfig:
    defaults = parsed.defaults
    settings = CrawlSettings(
        user_agent=defaults.user_agent,
        timeout=defaults.timeout,
        max_bytes=defaults.max_bytes,
        retries=defaults.retries,
        delay=defaults.delay,
        allow_private_addresses=defaults.allow_private_addresses,
    )
    sources = tuple(
        Source(
            id=s.id,
            name=s.name,
            kind=s.kind,
            language=s.language,
            hosts=tuple(s.hosts),
            paths=tuple(re.compile(p) for p in s.paths),
            discover=tuple(
                Discovery(*d.method(), links=d.links, next=d.next, max_pages=d.max_pages)
                for d in s.discover
            ),
            recrawl_seconds=parse_duration(defaults.recrawl if s.recrawl is None else s.recrawl),
            delay=s.delay if s.delay is not None else defaults.delay,
            selectors=Selectors(
                title=s.selectors.title,
                date=s.selectors.date,
                author=s.selectors.author,
                body=s.selectors.body,
                remove=tuple(s.selectors.remove),
            ),
        )
        for s in parsed.sources
    )
    return SourcesConfig(path=path, settings=settings, sources=sources)
