"""Fixtures of the dashboard's browser tests: headless Chromium driven by Selenium, and the
dashboard running over a seeded embedded queue.

Under CI (CI=true) a browser that cannot start fails the tests; elsewhere they skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from tests.browser.chromium import find_chromium
from tests.browser.dashboard_server import ROOT, Dashboard, running_dashboard
from tests.browser.queue_seed import SeededQueue, seed
from tests.integration.sqs_servers import unavailable

WINDOW = (1280, 900)
SCREENSHOTS = ROOT / "docs" / "img"
MAX_PICTURE_BYTES = 200_000
Screenshot = Callable[[webdriver.Chrome, str], Path]


def start_chromium() -> webdriver.Chrome:
    """Headless Chromium from Debian's packages, driven by the chromedriver beside it."""
    found = find_chromium()
    if found is None:
        unavailable(
            "no chromium/chromedriver on PATH: `python3 dev.py test` installs Debian's "
            "chromium and chromium-driver as root"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = found.browser
    # As root Chromium refuses to start without --no-sandbox; /dev/shm is small in containers.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    try:
        return webdriver.Chrome(service=Service(found.driver), options=options)
    except WebDriverException as error:
        unavailable(f"headless Chromium did not start: {error.msg or error}")


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the session, its window 1280x900."""
    driver = start_chromium()
    try:
        driver.set_window_size(*WINDOW)
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def seeded(tmp_path: Path) -> SeededQueue:
    """An embedded queue with four real dead letters, two invites visible and one in flight."""
    return asyncio.run(seed(f"sqlite:///{tmp_path / 'queue.db'}"))


@pytest.fixture
def dashboard(tmp_path: Path, seeded: SeededQueue) -> Iterator[Dashboard]:
    """``botqueue dashboard`` over the ``seeded`` queue, refreshing every second."""
    with running_dashboard(tmp_path, ["--queue-url", seeded.url]) as running:
        yield running


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshot:
    """Save the browser's window as a PNG: into docs/img/ when BOTQUEUE_UPDATE_SCREENSHOTS=1
    (the pictures docs/dashboard.md shows), else into the test's temporary folder."""
    folder = SCREENSHOTS if os.environ.get("BOTQUEUE_UPDATE_SCREENSHOTS") == "1" else tmp_path

    def save(driver: webdriver.Chrome, name: str) -> Path:
        path = folder / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(path)), f"no screenshot for {name}"
        # The docs' pictures live in git: keep each one small.
        assert folder is tmp_path or path.stat().st_size < MAX_PICTURE_BYTES, path
        return path

    return save
