"""The system's headless Chromium driven by Playwright (never Playwright's own browsers): load a page,
collect console errors and uncaught exceptions, evaluate JavaScript, take screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    """The browser binary; skip when absent, unless CI says it must be there (LASEG_REQUIRE_CHROMIUM=1)."""
    if CHROMIUM.is_file():
        return CHROMIUM
    message = f"{CHROMIUM} not installed (Debian: apt-get install chromium)"
    if os.environ.get("LASEG_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"LASEG_REQUIRE_CHROMIUM=1 but {message}")
    pytest.skip(message)


class HeadlessChromium:
    """One headless browser with one page (`.page`, Playwright's); use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 900):
        self.width, self.height = width, height
        self.errors: list[str] = []

    def __enter__(self) -> Self:
        binary = require_chromium()
        self.playwright = sync_playwright().start()
        try:
            # SwiftShader gives WebGL without a GPU; Playwright adds --no-sandbox, a temporary profile and so on.
            self.browser = self.playwright.chromium.launch(
                executable_path=binary,
                headless=True,
                args=["--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
            )
        except BaseException:
            self.playwright.stop()
            raise
        self.page = self.browser.new_page(viewport={"width": self.width, "height": self.height})
        self.page.set_default_timeout(60_000)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        return self

    def __exit__(self, *exc) -> None:
        self.browser.close()
        self.playwright.stop()

    def _on_console(self, message: ConsoleMessage) -> None:
        # Failed loads arrive here too, as "Failed to load resource: ..." errors.
        if message.type in ("error", "assert"):
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def open(self, path: Path) -> None:
        self.errors.clear()
        self.page.goto(Path(path).resolve().as_uri())

    def evaluate(self, expression: str):
        return self.page.evaluate(expression)

    def wait_until(self, expression: str, timeout_s: float = 30.0) -> None:
        self.page.wait_for_function(expression, timeout=timeout_s * 1000, polling=200)

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and error-level log entries (failed loads) so far."""
        self.page.evaluate("0")  # let events that arrived meanwhile through
        return list(self.errors)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        self.page.screenshot(path=path, full_page=full_page)
        return Path(path)
