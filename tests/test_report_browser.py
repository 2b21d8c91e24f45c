"""report.html as a reader sees it: rendered by headless Chromium from disk, offline.

Chromium is Debian's (``apt-get install chromium``, done by ``.ci/run``), driven by
Playwright (no browser download). The checks are on the rendered page: elements visible
with a size, not strings in the file.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from evals.html_report import write_report
from evals.runner import RunConfig, run
from evals.simulator import AnswerBook, SimConfig, SimulatorThread

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory, aime2025_path: Path) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    book = AnswerBook.from_tasks(["aime2025"], {"aime2025": aime2025_path})
    with SimulatorThread(SimConfig(accuracy=0.75, truncate=0.05), book) as sim:
        cfg = RunConfig(tasks=("aime2025",), model="magistral-small-2509",
                        provider="simulator", base_url=sim.base_url, n=2,
                        data=(("aime2025", aime2025_path),), out=out, concurrency=32)
        asyncio.run(run(cfg))
    return write_report([out])


def _browser(playwright: object) -> object:
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        reason = ("needs Chromium to open report.html: install Debian's package "
                  "(`apt-get install -y chromium`)")
        if os.environ.get("EVALS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason}; EVALS_REQUIRE_BROWSER=1, so this is a failure, not a skip")
        pytest.skip(reason)
    return playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")),
        args=["--no-sandbox"])


@pytest.mark.slow
def test_the_page_renders_offline_with_table_figures_and_drill_down(report_page):
    from playwright.sync_api import sync_playwright

    url = report_page.resolve().as_uri()
    with sync_playwright() as p:
        browser = _browser(p)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url, wait_until="load")

            # The summary table, with the task's row.
            summary = page.locator("table#summary")
            assert summary.is_visible()
            row = summary.locator("tbody tr").first
            assert row.is_visible() and "aime2025" in row.inner_text()
            assert "magistral" in page.locator("table#published").inner_text()

            # Figures: decoded images with a real size.
            images = page.locator("figure img")
            assert images.count() >= 4
            first = images.first
            first.scroll_into_view_if_needed()
            assert first.is_visible()
            box = first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            assert page.evaluate("() => [...document.images].every("
                                 "i => i.complete && i.naturalWidth > 0)")

            # Drill-down: a problem entry is visible, folded; opening it shows its
            # attempts, and each reasoning stays folded until opened.
            entries = page.locator("details.problem")
            assert entries.count() == 30
            entry = entries.first
            entry.scroll_into_view_if_needed()
            header = entry.locator(":scope > summary")
            assert header.is_visible() and "correct" in header.inner_text()
            attempts = entry.locator("table").first
            assert not attempts.is_visible()
            header.click()
            assert attempts.is_visible() and "repeat" in attempts.inner_text()
            reasoning = entry.locator("details.reasoning").first
            assert reasoning.locator(":scope > summary").is_visible()
            assert not reasoning.locator("pre").is_visible()
        finally:
            browser.close()  # type: ignore[attr-defined]
    # No network: only the page itself (and data: URIs, which never leave the browser).
    assert [u for u in requests if u != url and not u.startswith("data:")] == []
    assert url in requests
