"""`geoloc predict` on the materialized tiny project: the benchmark's own inference on demo
images (same decision, same candidates, same place names), real photos, broken files named
with their reason, EXIF truth and its error in km, the JSON document, the map, the LMM and
gallery joining the pool, the error before training, and a start-up without dagster."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml
from geopy.distance import geodesic
from PIL import ExifTags, Image, TiffImagePlugin

from geoloc_assets.cli import main
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.paths import ProjectPaths
from geoloc_core.predict.far_warning import calibrate
from tests.conftest import REPO

SAMPLES = Path(sklearn.__file__).parent / "datasets" / "images"  # real photos: china, flower
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RANKED_LINE = re.compile(
    r"^  (?P<mark>[* ])\s*(?P<rank>\d+)\s+(?P<lat>-?\d+\.\d+)\s+(?P<lon>-?\d+\.\d+)\s+"
    r"(?P<score>\S+)\s+(?P<source>\S+)\s+(?P<place>.+?)\s*$"
)


@pytest.fixture(scope="module")
def project(materialized_template, tmp_path_factory) -> Path:
    """One copy of the materialized project for the tests that only read it."""
    root = tmp_path_factory.mktemp("predict") / "project"
    shutil.copytree(materialized_template, root)
    return root


def geoloc(root: Path, *args: str) -> int:
    return main(["--root", str(root), "predict", "--no-progress", *args])


def predict_json(root: Path, capsys, *args: str) -> tuple[int, dict]:
    code = geoloc(root, "--json", *args)
    return code, json.loads(capsys.readouterr().out)


def validation_images(root: Path, n: int) -> pd.DataFrame:
    manifest = pd.read_csv(ProjectPaths(root).benchmark_manifest("validation"))
    return manifest.head(n)


def read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"query_id": str, "ref_id": str}, keep_default_na=False)


def with_gps(source: Path, target: Path, lat: float, lon: float) -> Path:
    """The same pixels (PNG stays lossless) with an EXIF GPS block at (lat, lon)."""
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    for axis, value, refs in (("Latitude", lat, "NS"), ("Longitude", lon, "EW")):
        degrees = int(abs(value))
        minutes = int((abs(value) - degrees) * 60)
        seconds = round((abs(value) - degrees - minutes / 60) * 3600, 4)
        parts = tuple(TiffImagePlugin.IFDRational(v) for v in (degrees, minutes, seconds))
        gps[getattr(ExifTags.GPS, f"GPS{axis}")] = parts
        gps[getattr(ExifTags.GPS, f"GPS{axis}Ref")] = refs[0] if value >= 0 else refs[1]
    Image.open(source).save(target, exif=exif.tobytes())  # an Exif of GPS only is falsy
    return target


def test_demo_images_get_the_benchmarks_decision_candidates_and_places(project, capsys):
    """The predict path is the benchmark's: for validation images, the decision is the one in
    predictions/validation.csv, the pool is the re-ranked top verification.pool_size, the
    neighbours are the candidates file's similar ones in order, with the same place names."""
    paths = ProjectPaths(project)
    rows = validation_images(project, 4)
    images = [str(project / p) for p in rows["image"]]
    # --all-views: every candidate of the pool, as the benchmark's files list them
    code, document = predict_json(project, capsys, *images, "--top-k", "100", "--all-views")
    assert code == 0 and document["failed"] == 0 and document["located"] == 4
    assert document["model"]["variant"] == "g3"
    predictions = pd.read_csv(paths.predictions("validation")).set_index("id")
    candidates = read_text_table(paths.candidates("validation"))
    similar_rows = candidates[candidates["kind"] == "similar"]
    reranked = read_text_table(paths.reranked("validation"))
    pool_size = yaml.safe_load((project / "params.yaml").read_text())["verification"]["pool_size"]
    for image_id, found in zip(rows["id"], document["images"], strict=True):
        expected = predictions.loc[image_id]
        assert (found["lat"], found["lon"]) == pytest.approx(
            (expected["pred_lat"], expected["pred_lon"]), abs=1e-6
        )
        decision = found["candidates"][0]
        assert decision["decision"] and decision["rank"] == 1
        assert sum(c["decision"] for c in found["candidates"]) == 1
        scores = [c["score"] for c in found["candidates"]]
        assert scores == sorted(scores, reverse=True)  # verify: ranked by GPS-space cosine
        similar = similar_rows[similar_rows["query_id"] == image_id]
        assert found["neighbours"] == similar.sort_values("rank")["ref_id"].tolist()
        pool = reranked[(reranked["query_id"] == image_id) & (reranked["rank"] < pool_size)]
        assert sorted(c["ref_id"] for c in found["candidates"]) == sorted(pool["ref_id"])
        places = dict(zip(pool["ref_id"], pool["place"], strict=True))
        for candidate in found["candidates"]:
            assert candidate["place_name"] == places[candidate["ref_id"]] != ""
            assert candidate["source"] in ("retrieval", "re-rank")
            assert -90 <= candidate["lat"] <= 90 and -180 <= candidate["lon"] <= 180


