"""The imported GeoCLIP model at prediction time: photos -> the top-k gallery points by
logit_scale * cos(image, gallery point), with GeoCLIP's softmax probability over the gallery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from geoloc_core.file_hash import file_sha256
from geoloc_core.imports.geoclip import (
    GALLERY,
    GALLERY_EMBEDDINGS,
    KIND,
    MLP,
    MODEL_RECORD,
    SCALE,
    image_mlp,
    read_gallery_csv,
)
from geoloc_core.imports.record import read_record


@dataclass(frozen=True)
class GalleryTop:
    indices: np.ndarray  # (n, k) rows of the gallery, best first
    probabilities: np.ndarray  # (n, k) softmax over the whole gallery (GeoCLIP's `predict`)
    cosines: np.ndarray  # (n, k) cos(image, gallery point)
    logits: np.ndarray  # (n, k) logit_scale.exp() * cosine


class GeoClipModel:
    """Loads an import folder once; `top_k` ranks the gallery for decoded photos."""

    def __init__(self, folder: Path, clip_directory: Path | None = None) -> None:
        """folder: the import; clip_directory: where its CLIP directory is now (a bundle's
        copy), None: where the import found it."""
        from transformers import CLIPImageProcessor, CLIPModel

        folder = Path(folder)
        read_record(folder, KIND)  # every file checked against its digest
        details = json.loads((folder / MODEL_RECORD).read_text())
        clip = details["clip"]
        source = clip.get("directory") or clip["hub_id"]
        if "directory" in clip:
            source = str(clip_directory or source)
            weights = Path(source) / "model.safetensors"
            if not weights.is_file() or file_sha256(weights) != clip["weights_sha256"]:
                raise ValueError(
                    f"the CLIP at {source} is not the one imported (its weights changed or "
                    "are gone): run `geoloc import geoclip` again"
                )
        self.clip = CLIPModel.from_pretrained(source).eval()
        self.processor = CLIPImageProcessor.from_pretrained(source)
        self.mlp = image_mlp(folder / MLP)
        scale = torch.load(folder / SCALE, map_location="cpu", weights_only=True)
        self.logit_scale = float(scale.exp())
        self.gallery = read_gallery_csv(folder / GALLERY)
        self.gallery_embeddings = torch.from_numpy(np.load(folder / GALLERY_EMBEDDINGS))
        self.folder = folder
        self.clip_source = source

    @torch.no_grad()
    def image_embeddings(self, images: list[Image.Image]) -> torch.Tensor:
        """Unit GeoCLIP image embeddings (n, 512): CLIP's projection, then GeoCLIP's MLP."""
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        pooled = self.clip.vision_model(pixel_values=pixels).pooler_output
        return F.normalize(self.mlp(self.clip.visual_projection(pooled)), dim=1)

    @torch.no_grad()
    def top_k(self, images: list[Image.Image], k: int) -> GalleryTop:
        cosines = self.image_embeddings(images) @ self.gallery_embeddings.t()
        logits = self.logit_scale * cosines
        probabilities = logits.softmax(dim=-1)
        top = torch.topk(probabilities, min(k, len(self.gallery)), dim=1)
        pick = top.indices
        return GalleryTop(
            pick.numpy(),
            top.values.numpy(),
            cosines.gather(1, pick).numpy(),
            logits.gather(1, pick).numpy(),
        )
