"""The list of views to render: which site, which split, which conditions, which files.
Everything here is derived from the config and the sites, never from processing order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoloc_core.demo_world.conditions import ViewConditions, draw_conditions
from geoloc_core.demo_world.sites import Site

ID_PREFIX = {"reference": "ref", "validation": "val", "demo-street": "street",
             "demo-unseen": "unseen"}
STREET_STREAM = 5


@dataclass(frozen=True)
class ViewJob:
    image_id: str
    split: str
    site_id: int
    conditions: ViewConditions
    image_path: str  # relative to the world's directory
    label_path: str


def street_site_ids(reference_ids: list[int], count: int, seed: int) -> list[int]:
    """Which reference sites are revisited in demo-street: a seeded sample, sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREET_STREAM]))
    chosen = rng.permutation(len(reference_ids))[:count]
    return sorted(reference_ids[int(k)] for k in chosen)


def _jobs_for(site: Site, split: str, views: int, seed: int) -> list[ViewJob]:
    jobs = []
    for view in range(views):
        image_id = f"{ID_PREFIX[split]}-{site.site_id:05d}-{view:02d}"
        jobs.append(ViewJob(
            image_id=image_id,
            split=split,
            site_id=site.site_id,
            conditions=draw_conditions(seed, site.site_id, site.climate, split, view),
            image_path=f"images/{split}/{image_id}.png",
            label_path=f"labels/{split}/{image_id}.png",
        ))
    return jobs


def plan_views(sites: list[Site], seed: int, reference_views: int, validation_views: int,
               street_sites: int, street_views: int, unseen_views: int) -> list[ViewJob]:
    """All views, sorted by split then id (the manifest's order)."""
    reference = [s for s in sites if s.role == "reference"]
    street_ids = set(street_site_ids([s.site_id for s in reference], street_sites, seed))
    jobs: list[ViewJob] = []
    for site in reference:
        jobs += _jobs_for(site, "reference", reference_views, seed)
        jobs += _jobs_for(site, "validation", validation_views, seed)
        if site.site_id in street_ids:
            jobs += _jobs_for(site, "demo-street", street_views, seed)
    for site in sites:
        if site.role == "unseen":
            jobs += _jobs_for(site, "demo-unseen", unseen_views, seed)
    return sorted(jobs, key=lambda job: (job.split, job.image_id))
