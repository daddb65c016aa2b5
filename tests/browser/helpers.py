"""Shared steps of the browser tests (selenium 4.2 API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.by import By

TIMEOUT = 60  # generous: CI machines are shared and the first t-SNE of a fresh memo takes seconds


def wait_until(what: str, fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """``fn()``'s first truthy value, polled; fails naming ``what`` and the last value seen."""
    end = time.time() + timeout
    last: Any = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 (elements are re-rendered between calls)
            last = exc
        time.sleep(0.15)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def open_tab(driver, label: str) -> None:
    """Clicks the page's tab labelled ``label`` (scrolling to the top first)."""
    tab = wait_until(f"the {label!r} tab", lambda: next(
        (e for e in driver.find_elements(By.CSS_SELECTOR, ".tab") if e.text.strip() == label), None))
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")  # Bootstrap scrolls smoothly
    time.sleep(0.2)
    tab.click()


def scroll_to(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
    time.sleep(0.3)
