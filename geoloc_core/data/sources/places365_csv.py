"""The `*_places365.csv` files of MP16-Pro, IM2GPS3k and YFCC4k (IMG_ID, AUTHOR, LAT, LON, ...),
read with two refusals: swapped LAT/LON headers and the wrong YFCC set.

Swapped headers. Old copies of these CSVs label the longitude column LAT and the latitude
column LON. A latitude beyond ±90 is impossible, while in a world-wide photo set about a third
of the longitudes lie beyond ±90 (IM2GPS3k: 35 %, the Americas west of 90° W and East Asia and
Oceania east of 90° E). So with correct headers the LAT column has (almost) no value beyond ±90
and the LON column has many; with swapped headers it is the other way round. The file is
refused when the LAT column holds values beyond ±90 in at least SWAP_MIN_SHARE of the rows and
in more rows than the LON column does: a few corrupt rows (quarantined later, one by one) never
trip it, and a swapped copy always does. For a set whose photos all lie within ±90° longitude
that evidence is absent, so known datasets also carry anchor rows (id, lat, lon copied from
the published file): an anchor found with its coordinates exchanged refuses the file too.
Nothing is ever swapped automatically: the message names the file and what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_core.data.manifest import ManifestError

REQUIRED_COLUMNS = ("IMG_ID", "LAT", "LON")
SWAP_MIN_SHARE = 0.01
SWAP_MIN_ROWS = 3
ANCHOR_TOLERANCE_DEG = 1e-4


@dataclass(frozen=True)
class KnownDataset:
    """What is known of a published set: its size and a few of its rows."""

    name: str
    rows: int | None
    anchors: tuple[tuple[str, float, float], ...] = ()


KNOWN_DATASETS = {
    "im2gps3k": KnownDataset(
        "im2gps3k",
        2997,
        anchors=(
            ("1000269685_e60e9cdfb4_1125_78841376@N00.jpg", 32.325436, -64.764404),
            ("817626137_3a7d95a2ee_1323_57253263@N00.jpg", 42.351404, -71.037109),
            ("515228175_f6e7d4b36a_249_14491548@N00.jpg", 41.391567, 2.164869),
        ),
    ),
    "yfcc4k": KnownDataset("yfcc4k", 4536),
    "mp16pro": KnownDataset("mp16pro", None),
}
YFCC25600_ROWS = 25600


def read_places365_csv(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """IMG_ID and the named text columns as text, LAT/LON as floats (unparseable -> NaN, which
    the manifest gate quarantines with its id)."""
    if not path.is_file():
        raise ManifestError(f"{path} does not exist; check the dataset paths under params data")
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ManifestError(
            f"{path} lacks columns {missing} (has {header[:12]}); expected a *_places365.csv "
            "file with IMG_ID, LAT, LON"
        )
    texts = ["IMG_ID", *[c for c in text_columns if c in header]]
    frame = pd.read_csv(
        path,
        usecols=[*texts, "LAT", "LON"],
        dtype={c: str for c in texts},
        keep_default_na=False,
        na_values={"LAT": [""], "LON": [""]},
    )
    for column in ("LAT", "LON"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["IMG_ID"] = frame["IMG_ID"].replace("", np.nan)
    return frame


def swap_evidence(lat: np.ndarray, lon: np.ndarray) -> tuple[int, int]:
    """(rows with |LAT| > 90, rows with |LON| > 90), NaNs ignored."""
    with np.errstate(invalid="ignore"):
        return int(np.sum(np.abs(lat) > 90.0)), int(np.sum(np.abs(lon) > 90.0))


def check_lat_lon_headers(frame: pd.DataFrame, path: Path, dataset: str | None = None) -> None:
    """Refuse a file whose LAT/LON headers are swapped (see the module docstring)."""
    lat = frame["LAT"].to_numpy(dtype=np.float64)
    lon = frame["LON"].to_numpy(dtype=np.float64)
    lat_beyond, lon_beyond = swap_evidence(lat, lon)
    rows = int(np.sum(np.isfinite(lat) & np.isfinite(lon)))
    threshold = max(SWAP_MIN_ROWS, SWAP_MIN_SHARE * rows)
    if lat_beyond >= threshold and lat_beyond > lon_beyond:
        raise ManifestError(
            f"{path}: the LAT column holds values beyond ±90 in {lat_beyond} of {rows} rows "
            f"while LON exceeds ±90 in only {lon_beyond}: the LAT and LON headers look "
            "swapped (old copies of this CSV have that error). Swap the two names in the "
            "header line and run again; nothing was swapped automatically."
        )
    known = KNOWN_DATASETS.get(dataset or "")
    if known is None or not known.anchors:
        return
    by_id = frame.drop_duplicates("IMG_ID").set_index("IMG_ID")
    for image_id, true_lat, true_lon in known.anchors:
        if image_id not in by_id.index:
            continue
        row = by_id.loc[image_id]
        if _close(row["LAT"], true_lon) and _close(row["LON"], true_lat):
            raise ManifestError(
                f"{path}: row {image_id} has LAT={row['LAT']}, LON={row['LON']}, but the "
                f"published {known.name} file has LAT={true_lat}, LON={true_lon}: the LAT "
                "and LON headers are swapped. Swap the two names in the header line and run "
                "again; nothing was swapped automatically."
            )


def _close(a: float, b: float) -> bool:
    return bool(np.isfinite(a) and abs(float(a) - b) <= ANCHOR_TOLERANCE_DEG)


def refuse_wrong_yfcc(frame: pd.DataFrame, path: Path) -> None:
    """The 25,600-row 'yfcc25600' list is a different benchmark from YFCC4k: say so."""
    if len(frame) == YFCC25600_ROWS or "25600" in path.name:
        raise ManifestError(
            f"{path} has {len(frame)} rows: this is the 'yfcc25600' set (YFCC26k), a "
            f"different benchmark from YFCC4k ({KNOWN_DATASETS['yfcc4k'].rows} rows). Point "
            "params data.yfcc4k_csv at yfcc4k_places365.csv; results on the two sets are "
            "not comparable."
        )
