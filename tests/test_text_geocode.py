"""Offline place texts: known coordinates get the right names, source fields are kept and
only missing ones filled, captions follow the template param."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_core.data.manifest import write_manifest
from geoloc_core.data.schema import PLACE_FIELDS
from geoloc_core.params import ParamsError
from geoloc_core.paths import ProjectPaths
from geoloc_core.steps.texts import build_place_texts, place_phrase
from geoloc_core.text import PLACE_TEXT_COLUMNS, read_place_texts
from geoloc_core.text.captions import render_caption
from geoloc_core.text.geocoder import OfflineGeocoder
from geoloc_core.text.place_texts import fill_place_fields
from geoloc_core.text.settings import TextSettings
from tests.test_data_params import layer_params

TEMPLATE = "A street view photo taken in {city}, {state}, {country}"


@pytest.fixture(scope="module")
def geocoder() -> OfflineGeocoder:
    settings = TextSettings.from_section(layer_params()["text"])
    return OfflineGeocoder(settings.geocoder)


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (48.8584, 2.2945, ("Paris", "Île-de-France", "France", "FR", "Europe")),
        (-33.8568, 151.2153, ("Sydney", "New South Wales", "Australia", "AU", "Oceania")),
        (35.6586, 139.7454, ("Tokyo", "Tokyo", "Japan", "JP", "Asia")),
        (-22.56, 17.08, ("Windhoek", "Khomas", "Namibia", "NA", "Africa")),
        (48.8846, 2.26965, ("Neuilly-sur-Seine", "Île-de-France", "France", "FR", "Europe")),
    ],
)
def test_known_coordinates_get_the_right_names(geocoder, lat, lon, expected):
    row = geocoder.geocode(np.array([lat]), np.array([lon])).iloc[0]
    fields = ("city", "state", "country", "country_code", "continent")
    assert tuple(row[f] for f in fields) == expected


def test_open_sea_and_missing_coordinates_stay_unknown(geocoder):
    rows = geocoder.geocode(np.array([0.0, np.nan]), np.array([-30.0, 10.0]))
    assert (rows.to_numpy() == "").all()


def test_source_fields_are_kept_and_only_missing_ones_filled(geocoder):
    manifest = pd.DataFrame(
        {
            "id": ["mp16-a", "mp16-b", "demo-c"],
            "lat": [48.8584, -33.8568, 48.8584],
            "lon": [2.2945, 151.2153, 2.2945],
            "neighbourhood": ["Gros-Caillou", "", ""],
            "city": ["Paris 7e", "", ""],
            "county": ["", "", ""],
            "state": ["", "NSW (as shipped)", ""],
            "region": ["Metropolitan France", "", ""],
            "country": ["France", "", ""],
            "country_code": ["FR", "", "FR"],
            "continent": ["", "", "Europe"],
        }
    )
    table, counts = fill_place_fields(manifest, geocoder)
    first, second, third = table.to_dict("records")
    assert first["city"] == "Paris 7e" and first["neighbourhood"] == "Gros-Caillou"
    assert first["region"] == "Metropolitan France" and first["state"] == "Île-de-France"
    assert first["county"] == "Paris" and first["continent"] == "Europe"
    assert second["state"] == "NSW (as shipped)" and second["city"] == "Sydney"
    assert second["neighbourhood"] == "" and second["region"] == ""  # never guessed
    assert third["city"] == "Paris"
    assert counts["kept_city"] == 1 and counts["filled_city"] == 2
    assert counts["kept_state"] == 1 and counts["filled_state"] == 2


def test_caption_template_and_fallback():
    fields = {"city": "Hella", "state": "", "country": "Iceland"}
    assert render_caption(TEMPLATE, fields, "x") == "A street view photo taken in Hella, Iceland"
    assert render_caption(TEMPLATE, {}, "A street view photo") == "A street view photo"
    other = "{country} / {city}"
    assert render_caption(other, {"city": "Paris", "country": "France"}, "x") == "France / Paris"


def test_template_fields_must_be_place_fields():
    cfg = layer_params()["text"] | {"caption_template": "Taken at {lat}"}
    with pytest.raises(ParamsError, match="may use only the place fields"):
        TextSettings.from_section(cfg)


def test_step_writes_one_row_per_reference_id(tmp_path):
    paths = ProjectPaths(tmp_path)
    manifest = pd.DataFrame(
        {
            "id": ["r1", "r2", "v1"],
            "image": ["a.jpg", "b.jpg", "c.jpg"],
            "lat": [48.8584, -22.56, -33.8568],
            "lon": [2.2945, 17.08, 151.2153],
            "split": ["reference", "reference", "validation"],
            "source": "demo",
            "country_code": ["FR", "NA", "AU"],
        }
    )
    write_manifest(manifest, paths.reference_manifest)
    summary = build_place_texts(paths, layer_params()["text"])
    texts = read_place_texts(paths.place_texts)
    assert tuple(texts.columns[: len(PLACE_TEXT_COLUMNS)]) == PLACE_TEXT_COLUMNS
    assert list(texts.columns) == [*PLACE_TEXT_COLUMNS, "description"]
    assert list(texts["id"]) == ["r1", "r2", "v1"]
    assert texts.loc[0, "caption"] == (
        "A street view photo taken in Paris, Île-de-France, France"
    )
    assert texts.loc[1, "country_code"] == "NA"  # Namibia, not a missing value
    assert texts.loc[2, "caption"].endswith("Sydney, New South Wales, Australia")
    assert (texts["description"] == "").all()
    assert not texts.isna().any().any()
    assert summary["rows"] == 3 and summary["kept_country_code"] == 3


def test_place_phrase_lists_known_fields_once():
    row = dict.fromkeys(PLACE_FIELDS, "")
    row |= {"city": "Paris", "county": "Paris", "country": "France"}
    assert place_phrase(row) == "Paris, France"
