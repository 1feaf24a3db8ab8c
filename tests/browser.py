"""Debian's headless chromium, driven by Selenium through Debian's chromedriver.

Every call goes through a worker thread: the meshwatch under test serves from the test's own
event loop, and a blocking WebDriver call on that loop would starve it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags the machine notes ask for: no background connections to Google's hosts (this
# network refuses them), no sandbox (root in a container), a fresh profile per test.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)


def require_chromium() -> None:
    """Skip where the browser is not installed; in CI (.ci/run installs it) fail instead."""
    if shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER):
        return
    if os.environ.get("CI"):
        pytest.fail("chromium/chromedriver are not installed; .ci/run installs Debian's packages")
    pytest.skip(
        "chromium and chromium-driver not installed (apt-get install chromium chromium-driver)"
    )


class Browser:
    """One headless chromium; ``await`` every method."""

    def __init__(self, profile: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self._driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self._driver.set_page_load_timeout(30)

    @classmethod
    async def start(cls, profile: Path) -> Browser:
        return await asyncio.to_thread(cls, profile)

    async def get(self, url: str) -> None:
        await asyncio.to_thread(self._driver.get, url)

    async def script(self, source: str, *args: Any) -> Any:
        return await asyncio.to_thread(self._driver.execute_script, source, *args)

    async def url(self) -> str:
        return await asyncio.to_thread(lambda: self._driver.current_url)

    async def cookies(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._driver.get_cookies)

    async def console(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._driver.get_log, "browser")

    async def screenshot(self, path: Path) -> None:
        ok = await asyncio.to_thread(self._driver.save_screenshot, str(path))
        assert ok, f"no screenshot written to {path}"

    async def close(self) -> None:
        await asyncio.to_thread(self._driver.quit)

    async def click_in(self, element_id: str, x: float, y: float) -> None:
        """A real mouse click at (x, y) pixels from the top-left corner of an element."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        def click() -> None:
            element = self._driver.find_element(By.ID, element_id)
            size = element.size
            dx, dy = int(x - size["width"] / 2), int(y - size["height"] / 2)
            ActionChains(self._driver).move_to_element_with_offset(
                element, dx, dy
            ).click().perform()

        await asyncio.to_thread(click)

    async def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return await asyncio.to_thread(lambda: self._driver.find_element(By.CSS_SELECTOR, css).text)
