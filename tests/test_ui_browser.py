"""The Dagster and MLflow UIs in a real browser, over the materialized tiny project.

Both servers start once for the module, on a copy of the shared materialized project, and one
headless Chromium drives them. What each page shows is compared with the sources it must agree
with: the code location's definitions and the MLflow store. Screenshots go to .ui-screenshots/
($GEOLOC_UI_SCREENSHOTS); a wait that times out leaves one too, named <shot>-timeout.png.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import (
    REQUIRE_BROWSER_ENV,
    browser_required,
    dagster_ready,
    dagster_webserver_command,
    free_port,
    headless_chromium,
    missing_browser,
    mlflow_ready,
    mlflow_server_command,
    project_env,
    running_server,
    screenshot_dir,
)
from tests.conftest import BENCHMARKS
from tests.launchpad import skip_dagster_welcome

MISSING_BROWSER = missing_browser()
pytestmark = pytest.mark.skipif(
    MISSING_BROWSER is not None and not browser_required(), reason=str(MISSING_BROWSER)
)

SERVER_DEADLINE_S = 180.0
WAIT_S = 45.0
LINKED_ASSET = "alignment_model"  # unpartitioned: its latest materialization is its only one
ACCURACY_COLUMNS = ("acc_1km", "acc_25km", "acc_200km", "acc_750km", "acc_2500km")
WORKFLOW_QUERY = "workflowType=machine_learning"
RUN_NAME_CELL = '[col-id="attributes.`Run Name`"]'
RUN_NAME_LINK = f"{RUN_NAME_CELL} a"  # the cell also holds the run's colour label
# The global lineage graph as the browser lays it out: each node's label and its box. Groups
# are the foreignObjects of class "group" (their label carries data-tooltip), assets the ones
# holding an asset name; zoomed to fit, an asset drawn green has been materialized.
GRAPH_NODES_JS = """
const nodes = [];
for (const box of document.querySelectorAll('svg foreignObject')) {
  const isGroup = box.classList.contains('group');
  const label = isGroup ? box.querySelector('[data-tooltip]')
                        : box.querySelector('[class*="AssetNode_assetName"]');
  if (!label) continue;
  const shown = isGroup ? null : box.querySelector('[class*="AssetNode_minimalAssetNodeBox"]');
  nodes.push({group: isGroup, label: label.textContent.trim(),
              materialized: !!shown && shown.style.cssText.includes('background-green'),
              x: +box.getAttribute('x'), y: +box.getAttribute('y'),
              w: +box.getAttribute('width'), h: +box.getAttribute('height')});
}
return nodes;
"""
# The lineage page's sidebar tree, row by row: a group row has the asset_group icon.
SIDEBAR_ROWS_JS = """
return Array.from(document.querySelectorAll('[data-index]'))
  .filter(row => row.querySelector('[class*="AssetSidebarNode_itemContainer"]'))
  .map(row => ({index: +row.dataset.index,
                group: !!row.querySelector('[aria-label="asset_group"]'),
                title: row.querySelector('[class*="MiddleTruncate_container"]').title}))
  .sort((a, b) => a.index - b.index);
"""


@dataclass(frozen=True)
class UiServers:
    dagster: str
    mlflow: str


@dataclass(frozen=True)
class StoredRun:
    """A run as MLflow's store holds it: what the UIs must show."""

    run_id: str
    name: str
    experiment_id: str
    parent_id: str
    metrics: dict[str, float]


# --- fixtures: one project copy, two servers, one browser per module ---------------------------


@pytest.fixture(scope="module", autouse=True)
def browser_present() -> None:
    """Where CI asked for the browser ($GEOLOC_REQUIRE_BROWSER), its absence is a failure."""
    if MISSING_BROWSER is not None:
        pytest.fail(f"{REQUIRE_BROWSER_ENV} is set, but {MISSING_BROWSER}")


@pytest.fixture(scope="module")
def ui_root(materialized_template: Path, tmp_path_factory) -> Path:
    """A copy the servers may write into (the shared template stays untouched); training
    checkpoints stay behind: no page reads them."""
    target = tmp_path_factory.mktemp("ui") / "project"
    shutil.copytree(materialized_template, target, ignore=shutil.ignore_patterns(".checkpoints"))
    return target


