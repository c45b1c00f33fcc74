"""Where the installed `geoclip` wheel keeps its released files, found without importing it.

The wheel ships GeoCLIP's trained location encoder and its 100K GPS gallery. Importing the
package would load transformers and its image tower; only the files are needed, so the package
directory is located through importlib's finder. `geoclip` is installed without its dependency
pins (Makefile: `pip install --no-deps`), because it pins huggingface-hub below 2.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GEOCLIP = "geoclip"  # the value of model.gps_init / verification.gallery naming the wheel's file
LOCATION_ENCODER_FILE = "model/weights/location_encoder_weights.pth"
GPS_GALLERY_FILE = "model/gps_gallery/coordinates_100K.csv"
INSTALL_HINT = "install it with `pip install --no-deps geoclip==1.3.0` (make install does)"


def geoclip_package_dir() -> Path:
    """The installed geoclip package folder; ModuleNotFoundError saying how to install it."""
    spec = importlib.util.find_spec(GEOCLIP)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the geoclip wheel is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def geoclip_file(relative: str) -> Path:
    path = geoclip_package_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the geoclip wheel: {INSTALL_HINT}")
    return path


def resolve_release_file(value: str, relative: str, root: Path) -> Path:
    """`geoclip` -> the wheel's file; anything else is a path relative to the project root."""
    return geoclip_file(relative) if value == GEOCLIP else Path(root) / value
