"""The curated gazetteer in ``corpus/gazetteer/``: the sector's organisations and places by name.

The files are edited by hand (see the comment at the top of each), so loading validates them and
names the file and line of a mistake. Municipalities, regions and county administrative boards are
organisations too, but they follow a pattern, so they are generated from the two tables rather
than listed one by one: ``municipalities.tsv`` gives "Malmö stad" and ``counties.tsv`` gives
"Region Skåne" and "Länsstyrelsen Skåne".

The same lists feed two consumers: entity linking (:mod:`pipeline.nlp.linking`) looks names up
here, and a spaCy ``EntityRuler`` can be built from :meth:`Gazetteer.ruler_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from pipeline.config import REPO_ROOT

GAZETTEER_DIR = REPO_ROOT / "corpus" / "gazetteer"


class GazetteerError(ValueError):
    """A mistake in one of the hand-edited gazetteer files, with the file and line."""


def slug(text: str) -> str:
    """Lower-case and hyphen-separated, Swedish letters kept ("Håbo" and "Habo" are two places)."""
    return re.sub(r"[\W_]+", "-", text.casefold()).strip("-")


def genitive(name: str) -> str:
    """The Swedish genitive of a name: "-s", except after s, x or z ("Borås", "Vännäs"), and
    ":s" after an abbreviation in capitals or a digit ("MKB:s", "SKR:s", "Agenda 2030:s")."""
    last = name.split()[-1]
    if (len(last) > 1 and last.isupper()) or last[-1].isdigit():
        return f"{name}:s"
    return name if name[-1].lower() in "sxz" else f"{name}s"


def compound_stem(name: str) -> str:
    """A place name before "kommun": "Stockholms", but "Malmö", "Uppsala" and "Borås" as is."""
    return name if name[-1].lower() in "aeiouyåäösxz" else f"{name}s"


@dataclass(frozen=True)
class Organisation:
    """One organisation and every name that refers to it."""

    id: str
    name: str
    kind: str
    aliases: tuple[str, ...] = ()
    former: tuple[str, ...] = ()
    parent: str | None = None
    branches: bool = False
    municipality: str | None = None
    county: str | None = None

    @property
    def key(self) -> str:
        """The entity key: the id, so that renaming the organisation keeps its entity."""
        return f"org:{self.id}"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.former)


@dataclass(frozen=True)
class County:
    """A county (län) with its region and county administrative board."""

    id: str
    geonames: str
    county: str
    short: str
    region: str
    region_former: tuple[str, ...]
    lansstyrelse: str
    lansstyrelse_short: str

    @property
    def base(self) -> str:
        """The county without "län" and genitive: "Västra Götalands län" → "Västra Götaland"."""
        stem = self.county.removesuffix(" län")
        return stem[:-1] if stem.endswith("s") else stem


@dataclass(frozen=True)
class Municipality:
    """A municipality: its name, its name as an organisation, county and main locality."""

    name: str
    organisation: str
    county: str
    seat: str | None
    latitude: float | None = None
    longitude: float | None = None

    @property
    def id(self) -> str:
        return slug(self.name)


@dataclass(frozen=True)
class District:
    """A city district or housing area with a point near its centre."""

    name: str
    municipality: str
    latitude: float
    longitude: float
    kind: str
    aliases: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{slug(self.municipality)}-{slug(self.name)}"


@dataclass(frozen=True)
class Gazetteer:
    """Everything in ``corpus/gazetteer/``, with generated public-sector organisations added."""

    organisations: tuple[Organisation, ...]
    counties: tuple[County, ...]
    municipalities: tuple[Municipality, ...]
    districts: tuple[District, ...]
    provinces: tuple[str, ...]
    countries: tuple[str, ...]
    regions: tuple[str, ...]

    @cached_property
    def organisation_by_id(self) -> dict[str, Organisation]:
        return {org.id: org for org in self.organisations}

    @cached_property
    def municipality_by_name(self) -> dict[str, Municipality]:
        return {m.name: m for m in self.municipalities}

    def ruler_patterns(self, *, genitives: bool = True) -> list[dict[str, str]]:
        """Phrase patterns for a spaCy ``EntityRuler``: every name, with its entity key as id.

        With ``genitives`` the genitive form of each name is added, since Swedish inflects
        names ("Hyresgästföreningens", "Malmös") and a phrase pattern only matches exact text.
        """
        patterns: dict[tuple[str, str], str] = {}
        for label, name, key in self._named_keys():
            forms = {name, genitive(name)} if genitives else {name}
            for form in forms:
                patterns.setdefault((label, form), key)
        return [
            {"label": label, "pattern": form, "id": key}
            for (label, form), key in sorted(patterns.items())
        ]

    def _named_keys(self) -> Iterator[tuple[str, str, str]]:
        for org in self.organisations:
            for name in org.names:
                yield "ORG", name, org.key
        for municipality in self.municipalities:
            yield "LOC", municipality.name, f"municipality:{municipality.id}"
        for district in self.districts:
            for name in (district.name, *district.aliases):
                yield "LOC", name, f"district:{district.id}"
        for county in self.counties:
            yield "LOC", county.county, f"county:{county.id}"
        for name in (*self.provinces, *self.countries, *self.regions):
            yield "LOC", name, f"area:{slug(name)}"


# --------------------------------------------------------------------------- loading


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a tab-separated file with ``#`` comment lines, keyed by the header."""
    header: list[str] | None = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            cells = [cell.strip() for cell in line.rstrip("\n").split("\t")]
            if header is None:
                header = cells
            elif len(cells) != len(header):
                raise GazetteerError(
                    f"{path}:{number}: expected {len(header)} tab-separated columns, "
                    f"found {len(cells)}"
                )
            else:
                yield number, dict(zip(header, cells, strict=True))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split("|") if part.strip())