@pytest.fixture(scope="module")
def servers(ui_root: Path, tmp_path_factory) -> Iterator[UiServers]:
    """dagster-webserver and the MLflow server, started side by side, ready when their HTTP
    endpoints say so, stopped with their process groups whatever happens."""
    logs = tmp_path_factory.mktemp("ui-logs")
    dagster_port, mlflow_port = free_port(), free_port()
    urls = UiServers(f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}")
    env = project_env(ui_root)
    dagster_cmd = dagster_webserver_command(dagster_port)
    mlflow_cmd = mlflow_server_command(ui_root, mlflow_port)
    with (
        running_server(dagster_cmd, cwd=ui_root, env=env, log=logs / "dagster.log") as dagster,
        running_server(mlflow_cmd, cwd=ui_root, env=env, log=logs / "mlflow.log") as mlflow,
    ):
        mlflow.wait_ready(lambda: mlflow_ready(urls.mlflow), SERVER_DEADLINE_S)
        dagster.wait_ready(lambda: dagster_ready(urls.dagster), SERVER_DEADLINE_S)
        yield urls


@pytest.fixture(scope="module")
def browser(servers: UiServers) -> Iterator[WebDriver]:
    driver = headless_chromium()
    try:
        skip_dagster_welcome(driver, servers.dagster)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    return screenshot_dir()


@pytest.fixture(scope="module")
def params(ui_root: Path) -> dict[str, Any]:
    return yaml.safe_load((ui_root / "params.yaml").read_text())