def test_exif_truth_gives_the_error_in_km_as_the_metrics(project, tmp_path, capsys):
    paths = ProjectPaths(project)
    row = validation_images(project, 1).iloc[0]
    photo = with_gps(project / row["image"], tmp_path / "geotagged.png", row["lat"], row["lon"])
    code, document = predict_json(project, capsys, str(photo))
    assert code == 0
    [found] = document["images"]
    assert found["exif_gps"] == pytest.approx({"lat": row["lat"], "lon": row["lon"]}, abs=1e-6)
    errors = pd.read_csv(paths.errors("validation")).set_index("id")
    assert found["error_km"] == pytest.approx(errors.loc[row["id"], "error_km"], abs=0.01)
    for candidate in found["candidates"]:
        truth = geodesic((row["lat"], row["lon"]), (candidate["lat"], candidate["lon"])).km
        assert candidate["error_km"] == pytest.approx(truth, abs=0.01)
    geoloc(project, str(photo))
    text = capsys.readouterr().out
    assert f"the decision is {found['error_km']:,.1f} km away (geodesic)" in text


def test_a_folder_of_real_photos_prints_ranked_candidates_with_places(project, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "notes.txt").write_text("not a photo, skipped by name")
    assert main(["--root", str(project), "predict", str(folder), "--top-k", "3"]) == 0
    pool_size = yaml.safe_load((project / "params.yaml").read_text())["verification"]["pool_size"]
    shown = min(3, pool_size)  # the pool's candidates, at most --top-k of them
    captured = capsys.readouterr()
    assert "predict: 100%" in captured.err and "notes.txt" in captured.err
    blocks = captured.out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks[:2]] == [
        str(folder / "china.jpg"),
        str(folder / "flower.jpg"),
    ]
    for block in blocks[:2]:
        ranked = [m for line in block.splitlines() if (m := RANKED_LINE.match(line))]
        assert [int(m["rank"]) for m in ranked] == list(range(1, shown + 1))
        assert [m["mark"] for m in ranked] == ["*"] + [" "] * (shown - 1)  # the decision
        for m in ranked:
            assert -90 <= float(m["lat"]) <= 90 and -180 <= float(m["lon"]) <= 180
            assert m["source"] in ("retrieval", "re-rank")
            assert m["place"].count(",") >= 1  # "city, state, country"
        assert f"decision (*): {ranked[0]['lat']}, {ranked[0]['lon']}" in block
    assert blocks[-1] == "2 photo(s): 2 located, 0 failed"


