"""Rendering and saving chunks of views, in this process or in a pool worker. Each view
depends only on its scene and its conditions, so the pool size cannot change any file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from geoloc_core.demo_world.output import write_png
from geoloc_core.demo_world.render import render_view
from geoloc_core.demo_world.scene import Scene
from geoloc_core.kill_point import kill_point

if TYPE_CHECKING:  # plan pulls in pandas via sites; workers never need it
    from geoloc_core.demo_world.plan import ViewJob

_scenes: dict[int, Scene] = {}
_settings: dict[str, object] = {}


def init_worker(scenes: dict[int, Scene], out_dir: Path, image_size: int) -> None:
    """Pool initializer: every worker receives the scenes once, not with every chunk."""
    _scenes.clear()
    _scenes.update(scenes)
    _settings["out_dir"] = Path(out_dir)
    _settings["image_size"] = int(image_size)


def render_chunk(jobs: list[ViewJob]) -> int:
    kill_point("demo-world-chunk")  # a fault-injection test stops a worker here
    out_dir = _settings["out_dir"]
    size = _settings["image_size"]
    assert isinstance(out_dir, Path) and isinstance(size, int)
    for job in jobs:
        image, labels = render_view(_scenes[job.site_id], job.conditions, size)
        write_png(out_dir / job.image_path, image)
        write_png(out_dir / job.label_path, labels)
    return len(jobs)