@pytest.fixture(scope="module")
def store(ui_root: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{ui_root / 'mlruns' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def experiment_id(store, params: dict[str, Any]) -> str:
    experiment = store.get_experiment_by_name(params["tracking"]["experiment"])
    assert experiment is not None, f"no experiment {params['tracking']['experiment']!r}"
    return experiment.experiment_id


@pytest.fixture(scope="module")
def linked_run(store, experiment_id: str) -> StoredRun:
    runs = stored_runs(store, experiment_id, LINKED_ASSET)
    assert runs, f"the store has no run of {LINKED_ASSET}"
    return runs[0]


@pytest.fixture(scope="module")
def metrics_runs(store, experiment_id: str) -> list[StoredRun]:
    runs = stored_runs(store, experiment_id, "metrics")
    assert len(runs) == len(BENCHMARKS), [r.name for r in runs]
    return runs


@pytest.fixture(scope="module")
def asset_graph(ui_root: Path):
    """The code location's truth, built from the same project the webserver serves."""
    from geoloc_assets.definitions import build_definitions

    return build_definitions(ui_root).resolve_asset_graph()


@pytest.fixture(scope="module")
def asset_groups(asset_graph) -> dict[str, set[str]]:
    """Every asset key by its group."""
    groups: dict[str, set[str]] = defaultdict(set)
    for key in asset_graph.toposorted_asset_keys:
        groups[asset_graph.get(key).group_name].add(key.to_user_string())
    return dict(groups)


@pytest.fixture(scope="module")
def materializable(asset_graph) -> int:
    """How many assets the graph must show materialized (the observed raw data is not)."""
    return sum(asset_graph.get(k).is_materializable for k in asset_graph.toposorted_asset_keys)


# --- helpers ---------------------------------------------------------------------------------


def stored_runs(store, experiment_id: str, asset_key: str) -> list[StoredRun]:
    """The runs of one asset's materializations, newest first."""
    found = store.search_runs(
        [experiment_id],
        filter_string=f"tags.`dagster.asset_key` = '{asset_key}'",
        order_by=["attributes.start_time DESC"],
    )
    return [
        StoredRun(
            run_id=run.info.run_id,
            name=run.info.run_name,
            experiment_id=experiment_id,
            parent_id=run.data.tags.get("mlflow.parentRunId", ""),
            metrics=dict(run.data.metrics),
        )
        for run in found
    ]


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, shot: Path):
    """An explicit wait whose timeout names what never appeared and leaves a screenshot. An
    element the page re-rendered between finding and reading it (a menu closing) is looked
    for again at the next poll."""
    try:
        return WebDriverWait(
            driver, WAIT_S, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        timeout_shot = shot.with_name(f"{shot.stem}-timeout.png")
        driver.save_screenshot(str(timeout_shot))
        message = f"{what} did not appear within {WAIT_S:.0f} s (see {timeout_shot})"
        raise AssertionError(message) from None


def elements(driver: WebDriver, css: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, css)


def graph_nodes_once(
    driver: WebDriver, assets: int, materialized: int
) -> list[dict[str, Any]] | bool:
    """The graph's nodes once it draws as many asset nodes as the definitions hold and their
    materialization status has arrived (the comparison is the test's)."""
    nodes = driver.execute_script(GRAPH_NODES_JS)
    drawn = [n for n in nodes if not n["group"]]
    done = len(drawn) >= assets and sum(n["materialized"] for n in drawn) >= materialized
    return nodes if done else False


def label_names(label: str, names: set[str]) -> set[str]:
    """The names a graph label can stand for: Dagster shortens long names in the middle
    ("refere…_embeddings") when the whole graph is zoomed to fit."""
    if "…" not in label:
        return {label} & names
    head, _, tail = label.partition("…")
    return {
        n for n in names if n.startswith(head) and n.endswith(tail) and len(n) > len(head + tail)
    }


def assets_inside_groups(nodes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each asset node's label under the group whose box holds the node's centre."""
    groups = [n for n in nodes if n["group"]]
    placed: dict[str, list[str]] = {g["label"]: [] for g in groups}
    for node in (n for n in nodes if not n["group"]):
        cx, cy = node["x"] + node["w"] / 2, node["y"] + node["h"] / 2
        owners = [
            g["label"]
            for g in groups
            if g["x"] <= cx <= g["x"] + g["w"] and g["y"] <= cy <= g["y"] + g["h"]
        ]
        assert len(owners) == 1, f"asset node {node['label']} lies in groups {owners}"
        placed[owners[0]].append(node["label"])
    return placed


def resolved_labels(labels: list[str], names: set[str]) -> set[str]:
    """The names behind a group's labels; each label must stand for exactly one name."""
    resolved = set()
    for label in labels:
        candidates = label_names(label, names)
        assert len(candidates) == 1, f"graph label {label!r} matches {sorted(candidates)}"
        resolved |= candidates
    assert len(resolved) == len(labels), f"labels {labels} name fewer assets: {sorted(resolved)}"
    return resolved


def open_lineage(driver: WebDriver, servers: UiServers, groups: int, shot: Path) -> None:
    """The global asset lineage page, once its sidebar lists every group."""
    driver.get(f"{servers.dagster}/asset-groups")
    wait_for(
        driver,
        lambda d: len([r for r in d.execute_script(SIDEBAR_ROWS_JS) if r["group"]]) >= groups,
        f"{groups} groups in the lineage sidebar",
        shot,
    )


def expand_all_graph_groups(driver: WebDriver, shot: Path) -> None:
    """Expand all groups from the graph's own menu (the gear at its lower right, the page's
    last gear button); the menu then offers the opposite, and a second click on the gear
    closes it."""
    def gear() -> WebElement:  # found again each time: the graph re-renders in between
        return driver.find_elements(By.XPATH, "//button[.//*[@aria-label='settings']]")[-1]

    gear().click()
    expand = wait_for(driver, menu_item("Expand all groups"), "'Expand all groups'", shot)
    expand.click()
    wait_for(driver, menu_item("Collapse all groups"), "'Collapse all groups' after it", shot)
    gear().click()
    wait_for(driver, lambda d: not menu_item("Collapse all groups")(d), "the menu closing", shot)


def menu_item(text: str) -> Callable[[WebDriver], WebElement | bool]:
    def shown(driver: WebDriver) -> WebElement | bool:
        found = driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
        return next((e for e in found if e.is_displayed()), False)

    return shown


def mlflow_link_on_asset_page(
    driver: WebDriver, servers: UiServers, asset: str, shot: Path
) -> str:
    """The target of the MLflow run link in the asset's latest materialization metadata."""
    driver.get(f"{servers.dagster}/assets/{asset}")
    link = wait_for(
        driver,
        lambda d: next(
            (a for a in elements(d, "a[href*='#/experiments/']") if a.text.strip()), False
        ),
        f"an MLflow run link on the page of {asset}",
        shot,
    )
    return link.get_attribute("href")


def on_server(link: str, base_url: str) -> str:
    """The same page on another server: the links name the configured UI (tracking.ui_url,
    port 5000), the test's MLflow listens on a free port."""
    base = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlsplit(link)._replace(scheme=base.scheme, netloc=base.netloc).geturl()


def close_mlflow_assistant(driver: WebDriver) -> None:
    """MLflow 3 opens its assistant panel beside the first page; it only hides columns here."""
    for button in elements(driver, "button[data-component-id='mlflow.assistant.chat_panel.close']"):
        if button.is_displayed():
            button.click()


def cell_text(driver: WebDriver, run_id: str, column_css: str) -> str:
    cells = elements(driver, f'[row-id="{run_id}"] {column_css}')
    return cells[0].get_attribute("textContent").strip() if cells else ""


def metric_column(name: str) -> str:
    return f'[col-id="metrics.`{name}`"]'


def runs_table_url(servers: UiServers, experiment_id: str, search_filter: str) -> str:
    query = urllib.parse.quote(search_filter)
    return (
        f"{servers.mlflow}/#/experiments/{experiment_id}/runs?{WORKFLOW_QUERY}"
        f"&searchFilter={query}"
    )


def show_columns(driver: WebDriver, names: tuple[str, ...], shot: Path) -> None:
    """Tick metric columns in the runs table's Columns menu (MLflow 3 shows none by default)."""
    driver.find_element(By.XPATH, "//button[normalize-space()='Columns']").click()
    for name in names:
        entry = wait_for(
            driver,
            lambda d, n=name: d.find_element(By.CSS_SELECTOR, f"[role=dialog] span[title='{n}']"),
            f"column {name} in the Columns menu",
            shot,
        )
        entry.click()
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


# --- tests -----------------------------------------------------------------------------------


def test_asset_graph_shows_every_group_with_its_assets(
    browser: WebDriver,
    servers: UiServers,
    asset_groups: dict[str, set[str]],
    materializable: int,
    shots: Path,
) -> None:
    shot = shots / "dagster-asset-graph.png"
    open_lineage(browser, servers, len(asset_groups), shot)
    expand_all_graph_groups(browser, shot)
    assets = sum(len(names) for names in asset_groups.values())
    nodes = wait_for(
        browser,
        lambda d: graph_nodes_once(d, assets, materializable),
        f"{assets} asset nodes, {materializable} of them materialized, in the expanded graph",
        shot,
    )
    browser.save_screenshot(str(shot))

    assert sum(n["materialized"] for n in nodes) == materializable
    placed = assets_inside_groups(nodes)
    assert set(placed) == set(asset_groups)
    for group, labels in placed.items():
        assert resolved_labels(labels, asset_groups[group]) == asset_groups[group], group


def test_lineage_sidebar_lists_each_groups_assets_by_full_name(
    browser: WebDriver, servers: UiServers, asset_groups: dict[str, set[str]], shots: Path
) -> None:
    shot = shots / "dagster-lineage-sidebar.png"
    open_lineage(browser, servers, len(asset_groups), shot)
    # from the bottom up, so that expanding a group never moves the rows still to expand
    toggles = browser.find_elements(
        By.XPATH, "//div[@data-index]//button[.//*[@aria-label='arrow_drop_down']]"
    )
    for toggle in reversed(toggles):
        toggle.click()
    total = len(asset_groups) + sum(len(names) for names in asset_groups.values())
    rows = wait_for(
        browser,
        lambda d: (r := d.execute_script(SIDEBAR_ROWS_JS)) and len(r) >= total and r,
        f"{total} rows (groups and assets) in the expanded sidebar",
        shot,
    )
    browser.save_screenshot(str(shot))

    listed: dict[str, set[str]] = {}
    for row in rows:
        if row["group"]:
            current = listed.setdefault(row["title"], set())
        else:
            current.add(row["title"])
    assert listed == asset_groups


def test_asset_page_links_its_latest_materialization_to_its_mlflow_run(
    browser: WebDriver,
    servers: UiServers,
    params: dict[str, Any],
    linked_run: StoredRun,
    shots: Path,
) -> None:
    shot = shots / f"dagster-asset-{LINKED_ASSET}.png"
    link = mlflow_link_on_asset_page(browser, servers, LINKED_ASSET, shot)
    browser.save_screenshot(str(shot))

    expected = (
        f"{params['tracking']['ui_url']}/#/experiments/{linked_run.experiment_id}"
        f"/runs/{linked_run.run_id}?{WORKFLOW_QUERY}"
    )
    assert link == expected
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "mlflow_run_id" in page
    assert linked_run.run_id in page


def test_run_link_opens_that_run_in_the_mlflow_ui(
    browser: WebDriver, servers: UiServers, linked_run: StoredRun, shots: Path
) -> None:
    shot = shots / f"mlflow-run-{LINKED_ASSET}.png"
    link = mlflow_link_on_asset_page(browser, servers, LINKED_ASSET, shot)
    browser.get(on_server(link, servers.mlflow))
    shown_id = wait_for(
        browser,
        lambda d: next(
            (e.text.split()[-1] for e in elements(d, "[data-testid='key-value-Run ID']") if e.text),
            False,
        ),
        "the Run ID on the MLflow run page",
        shot,
    )
    wait_for(
        browser,
        lambda d: linked_run.name in d.find_element(By.TAG_NAME, "body").text,
        f"the run name {linked_run.name!r} on its page",
        shot,
    )
    close_mlflow_assistant(browser)
    browser.save_screenshot(str(shot))

    assert shown_id == linked_run.run_id


def test_runs_table_lists_metrics_runs_with_their_accuracy(
    browser: WebDriver,
    servers: UiServers,
    experiment_id: str,
    metrics_runs: list[StoredRun],
    shots: Path,
) -> None:
    shot = shots / "mlflow-metrics-runs.png"
    browser.get(runs_table_url(servers, experiment_id, "tags.`dagster.asset_key` = 'metrics'"))
    # each metrics run is nested under its pipeline run's parent: unfold the parents
    for parent in sorted({run.parent_id for run in metrics_runs}):
        toggle = wait_for(
            browser,
            lambda d, p=parent: d.find_element(
                By.CSS_SELECTOR, f'[row-id="{p}"] {RUN_NAME_CELL} button'
            ),
            f"the parent run {parent} in the runs table",
            shot,
        )
        toggle.click()
    wait_for(
        browser,
        lambda d: all(cell_text(d, r.run_id, RUN_NAME_LINK) for r in metrics_runs),
        "every metrics run's row",
        shot,
    )
    close_mlflow_assistant(browser)
    show_columns(browser, ACCURACY_COLUMNS, shot)
    wait_for(
        browser,
        lambda d: all(
            cell_text(d, r.run_id, metric_column(c)) for r in metrics_runs for c in ACCURACY_COLUMNS
        ),
        "the accuracy cells of every metrics run",
        shot,
    )
    browser.save_screenshot(str(shot))

    headers = {e.get_attribute("col-id") for e in elements(browser, "[role=columnheader][col-id]")}
    assert {f"metrics.`{c}`" for c in ACCURACY_COLUMNS} <= headers
    for run in metrics_runs:
        assert cell_text(browser, run.run_id, RUN_NAME_LINK) == run.name
        for column in ACCURACY_COLUMNS:
            shown = float(cell_text(browser, run.run_id, metric_column(column)))
            assert shown == pytest.approx(run.metrics[column], abs=1e-4), (run.name, column)
