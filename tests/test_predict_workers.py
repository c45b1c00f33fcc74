"""`geoloc predict` on a folder with `loader.workers: 2`: the photos are read and decoded by
worker processes, and the answer (every candidate, score and error) is the one the predictor
gives when it decodes them itself; a broken file is still named with its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from geoloc_assets.cli import main
from geoloc_core.paths import ProjectPaths


def test_a_folder_predicted_with_two_workers_answers_as_without(
    materialized_template, tmp_path, capsys
) -> None:
    root = tmp_path / "project"
    shutil.copytree(materialized_template, root)
    manifest = pd.read_csv(ProjectPaths(root).benchmark_manifest("validation")).head(20)
    assert len(manifest) >= 5
    folder = tmp_path / "photos"
    folder.mkdir()
    for image in manifest["image"]:
        shutil.copy(root / image, folder / Path(image).name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    documents = []
    for workers in (0, 2):
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["loader"]["workers"] = workers
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        code = main(["--root", str(root), "predict", "--no-progress", "--json", str(folder)])
        assert code == 1  # the broken file
        documents.append(json.loads(capsys.readouterr().out))
    alone, pooled = documents
    assert pooled["images"] == alone["images"]
    assert pooled["located"] == len(manifest) and pooled["failed"] == 1
    broken = next(i for i in pooled["images"] if i["image"].endswith("broken.png"))
    assert broken["error"] == "not an image (no decoder recognises the bytes)"
