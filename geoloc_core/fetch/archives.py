"""The photos of a downloaded zip into the benchmark's image folder, flat (a CSV's IMG_ID is a
bare file name), idempotent (a photo already there with the same size is not rewritten)."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from geoloc_core.fetch.checksums import FetchError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class Extraction:
    photos: int  # photos in the archive
    written: int  # of which this call wrote (the others were already there, same size)


def extract_photos(archive: Path, folder: Path) -> Extraction:
    """Every photo member of archive as folder/<its file name>; other members are skipped.

    Only the base name is used, so no member can write outside folder; two photos with the
    same name in different sub-folders are refused rather than one silently replacing the other.
    """
    try:
        handle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise FetchError(
            f"{archive} is not a zip archive ({exc}): delete it and fetch again, or put the "
            "right file there by hand"
        ) from exc
    with handle:
        members = [
            m for m in handle.infolist()
            if not m.is_dir() and PurePosixPath(m.filename).suffix.lower() in PHOTO_SUFFIXES
            and not PurePosixPath(m.filename).name.startswith("._")  # macOS resource forks
        ]
        by_name: dict[str, zipfile.ZipInfo] = {}
        for member in members:
            name = PurePosixPath(member.filename).name
            if name in by_name:
                raise FetchError(
                    f"{archive} holds two photos named {name} ({by_name[name].filename}, "
                    f"{member.filename}); the CSV cannot tell them apart"
                )
            by_name[name] = member
        folder.mkdir(parents=True, exist_ok=True)
        written = 0
        for name, member in tqdm(sorted(by_name.items()), desc=f"unzip {archive.name}",
                                 unit="photo", leave=False):
            target = folder / name
            if target.is_file() and target.stat().st_size == member.file_size:
                continue
            tmp = target.with_name(target.name + ".part")
            with handle.open(member) as source, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            tmp.replace(target)
            written += 1
    return Extraction(len(by_name), written)
