"""`geoloc predict`'s text output: per photo its ranked candidates, the decision marked, and the
distance to the EXIF position when the photo has one."""

from __future__ import annotations

from collections.abc import Sequence

from geoloc_core.predict.results import PhotoResult, RankedCandidate

DECISION_MARK = "*"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(candidate: RankedCandidate) -> str:
    mark = DECISION_MARK if candidate.decision else " "
    error = "" if candidate.error_km is None else f"{candidate.error_km:,.1f} km"
    views = f"views: {candidate.views}" if candidate.views > 1 else ""
    return (
        f"  {mark}{candidate.rank:>3}  {candidate.lat:>10.5f} {candidate.lon:>11.5f}  "
        f"{_number(candidate.score, 4):>7}  {candidate.source:<9}  "
        f"{candidate.place.label or '(no place within reach)':<40} {error}  {views}".rstrip()
    )


def render_photo(result: PhotoResult, top_k: int, all_views: bool = False) -> list[str]:
    if result.error:
        return [f"{result.image}: error: {result.error}"]
    lines = [result.image]
    lines.append(
        f"  {' ':1}{'#':>3}  {'latitude':>10} {'longitude':>11}  {'score':>7}  {'source':<9}  "
        f"{'place':<40} {'error' if result.exif and result.exif.known else ''}".rstrip()
    )
    listed = result.listed(all_views)
    lines += [_row(c) for c in listed[:top_k]]
    hidden = len(listed) - min(top_k, len(listed))
    if hidden:
        what = "candidates" if all_views else "places"
        lines.append(f"        … {hidden} more {what} in the pool (--top-k to show them)")
    decision = result.decision
    if decision is not None:
        where = decision.place.label or "no place within reach"
        point = f"{decision.lat:.5f}, {decision.lon:.5f}"
        lines.append(f"  decision ({DECISION_MARK}): {point}  {where}")
        if result.decided_by:
            lines.append(f"    by {result.decided_by}")
        if result.confidence is not None:
            lines.append(
                f"  confidence: the true location is {result.confidence.sentence()} "
                f"(calibrated on {result.confidence.calibrated_on})"
            )
    if result.warning:
        lines.append(f"  warning: {result.warning}")
    exif = result.exif
    if exif is not None and exif.known and decision is not None and decision.error_km is not None:
        lines.append(
            f"  EXIF GPS {exif.lat:.5f}, {exif.lon:.5f}: the decision is "
            f"{decision.error_km:,.1f} km away (geodesic)"
        )
    return lines


def render(results: Sequence[PhotoResult], top_k: int, all_views: bool = False) -> str:
    blocks = ["\n".join(render_photo(result, top_k, all_views)) for result in results]
    failed = sum(1 for r in results if r.error)
    summary = f"{len(results)} photo(s): {len(results) - failed} located, {failed} failed"
    return "\n\n".join([*blocks, summary]) + "\n"
