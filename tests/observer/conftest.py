"""Headless Chromium through Selenium, and a cluster serving the observer in a child process.

The browser talks to a server in another process: a server in this one
could not answer while Selenium's blocking calls hold the hub. Chromium and
chromedriver are the system's (packages ``chromium`` and ``chromium-driver``);
Selenium is given the driver's path, so Selenium Manager never looks for one
on the network. Without them the tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joerl.testing import ChildProcess, fields

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("JOERL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JOERL_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def _browser_missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.exists(path) or shutil.which(path)):
            return f"no {path} (install the {package} package)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install joerl[test])"
    return None


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """A headless Chromium (a fresh profile), quit after the module's tests."""
    missing = _browser_missing()
    if missing:
        pytest.skip(f"no browser for the observer tests: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="joerl-chromium-")
    options = Options()
    options.binary_location = shutil.which(CHROMIUM) or CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which(CHROMEDRIVER) or CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Cluster:
    """The child process of ``cluster_main.py``: its observer's URL, node names, and commands."""

    def __init__(self, child: ChildProcess) -> None:
        self.child = child
        ready = fields(child.wait_line("READY", timeout=60.0))
        self.url, self.a, self.b = ready["url"], ready["a"], ready["b"]

    def spawn(self, name: str) -> str:
        self.child.write_line(f"spawn {name}")
        return fields(self.child.wait_line(f"SPAWNED {name}", timeout=10.0))["pid"]

    def kill(self, name: str) -> None:
        self.child.write_line(f"kill {name}")
        self.child.wait_line(f"KILLED {name}", timeout=10.0)


def start_cluster(*args: str) -> Iterator[Cluster]:
    with ChildProcess([sys.executable, str(HERE / "cluster_main.py"), *args], timeout=60.0) as child:
        yield Cluster(child)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two nodes serving the observer of the first, without a token."""
    yield from start_cluster()
