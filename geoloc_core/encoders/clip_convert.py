"""open_clip CLIP weights -> a transformers CLIP checkpoint directory (config.json,
model.safetensors, preprocessor_config.json), loadable by `backbone.implementation:
transformers` and by transformers' own CLIPModel.from_pretrained.

Useful beyond the tests: the demo's pretrained towers, or any open_clip ViT, become a checkpoint
that transformers users (G3's and GeoCLIP's code) can load. Only the plain CLIP ViT is
converted (class-token pooling, learned positions, no layer scale, argmax text pooling); any
other structure is refused by name rather than converted approximately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geoloc_core.encoders.clip_towers import ClipTowers, activation_names
from geoloc_core.encoders.hf_clip import write_processor_config

# open_clip residual block -> transformers encoder layer (the attention's q/k/v split apart).
_BLOCK = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}


def _refuse(what: str) -> None:
    raise ValueError(f"cannot convert this open_clip model to transformers' CLIP: {what}")


def _check_plain_vit(model: nn.Module) -> None:
    visual = model.visual
    if type(visual).__name__ != "VisionTransformer":
        _refuse(f"its image tower is {type(visual).__name__}, not a VisionTransformer")
    if getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok":
        _refuse("its image tower does not pool the class token")
    if visual.final_ln_after_pool:
        _refuse("its image tower applies ln_post after pooling")
    if getattr(model, "text_pool_type", "argmax") != "argmax":
        _refuse(f"its text tower pools with {model.text_pool_type!r}, not argmax")
    if not isinstance(model.text_projection, nn.Parameter):
        _refuse("its text projection is not a plain matrix")
    for block in [*visual.transformer.resblocks, *model.transformer.resblocks]:
        if not isinstance(block.ls_1, nn.Identity) or not isinstance(block.ls_2, nn.Identity):
            _refuse("it uses layer scale")
        if type(block).__name__ != "ResidualAttentionBlock" or block.attn.in_proj_bias is None:
            _refuse("its attention blocks differ from CLIP's")


def clip_config(model: nn.Module) -> dict[str, Any]:
    """The transformers CLIPConfig (as a dict) of an open_clip CLIP ViT, read from its modules."""
    visual = model.visual
    names = activation_names(model)
    if len(names) != 1:
        _refuse(f"its activations are {sorted(names)}, not one GELU kind")
    act = names.pop()
    vblock, tblock = visual.transformer.resblocks[0], model.transformer.resblocks[0]
    size = visual.image_size
    patch = visual.conv1.kernel_size
    vocab, text_width = model.token_embedding.weight.shape
    return {
        "projection_dim": int(visual.proj.shape[1]),
        "logit_scale_init_value": float(model.logit_scale.detach()),
        "vision_config": {
            "hidden_size": int(visual.conv1.out_channels),
            "intermediate_size": int(vblock.mlp.c_fc.out_features),
            "num_hidden_layers": len(visual.transformer.resblocks),
            "num_attention_heads": int(vblock.attn.num_heads),
            "image_size": int(size[0] if isinstance(size, tuple | list) else size),
            "patch_size": int(patch[0]),
            "hidden_act": act,
            "layer_norm_eps": float(vblock.ln_1.eps),
            "projection_dim": int(visual.proj.shape[1]),
        },
        "text_config": {
            "vocab_size": int(vocab),
            "hidden_size": int(text_width),
            "intermediate_size": int(tblock.mlp.c_fc.out_features),
            "num_hidden_layers": len(model.transformer.resblocks),
            "num_attention_heads": int(tblock.attn.num_heads),
            "max_position_embeddings": int(model.positional_embedding.shape[0]),
            "hidden_act": act,
            "layer_norm_eps": float(tblock.ln_1.eps),
            "projection_dim": int(model.text_projection.shape[1]),
            # OpenAI's tokens: end-of-text is the highest id, padding 0 (open_clip's tokenizer)
            "bos_token_id": int(vocab) - 2,
            "eos_token_id": int(vocab) - 1,
            "pad_token_id": 0,
        },
    }


def _blocks(state: dict[str, torch.Tensor], source: str, target: str, count: int) -> dict:
    out = {}
    for i in range(count):
        src, dst = f"{source}.{i}", f"{target}.{i}"
        q, k, v = state[f"{src}.attn.in_proj_weight"].chunk(3, dim=0)
        qb, kb, vb = state[f"{src}.attn.in_proj_bias"].chunk(3, dim=0)
        for name, weight, bias in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
            out[f"{dst}.self_attn.{name}_proj.weight"] = weight
            out[f"{dst}.self_attn.{name}_proj.bias"] = bias
        for ours, theirs in _BLOCK.items():
            for kind in ("weight", "bias"):
                out[f"{dst}.{theirs}.{kind}"] = state[f"{src}.{ours}.{kind}"]
    return out


def transformers_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The open_clip CLIP's weights under transformers CLIPModel's names."""
    _check_plain_vit(model)
    s = {k: v.detach().clone() for k, v in model.state_dict().items()}
    layers_v = len(model.visual.transformer.resblocks)
    layers_t = len(model.transformer.resblocks)
    out = {
        "vision_model.embeddings.class_embedding": s["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": s["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": s["visual.positional_embedding"],
        "visual_projection.weight": s["visual.proj"].t().contiguous(),
        "text_model.embeddings.token_embedding.weight": s["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": s["positional_embedding"],
        "text_projection.weight": s["text_projection"].t().contiguous(),
        "logit_scale": s["logit_scale"].reshape(()),
    }
    for ours, theirs in (
        ("visual.ln_pre", "vision_model.pre_layrnorm"),
        ("visual.ln_post", "vision_model.post_layernorm"),
        ("ln_final", "text_model.final_layer_norm"),
    ):
        for kind in ("weight", "bias"):
            out[f"{theirs}.{kind}"] = s[f"{ours}.{kind}"]
    out.update(_blocks(s, "visual.transformer.resblocks", "vision_model.encoder.layers", layers_v))
    out.update(_blocks(s, "transformer.resblocks", "text_model.encoder.layers", layers_t))
    return out


def save_transformers_clip(towers: ClipTowers, directory: Path) -> Path:
    """Write open_clip towers as a transformers CLIP checkpoint directory; the weights load
    strictly (every parameter of CLIPModel given, none left over)."""
    from transformers import CLIPConfig, CLIPModel

    if towers.implementation != "open_clip":
        _refuse(f"these towers come from {towers.implementation}")
    config = CLIPConfig(**clip_config(towers.model))
    clip = CLIPModel(config)
    state = transformers_state_dict(towers.model)
    expected = set(clip.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        _refuse(f"weights missing {missing[:3]} / unexpected {extra[:3]}")
    clip.load_state_dict(state, strict=True)
    directory = Path(directory)
    clip.save_pretrained(directory, safe_serialization=True)
    write_processor_config(directory, towers.transform)
    return directory
