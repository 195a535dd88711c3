"""Debian's headless Chromium and its chromedriver for the browser tests.

``ensure_chromium()`` finds ``chromium`` and ``chromedriver`` on PATH, or installs Debian's
``chromium`` and ``chromium-driver`` where the machine allows it (root with apt-get).
``python3 dev.py test`` runs this module before pytest, outside the per-test timeout; where
nothing can be installed it prints why and the browser tests skip (fail under CI).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass

from tests.apt import ensure_from_debian

BROWSER_NAMES = ("chromium", "chromium-browser")
# chromium-driver ships /usr/bin/chromedriver and depends on the chromium of the same
# version, so one install brings both and they always match.
DEBIAN_PACKAGES = ("chromium-driver",)


@dataclass(frozen=True)
class Chromium:
    """Paths of the browser and of the chromedriver that drives it."""

    browser: str
    driver: str


class ChromiumUnavailable(RuntimeError):
    """Chromium or chromedriver is neither on PATH nor installable here."""


def find_chromium() -> Chromium | None:
    """Both binaries from PATH, or None when either is missing."""
    browser = next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    driver = shutil.which("chromedriver")
    return Chromium(browser, driver) if browser and driver else None


def ensure_chromium() -> Chromium:
    """Both binaries, installing Debian's packages as root when they are missing.

    Raises:
        ChromiumUnavailable: when they are missing and apt-get cannot install them here.
    """
    ensure_from_debian(
        lambda: "found" if find_chromium() else None, DEBIAN_PACKAGES, "chromium/chromedriver"
    )
    if (found := find_chromium()) is None:
        raise ChromiumUnavailable(
            "no chromium and chromedriver on PATH, and they cannot be installed here "
            "(as root on Debian: apt-get install chromium chromium-driver)"
        )
    return found


def main() -> int:
    """dev.py's step: install when possible; a machine that cannot is not an error here."""
    try:
        found = ensure_chromium()
    except ChromiumUnavailable as error:
        print(f"{error}: the browser tests will skip (fail under CI)")
        return 0
    print(f"browser tests: {found.browser} driven by {found.driver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
