"""`geoloc import g3`: a G3-format state dict (random weights, a tiny CLIP of G3's structure)
becomes the project's backbone, alignment model and index, and they compute what G3's
published code computes. G3's computation is written here from utils/G3.py and IndexSearch.py
(transformers' CLIP towers, pyproj's Mercator, the RFF capsules, the heads), not from ours."""

from __future__ import annotations

import json
import math
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from geoloc_assets.cli import main
from geoloc_core.imports.g3 import import_g3
from geoloc_core.models.inputs import AlignmentBatch
from geoloc_core.models.persistence import load_model
from geoloc_core.retrieval.index import load_index, search

transformers = pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[1]
pyproj = pytest.importorskip("pyproj")

TINY_CLIP = {
    "projection_dim": 24,
    "text_config": {"hidden_size": 16, "intermediate_size": 20, "num_attention_heads": 2,
                    "num_hidden_layers": 1, "max_position_embeddings": 12, "vocab_size": 50,
                    "projection_dim": 24},
    "vision_config": {"hidden_size": 16, "intermediate_size": 20, "num_attention_heads": 2,
                      "num_hidden_layers": 2, "image_size": 28, "patch_size": 7,
                      "projection_dim": 24},
}
COORDS = np.array(
    [[48.8566, 2.3522], [-33.8688, 151.2093], [64.1466, -21.9426], [0.0, 0.0],
     [-77.85, 166.67], [35.6762, 139.6503], [-54.8019, -68.303], [87.5, -120.25]], np.float32
)


def g3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The keys and shapes of G3's `state_dict()` for a CLIP of config TINY_CLIP."""
    torch.manual_seed(seed)
    clip = transformers.CLIPModel(transformers.CLIPConfig(**TINY_CLIP))
    state = {}
    for key, value in clip.state_dict().items():
        if key == "logit_scale" or key.endswith("position_ids"):
            continue
        key = key.replace("visual_projection", "vision_projection", 1)
        state[key] = value.clone()
    width = TINY_CLIP["projection_dim"]

    def linear(name, fan_in, fan_out):
        state[f"{name}.weight"] = torch.randn(fan_out, fan_in) / math.sqrt(fan_in)
        state[f"{name}.bias"] = torch.randn(fan_out) * 0.1

    for i, sigma in enumerate((2**0, 2**4, 2**8)):
        stem = f"location_encoder.LocEnc{i}"
        state[f"{stem}.capsule.0.b"] = torch.randn(256, 2) * sigma
        linear(f"{stem}.capsule.1", 512, 1024)
        linear(f"{stem}.capsule.3", 1024, 1024)
        linear(f"{stem}.capsule.5", 1024, 1024)
        linear(f"{stem}.head.0", 1024, 512)
    for head in ("vision_projection_else_1", "text_projection_else", "vision_projection_else_2"):
        linear(f"{head}.0", width, width)
        linear(f"{head}.2", width, width)
    linear("location_projection_else.0", 512, 512)
    linear("location_projection_else.2", 512, width)
    for i, value in enumerate((3.99, 4.2, 3.5), start=1):
        state[f"logit_scale{i}"] = torch.tensor(value)
    return state


