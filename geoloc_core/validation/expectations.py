"""The manifest's expectations, run by Great Expectations 1.x in an ephemeral context.

dagster-ge supports only GX below 1.0, so the suite is built and run with GX's own 1.x API
(pandas data source, whole-dataframe batch). Row-level expectations report their failing rows
by the `row` column (COMPLETE result format), which turns each failure into a quarantine
reason; the table-level row-count expectation decides the gate directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from geoloc_core.data.schema import SOURCE_PROBLEM
from geoloc_core.validation.settings import GateSettings

ROW = "row"
IMAGE_PROBLEM = "image_problem"
IMAGE_MIN_SIDE = "image_min_side"
REQUIRED = ("id", "image", "lat", "lon", "split", "source")


@dataclass(frozen=True)
class RowRule:
    """One column expectation and how a failing value reads in the quarantine report."""

    name: str
    column: str
    expectation: Any  # a great_expectations.expectations.Expectation
    reason: Callable[[Any], str]


@dataclass(frozen=True)
class ExpectationOutcome:
    rule: str
    expectation: str
    success: bool
    unexpected: int
    observed: Any = None


@dataclass
class Validation:
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (row, rule, reason)
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def table_ok(self) -> bool:
        return all(o.success for o in self.outcomes if o.rule.startswith("table_"))


def _gx():
    """Imported on first use: Great Expectations takes seconds to import."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def row_rules(settings: GateSettings) -> list[RowRule]:
    _, gxe = _gx()
    rules = [
        RowRule(
            f"{column}_not_null",
            column,
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            lambda _v, c=column: f"{c} is missing",
        )
        for column in REQUIRED
    ]
    rules += [
        RowRule(
            "lat_in_range",
            "lat",
            gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90.0, max_value=90.0),
            lambda v: f"lat {v} outside [-90, 90]",
        ),
        RowRule(
            "lon_in_range",
            "lon",
            gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180.0, max_value=180.0),
            lambda v: f"lon {v} outside [-180, 180]",
        ),
        RowRule(
            "id_unique",
            "id",
            gxe.ExpectColumnValuesToBeUnique(column="id"),
            lambda _v: "duplicate id (every copy is quarantined: which one is right is unknown)",
        ),
        RowRule(
            "source_row_usable",
            SOURCE_PROBLEM,
            gxe.ExpectColumnValuesToBeInSet(column=SOURCE_PROBLEM, value_set=[""]),
            str,
        ),
        RowRule(
            "image_decodable",
            IMAGE_PROBLEM,
            gxe.ExpectColumnValuesToBeInSet(column=IMAGE_PROBLEM, value_set=[""]),
            lambda v: f"image: {v}",
        ),
        RowRule(
            "image_min_side",
            IMAGE_MIN_SIDE,
            gxe.ExpectColumnValuesToBeBetween(
                column=IMAGE_MIN_SIDE, min_value=settings.min_image_side
            ),
            lambda v: (
                f"image too small: shortest side {int(v)} px, minimum {settings.min_image_side} "
                "(params manifest.min_image_side)"
            ),
        ),
    ]
    return rules


def table_rules(settings: GateSettings) -> list[tuple[str, Any]]:
    """Dataset-level expectations: the row count of a dataset whose size is known."""
    if settings.expected_rows is None:
        return []
    _, gxe = _gx()
    low, high = settings.expected_rows
    return [("table_row_count", gxe.ExpectTableRowCountToBeBetween(min_value=low, max_value=high))]


@lru_cache(maxsize=1)
def _batch_definition():
    """One ephemeral, offline context per process: no analytics, no progress bars."""
    gx, _ = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("geoloc").add_dataframe_asset("manifest")
    return asset.add_batch_definition_whole_dataframe("whole manifest")


def validate_frame(frame: pd.DataFrame, settings: GateSettings) -> Validation:
    """Run every expectation once over frame (which needs a unique `row` column)."""
    gx, _ = _gx()
    batch_definition = _batch_definition()  # creates the context a suite needs
    rules = {rule.name: rule for rule in row_rules(settings)}
    suite = gx.ExpectationSuite(name="geoloc-manifest")
    for rule in rules.values():
        rule.expectation.meta = {"rule": rule.name}
        suite.add_expectation(rule.expectation)
    for name, expectation in table_rules(settings):
        expectation.meta = {"rule": name}
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]}
    )
    validation = Validation()
    for item in result.results:
        name = item.expectation_config.meta["rule"]
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"Great Expectations could not evaluate '{name}': "
                f"{item.exception_info.get('exception_message')}"
            )
        details = item.result or {}
        unexpected = details.get("unexpected_index_list") or []
        validation.outcomes.append(
            ExpectationOutcome(
                rule=name,
                expectation=item.expectation_config.type,
                success=bool(item.success),
                unexpected=len(unexpected),
                observed=details.get("observed_value"),
            )
        )
        rule = rules.get(name)
        if rule is None:
            continue
        for entry in unexpected:
            validation.failures.append(
                (int(entry[ROW]), name, rule.reason(entry.get(rule.column)))
            )
    return validation
