"""Pixel-only nuisances: daylight, weather, sensor noise and JPEG artefacts. None of these
sees the label map, so none can change it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from geoloc_core.demo_world.conditions import ViewConditions

# brightness and colour tint of the light by time of day
DAYLIGHT = {
    "day": (1.0, (1.0, 1.0, 1.0)),
    "dusk": (0.62, (1.12, 0.85, 0.68)),
    "night": (0.4, (0.7, 0.82, 1.2)),
}
# brightness, desaturation, haze strength by weather
WEATHER = {
    "clear": (1.0, 0.0, 0.0),
    "overcast": (0.84, 0.45, 0.1),
    "fog": (0.9, 0.35, 0.8),
    "rain": (0.7, 0.35, 0.35),
}
FOG_GREY = 0.8
FOG_FALLOFF = 3.5


def light_and_weather(rgb: np.ndarray, is_sky: np.ndarray, emissive: np.ndarray,
                      depth: np.ndarray, conditions: ViewConditions) -> np.ndarray:
    """Darkens and tints lit surfaces (the sky and light sources carry their own colour),
    then washes colour out and adds haze that thickens with distance."""
    brightness, tint = DAYLIGHT[conditions.time_of_day]
    weather_brightness, desaturation, haze = WEATHER[conditions.weather]
    lit = ~(is_sky | emissive)
    factor = np.array(tint) * brightness * weather_brightness
    out = np.where(lit[..., None], rgb * factor, rgb)
    if desaturation > 0.0:
        grey = out.mean(axis=2, keepdims=True)
        out = out + (grey - out) * desaturation
    if haze > 0.0:
        fog_colour = FOG_GREY * brightness * np.array(tint)
        weight = haze * (1.0 - np.exp(-FOG_FALLOFF * depth)) / (1.0 - np.exp(-FOG_FALLOFF))
        out = out + (fog_colour - out) * weight[..., None]
    return out


def rain_streaks(rgb: np.ndarray, conditions: ViewConditions) -> np.ndarray:
    """Short bright slanted streaks at seeded places."""
    size = rgb.shape[0]
    rng = np.random.default_rng([conditions.noise_seed, 1])
    count = max(1, size * size // 160)
    length = max(2, size // 12)
    rows0 = rng.integers(-length, size, count)
    cols0 = rng.integers(0, size + length // 2, count)
    steps = np.arange(length)
    rows = (rows0[:, None] + steps[None, :]).ravel()
    cols = (cols0[:, None] - steps[None, :] // 3).ravel()
    keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    out = rgb.copy()
    out[rows[keep], cols[keep]] = out[rows[keep], cols[keep]] * 0.7 + 0.25
    return out


def sensor(rgb: np.ndarray, conditions: ViewConditions) -> np.ndarray:
    """8-bit quantisation with Gaussian noise, then a JPEG round trip at the view's quality."""
    rng = np.random.default_rng([conditions.noise_seed, 2])
    levels = rgb * 255.0 + rng.normal(0.0, conditions.noise_sigma, rgb.shape)
    pixels = np.clip(np.rint(levels), 0, 255).astype(np.uint8)
    if conditions.jpeg_quality is None:
        return pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG",
                                 quality=int(conditions.jpeg_quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()