def _coordinate(path: Path, number: int, value: str, low: float, high: float) -> float | None:
    if not value:
        return None
    try:
        number_value = float(value)
    except ValueError:
        raise GazetteerError(f"{path}:{number}: {value!r} is not a coordinate") from None
    if not low <= number_value <= high:
        raise GazetteerError(f"{path}:{number}: {value} is outside Sweden ({low}–{high})")
    return number_value


LATITUDES, LONGITUDES = (55.0, 69.1), (10.9, 24.2)
"""Sweden's bounding box: a coordinate outside it is a typo (swapped or mistyped digits)."""


def load_counties(path: Path) -> tuple[County, ...]:
    counties = []
    for number, row in _rows(path):
        if not row["id"] or not row["region"] or not row["lansstyrelse"]:
            raise GazetteerError(f"{path}:{number}: id, region and lansstyrelse are required")
        counties.append(
            County(
                id=row["id"],
                geonames=row["geonames"],
                county=row["county"],
                short=row["short"],
                region=row["region"],
                region_former=_split(row["region_former"]),
                lansstyrelse=row["lansstyrelse"],
                lansstyrelse_short=row["lansstyrelse_short"],
            )
        )
    return tuple(counties)


def load_municipalities(path: Path, county_ids: set[str]) -> tuple[Municipality, ...]:
    municipalities = []
    for number, row in _rows(path):
        if row["county"] not in county_ids:
            raise GazetteerError(f"{path}:{number}: unknown county {row['county']!r}")
        seat = row["seat"] or row["name"]
        municipalities.append(
            Municipality(
                name=row["name"],
                organisation=row["organisation"],
                county=row["county"],
                seat=None if seat == "-" else seat,
                latitude=_coordinate(path, number, row["latitude"], *LATITUDES),
                longitude=_coordinate(path, number, row["longitude"], *LONGITUDES),
            )
        )
    return tuple(municipalities)


def load_districts(path: Path, municipality_names: set[str]) -> tuple[District, ...]:
    districts = []
    for number, row in _rows(path):
        if row["municipality"] not in municipality_names:
            raise GazetteerError(f"{path}:{number}: unknown municipality {row['municipality']!r}")
        latitude = _coordinate(path, number, row["latitude"], *LATITUDES)
        longitude = _coordinate(path, number, row["longitude"], *LONGITUDES)
        if latitude is None or longitude is None:
            raise GazetteerError(f"{path}:{number}: a district needs latitude and longitude")
        districts.append(
            District(
                name=row["name"],
                municipality=row["municipality"],
                latitude=latitude,
                longitude=longitude,
                kind=row["kind"] or "district",
                aliases=_split(row["aliases"]),
            )
        )
    return tuple(districts)


ORGANISATION_FIELDS = frozenset(
    {"id", "name", "kind", "aliases", "former", "parent", "branches", "municipality"}
)


