"""`geoloc import geoclip` then `geoloc predict --model`: GeoCLIP's own prediction.

GeoCLIP's modules come from the installed wheel (geoclip.model.GeoCLIP with its shipped MLP,
location encoder and logit scale), with a tiny random CLIP of ViT-L/14's 768-d projection in
place of the hub's, and the first GALLERY points of its gallery (the wheel's from_pretrained
sets custom galleries the same way), so the test stays small. The import is registered in a
real sqlite MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from geoloc_assets.cli import main
from geoloc_core.file_hash import file_sha256

transformers = pytest.importorskip("transformers")
geoclip_model = pytest.importorskip("geoclip.model.GeoCLIP", reason="the geoclip wheel")
REPO = Path(__file__).resolve().parents[1]
GALLERY = 500
TINY_CLIP = {
    "projection_dim": 768,
    "text_config": {"hidden_size": 16, "intermediate_size": 20, "num_attention_heads": 2,
                    "num_hidden_layers": 1, "max_position_embeddings": 12, "vocab_size": 50,
                    "projection_dim": 768},
    "vision_config": {"hidden_size": 32, "intermediate_size": 40, "num_attention_heads": 2,
                      "num_hidden_layers": 2, "image_size": 56, "patch_size": 8,
                      "projection_dim": 768},
}


def photos() -> list[Path]:
    import matplotlib
    import sklearn.datasets

    images = Path(sklearn.datasets.__file__).parent / "images"
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [images / "china.jpg", images / "flower.jpg", hopper]


def tiny_clip(folder: Path) -> Path:
    torch.manual_seed(3)
    transformers.CLIPModel(transformers.CLIPConfig(**TINY_CLIP)).save_pretrained(folder)
    side = TINY_CLIP["vision_config"]["image_size"]
    transformers.CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    ).save_pretrained(folder)
    return folder


def test_import_then_predict_gives_geoclips_top5(tmp_path, capsys):
    from geoclip.model.misc import load_gps_data

    from geoloc_core.encoders.geoclip_files import GPS_GALLERY_FILE, geoclip_file

    clip = tiny_clip(tmp_path / "clip")
    gallery = tmp_path / "gallery.csv"
    pd.read_csv(geoclip_file(GPS_GALLERY_FILE), nrows=GALLERY).to_csv(gallery, index=False)
    root = tmp_path / "project"
    root.mkdir()
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    argv = ["--root", str(root), "import", "geoclip", "--clip", str(clip)]
    argv += ["--gallery", str(gallery), "--serve"]
    assert main(argv) == 0
    folder = root / "artifacts" / "imports" / "geoclip"
    capsys.readouterr()
    images = [str(p) for p in photos()]
    argv = ["--root", str(root), "predict", "--model", str(folder), "--json", "--no-progress",
            "--top-k", "5", *images]
    assert main(argv) == 0
    ours = json.loads(capsys.readouterr().out)

    theirs = geoclip_model.GeoCLIP(clip_path=str(clip)).eval()
    theirs.gps_gallery = load_gps_data(str(gallery))
    with torch.no_grad():  # the logits themselves: logit_scale * cos(image, gallery point)
        pixels = torch.cat([theirs.image_encoder.preprocess_image(Image.open(i).convert("RGB"))
                            for i in images])
        logits = theirs(pixels, theirs.gps_gallery)
        scale = float(theirs.logit_scale.exp())
    for row, (image, answer) in enumerate(zip(images, ours["images"], strict=True)):
        points, probabilities = theirs.predict(image, top_k=5)
        candidates = answer["candidates"]
        assert [(c["lat"], c["lon"]) for c in candidates] == [tuple(p) for p in points.tolist()]
        got = torch.tensor([c["score"] for c in candidates])
        assert torch.allclose(got, probabilities, atol=1e-5, rtol=0)
        cosines = torch.tensor([c["retrieval_score"] for c in candidates])
        top = torch.topk(logits[row], 5).values
        assert torch.allclose(cosines * scale, top, atol=1e-5, rtol=0)
        assert answer["lat"] == candidates[0]["lat"] and candidates[0]["source"] == "gallery"
    assert ours["images"][0]["candidates"][0] != ours["images"][1]["candidates"][0]

    # the import's MLflow run: the sha256 of every source file, the written files logged
    from mlflow.tracking import MlflowClient

    from geoloc_core.paths import ProjectPaths

    client = MlflowClient(tracking_uri=ProjectPaths(root).tracking_uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`geoloc.import` = 'geoclip'"
    )
    assert len(runs) == 1
    params = runs[0].data.params
    weights = geoclip_file("model/weights/location_encoder_weights.pth")
    assert params["source.location_encoder.sha256"] == file_sha256(weights)
    assert params["source.gallery.sha256"] == file_sha256(gallery)
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"import.json", "gallery_embeddings.npy", "image_mlp.pth"} <= logged
    assert runs[0].data.tags["geoloc.registered_model"] == "models:/geoloc-geoclip/1"

    # the served model: the pyfunc on the logged bundle answers as `geoloc predict --model`
    import base64
    import types

    from geoloc_core.serving.pyfunc_model import BUNDLE_ARTIFACT, ServedPredictor

    logged = Path(client.download_artifacts(runs[0].info.run_id, "served_model", str(tmp_path)))
    served = ServedPredictor()
    bundle = next(logged.rglob("geoclip_bundle.json")).parent
    served.load_context(types.SimpleNamespace(artifacts={BUNDLE_ARTIFACT: str(bundle)}))
    request = pd.DataFrame(
        {"image": [base64.b64encode(Path(images[0]).read_bytes()).decode()], "name": ["china"]}
    )
    answer = served.predict(None, request, {"top_k": 5})[0]
    expected = ours["images"][0]["candidates"]
    assert [(c["lat"], c["lon"]) for c in answer["candidates"]] == [
        (c["lat"], c["lon"]) for c in expected
    ]  # one photo here, three in a batch there: the scores agree to float32 rounding
    assert [c["score"] for c in answer["candidates"]] == pytest.approx(
        [c["score"] for c in expected], abs=1e-6
    )
