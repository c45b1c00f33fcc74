"""Choosing the demo world's sites: real places, an equal share per inhabited continent,
jittered a little, with unseen sites kept well away from every reference site."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoloc_core.demo_world.geography import climate_band, density_class, is_coastal
from geoloc_core.demo_world.places import (
    INHABITED_CONTINENTS,
    PlaceTable,
    haversine_km,
    offset_point,
)

REFERENCE_MIN_SEPARATION_KM = 10.0  # two reference sites are never the same town
UNSEEN_MIN_DISTANCE_KM = 50.0  # an unseen site is not a known site seen again

# Stream ids keep the random streams of different purposes independent.
ORDER_STREAM = 1
JITTER_STREAM = 2


@dataclass(frozen=True)
class Site:
    site_id: int
    name: str
    admin1: str
    admin2: str
    country_code: str
    country: str
    continent: str
    lat: float
    lon: float
    climate: str
    density: str
    coastal: bool
    role: str  # "reference" or "unseen"


@dataclass(frozen=True)
class _Pick:
    row: int
    lat: float
    lon: float


def _continent_quotas(total: int, seed: int) -> dict[str, int]:
    """Equal share per continent; the remainder goes to continents in a seed-rotated order."""
    count = len(INHABITED_CONTINENTS)
    order = [INHABITED_CONTINENTS[(seed + k) % count] for k in range(count)]
    quotas = {c: total // count for c in INHABITED_CONTINENTS}
    for continent in order[: total % count]:
        quotas[continent] += 1
    return quotas


def _candidate_order(places: PlaceTable, continent: str, seed: int) -> np.ndarray:
    """Weighted random order of a continent's places (exponential race), favouring small
    countries a little so a continent is not all Germany or all Philippines."""
    frame = places.frame
    rows = np.flatnonzero((frame["continent"] == continent).to_numpy())
    country_sizes = frame["cc"].iloc[rows].map(frame["cc"].iloc[rows].value_counts())
    weights = 1.0 / np.sqrt(country_sizes.to_numpy(dtype=np.float64))
    continent_index = INHABITED_CONTINENTS.index(continent)
    rng = np.random.default_rng(np.random.SeedSequence([seed, ORDER_STREAM, continent_index]))
    keys = rng.exponential(size=rows.size) / weights
    return rows[np.argsort(keys, kind="stable")]


def _jittered(places: PlaceTable, row: int, seed: int, jitter_km: float) -> _Pick:
    """Moves a place by up to jitter_km, uniformly over the disc, seeded by the place itself."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, JITTER_STREAM, row]))
    distance = jitter_km * float(np.sqrt(rng.random()))
    bearing = 2.0 * np.pi * float(rng.random())
    lat, lon = places.frame["lat"].iat[row], places.frame["lon"].iat[row]
    new_lat, new_lon = offset_point(float(lat), float(lon), distance, bearing)
    return _Pick(row=row, lat=new_lat, lon=new_lon)


def _far_from(pick: _Pick, lats: list[float], lons: list[float], min_km: float) -> bool:
    if not lats:
        return True
    distances = haversine_km(pick.lat, pick.lon, np.array(lats), np.array(lons))
    return bool(distances.min() >= min_km)


def _pick_sites(
    places: PlaceTable,
    orders: dict[str, np.ndarray],
    quotas: dict[str, int],
    used_rows: set[int],
    avoid: tuple[list[float], list[float]],
    role_field: str,
    seed: int,
    jitter_km: float,
) -> list[_Pick]:
    picked: list[_Pick] = []
    lats: list[float] = []
    lons: list[float] = []
    for continent in INHABITED_CONTINENTS:
        wanted = quotas[continent]
        taken = 0
        for row in orders[continent]:
            if taken == wanted:
                break
            if int(row) in used_rows:
                continue
            pick = _jittered(places, int(row), seed, jitter_km)
            if not _far_from(pick, lats, lons, REFERENCE_MIN_SEPARATION_KM):
                continue
            if not _far_from(pick, avoid[0], avoid[1], UNSEEN_MIN_DISTANCE_KM):
                continue
            picked.append(pick)
            lats.append(pick.lat)
            lons.append(pick.lon)
            used_rows.add(pick.row)
            taken += 1
        if taken < wanted:
            raise ValueError(
                f"{role_field}: only {taken} of the {wanted} sites wanted on continent "
                f"{continent} could be placed far enough apart; lower {role_field}"
            )
    return picked


def _describe(places: PlaceTable, pick: _Pick, site_id: int, role: str) -> Site:
    row = places.frame.iloc[pick.row]
    return Site(
        site_id=site_id,
        name=str(row["name"]),
        admin1=str(row["admin1"]),
        admin2=str(row["admin2"]),
        country_code=str(row["cc"]),
        country=str(row["country"]),
        continent=str(row["continent"]),
        lat=pick.lat,
        lon=pick.lon,
        climate=climate_band(pick.lat, pick.lon),
        density=density_class(places, pick.lat, pick.lon),
        coastal=is_coastal(pick.lat, pick.lon),
        role=role,
    )


def select_sites(
    places: PlaceTable, reference_sites: int, unseen_sites: int, seed: int, jitter_km: float
) -> list[Site]:
    """Reference sites get ids 0..R-1, unseen sites R..R+U-1, each continent block in turn."""
    available = len(places.frame)
    if reference_sites + unseen_sites > available:
        raise ValueError(
            f"reference_sites + unseen_sites = {reference_sites + unseen_sites} exceeds the "
            f"{available} candidate places; lower reference_sites or unseen_sites"
        )
    orders = {c: _candidate_order(places, c, seed) for c in INHABITED_CONTINENTS}
    used: set[int] = set()
    reference = _pick_sites(
        places, orders, _continent_quotas(reference_sites, seed), used, ([], []),
        "reference_sites", seed, jitter_km,
    )
    avoid = ([p.lat for p in reference], [p.lon for p in reference])
    unseen = _pick_sites(
        places, orders, _continent_quotas(unseen_sites, seed + 1), used, avoid,
        "unseen_sites", seed, jitter_km,
    )
    sites = [_describe(places, p, i, "reference") for i, p in enumerate(reference)]
    offset = len(sites)
    sites += [_describe(places, p, offset + i, "unseen") for i, p in enumerate(unseen)]
    return sites
