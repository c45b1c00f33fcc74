"""Dagster's launchpad driven in a real browser, as a user opens it: the asset's page,
Shift-click on Materialize, the partition typed in, the config edited in the editor, Materialize.

What comes back is what the user sees: the run page the launch opened (its run id), or the
text of the error dialog the launch raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from selenium.common.exceptions import (
    ElementNotInteractableException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 60.0
EDITOR_JS = "return document.querySelector('[role=dialog] .CodeMirror')"
EDITOR_TEXT_JS = "return arguments[0].CodeMirror.getValue()"
RUN_PATH = "/runs/"
PARTITION_FIELD = "[role=dialog] input[placeholder='Partition']"


@dataclass(frozen=True)
class Launched:
    run_id: str | None  # the run page the launch opened
    error: str | None  # or the error dialog's text


def skip_dagster_welcome(driver: WebDriver, dagster_url: str) -> None:
    """Dagster opens a "Join the community" dialog over a fresh profile's first page, until
    localStorage says it was seen; mark it seen, so no dialog covers the pages or the clicks."""
    driver.get(f"{dagster_url}/server_info")
    driver.execute_script("window.localStorage.setItem('communityNux', '\"1\"')")


def materialize_from_launchpad(
    driver: WebDriver, dagster_url: str, asset: str, partition: str, config: dict, shot: Path
) -> Launched:
    """Open the launchpad of one asset, pick the partition, merge config into the op's config
    as the editor shows it (the sections it reads, params.yaml's values), and launch."""
    driver.get(f"{dagster_url}/assets/{asset}")
    _shift_click_materialize(driver, shot)
    _wait(driver, _editor_confirming, "the launchpad's editor", shot)
    _choose_partition(driver, partition, shot)
    editor = driver.execute_script(EDITOR_JS)
    shown = yaml.safe_load(driver.execute_script(EDITOR_TEXT_JS, editor))
    for section, values in config.items():
        shown["ops"][asset]["config"][section].update(values)
    driver.execute_script(
        "arguments[0].CodeMirror.setValue(arguments[1])", editor, yaml.safe_dump(shown)
    )
    driver.save_screenshot(str(shot.with_name(f"{shot.stem}-launchpad.png")))
    _dialog_button(driver, "Materialize", shot).click()

    def outcome(d: WebDriver) -> Launched | None:
        if RUN_PATH in d.current_url:
            return Launched(d.current_url.split(RUN_PATH)[1].split("/")[0].split("?")[0], None)
        for dialog in d.find_elements(By.CSS_SELECTOR, "[role=dialog]"):
            if dialog.text.startswith("Error"):
                return Launched(None, dialog.text)
        return None

    launched = _wait(driver, outcome, "the run page or an error dialog", shot)
    driver.save_screenshot(str(shot))
    if launched.error is not None:  # as a user does: OK, then close the launchpad
        _dialog_button(driver, "OK", shot).click()
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    return launched


def _shift_click_materialize(driver: WebDriver, shot: Path) -> None:
    """The page re-renders while it loads: find the button again until the click lands."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            button = _wait(driver, _materialize_button, "the Materialize button", shot)
            ActionChains(driver).key_down(Keys.SHIFT).click(button).key_up(Keys.SHIFT).perform()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _materialize_button(driver: WebDriver):
    for button in driver.find_elements(By.CSS_SELECTOR, "button"):
        if button.text.startswith("Materialize") and button.is_enabled():
            return button
    return None


def _choose_partition(driver: WebDriver, partition: str, shot: Path) -> None:
    """Type the partition into the launchpad's field and press Enter, again while the dialog
    re-renders and drops it, until the field keeps it (the editor is then rebuilt for it)."""

    def kept(d: WebDriver) -> bool:
        field = d.find_element(By.CSS_SELECTOR, PARTITION_FIELD)
        if field.get_attribute("value") != partition:
            try:
                field.click()
                field.send_keys(Keys.CONTROL, "a")
                field.send_keys(partition, Keys.ENTER)
            except ElementNotInteractableException:
                pass  # the dialog is still being laid out: try again
            time.sleep(1.0)
            return False
        time.sleep(1.0)  # still there a second later: the launchpad has taken it
        return d.find_element(By.CSS_SELECTOR, PARTITION_FIELD).get_attribute("value") == partition

    _wait(driver, kept, f"partition {partition} in the launchpad's field", shot)


def _editor_confirming(driver: WebDriver):
    """The launchpad's editor; "Are you sure?" (an upstream asset never materialized) is
    confirmed on the way."""
    editor = driver.execute_script(EDITOR_JS)
    if editor:
        return editor
    for button in driver.find_elements(By.CSS_SELECTOR, "[role=dialog] button"):
        if button.text == "Confirm":
            button.click()
    return None


def _dialog_button(driver: WebDriver, text: str, shot: Path):
    def found(d: WebDriver):
        buttons = d.find_elements(By.CSS_SELECTOR, "[role=dialog] button")
        return next((b for b in buttons if b.text == text and b.is_enabled()), None)

    return _wait(driver, found, f"the dialog's {text} button", shot)


def _wait(driver: WebDriver, condition, what: str, shot: Path):
    try:
        return WebDriverWait(
            driver,
            WAIT_S,
            poll_frequency=0.3,
            ignored_exceptions=[StaleElementReferenceException, ElementNotInteractableException],
        ).until(condition)
    except TimeoutException:
        timeout_shot = shot.with_name(f"{shot.stem}-timeout.png")
        driver.save_screenshot(str(timeout_shot))
        message = f"{what} did not appear within {WAIT_S:.0f} s ({timeout_shot})"
        raise AssertionError(message) from None