class G3Reference:
    """G3's inference computations, from its published code, over a G3 state dict."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.s = state
        clip = transformers.CLIPModel(transformers.CLIPConfig(**TINY_CLIP)).eval()
        clip_state = {k.replace("vision_projection", "visual_projection", 1): v
                      for k, v in state.items() if k.split(".")[0] in
                      ("vision_model", "text_model", "vision_projection", "text_projection")}
        clip_state["logit_scale"] = clip.logit_scale.detach()
        clip.load_state_dict(clip_state, strict=False)
        self.clip = clip
        self.mercator = pyproj.Transformer.from_proj(
            pyproj.Proj("epsg:4326"), pyproj.Proj("epsg:3857"), always_xy=True
        )

    def mlp(self, name, x):  # nn.Sequential(Linear, ReLU, Linear)
        x = F.relu(F.linear(x, self.s[f"{name}.0.weight"], self.s[f"{name}.0.bias"]))
        return F.linear(x, self.s[f"{name}.2.weight"], self.s[f"{name}.2.bias"])

    @torch.no_grad()
    def image(self, pixels):
        image_embeds = self.clip.visual_projection(self.clip.vision_model(pixels)[1])
        unit = lambda x: x / x.norm(p=2, dim=-1, keepdim=True)  # noqa: E731
        text = unit(self.mlp("vision_projection_else_1", image_embeds))
        gps = unit(self.mlp("vision_projection_else_2", image_embeds))
        return image_embeds, text, gps, torch.cat([unit(image_embeds), text, gps], dim=1)

    @torch.no_grad()
    def locations(self, latlon):
        lat = torch.from_numpy(latlon)[:, 0].float().numpy()
        lon = torch.from_numpy(latlon)[:, 1].float().numpy()
        projected = self.mercator.transform(lon, lat)
        location = torch.Tensor([[c[1], c[0]] for c in zip(*projected, strict=True)])
        location = location / 20037508.3427892
        features = torch.zeros(location.shape[0], 512)
        for i in range(3):
            stem = f"location_encoder.LocEnc{i}"
            vp = 2 * np.pi * location @ self.s[f"{stem}.capsule.0.b"].T
            x = torch.cat((torch.cos(vp), torch.sin(vp)), dim=-1)
            for k in (1, 3, 5):
                x = F.relu(F.linear(x, self.s[f"{stem}.capsule.{k}.weight"],
                                    self.s[f"{stem}.capsule.{k}.bias"]))
            features += F.linear(x, self.s[f"{stem}.head.0.weight"], self.s[f"{stem}.head.0.bias"])
        out = self.mlp("location_projection_else", features)
        return out / out.norm(p=2, dim=-1, keepdim=True)


def g3_files(tmp_path, state):
    checkpoint, config = tmp_path / "g3.pth", tmp_path / "clip.json"
    torch.save(state, checkpoint)
    config.write_text(json.dumps(TINY_CLIP))
    return checkpoint, config


def test_imported_g3_computes_g3(tmp_path):
    state = g3_state_dict()
    reference = G3Reference(state)
    torch.manual_seed(7)
    pixels = torch.randn(12, 3, 28, 28)
    clip_embeds, ref_text, ref_gps, ref_vectors = reference.image(pixels)
    # G3's index over the first 9 images (IndexSearch.build_index), rows in the CSV's order
    g3_index = faiss.IndexFlatIP(3 * 24)
    g3_index.add(ref_vectors[:9].numpy())
    faiss.write_index(g3_index, str(tmp_path / "g3.index"))
    pd.DataFrame({"IMG_ID": [f"a/{i}.jpg" for i in range(9)], "AUTHOR": "x",
                  "LAT": COORDS[[0, 1, 2, 3, 4, 5, 6, 7, 0], 0],
                  "LON": COORDS[[0, 1, 2, 3, 4, 5, 6, 7, 0], 1]}).to_csv(
        tmp_path / "order.csv", index=False)
    checkpoint, config = g3_files(tmp_path, state)
    folder = import_g3(
        tmp_path, checkpoint, config, tmp_path / "g3.index", tmp_path / "order.csv",
        log=lambda _: None,
    ).folder
    assert folder == tmp_path / "artifacts" / "imports" / "g3"

    # (a) the frozen backbone, read by transformers itself: G3's CLIP embedding
    clip = transformers.CLIPModel.from_pretrained(folder / "backbone").eval()
    with torch.no_grad():
        ours_clip = clip.visual_projection(clip.vision_model(pixel_values=pixels).pooler_output)
    assert torch.allclose(ours_clip, clip_embeds, atol=1e-5, rtol=0)
    assert clip_embeds.abs().max() > 1e-2

    # (b) the alignment model: image->text, image->GPS, locations, retrieval vector
    trained = load_model(folder / "model")
    model = trained.model
    assert model.config.gps_projection == "mercator_g3" and model.config.text_head
    batch = AlignmentBatch(pooled=ours_clip, tokens=None, label_maps=None)
    with torch.no_grad():
        parts = model.embed(batch)
        vectors = model.retrieval_embedding(batch) * math.sqrt(3)
        locations = model.encode_gps(torch.from_numpy(COORDS))
    assert torch.allclose(parts["image_text"], ref_text, atol=1e-5, rtol=0)
    assert torch.allclose(parts["image_gps"], ref_gps, atol=1e-5, rtol=0)
    assert torch.allclose(vectors, ref_vectors, atol=1e-5, rtol=0)
    expected_locations = reference.locations(COORDS)
    assert (expected_locations[0] - expected_locations[1]).abs().max() > 1e-2
    assert torch.allclose(locations, expected_locations, atol=1e-5, rtol=0)
    scales = {k: float(v.detach()) for k, v in model.logit_scales.items()}
    assert scales == pytest.approx({"image_text": 3.99, "image_gps": 4.2, "gps_text": 3.5})

    # (c) the index: G3's rows in G3's order, the same ranking for every query
    index = load_index(folder / "index" / "reference.faiss")
    meta = pd.read_csv(folder / "index" / "reference_meta.csv", dtype={"id": str})
    assert meta["id"].tolist() == [f"a/{i}.jpg" for i in range(9)]
    queries = vectors[9:].numpy()
    g3_scores, g3_rows = g3_index.search(ref_vectors[9:].numpy(), 9)
    scores, rows = search(index, queries, 9)
    assert np.array_equal(rows, g3_rows)
    assert np.allclose(scores * 3, g3_scores, atol=1e-5)  # unit rows: G3's scores / 3
    record = json.loads((folder / "index" / "index.json").read_text())
    assert record["parts"] == ["frozen", "image_text", "image_gps"]
    graph_adopts_the_import(tmp_path)


def test_a_checkpoint_of_another_shape_is_refused_naming_the_key(tmp_path, capsys):
    state = g3_state_dict()
    state["vision_projection_else_2.2.weight"] = torch.zeros(512, 24)
    checkpoint, config = g3_files(tmp_path, state)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    argv = ["--root", str(tmp_path), "import", "g3", str(checkpoint), "--clip-config", str(config)]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("geoloc: error: ")
    assert "key vision_projection_else_2.2.weight has shape [512, 24], expected [24, 24]" in (
        errors[0]
    )
    assert not (tmp_path / "artifacts" / "imports" / "g3").exists()
    # without --clip-config the checkpoint is read as ViT-L/14's: the first CLIP key is named
    assert main(["--root", str(tmp_path), "import", "g3", str(checkpoint)]) == 2
    assert "token_embedding.weight has shape [50, 16], expected [49408, 768]" in (
        capsys.readouterr().err
    )


def graph_adopts_the_import(tmp_path):
    """The alignment_model step's adoption (train.imported_model): the import's bytes, checked
    against the backbone the features come from; dvc.yaml lists the folder as a dep of the
    model stage."""
    from geoloc_core.imports.adopt import adopt_model
    from geoloc_core.paths import ProjectPaths
    from geoloc_core.pipeline.dvc_stages import imported_deps, render
    from geoloc_core.training.backbone_weights import BackboneRecord, write_record

    paths = ProjectPaths(tmp_path)
    imported = "artifacts/imports/g3"
    write_record(tmp_path, BackboneRecord("ViT-L-14", "openai", "tag:openai"))
    wanted = r"set backbone\.pretrained to artifacts/imports/g3/backbone"
    with pytest.raises(ValueError, match=wanted):
        adopt_model(paths, imported)
    write_record(tmp_path, BackboneRecord("hf-clip", f"{imported}/backbone", "x"))
    summary = adopt_model(paths, imported)
    assert summary["variant"] == "g3" and summary["import_kind"] == "g3"
    source = tmp_path / imported / "model" / "model.pt"
    assert paths.model_weights.read_bytes() == source.read_bytes()
    assert load_model(paths.model_dir).model.config.gps_branch_dim == 512
    with open(source, "r+b") as handle:  # a damaged import is refused, never adopted
        handle.seek(100)
        handle.write(b"\0\0\0\0")
    with pytest.raises(ValueError, match="geoloc import"):
        adopt_model(paths, imported)

    params = {"train": {"imported_model": imported}}
    assert imported_deps(params) == {"model": [imported]}
    stages = __import__("yaml").safe_load(render(["validation"], imported=imported_deps(params)))
    assert stages["stages"]["model"]["deps"][0] == imported
    assert imported not in stages["stages"]["index"]["deps"]