def test_broken_files_are_named_with_their_reason_and_the_rest_is_located(
    project, tmp_path, capsys
):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(SAMPLES / "flower.jpg", folder / "good.jpg")
    china = (SAMPLES / "china.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(china[: len(china) // 3])
    (folder / "text.jpg").write_text("hello, not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "album").mkdir()
    code, document = predict_json(
        project,
        capsys,
        str(folder),
        str(tmp_path / "missing.jpg"),
        str(tmp_path / "nothing-*.png"),
        str(folder / "a*"),  # a glob matching a folder
    )
    assert code == 1 and document["located"] == 1 and document["failed"] == 6
    reasons = {Path(i["image"]).name: i["error"] for i in document["images"]}
    assert reasons["good.jpg"] is None
    assert reasons["truncated.jpg"].startswith("truncated image")
    assert reasons["text.jpg"] == "not an image (no decoder recognises the bytes)"
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["missing.jpg"].startswith("file not found")
    assert reasons["nothing-*.png"] == "no file matches this pattern"
    assert reasons["album"].startswith("not a file")
    good = next(i for i in document["images"] if i["error"] is None)
    assert good["candidates"] and good["place_name"]
    assert geoloc(project, str(folder / "text.jpg"), str(folder / "good.jpg")) == 1
    out = capsys.readouterr().out
    assert f"{folder / 'text.jpg'}: error: not an image (no decoder recognises the bytes)" in out
    assert "2 photo(s): 1 located, 1 failed" in out


def test_map_shows_the_candidates_on_coastlines(project, tmp_path, capsys):
    row = validation_images(project, 1).iloc[0]
    photo = with_gps(project / row["image"], tmp_path / "geotagged.png", row["lat"], row["lon"])
    out = tmp_path / "map.png"
    assert geoloc(project, str(photo), str(SAMPLES / "china.jpg"), "--map", str(out)) == 0
    assert f"map of 2 photo(s) written to {out}" in capsys.readouterr().err
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(out) as picture:
        width, height = picture.size
        pixels = np.asarray(picture.convert("RGB"))
    assert width > 1500 and height > 400
    colours = {tuple(c) for c in pixels.reshape(-1, 3)[::97]}
    assert (228, 238, 247) in colours and (241, 237, 227) in colours  # sea and land drawn


def test_the_lmm_and_the_gallery_join_the_pool(project, tmp_path, capsys, monkeypatch):
    """lmm.provider openai (the local test server) and a gallery: G3's answers and the gallery
    points are candidates of the pool; in mode dualgeo the LMM's answer is the decision."""
    root = tmp_path / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("mlruns", ".dagster"))
    (root / "gallery.csv").write_text("lat,lon\n48.85,2.35\n-33.87,151.21\n35.68,139.69\n")
    monkeypatch.setenv("GEOLOC_LMM_API_KEY", "sk-test-not-a-real-key")
    photo = str(SAMPLES / "flower.jpg")
    with LmmStubServer() as server:
        edit = {
            "lmm": {
                "provider": "openai",
                "base_url": server.base_url,
                "n": 2,
                "g3_rag_sizes": [0, 5],
            },
            "verification": {"gallery": "gallery.csv", "gallery_top": 2},
        }
        write_params(root, edit)
        code, document = predict_json(root, capsys, photo, "--top-k", "100")
        assert code == 0
        [found] = document["images"]
        stages = [c["stage"] for c in found["candidates"]]
        settings = yaml.safe_load((root / "params.yaml").read_text())
        pool_size = settings["verification"]["pool_size"]
        assert found["candidates_total"] == pool_size + 2 * 2 + 2
        # the pool's retrieved candidates are named by the last step that ordered them
        retrieved = "retrieval" if settings["rerank"]["method"] == "none" else "re-rank"
        assert stages.count("lmm-zero-shot") == 2 and stages.count("lmm-rag-5") == 2
        assert stages.count("gallery") == 2
        for candidate in found["candidates"]:
            expected = {"lmm-zero-shot": "lmm", "lmm-rag-5": "lmm", "gallery": "gallery"}
            assert candidate["source"] == expected.get(candidate["stage"], retrieved)
            assert candidate["place_name"] or candidate["source"] == "lmm"
        gallery = {(c["lat"], c["lon"]) for c in found["candidates"] if c["source"] == "gallery"}
        assert gallery <= {(48.85, 2.35), (-33.87, 151.21), (35.68, 139.69)}

        write_params(root, {"lmm": {"mode": "dualgeo"}})
        code, document = predict_json(root, capsys, photo)
        [found] = document["images"]
        assert found["source"] == "lmm" and found["candidates"][0]["stage"] == "lmm-dualgeo"
        assert "DualGeo" in found["decided_by"] and found["candidates"][0]["decision"]


def write_params(root: Path, edits: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, values in edits.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_before_training_the_error_names_the_command(tiny_project, capsys):
    assert geoloc(tiny_project, str(SAMPLES / "china.jpg")) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("geoloc: error: no place texts in")
    assert "no trained model in" in line and "no retrieval index in" in line
    assert "`make demo`" in line and "`geoloc materialize --all`" in line


def test_a_partly_built_project_names_the_missing_group(project, tmp_path, capsys):
    root = tmp_path / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("mlruns", ".dagster"))
    shutil.rmtree(root / "artifacts" / "index")
    assert geoloc(root, str(SAMPLES / "china.jpg")) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"no retrieval index in {root / 'artifacts' / 'index'}" in line
    assert "`geoloc materialize --group index`" in line


def test_a_cold_start_imports_no_dagster(project):
    """A fresh `geoloc predict` process: what it loads (no dagster, no mlflow, no open_clip
    and so no torchvision: the demo's ViT tower is rebuilt from its weights file; none of the
    hub libraries, no geocoder), and its time."""
    probe = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from geoloc_assets.cli import main\n"
        f"code = main(['--root', {str(project)!r}, 'predict', '--no-progress', '--json', "
        f"{str(SAMPLES / 'china.jpg')!r}])\n"
        "print('SECONDS', time.perf_counter() - start, file=sys.stderr)\n"
        "print('LOADED', sorted(m for m in ('dagster', 'mlflow', 'matplotlib', 'transformers', "
        "'timm', 'huggingface_hub', 'reverse_geocoder', 'open_clip', 'torchvision') "
        "if m in sys.modules), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GEOLOC_ROOT"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    json.loads(done.stdout)
    assert "LOADED []" in done.stderr


def test_views_of_one_site_are_listed_once_with_their_count(project, capsys):
    """By default each place is listed once (its best view, `views` counted); --all-views
    lists every reference view; the decision is the same either way."""
    images = [str(project / p) for p in validation_images(project, 4)["image"]]
    _, grouped = predict_json(project, capsys, *images, "--top-k", "100")
    _, every = predict_json(project, capsys, *images, "--top-k", "100", "--all-views")
    collapsed = 0
    for by_place, by_view in zip(grouped["images"], every["images"], strict=True):
        assert (by_place["lat"], by_place["lon"]) == (by_view["lat"], by_view["lon"])
        assert by_place["candidates"][0]["decision"] and by_place["candidates"][0]["rank"] == 1
        assert (
            by_place["candidates_total"]
            == by_view["candidates_total"]
            == len(by_view["candidates"])
        )
        assert by_place["places_total"] == len(by_place["candidates"]) == by_view["places_total"]
        assert sum(c["views"] for c in by_place["candidates"]) == by_view["candidates_total"]
        assert [c["rank"] for c in by_place["candidates"]] == list(
            range(1, len(by_place["candidates"]) + 1)
        )
        points = [(c["lat"], c["lon"]) for c in by_place["candidates"]]
        assert len(points) == len(set(points))  # the demo's views of a site share coordinates
        assert all(c["views"] == 1 for c in by_view["candidates"])
        for place in by_place["candidates"]:
            views = [
                c
                for c in by_view["candidates"]
                if (c["lat"], c["lon"]) == (place["lat"], place["lon"])
            ]
            assert len(views) == place["views"]
            assert place["ref_id"] == views[0]["ref_id"]  # the best-ranked view stands for it
            collapsed += place["views"] > 1
    assert collapsed  # some site has two or more views among the candidates
    assert geoloc(project, images[0], "--top-k", "100") == 0
    text = capsys.readouterr().out
    shown = [m for line in text.splitlines() if (m := RANKED_LINE.match(line))]
    first = grouped["images"][0]["candidates"]
    assert len(shown) == len(first)
    for match, place in zip(shown, first, strict=True):
        assert match["place"].endswith(f"views: {place['views']}") == (place["views"] > 1)


def noise_photo(folder: Path) -> Path:
    """Random pixels: a photo of nowhere the model knows."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    return folder / "noise.png"


def test_a_photo_far_from_everything_gets_a_warning(project, tmp_path, capsys):
    """The score test's threshold comes from validation's decisions (their scores and the
    metrics' errors); the non-photo test compares the photo with drawn non-photos. Random noise
    is warned about by one or the other, a well-matched validation photo by neither."""
    paths = ProjectPaths(project)
    far = calibrate(paths.predictions("validation"), paths.errors("validation"))
    assert far is not None and far.wrong_only  # the tiny demo has wrong answers to learn from
    predictions = pd.read_csv(paths.predictions("validation"))
    best = predictions.loc[predictions["score"].idxmax(), "id"]
    manifest = validation_images(project, 100).set_index("id")
    familiar = str(project / manifest.loc[best, "image"])
    noise = str(noise_photo(tmp_path))
    code, document = predict_json(project, capsys, noise, familiar)
    assert code == 0
    far_one, known = document["images"]
    assert known["score"] >= far.threshold and known["warning"] is None
    assert far_one["warning"].startswith("far from everything the model knows")
    assert_warned_for_its_reason(far_one, far.threshold)
    assert geoloc(project, noise) == 0
    assert "  warning: far from everything the model knows" in capsys.readouterr().out
    unseen = pd.read_csv(paths.benchmark_manifest("demo-unseen"))
    _, document = predict_json(project, capsys, *[str(project / p) for p in unseen["image"]])
    for found in document["images"]:  # places in no reference: warned below the threshold
        if found["score"] < far.threshold or found["warning"] is not None:
            assert_warned_for_its_reason(found, far.threshold)


NON_PHOTO = re.compile(
    r"drawn non-photo \((.+), cosine ([0-9.]+)\) than to any reference photo \(best ([0-9.]+)\)"
)


def assert_warned_for_its_reason(found: dict, threshold: float) -> None:
    """Below the threshold the score test's warning; else the non-photo test's, whose drawn
    non-photo is closer than the nearest reference image."""
    if found["score"] < threshold:
        assert f"{threshold:.4f}" in found["warning"]
        return
    match = NON_PHOTO.search(found["warning"])
    assert match is not None, found["warning"]
    assert float(match[2]) > float(match[3])


def test_without_validation_results_only_the_non_photo_test_warns(project, tmp_path, capsys):
    """No threshold to compare the score with; the non-photo test needs none."""
    root = tmp_path / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("mlruns", ".dagster"))
    ProjectPaths(root).errors("validation").unlink()
    code, document = predict_json(root, capsys, str(noise_photo(tmp_path)))
    warning = document["images"][0]["warning"]
    assert code == 0 and "percentile" not in warning
    match = NON_PHOTO.search(warning)
    assert match is not None and float(match[2]) > float(match[3])


def test_two_views_of_one_site_are_one_place_with_views_2():
    """Within 1 km of a better-ranked view: the same place; farther, or an LMM answer: not."""
    from geoloc_core.predict.results import UNKNOWN_PLACE, RankedCandidate
    from geoloc_core.predict.same_place import one_per_place

    def view(rank: int, lat: float, ref_id: str | None, source: str = "re-rank"):
        return RankedCandidate(
            rank,
            lat,
            10.0,
            1 - rank / 10,
            source,
            "rerank",
            UNKNOWN_PLACE,
            rank == 1,
            ref_id=ref_id,
        )

    km = 1 / 111.2  # one degree of latitude is about 111.2 km
    candidates = [
        view(1, 45.0, "a-0"),
        view(2, 46.0, "b-0"),
        view(3, 45.0 + 0.5 * km, "a-1"),  # 0.5 km from a-0: another view of its site
        view(4, 45.0 + 1.5 * km, "c-0"),  # 1.5 km away: another place
        view(5, 45.0, None, "lmm"),  # an LMM answer at a-0's point is no view of it
    ]
    places = one_per_place(candidates)
    assert [(p.ref_id, p.views, p.rank) for p in places] == [
        ("a-0", 2, 1),
        ("b-0", 1, 2),
        ("c-0", 1, 3),
        (None, 1, 4),
    ]
    assert places[0].decision and places[0].lat == 45.0
