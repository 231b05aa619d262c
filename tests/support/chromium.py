"""Headless Chromium (Debian's `chromium` package) for tests that look at the web page the
way a person's browser renders it: the DOM after parsing, and a screenshot. No network
beyond the URL given: every background service of the browser is switched off."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def require() -> str:
    """The browser's path; skips the test (with how to fix it) when it is not installed."""
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed: `make test` installs it (apt-get install -y "
                    "chromium)")
    return path


def _run(url: str, *args: str, timeout: float = 60) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        out = subprocess.run(
            [require(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", *args, url],
            capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise AssertionError(f"chromium failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout


def dump_dom(url: str) -> str:
    """The DOM as Chromium serialises it after loading `url`."""
    return _run(url, "--dump-dom")


def screenshot(url: str, path: Path, size: str = "1400,900") -> Path:
    """A PNG of `url` as a `size` window; returns `path`."""
    _run(url, f"--screenshot={path}", f"--window-size={size}", "--hide-scrollbars",
         "--run-all-compositor-stages-before-draw", "--virtual-time-budget=2000")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no PNG written to {path}"
    return path


class Dom(HTMLParser):
    """What a test reads back from a dumped DOM: elements by tag and the data-* cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.cells: dict[tuple[str, str], str] = {}  # (model, environment) → state word
        self.text: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self._model: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs.append((tag, a))
        if tag == "tr" and "data-model" in a:
            self._model = a["data-model"]
        if tag == "td" and "data-state" in a and self._model is not None:
            self.cells[(self._model, a.get("data-env") or "")] = a["data-state"] or ""

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **want: str) -> list[dict[str, str | None]]:
        """Attributes of every `tag` element whose attributes include `want` (data_x → data-x)."""
        wanted = {k.replace("_", "-"): v for k, v in want.items()}
        return [a for t, a in self.attrs if t == tag
                and all(a.get(k) == v for k, v in wanted.items())]
