"""Initialise the GPS encoder from GeoCLIP's released location-encoder weights.

GeoCLIP's file (location_encoder_weights.pth) holds, per scale i, `LocEnc{i}.capsule.0.b`
(the Fourier matrix, (256, 2)), three hidden layers `capsule.{1,3,5}` (512->1024->1024->1024)
and `head.0` (1024->512). Our branches have the same shape with other names; this module maps
one onto the other and refuses, naming every mismatch and the params that would fit, when the
file and `model.gps_*` disagree. GeoCLIP fed Equal Earth coordinates to these layers; here they
get Mercator (the issue's and G3's choice), so the weights are a starting point that training
adapts, not a frozen encoder.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from geoloc_core.encoders.gps import GPSEncoder

_KEY = re.compile(r"^LocEnc(\d+)\.(capsule|head)\.(\d+)\.(b|weight|bias)$")
SIGMA_TOLERANCE = 2.0  # a branch's Fourier matrix std may differ from its sigma by this factor
GEOCLIP_SHAPES_HINT = (
    "GeoCLIP's released encoder fits model.gps_sigmas [1.0, 16.0, 256.0], "
    "gps_fourier_features 512, gps_hidden 1024, gps_layers 3, embed_dim 512"
)


class GeoClipWeightsError(ValueError):
    """The file is not a GeoCLIP location encoder matching the configured GPS encoder."""


def _target_name(branch: int, part: str, index: int, kind: str) -> str:
    if part == "head":
        if index != 0 or kind == "b":
            raise GeoClipWeightsError(f"unexpected GeoCLIP key LocEnc{branch}.head.{index}.{kind}")
        return f"branches.{branch}.head.{kind}"
    if index == 0:
        if kind != "b":
            raise GeoClipWeightsError(f"unexpected GeoCLIP key LocEnc{branch}.capsule.0.{kind}")
        return f"branches.{branch}.rff.matrix"
    # capsule = [rff, Linear, ReLU, Linear, ReLU, ...]: Linear k sits at index 2k + 1.
    return f"branches.{branch}.mlp.{index - 1}.{kind}"


def geoclip_state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GeoCLIP keys -> this encoder's keys (Fourier matrices transposed to (2, features/2))."""
    mapped: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in raw.items():
        match = _KEY.match(key)
        if match is None:
            unknown.append(key)
            continue
        branch, part, index, kind = match.groups()
        name = _target_name(int(branch), part, int(index), kind)
        mapped[name] = value.t() if kind == "b" else value
    if unknown:
        raise GeoClipWeightsError(
            f"{len(unknown)} keys are not GeoCLIP location-encoder keys, e.g. {unknown[:3]}; "
            "give the file GeoCLIP releases as location_encoder_weights.pth"
        )
    return mapped


def load_geoclip_weights(encoder: GPSEncoder, path: Path) -> None:
    """Copy GeoCLIP's weights into encoder in place; GeoClipWeightsError on any mismatch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.gps_init={path} does not exist; download GeoCLIP's "
            "location_encoder_weights.pth there or set model.gps_init to null"
        )
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise GeoClipWeightsError(f"{path} holds a {type(raw).__name__}, not a state dict")
    mapped = geoclip_state_dict(raw)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(mapped))
    extra = sorted(set(mapped) - set(own))
    wrong = [
        f"{name}: file {tuple(mapped[name].shape)}, encoder {tuple(own[name].shape)}"
        for name in sorted(set(own) & set(mapped))
        if mapped[name].shape != own[name].shape
    ]
    if missing or extra or wrong:
        raise GeoClipWeightsError(
            f"{path} does not fit the GPS encoder of params model.gps_*: "
            + (f"missing {missing[:4]}; " if missing else "")
            + (f"unexpected {extra[:4]}; " if extra else "")
            + (f"shape mismatches {wrong[:4]}; " if wrong else "")
            + GEOCLIP_SHAPES_HINT
        )
    _check_scales(encoder, mapped, path)
    encoder.load_state_dict(mapped, strict=True)


def _check_scales(encoder: GPSEncoder, mapped: dict[str, torch.Tensor], path: Path) -> None:
    """The file's Fourier matrices must have the configured sigmas, in the configured order."""
    for index, sigma in enumerate(encoder.sigmas):
        std = float(mapped[f"branches.{index}.rff.matrix"].float().std())
        if not sigma / SIGMA_TOLERANCE <= std <= sigma * SIGMA_TOLERANCE:
            raise GeoClipWeightsError(
                f"{path}: branch {index}'s Fourier matrix has std {std:.3g} but "
                f"model.gps_sigmas[{index}] is {sigma:g}; list the sigmas in the file's order"
            )
