"""G3's g3.pth, read and checked against the shapes G3's class has for a CLIP configuration.

G3 (utils/G3.py) wraps transformers' CLIP: `vision_model.*`, `text_model.*`, the two CLIP
projections (`vision_projection`, `text_projection`), its heads on CLIP's projection width P
(`vision_projection_else_1`: image->text, `vision_projection_else_2`: image->GPS,
`text_projection_else`; each P->P->P), its location encoder (`location_encoder.LocEnc{0,1,2}`:
256 Fourier pairs, three 1024-wide hidden layers, a 512-d head), the location projection
(`location_projection_else`: 512->512->P) and three logit scales. A checkpoint of any other
shape is refused with one line naming its first mismatched key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

G3_SIGMAS = (1.0, 16.0, 256.0)  # 2^0, 2^4, 2^8, LocEnc0..2
G3_FOURIER_PAIRS = 256  # GaussianEncoding(encoded_size=256): 512 features per branch
G3_CAPSULE_WIDTH = 1024
G3_CAPSULE_LAYERS = 3  # capsule.1, .3, .5
G3_BRANCH_DIM = 512  # each branch's head, and the summed location features
HEADS = ("vision_projection_else_1", "vision_projection_else_2", "text_projection_else")
# CLIP's own projections: transformers' names in a CLIPModel, G3's in its checkpoint
CLIP_PROJECTIONS = {"visual_projection": "vision_projection", "text_projection": "text_projection"}
# transformers before 4.31 saved these buffers; they are fixed (arange) and carry no weights
IGNORED_SUFFIXES = ("position_ids",)


class G3CheckpointError(ValueError):
    """The file is not a G3 state dict of the expected architecture."""


@dataclass(frozen=True)
class G3Checkpoint:
    clip: dict[str, torch.Tensor]  # transformers CLIPModel keys
    heads: dict[str, torch.Tensor]  # every other G3 key, as G3 names it
    projection_dim: int


def expected_shapes(clip_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """G3's state-dict keys and shapes, in G3's module order, for CLIP tensors clip_shapes."""
    width = clip_shapes["visual_projection.weight"][0]
    shapes: dict[str, tuple[int, ...]] = {}
    for name, shape in clip_shapes.items():
        if name == "logit_scale" or name.endswith(IGNORED_SUFFIXES):
            continue  # G3 keeps CLIP's towers and projections, not CLIP's temperature
        prefix, _, rest = name.partition(".")
        shapes[f"{CLIP_PROJECTIONS.get(prefix, prefix)}.{rest}"] = shape
    for scale in ("logit_scale1", "logit_scale2", "logit_scale3"):
        shapes[scale] = ()
    features = 2 * G3_FOURIER_PAIRS
    for branch in range(len(G3_SIGMAS)):
        stem = f"location_encoder.LocEnc{branch}"
        shapes[f"{stem}.capsule.0.b"] = (G3_FOURIER_PAIRS, 2)
        fan_in = features
        for layer in range(G3_CAPSULE_LAYERS):
            shapes[f"{stem}.capsule.{2 * layer + 1}.weight"] = (G3_CAPSULE_WIDTH, fan_in)
            shapes[f"{stem}.capsule.{2 * layer + 1}.bias"] = (G3_CAPSULE_WIDTH,)
            fan_in = G3_CAPSULE_WIDTH
        shapes[f"{stem}.head.0.weight"] = (G3_BRANCH_DIM, G3_CAPSULE_WIDTH)
        shapes[f"{stem}.head.0.bias"] = (G3_BRANCH_DIM,)
    for head in ("vision_projection_else_1", "text_projection_else"):
        shapes.update(_mlp(head, width, width, width))
    shapes.update(_mlp("vision_projection_else_2", width, width, width))
    shapes.update(_mlp("location_projection_else", G3_BRANCH_DIM, G3_BRANCH_DIM, width))
    return shapes


def _mlp(name: str, fan_in: int, hidden: int, out: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{name}.0.weight": (hidden, fan_in),
        f"{name}.0.bias": (hidden,),
        f"{name}.2.weight": (out, hidden),
        f"{name}.2.bias": (out,),
    }


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a torch state-dict file, loaded without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file gets the same one line
        raise G3CheckpointError(f"{path} is not a torch state dict: {exc}") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise G3CheckpointError(f"{path} holds a {type(raw).__name__}, not a state dict")
    return raw


def check_g3(
    path: Path, raw: dict[str, torch.Tensor], clip_shapes: dict[str, tuple[int, ...]]
) -> G3Checkpoint:
    """Split a G3 state dict into CLIP's tensors and G3's own, or refuse in one line naming the
    first key (in G3's order) that is missing, unexpected or of another shape."""
    expected = expected_shapes(clip_shapes)
    found = {k: v for k, v in raw.items() if not k.endswith(IGNORED_SUFFIXES)}
    hint = "pass --clip-config with the CLIPConfig JSON of the checkpoint's CLIP"
    for key, value in found.items():  # the file's own order: its first wrong key is named
        if key not in expected:
            raise G3CheckpointError(
                f"{path}: unexpected key {key} (shape {list(value.shape)}): not part of G3's "
                "model; is this G3's g3.pth?"
            )
        if tuple(value.shape) != expected[key]:
            raise G3CheckpointError(
                f"{path}: key {key} has shape {list(value.shape)}, expected "
                f"{list(expected[key])}; {hint}"
            )
    for key, shape in expected.items():
        if key not in found:
            raise G3CheckpointError(
                f"{path}: missing key {key} (expected shape {list(shape)}); {hint}"
            )
    reverse = {g3: ours for ours, g3 in CLIP_PROJECTIONS.items()}
    clip, heads = {}, {}
    for key, value in found.items():
        prefix, _, rest = key.partition(".")
        if prefix in ("vision_model", "text_model") or prefix in reverse:
            clip[f"{reverse.get(prefix, prefix)}.{rest}"] = value.float()
        else:
            heads[key] = value.float()
    return G3Checkpoint(clip, heads, clip_shapes["visual_projection.weight"][0])
