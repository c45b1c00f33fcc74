"""Generating the demo world: choose real sites, lay out each site's scene once, render every
view (optionally in a process pool) and write sites.csv, world.json and, last, manifest.csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from tqdm import tqdm

from geoloc_core.demo_world.layout import build_scene
from geoloc_core.demo_world.output import write_csv_atomic, write_json_atomic
from geoloc_core.demo_world.places import load_places
from geoloc_core.demo_world.plan import ViewJob, plan_views
from geoloc_core.demo_world.render import MIN_IMAGE_SIZE
from geoloc_core.demo_world.render_pool import RenderProcessDied, render_in_processes
from geoloc_core.demo_world.scene import Scene
from geoloc_core.demo_world.sites import Site, select_sites
from geoloc_core.demo_world.worker import init_worker, render_chunk
from geoloc_core.section_model import SectionModel, real, whole

GENERATOR_VERSION = "geoloc-demo-world/1"
SITE_COLUMNS = ("site_id", "name", "admin1", "admin2", "country_code", "country", "continent",
                "lat", "lon", "climate", "density", "coastal", "role")
MANIFEST_COLUMNS = ("id", "split", "site_id", "lat", "lon", "image", "label", "season",
                    "weather", "time_of_day", "snow_cover", "country_code", "continent")
CHUNK_SIZE = 32
MAX_IMAGE_SIZE = 1024
MAX_JITTER_KM = 25.0
# Fields that do not change any output file, so world.json leaves them out.
EXECUTION_FIELDS = ("workers",)
# world.json has always recorded a label noise of 0: the noise is the segmentation provider's
# (segmentation.label_noise), never the world's.
WORLD_LABEL_NOISE = 0.0


class DemoWorldConfig(SectionModel):
    """The generated demo world (params section `demo_world`); defaults are the demo's."""

    SECTION = "demo_world"

    seed: whole(ge=0) = Field(7, description="seeds the sites, scenes and views")
    image_size: whole(ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE) = Field(
        64, description="square images, pixels"
    )
    reference_sites: whole(ge=1) = Field(
        300, description="sites in the reference (database and training) set"
    )
    reference_views: whole(ge=1) = Field(6, description="views per reference site")
    validation_views: whole(ge=0) = Field(
        1, description='further views per reference site, split "validation"'
    )
    street_sites: whole(ge=0) = Field(
        150, description='reference sites revisited in split "demo-street"'
    )
    street_views: whole(ge=0) = Field(2, description="views per demo-street site")
    unseen_sites: whole(ge=0) = Field(
        100, description='sites absent from the reference set, split "demo-unseen"'
    )
    unseen_views: whole(ge=0) = Field(2, description="views per demo-unseen site")
    site_jitter_km: real(ge=0, le=MAX_JITTER_KM) = Field(
        2.0, description="each site moves by up to this from its GeoNames place"
    )
    workers: whole(ge=1) = Field(2, description="render processes (no effect on the files)")

    @model_validator(mode="after")
    def _street_sites_are_reference_sites(self) -> DemoWorldConfig:
        if self.street_sites > self.reference_sites:
            raise ValueError(
                f"demo_world.street_sites={self.street_sites} exceeds demo_world.reference_sites="
                f"{self.reference_sites}: demo-street revisits reference sites; lower street_sites"
            )
        return self

    def content_settings(self) -> dict[str, Any]:
        """The settings that determine the files (everything but how many processes ran)."""
        content = self.model_dump(exclude=set(EXECUTION_FIELDS))
        content["label_noise"] = WORLD_LABEL_NOISE
        return content


def _site_rows(sites: list[Site]) -> list[list[Any]]:
    return [[s.site_id, s.name, s.admin1, s.admin2, s.country_code, s.country, s.continent,
             s.lat, s.lon, s.climate, s.density, s.coastal, s.role] for s in sites]


def _manifest_rows(jobs: list[ViewJob], sites: dict[int, Site]) -> list[list[Any]]:
    rows = []
    for job in jobs:
        site = sites[job.site_id]
        c = job.conditions
        rows.append([job.image_id, job.split, job.site_id, site.lat, site.lon, job.image_path,
                     job.label_path, c.season, c.weather, c.time_of_day,
                     round(c.snow_cover, 3), site.country_code, site.continent])
    return rows


def _render_all(jobs: list[ViewJob], scenes: dict[int, Scene], out_dir: Path,
                config: DemoWorldConfig, progress: bool) -> None:
    chunks = [jobs[k : k + CHUNK_SIZE] for k in range(0, len(jobs), CHUNK_SIZE)]
    initargs = (scenes, out_dir, config.image_size)
    with tqdm(total=len(jobs), desc="demo world", unit="view", disable=not progress) as bar:
        if config.workers == 1 or len(chunks) <= 1:
            init_worker(*initargs)
            for chunk in chunks:
                bar.update(render_chunk(chunk))
            return
        try:
            render_in_processes(chunks, config.workers, initargs, bar.update)
        except RenderProcessDied as error:
            raise RuntimeError(
                f"a demo-world render process died after {bar.n} of {len(jobs)} views "
                f"({error}: killed, or out of memory?); run `geoloc demo-world` again (the world "
                f"has no manifest until every view is written, and comes out the same), or set "
                f"demo_world.workers: 1 to render in this process"
            ) from error


def generate_demo_world(out_dir: Path, config: DemoWorldConfig, progress: bool = True) -> Path:
    """Writes the world under out_dir and returns the manifest path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.csv"
    manifest_path.unlink(missing_ok=True)  # no manifest until every view is written
    sites = select_sites(load_places(), config.reference_sites, config.unseen_sites,
                         config.seed, config.site_jitter_km)
    write_csv_atomic(out_dir / "sites.csv", SITE_COLUMNS, _site_rows(sites))
    write_json_atomic(out_dir / "world.json", {"generator_version": GENERATOR_VERSION,
                                               "config": config.content_settings()})
    jobs = plan_views(sites, config.seed, config.reference_views, config.validation_views,
                      config.street_sites, config.street_views, config.unseen_views)
    by_id = {s.site_id: s for s in sites}
    needed = sorted({job.site_id for job in jobs})
    scenes = {site_id: build_scene(by_id[site_id], config.seed) for site_id in needed}
    _render_all(jobs, scenes, out_dir, config, progress)
    write_csv_atomic(manifest_path, MANIFEST_COLUMNS, _manifest_rows(jobs, by_id))
    return manifest_path
