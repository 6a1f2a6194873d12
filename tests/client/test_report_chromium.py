"""The plan report in a real browser: headless Chromium draws it offline, cleanly.

The pure tests (test_report.py) read the HTML as text; this one checks what a
planner sees. Chromium loads the file with every network lookup refused, and
the test checks that the charts are in the DOM it built, that nothing was
logged to the console (no failed load, no error), and that the screenshot is
a real page, not a blank one. The screenshot is kept as a test artefact in
``build/test-artefacts/report.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from matplotlib.image import imread

from masterplan.client.report import render_report
from masterplan.contract.views import PlanReport
from tests.client.test_report import make_report

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "build" / "test-artefacts"
WIDTH, HEIGHT = 1280, 6000  # tall enough for the whole synthetic report
TIMEOUT_S = 120

# Offline and quiet: no sandbox (CI runs as root), no GPU, no first-run,
# update, sync or background traffic, and every host lookup fails at once, so
# that Chromium neither hangs on the network nor reaches it.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--hide-scrollbars",
    "--mute-audio",
)


def _chromium() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(
        "headless Chromium is not installed: install Debian's `chromium` package "
        "(.ci/run does when apt is usable) to check the report in a browser"
    )


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Chromium once, with its own profile and home, killed if it hangs."""
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(
        [chromium, *_FLAGS, f"--user-data-dir={profile / 'user-data'}", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        check=False,
    )


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    """Width, height, bit depth and colour type from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(data[12:29]) == crc, "corrupt IHDR"
    return width, height, depth, colour


class Browsed(NamedTuple):
    """What Chromium made of the report."""

    report: PlanReport
    png: bytes
    dom: str
    log: str


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Browsed:
    """Render the report, screenshot it and dump its DOM, once for the module."""
    chromium = _chromium()
    work = tmp_path_factory.mktemp("chromium")
    report = make_report()
    page = work / "report.html"
    page.write_text(render_report(report), encoding="utf-8")
    url = page.as_uri()

    shot = work / "report.png"
    shoot = _run(
        chromium, work / "shot", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url
    )
    assert shoot.returncode == 0, shoot.stderr[-2000:]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTEFACTS / "report.png")
    shutil.copyfile(page, ARTEFACTS / "report.html")

    dump = _run(
        chromium,
        work / "dump",
        "--dump-dom",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={WIDTH},{HEIGHT}",
        url,
    )
    assert dump.returncode == 0, dump.stderr[-2000:]
    return Browsed(report, shot.read_bytes(), dump.stdout, dump.stderr)


def test_the_browser_builds_every_chart(browsed: Browsed) -> None:
    dom = browsed.dom
    assert "Most delayed demands" in dom
    assert dom.count("<svg") == len(browsed.report.charts)
    # Chromium parsed the inline SVG as SVG: its drawing elements are in the DOM.
    assert dom.count("<path") > 50


def test_nothing_is_logged_to_the_console(browsed: Browsed) -> None:
    """The page has no script; any console line is a failed load or an error."""
    log = browsed.log
    console = [line for line in log.splitlines() if re.search(r"CONSOLE[(:\]]", line)]
    assert console == []
    assert "Uncaught" not in log
    assert "Failed to load resource" not in log
    assert "ERR_NAME_NOT_RESOLVED" not in log


def test_the_screenshot_is_a_drawn_page(browsed: Browsed) -> None:
    data = browsed.png
    width, height, depth, _colour = _png_header(data)
    assert (width, height, depth) == (WIDTH, HEIGHT, 8)
    assert len(data) > 50_000, "a near-empty screenshot"
    pixels = np.asarray(imread(ARTEFACTS / "report.png"))[:, :, :3]
    flat = np.round(pixels.reshape(-1, 3) * 255).astype(np.int32)
    colours = np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2])
    assert colours.size > 200, "a page of a few flat colours"
    # The late badges are drawn in the report's red (#c62828), on its pale ground.
    red = (flat[:, 0] > 170) & (flat[:, 1] < 80) & (flat[:, 2] < 80)
    assert red.sum() > 200, "no late demand is marked in red"
    # The page is neither blank nor black: mostly light, with real content.
    light = (flat > 235).all(axis=1).mean()
    assert 0.4 < light < 0.99
