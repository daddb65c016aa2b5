"""Shared steps of the browser tests (selenium 4.2 API)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

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


def scroll_to(driver, element, block: str = "center") -> None:
    """Scrolls ``element`` into view at once (Bootstrap turns on smooth scrolling, and a test
    reading positions right after a smooth scroll sees the page mid-animation)."""
    driver.execute_script(f"arguments[0].scrollIntoView({{block: '{block}', behavior: 'instant'}});", element)
    time.sleep(0.3)


def click_at(driver, x: float, y: float) -> None:
    """A left click at viewport position (``x``, ``y``) (plotly graphs: clicks on drawn points)."""
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y))
    actions.pointer_action.click()
    actions.perform()


def replace_text(box, text: str, enter: bool = False) -> None:
    """Selects all of an input's text, deletes it and types ``text`` (then Enter when ``enter``)."""
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    if enter:
        box.send_keys(Keys.ENTER)


def slider_value(driver) -> int | None:
    """The timeline's epoch slider value as the page shows it (the handle's aria-valuenow)."""
    from layouts import timeline as tl

    el = driver.find_elements(By.CSS_SELECTOR, f"#{tl.SLIDER} [role=slider]")
    v = el[0].get_attribute("aria-valuenow") if el else None
    return int(float(v)) if v not in (None, "") else None


def image_loaded(driver, img) -> bool:
    """Whether the browser has loaded ``img`` (complete, with a decoded image)."""
    return bool(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))


def thumb_id(img) -> int:
    """The instance id of a thumbnail ``<img>`` (its src ends in ``/<id>.png``)."""
    src = img.get_attribute("src") or ""
    m = re.search(r"/(\d+)\.png$", src)
    if m is None:
        raise AssertionError(f"not a thumbnail: {src!r}")
    return int(m.group(1))


def assert_no_console_errors(dash_duo) -> None:
    """The browser console has no severe entries. The app loads nothing from outside (Bootstrap
    is vendored), so every entry counts, failed fetches included."""
    errs = list(dash_duo.get_logs() or [])
    assert errs == [], "\n".join(e["message"][:600] for e in errs)
