"""The catalogue of fetchable sources (catalogue.yaml beside this module), typed and checked
when it loads: a bad entry is refused in one line naming the entry and the key."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
# where a fetched file may go (relative to the project root): the raw data DVC versions, or
# the download cache for archives that are unpacked into the raw data
DESTINATION_ROOTS = ("data/raw/", "artifacts/cache/downloads/")
DATASETS = ("mp16pro", "im2gps3k", "yfcc4k")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
GLOB_CHARS = frozenset("*?[")

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class CatalogueError(ValueError):
    """catalogue.yaml is malformed, or names something that does not exist."""


def is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def _check_destination(to: str) -> str:
    """A project-relative POSIX path under DESTINATION_ROOTS, never leading out of it."""
    pure = PurePosixPath(to)
    if pure.is_absolute() or ".." in pure.parts or "\\" in to:
        raise ValueError(f"'{to}' must be a relative path without '..'")
    if not to.startswith(DESTINATION_ROOTS):
        raise ValueError(f"'{to}' must lie under one of {list(DESTINATION_ROOTS)}")
    return to


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Licence(_Strict):
    """What a user accepts by fetching: printed after every fetch."""

    name: Text
    terms: Text
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]


class HubFile(_Strict):
    """One file of a hub repository, or a glob over its files (resolved at the pinned commit).

    `to` absent: the Hugging Face cache. An exact path or a glob that must match one file:
    `to` is the file. A glob with `to` ending in '/': every match goes into that folder.
    """

    path: Text
    to: str | None = None
    sha256: Sha256 | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    optional: bool = False  # absent at the revision: noted, not an error
    # a glob whose matches are split parts of one archive (not themselves .tar files): parts
    # go to parts_to (not versioned) and are concatenated in name order into join_into
    parts_to: str | None = None
    join_into: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HubFile:
        if (self.parts_to is None) != (self.join_into is None):
            raise ValueError("parts_to and join_into go together")
        if self.join_into is not None:
            if not is_glob(self.path) or self.to is None or not self.to.endswith("/"):
                raise ValueError("join_into needs a glob path and a folder `to` for whole archives")
            _check_destination(self.join_into)
            _check_destination(self.parts_to)
            if not self.parts_to.endswith("/") or self.join_into.endswith("/"):
                raise ValueError("parts_to is a folder ('/' at the end), join_into a file")
        if self.to is not None:
            _check_destination(self.to)
            if self.to.endswith("/") and not is_glob(self.path):
                raise ValueError(f"to '{self.to}' is a folder but path '{self.path}' is one file")
        if is_glob(self.path) and (self.sha256 or self.size is not None):
            raise ValueError(f"path '{self.path}' is a glob: a sha256 or size belongs to one file")
        return self


class HubSource(_Strict):
    repo_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    repo_type: Literal["model", "dataset"]
    revision: Text  # a 40-hex commit (pinned), or a branch/tag pinned by the first fetch
    files: Annotated[tuple[HubFile, ...], Field(min_length=1)]

    @property
    def pinned(self) -> bool:
        return bool(COMMIT.fullmatch(self.revision))


class HttpFile(_Strict):
    """A file over plain HTTP(S), resumed with Range requests and checked by sha256."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    to: str
    sha256: Sha256 | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    # the URL is a web page with a download button (MediaFire): the file is put there by hand
    download_page: bool = False
    extract_images_to: str | None = None  # a zip whose photos go into this folder

    @model_validator(mode="after")
    def _consistent(self) -> HttpFile:
        _check_destination(self.to)
        if self.to.endswith("/"):
            raise ValueError(f"to '{self.to}' must name a file")
        if self.extract_images_to is not None:
            _check_destination(self.extract_images_to)
            if not self.to.endswith(".zip"):
                raise ValueError(f"extract_images_to needs a .zip file, not '{self.to}'")
        return self


class Entry(_Strict):
    description: Text
    licence: Licence
    dataset: Literal[DATASETS] | None = None  # which data report follows the fetch
    hub: HubSource | None = None
    http: tuple[HttpFile, ...] = ()

    @model_validator(mode="after")
    def _has_source(self) -> Entry:
        if self.hub is None and not self.http:
            raise ValueError("an entry needs a hub source, http files, or both")
        return self


class Catalogue(_Strict):
    entries: Annotated[dict[str, Entry], Field(min_length=1)]

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            raise CatalogueError(
                f"'{name}' is not in the fetch catalogue; known: {', '.join(self.entries)}"
            )
        return self.entries[name]


def _one_line(exc: ValidationError, source: Path) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{source}: {where}: {first['msg']}"


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    """The catalogue, validated; CatalogueError naming the bad key otherwise."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"{path}: cannot read the fetch catalogue ({exc})") from exc
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(_one_line(exc, path)) from None
