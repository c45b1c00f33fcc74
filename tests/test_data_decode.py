"""Image decoding that survives real files: each bad file is a per-item error with its id."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from geoloc_core.data.decode import ImageDecodeError, decode_rgb, probe_image
from geoloc_core.data.images import load_batch, load_rgb
from geoloc_core.data.locations import tar_location


def save(image: Image.Image, path: Path, fmt: str, **kwargs) -> Path:
    image.save(path, fmt, **kwargs)
    return path


def jpeg_bytes(size=(64, 48), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def files(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    monkeypatch.setenv("GEOLOC_TAR_INDEX_DIR", str(tmp_path / "tar-index"))
    made: dict[str, Path] = {}
    made["jpeg"] = tmp_path / "ok.jpg"
    made["jpeg"].write_bytes(jpeg_bytes())
    made["png"] = save(Image.new("RGB", (40, 40), (0, 128, 0)), tmp_path / "ok.png", "PNG")
    made["webp"] = save(Image.new("RGB", (40, 40), (0, 0, 255)), tmp_path / "ok.webp", "WEBP")
    # Stored 40 wide x 20 high, left half red; EXIF orientation 6 (rotate 90° clockwise).
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    made["rotated"] = save(Image.fromarray(pixels), tmp_path / "rot.jpg", "JPEG", exif=exif)
    made["gray"] = save(Image.new("L", (30, 30), 77), tmp_path / "gray.png", "PNG")
    sixteen = Image.fromarray(np.full((30, 30), 65535, dtype=np.uint16))
    made["gray16"] = save(sixteen, tmp_path / "gray16.png", "PNG")
    made["cmyk"] = save(Image.new("CMYK", (30, 30), (0, 255, 255, 0)), tmp_path / "c.jpg", "JPEG")
    made["rgba"] = save(Image.new("RGBA", (30, 30), (255, 0, 0, 0)), tmp_path / "a.png", "PNG")
    palette = Image.new("P", (30, 30), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    made["palette"] = save(palette, tmp_path / "p.png", "PNG", transparency=0)
    made["palette_plain"] = save(palette, tmp_path / "p2.png", "PNG")
    whole = jpeg_bytes((256, 256))
    made["truncated"] = tmp_path / "cut.jpg"
    made["truncated"].write_bytes(whole[: len(whole) // 2])
    made["empty"] = tmp_path / "empty.jpg"
    made["empty"].write_bytes(b"")
    made["text"] = tmp_path / "notes.jpg"
    made["text"].write_text("this is not a photo\n")
    made["bomb"] = save(Image.new("L", (3000, 3000)), tmp_path / "bomb.png", "PNG")
    made["missing"] = tmp_path / "nowhere.jpg"
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("top/ab/cd/member.jpg")
        data = jpeg_bytes((32, 32), (10, 200, 10))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    made["tar"] = Path(tar_location(archive, "top/ab/cd/member.jpg"))
    made["tar_missing"] = Path(tar_location(archive, "top/ab/cd/absent.jpg"))
    return made


GOOD = ["jpeg", "png", "webp", "rotated", "gray", "gray16", "cmyk", "rgba", "palette",
        "palette_plain", "tar"]
BAD = {
    "truncated": "truncated image",
    "empty": "empty file (0 bytes)",
    "text": "not an image",
    "bomb": "decompression bomb",
    "missing": "file not found",
    "tar_missing": "no member 'top/ab/cd/absent.jpg'",
}
LIMIT = 1_000_000  # the bomb has 9 M pixels


def test_every_good_file_becomes_rgb(files):
    for name in GOOD:
        rgb = load_rgb(files[name], max_pixels=LIMIT)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, name


def test_exif_orientation_is_applied(files):
    rgb = load_rgb(files["rotated"])
    assert rgb.shape == (40, 20, 3)  # upright: 20 wide, 40 high
    assert rgb[5, 10, 0] > 200 and rgb[35, 10, 0] < 60  # the red half is now on top


def test_modes_convert_as_documented(files):
    assert tuple(load_rgb(files["gray"])[0, 0]) == (77, 77, 77)
    assert tuple(load_rgb(files["gray16"])[0, 0]) == (255, 255, 255)
    cyan_free = load_rgb(files["cmyk"])[0, 0]
    assert cyan_free[0] > 200 and cyan_free[1] < 60 and cyan_free[2] < 60
    assert tuple(load_rgb(files["rgba"])[0, 0]) == (255, 255, 255)  # transparent -> white
    assert tuple(load_rgb(files["palette"])[0, 0]) == (255, 255, 255)
    assert tuple(load_rgb(files["palette_plain"])[0, 0]) == (10, 20, 30)


def test_one_batch_survives_every_bad_file(files):
    names = GOOD + list(BAD)
    stack, positions, failures = load_batch(
        names, [files[n] for n in names], size=16, max_pixels=LIMIT
    )
    assert stack.shape == (len(GOOD), 16, 16, 3)
    assert [names[p] for p in positions] == GOOD
    reasons = {f.id: f.reason for f in failures}
    assert set(reasons) == set(BAD)
    for name, expected in BAD.items():
        assert expected in reasons[name], (name, reasons[name])


def test_bomb_is_refused_from_the_header(files):
    with pytest.raises(ImageDecodeError, match="3000x3000 = 9000000 pixels"):
        decode_rgb(files["bomb"].read_bytes(), max_pixels=LIMIT)


def test_probe_reports_size_and_problem(files):
    good = probe_image(files["jpeg"], LIMIT)
    assert (good.width, good.height, good.problem) == (64, 48, "")
    assert good.min_side == 48
    assert probe_image(files["truncated"], LIMIT).problem.startswith("truncated image")
    assert probe_image(files["bomb"], LIMIT).problem.startswith("decompression bomb")
    assert probe_image(files["text"], LIMIT).problem.startswith("not an image")
    for name in GOOD:
        assert probe_image(files[name], LIMIT).problem == "", name
    for name, expected in BAD.items():
        assert expected in probe_image(files[name], LIMIT).problem, name
