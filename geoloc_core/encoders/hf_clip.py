"""A transformers CLIPModel as the frozen towers, as G3 and GeoCLIP load CLIP.

`backbone.implementation: transformers` with `backbone.pretrained` a hub id or a directory in
transformers' format (config.json, model.safetensors, preprocessor_config.json). The towers
give what the pipeline reads from open_clip's, computed the same way:
- the image embedding: visual_projection(post_layernorm(CLS)), open_clip's `pooled @ proj`;
- the patch tokens: post_layernorm of the last hidden states without CLS (open_clip applies
  ln_post to every token before pooling), projected by backbone_outputs with `proj`;
- the text embedding: text_projection of the final-norm state at the end-of-text token.
Text is tokenized by open_clip's tokenizer (OpenAI's BPE, padded with 0 after end-of-text),
which both text models read the same way: the causal mask keeps padding out of the pooled
state, and the pooled position is the end-of-text token in both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geoloc_core.data.clip_preprocess import PER_IMAGE_KEY, ImageTransform, processor_transform
from geoloc_core.encoders.clip_towers import ClipTowers, clip_tokenizer

CONFIG, WEIGHTS, PROCESSOR = "config.json", "model.safetensors", "preprocessor_config.json"
TAG_PREFIX = "tag:"


class HfVisual:
    """The image side with open_clip VisionTransformer's interface (backbone_outputs): called
    on pixels, returns the projected embedding, and (pooled, tokens) when output_tokens."""

    def __init__(self, clip: nn.Module) -> None:
        self._clip = [clip]  # a list: not registered twice as a submodule
        self.output_tokens = False
        self.image_size = int(clip.config.vision_config.image_size)
        self.output_dim = int(clip.config.projection_dim)

    @property
    def proj(self) -> torch.Tensor:
        """(width, embed) as open_clip's visual.proj: tokens @ proj is the projection."""
        return self._clip[0].visual_projection.weight.t()

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        clip = self._clip[0]
        out = clip.vision_model(pixel_values=pixels)
        pooled = clip.visual_projection(out.pooler_output)
        if not self.output_tokens:
            return pooled
        return pooled, clip.vision_model.post_layernorm(out.last_hidden_state[:, 1:])


class HfClip(nn.Module):
    """transformers' CLIPModel behind open_clip CLIP's methods (.visual, .encode_image,
    .encode_text, .logit_scale); the weights are the CLIPModel's, under `clip.`."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip
        self.visual = HfVisual(clip)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def encode_image(self, pixels: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        pooled = self.visual(pixels)
        return F.normalize(pooled, dim=-1) if normalize else pooled

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        out = self.clip.text_model(input_ids=tokens)
        text = self.clip.text_projection(out.pooler_output)
        return F.normalize(text, dim=-1) if normalize else text


def _is_local(pretrained: str) -> bool:
    return Path(pretrained).is_dir()


def checkpoint_digest(directory: Path) -> str:
    """SHA-256 over the files that decide the towers' outputs (config, weights, preprocessing),
    so a FeatureSpec names this exact checkpoint."""
    h = hashlib.sha256()
    for name in (CONFIG, WEIGHTS, PROCESSOR):
        file = Path(directory) / name
        h.update(name.encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def weights_id(pretrained: str) -> str:
    """What a record stores for these weights: the directory's digest, or tag:<hub id>."""
    return checkpoint_digest(Path(pretrained)) if _is_local(pretrained) else TAG_PREFIX + pretrained


def _checkpoint_file(pretrained: str, name: str) -> Path:
    """A file of a local checkpoint directory, or of a hub repository (downloaded once)."""
    if _is_local(pretrained):
        return Path(pretrained) / name
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(pretrained, name))


def checkpoint_config(pretrained: str) -> dict[str, Any]:
    """The checkpoint's config.json (CLIPConfig as a dict), without loading its weights."""
    check_checkpoint(pretrained)
    return json.loads(_checkpoint_file(pretrained, CONFIG).read_text())


def _processor_config(pretrained: str) -> dict[str, Any]:
    file = _checkpoint_file(pretrained, PROCESSOR)
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing: a transformers CLIP checkpoint for backbone.pretrained needs "
            "its image preprocessing (write it with geoloc_core.encoders.hf_clip."
            "write_processor_config, or copy openai/clip-vit-large-patch14's)"
        )
    return json.loads(file.read_text())


def check_checkpoint(pretrained: str) -> None:
    """Refuse a local directory without the three files, naming the first missing one."""
    if not _is_local(pretrained):
        return
    for name in (CONFIG, WEIGHTS, PROCESSOR):
        if not (Path(pretrained) / name).is_file():
            raise FileNotFoundError(
                f"backbone.pretrained={pretrained!r} has no {name}: a transformers CLIP "
                f"checkpoint directory holds {CONFIG}, {WEIGHTS} and {PROCESSOR}"
            )


def build_hf_clip(pretrained: str, device: str | torch.device = "cpu") -> ClipTowers:
    """Towers from a transformers CLIP checkpoint (hub id or local directory), fp32."""
    from transformers import CLIPModel

    check_checkpoint(pretrained)
    clip = CLIPModel.from_pretrained(pretrained, dtype=torch.float32)
    clip.to(device)
    model = HfClip(clip)
    transform = processor_transform(_processor_config(pretrained), model.visual.image_size)
    context = int(clip.config.text_config.max_position_embeddings)
    tokenizer = clip_tokenizer(context)
    return ClipTowers(
        model, tokenizer, model.visual.output_dim, transform, implementation="transformers"
    )


def write_processor_config(directory: Path, transform: ImageTransform) -> Path:
    """preprocessor_config.json for transform, as transformers' CLIPImageProcessor reads it."""
    resample = {"bicubic": 3, "bilinear": 2}[transform.interpolation]
    size: dict[str, int] = (
        {"shortest_edge": transform.size}
        if transform.resize_mode == "shortest"
        else {"height": transform.size, "width": transform.size}
    )
    config = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": size,
        "resample": resample,
        "do_center_crop": True,
        "crop_size": {"height": transform.size, "width": transform.size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(transform.mean),
        "image_std": list(transform.std),
        "do_convert_rgb": True,
    }
    if transform.per_image:  # geoloc reads it back; transformers' own processor ignores it
        config[PER_IMAGE_KEY] = True
    file = Path(directory) / PROCESSOR
    file.write_text(json.dumps(config, indent=2) + "\n")
    return file
