"""The demo world: deterministic, geographically grounded, semantics stable under nuisances."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from geoloc_core.ade20k import ADE20K_CLASSES, NUM_CLASSES, class_id
from geoloc_core.demo_world.conditions import ViewConditions, draw_conditions
from geoloc_core.demo_world.generate import (
    MANIFEST_COLUMNS,
    SITE_COLUMNS,
    DemoWorldConfig,
    generate_demo_world,
)
from geoloc_core.demo_world.geography import climate_band, density_class, is_coastal
from geoloc_core.demo_world.layout import build_scene
from geoloc_core.demo_world.places import haversine_km, load_places
from geoloc_core.demo_world.raster import Camera
from geoloc_core.demo_world.render import render_view
from geoloc_core.demo_world.sites import Site

TINY = DemoWorldConfig(
    seed=7, image_size=32, reference_sites=12, reference_views=2, validation_views=1,
    street_sites=4, street_views=2, unseen_sites=4, unseen_views=2, workers=1,
)
SPLITS = ("reference", "validation", "demo-street", "demo-unseen")


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo-worlds")
    out = {
        "serial": root / "serial",
        "pool": root / "pool",
        "other_seed": root / "other-seed",
    }
    generate_demo_world(out["serial"], TINY, progress=False)
    generate_demo_world(out["pool"], TINY.model_copy(update={"workers": 2}), progress=False)
    generate_demo_world(out["other_seed"], TINY.model_copy(update={"seed": 8}), progress=False)
    return out


def test_same_config_gives_identical_files_even_when_regenerated_in_place(
    worlds: dict[str, Path],
) -> None:
    before = tree_digest(worlds["serial"])
    generate_demo_world(worlds["serial"], TINY, progress=False)
    assert tree_digest(worlds["serial"]) == before


def test_worker_count_does_not_change_any_file(worlds: dict[str, Path]) -> None:
    assert tree_digest(worlds["pool"]) == tree_digest(worlds["serial"])


def test_another_seed_gives_another_world(worlds: dict[str, Path]) -> None:
    first, second = tree_digest(worlds["serial"]), tree_digest(worlds["other_seed"])
    images = [name for name in first if name.startswith("images/") and name in second]
    assert images and sum(first[n] != second[n] for n in images) > 0.9 * len(images)
    assert first["sites.csv"] != second["sites.csv"]


def test_manifest_lists_every_view_as_configured(worlds: dict[str, Path]) -> None:
    root = worlds["serial"]
    manifest = pd.read_csv(root / "manifest.csv", keep_default_na=False)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    counts = manifest["split"].value_counts().to_dict()
    assert counts == {
        "reference": TINY.reference_sites * TINY.reference_views,
        "validation": TINY.reference_sites * TINY.validation_views,
        "demo-street": TINY.street_sites * TINY.street_views,
        "demo-unseen": TINY.unseen_sites * TINY.unseen_views,
    }
    assert manifest["id"].is_unique
    order = list(zip(manifest["split"], manifest["id"], strict=True))
    assert order == sorted(order)
    assert manifest["lat"].between(-90, 90).all() and manifest["lon"].between(-180, 180).all()
    for row in manifest.itertuples():
        image = Image.open(root / row.image)
        labels = Image.open(root / row.label)
        assert image.mode == "RGB" and image.size == (TINY.image_size, TINY.image_size)
        assert labels.mode == "L" and labels.size == image.size
        assert int(np.asarray(labels).max()) < NUM_CLASSES
    world = json.loads((root / "world.json").read_text())
    assert world["generator_version"] and world["config"]["seed"] == TINY.seed
    assert "workers" not in world["config"]


def test_views_carry_their_site_coordinates_and_street_revisits_reference_sites(
    worlds: dict[str, Path],
) -> None:
    root = worlds["serial"]
    manifest = pd.read_csv(root / "manifest.csv", keep_default_na=False)
    sites = pd.read_csv(root / "sites.csv", keep_default_na=False).set_index("site_id")
    merged = manifest.join(sites[["lat", "lon", "role"]], on="site_id", rsuffix="_site")
    assert (merged["lat"] == merged["lat_site"]).all()
    assert (merged["lon"] == merged["lon_site"]).all()
    expected_role = {"reference": "reference", "validation": "reference",
                     "demo-street": "reference", "demo-unseen": "unseen"}
    assert (merged["split"].map(expected_role) == merged["role"]).all()


def test_sites_are_real_spread_and_unseen_ones_are_far_from_reference_ones(
    worlds: dict[str, Path],
) -> None:
    sites = pd.read_csv(worlds["serial"] / "sites.csv", keep_default_na=False)
    assert tuple(sites.columns) == SITE_COLUMNS
    assert sites["continent"].nunique() >= 5
    assert (sites["country"] != "").all()
    reference = sites[sites["role"] == "reference"]
    unseen = sites[sites["role"] == "unseen"]
    assert len(reference) == TINY.reference_sites and len(unseen) == TINY.unseen_sites
    assert not set(reference["site_id"]) & set(unseen["site_id"])
    for site in unseen.itertuples():
        distances = haversine_km(site.lat, site.lon, reference["lat"].to_numpy(),
                                 reference["lon"].to_numpy())
        assert distances.min() >= 50.0


def test_site_attributes_follow_real_geography() -> None:
    places = load_places()
    assert climate_band(64.15, -21.94) == "cold"  # Reykjavik
    assert climate_band(1.35, 103.82) == "tropical"  # Singapore
    assert climate_band(24.0, 12.0) == "arid"  # central Sahara
    assert climate_band(48.85, 2.35) == "temperate"  # Paris
    assert is_coastal(38.70, -9.20) and not is_coastal(40.42, -3.70)  # Lisbon, Madrid
    assert density_class(places, 48.85, 2.35) == "metropolis"
    assert density_class(places, 24.0, 12.0) == "rural"


def _scene_for_test() -> object:
    site = Site(site_id=3, name="Testville", admin1="", admin2="", country_code="NO",
                country="Norway", continent="EU", lat=60.0, lon=10.0, climate="cold",
                density="city", coastal=True, role="reference")
    return build_scene(site, seed=1)


def test_conditions_change_pixels_but_not_labels() -> None:
    scene = _scene_for_test()
    camera = Camera(shift_u=0.03, shift_v=-0.01, zoom=1.2)
    sunny = ViewConditions(season="summer", weather="clear", time_of_day="day", camera=camera,
                           noise_sigma=2.0, jpeg_quality=80, noise_seed=1)
    gloomy = ViewConditions(season="winter", weather="fog", time_of_day="night",
                            snow_cover=0.9, camera=camera, noise_sigma=6.0, jpeg_quality=35,
                            noise_seed=2)
    image_a, labels_a = render_view(scene, sunny, 64)
    image_b, labels_b = render_view(scene, gloomy, 64)
    assert np.abs(image_a.astype(int) - image_b.astype(int)).mean() > 20
    np.testing.assert_array_equal(labels_a, labels_b)
    moved = replace(sunny, camera=Camera(shift_u=-0.05, zoom=1.0))
    assert not np.array_equal(render_view(scene, moved, 64)[1], labels_a)


def test_scene_uses_geographic_classes_and_renders_at_any_size() -> None:
    scene = _scene_for_test()
    for size in (32, 96, 256):
        image, labels = render_view(scene, ViewConditions(), size)
        assert image.shape == (size, size, 3) and labels.shape == (size, size)
    present = {ADE20K_CLASSES[i] for i in np.unique(render_view(scene, ViewConditions(), 256)[1])}
    assert {"sky", "road", "mountain", "sea"} <= present


def test_demo_street_conditions_are_shifted_from_reference() -> None:
    def tally(split: str) -> Counter:
        return Counter(
            (c.time_of_day, c.weather)
            for site in range(200)
            for c in [draw_conditions(7, site, "temperate", split, 0)]
        )
    reference, street = tally("reference"), tally("demo-street")
    assert sum(n for (t, w), n in street.items() if t == "day" and w == "clear") < sum(
        n for (t, w), n in reference.items() if t == "day" and w == "clear"
    ) / 3


def test_ade20k_names_ids_and_errors() -> None:
    assert len(ADE20K_CLASSES) == NUM_CLASSES == 150 == len(set(ADE20K_CLASSES))
    assert ADE20K_CLASSES[:3] == ("wall", "building", "sky") and ADE20K_CLASSES[-1] == "flag"
    assert class_id("skyscraper") == 48 and class_id("palm") == 72
    assert all(class_id(name) == index for index, name in enumerate(ADE20K_CLASSES))
    with pytest.raises(KeyError, match="snow"):
        class_id("snow")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"reference_sites": -1}, "reference_sites"),
        ({"unseen_views": -2}, "unseen_views"),
        ({"image_size": 8}, "image_size"),
        ({"street_sites": 20, "reference_sites": 10}, "street_sites"),
        ({"site_jitter_km": -1.0}, "site_jitter_km"),
        ({"workers": 0}, "workers"),
        ({"reference_views": 2.5}, "reference_views"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_settings_are_refused_by_name(settings: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DemoWorldConfig.from_section({**DemoWorldConfig().model_dump(), **settings})


def test_too_many_sites_for_the_places_available_is_refused(tmp_path: Path) -> None:
    config = TINY.model_copy(update={"reference_sites": 500_000, "street_sites": 0})
    with pytest.raises(ValueError, match="reference_sites"):
        generate_demo_world(tmp_path / "world", config, progress=False)
    assert not (tmp_path / "world" / "manifest.csv").exists()