def load_organisations(path: Path, municipality_names: set[str]) -> tuple[Organisation, ...]:
    """The curated organisations; every entry is checked for unknown keys, ids and parents."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = document.get("organisations")
    if not isinstance(entries, list):
        raise GazetteerError(f"{path}: expected a list under 'organisations'")
    organisations = []
    for position, entry in enumerate(entries):
        where = f"{path}: organisation {position + 1} ({entry.get('id', '?')})"
        unknown = set(entry) - ORGANISATION_FIELDS
        if unknown:
            raise GazetteerError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if not entry.get("id") or not entry.get("name") or not entry.get("kind"):
            raise GazetteerError(f"{where}: id, name and kind are required")
        if entry.get("municipality") and entry["municipality"] not in municipality_names:
            raise GazetteerError(f"{where}: unknown municipality {entry['municipality']!r}")
        organisations.append(
            Organisation(
                id=str(entry["id"]),
                name=str(entry["name"]),
                kind=str(entry["kind"]),
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
                former=tuple(str(a) for a in entry.get("former") or ()),
                parent=entry.get("parent"),
                branches=bool(entry.get("branches", False)),
                municipality=entry.get("municipality"),
            )
        )
    return tuple(organisations)


def public_sector(
    counties: Iterable[County], municipalities: Iterable[Municipality]
) -> list[Organisation]:
    """Regions, county administrative boards and municipalities as organisations.

    Each gets the spellings that texts use besides the official one: "Länsstyrelsen i Skåne län",
    "Länsstyrelsen i Skåne"; "Stockholms kommun" for Stockholms stad. Region Gotland is both the
    region and the municipality, so the municipality does not get a second entry.
    """
    organisations = []
    for county in counties:
        organisations.append(
            Organisation(
                id=f"region-{county.id}",
                name=county.region,
                kind="region",
                former=county.region_former,
                county=county.id,
            )
        )
        board_aliases = {
            county.lansstyrelse,
            f"Länsstyrelsen i {county.base}",
            f"Länsstyrelsen {county.base}",
            f"Länsstyrelsen i {county.short}",
            f"Länsstyrelsen {county.short}",
            f"Länsstyrelsen {county.county}",
        } - {county.lansstyrelse_short}
        organisations.append(
            Organisation(
                id=f"lansstyrelsen-{county.id}",
                name=county.lansstyrelse_short,
                kind="myndighet",
                aliases=tuple(sorted(board_aliases)),
                county=county.id,
            )
        )
    taken = {org.name for org in organisations}
    for municipality in municipalities:
        if municipality.organisation in taken:
            continue
        plain = f"{compound_stem(municipality.name)} kommun"
        aliases = (plain,) if plain != municipality.organisation else ()
        organisations.append(
            Organisation(
                id=f"kommun-{municipality.id}",
                name=municipality.organisation,
                kind="kommun",
                aliases=aliases,
                municipality=municipality.name,
                county=municipality.county,
            )
        )
    return organisations


def load_gazetteer(directory: Path = GAZETTEER_DIR) -> Gazetteer:
    """Read and check every gazetteer file in ``directory``."""
    counties = load_counties(directory / "counties.tsv")
    municipalities = load_municipalities(directory / "municipalities.tsv", {c.id for c in counties})
    names = {m.name for m in municipalities}
    districts = load_districts(directory / "districts.tsv", names)
    curated = load_organisations(directory / "organisations.yaml", names)
    organisations = (*curated, *public_sector(counties, municipalities))
    _check_organisations(directory / "organisations.yaml", organisations)
    areas = yaml.safe_load((directory / "areas.yaml").read_text(encoding="utf-8")) or {}
    return Gazetteer(
        organisations=organisations,
        counties=counties,
        municipalities=municipalities,
        districts=districts,
        provinces=tuple(areas.get("provinces") or ()),
        countries=tuple(areas.get("countries") or ()),
        regions=tuple(areas.get("regions") or ()),
    )


def _check_organisations(path: Path, organisations: Iterable[Organisation]) -> None:
    """Ids unique, parents known, and no name shared by two organisations."""
    by_id: dict[str, Organisation] = {}
    owner: dict[str, str] = {}
    for org in organisations:
        if org.id in by_id:
            raise GazetteerError(f"{path}: id {org.id!r} is used twice")
        by_id[org.id] = org
        for name in org.names:
            folded = name.casefold()
            if owner.setdefault(folded, org.id) != org.id:
                raise GazetteerError(
                    f"{path}: the name {name!r} belongs to both {owner[folded]!r} and {org.id!r}"
                )
    for org in by_id.values():
        if org.parent and org.parent not in by_id:
            raise GazetteerError(f"{path}: {org.id!r} has an unknown parent {org.parent!r}")


@lru_cache(maxsize=4)
def default_gazetteer(directory: Path = GAZETTEER_DIR) -> Gazetteer:
    """The gazetteer, loaded once per process."""
    return load_gazetteer(directory)
