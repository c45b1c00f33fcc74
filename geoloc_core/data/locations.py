"""Where an image lives: a plain file, or a member of an uncompressed tar archive.

A manifest's `image` column holds one string per row. A tar member is written as
`<archive path>#<member name>`, e.g. `data/raw/mp16pro/mp-16-images.tar#mp-16-images/3f/a0/1.jpg`.
The form survives `Path(root) / location` (other steps join it onto the project root), so
every reader accepts both a str and a Path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TAR_SUFFIX = ".tar"
MEMBER_SEPARATOR = "#"
_MARKER = TAR_SUFFIX + MEMBER_SEPARATOR


@dataclass(frozen=True)
class TarMember:
    archive: Path
    member: str

    def __str__(self) -> str:
        return f"{self.archive}{MEMBER_SEPARATOR}{self.member}"


def tar_location(archive: str | Path, member: str) -> str:
    """The manifest string for one archive member."""
    archive_text = Path(archive).as_posix()
    if not archive_text.endswith(TAR_SUFFIX):
        raise ValueError(f"{archive_text} is not an uncompressed .tar archive")
    return f"{archive_text}{MEMBER_SEPARATOR}{member}"


def parse_location(location: str | Path) -> Path | TarMember:
    """A plain path, or the archive and member a `<archive>.tar#<member>` string names.

    An existing file always wins, so a photo whose own name contains '.tar#' still reads.
    """
    text = str(location)
    cut = text.find(_MARKER)
    if cut < 0 or Path(text).is_file():
        return Path(text)
    archive = Path(text[: cut + len(TAR_SUFFIX)])
    member = text[cut + len(_MARKER) :]
    return TarMember(archive, member)
