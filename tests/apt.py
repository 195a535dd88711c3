"""Installing a test's server or tool from Debian's packages, as root, when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence


def ensure_from_debian(
    find: Callable[[], str | None], packages: Sequence[str], what: str
) -> str | None:
    """``find()``, or else the first of ``packages`` that apt-get installs and ``find()`` then
    finds (idempotent: nothing runs when ``find()`` already answers). None, with a one-line
    note naming ``what``, where the machine does not allow it (not root, no apt-get)."""
    if found := find():
        return found
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"no {what}, and apt-get cannot be used here: its tests will skip (fail under CI)")
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-qq", "-o", "Dpkg::Use-Pty=0"]
    subprocess.run([*apt, "update"], env=env, capture_output=True, timeout=600)
    for package in packages:
        install = [*apt, "install", "-y", "--no-install-recommends", package]
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode == 0 and (found := find()):
            return found
    print(f"apt-get could not install {what} ({', '.join(packages)})")
    return None
