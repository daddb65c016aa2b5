"""Screenshot a running dashboard in Debian's headless Chromium (for docs and for reviewing views).

    python tools/screenshot.py http://127.0.0.1:8050/ out.png --tab "Instance diagnosis" --wait 6

Uses the same browser flags as the end-to-end tests (1366 x 768 by default, software WebGL).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--tab", help="label of a tab to click before the screenshot")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to let callbacks finish")
    p.add_argument("--size", default="1366,768", help="window width,height")
    p.add_argument("--full", action="store_true", help="grow the window to the page's full height")
    a = p.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    with tempfile.TemporaryDirectory(prefix="shot-") as profile:  # a fresh profile, removed afterwards
        o = Options()
        o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--use-angle=swiftshader", "--enable-unsafe-swiftshader", f"--window-size={a.size}",
                     f"--user-data-dir={profile}"):
            o.add_argument(flag)
        d = webdriver.Chrome(options=o, executable_path=shutil.which("chromedriver"))
        _shoot(d, a)


def _shoot(d, a: argparse.Namespace) -> None:
    from selenium.webdriver.common.by import By

    try:
        d.get(a.url)
        time.sleep(a.wait)
        if a.tab:
            tabs = [e for e in d.find_elements(By.CSS_SELECTOR, ".tab") if e.text.strip() == a.tab]
            if not tabs:
                raise SystemExit(f"no tab labelled {a.tab!r}")
            tabs[0].click()
            time.sleep(a.wait)
        if a.full:
            w = d.execute_script("return document.body.scrollWidth")
            h = d.execute_script("return document.body.scrollHeight")
            d.set_window_size(max(int(a.size.split(",")[0]), w), h + 100)
            time.sleep(1.0)
        d.save_screenshot(a.out)
    finally:
        d.quit()


if __name__ == "__main__":
    main()
