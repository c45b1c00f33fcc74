"""Keep a data set's photo paths inside its own folder.

The folder comes from params (trusted); the entries under it come from the data set's files (a
CSV's IMG_ID, a manifest's image column, a symlink in a photo folder), which a shared or
downloaded data set controls. An entry that leads elsewhere would make the pipeline read, hash
and embed any file on the machine, so the row is refused with the reason instead.
"""

from __future__ import annotations

from pathlib import Path, PurePath


def escape_reason(entry: str | PurePath, folder: Path) -> str:
    """'' when folder/entry stays inside folder, symlinks resolved; else why it does not."""
    text = str(entry)
    if not text:
        return ""
    relative = PurePath(text)
    if relative.is_absolute() or text.startswith(("/", "\\")):
        return f"absolute image path {text!r} is not allowed: give it relative to {folder}"
    if ".." in relative.parts:
        return f"image path {text!r} leaves its data folder {folder} ('..')"
    base = folder.resolve()
    target = (folder / relative).resolve()
    if not target.is_relative_to(base):
        return f"image path {text!r} is a link to {target}, outside its data folder {base}"
    return ""
