"""The sweep report in a real browser: headless Chromium, driven by Selenium.

A real tiny sweep (three runs, Hydra grammar, real training) writes its report at the end;
the page is opened from disk and must show every figure, sort its runs table when a header is
clicked, and fetch nothing but the files beside it. Needs Debian's ``chromium`` and
``chromium-driver``; outside CI the test is skipped without them, under ``CI=true`` it fails.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import run_cli

from knowit_app.report.collect import collect_sweep

FIGURES = {"train_loss.png", "valid_loss.png", "parallel_coordinates.png", "importance.png"}
# Where a person (or the CI artefacts) can look at the page; the test always writes one too.
SCREENSHOT_ENV = "KNOWIT_REPORT_SCREENSHOT"

pytestmark = pytest.mark.slow


def _browser_paths() -> tuple[str, str]:
    """Chromium and its driver, named explicitly so Selenium never downloads a browser."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """index.html of a real three-run sweep, written by the sweep's end-of-sweep callback."""
    work = tmp_path_factory.mktemp("browser")
    proc = run_cli(["-m", "model_name=b", "sweep.name=b", "hydra.sweeper.count=3",
                    "arch.dropout=0.0,0.5", "trainer.learning_rate=0.001,0.1",
                    "data.batch_size=512", "data.limit=5", "arch.width=8",
                    "trainer.max_epochs=2"], cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    index = work / "outputs/models/b/sweeps/b/report/index.html"
    assert index.is_file(), proc.stderr[-4000:]
    return index


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _column(driver, header: str) -> list[str]:
    """The text of one column of the runs table, top to bottom."""
    return driver.execute_script(
        "var t = document.querySelector('table.runs'), h = arguments[0];"
        "var i = Array.from(t.tHead.rows[0].cells).findIndex(function (c) {"
        "  return c.textContent.trim() === h; });"
        "return Array.from(t.tBodies[0].rows).map(function (r) {"
        "  return r.cells[i].textContent.trim(); });", header)


def _click_header(driver, header: str) -> None:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, "table.runs thead th")
    next(c for c in cells if c.text.strip() == header).click()


def test_the_report_in_a_browser(report, browser, tmp_path):
    table = collect_sweep(report.parents[1])
    assert len(table.runs) == 3 and all(r.state == "finished" for r in table.runs)
    browser.get(report.as_uri())
    assert browser.title == "Sweep b: report"

    # Every picture is there and decoded by the browser.
    images = browser.execute_script(
        "return Array.from(document.images).map(function (i) {"
        "  return [i.getAttribute('src'), i.complete, i.naturalWidth]; });")
    assert {src for src, _, _ in images} == FIGURES
    for src, complete, width in images:
        assert complete and width > 0, src

    # Best first, as written; a click sorts by run name, a second click reverses.
    best_first = [r.name for r in table.ranked()]
    assert [n.rstrip(" \u2605") for n in _column(browser, "run")] == best_first
    _click_header(browser, "run")
    by_name = [n.rstrip(" \u2605") for n in _column(browser, "run")]
    assert by_name == sorted(best_first)
    _click_header(browser, "run")
    assert [n.rstrip(" \u2605") for n in _column(browser, "run")] == sorted(best_first)[::-1]
    # Numbers sort as numbers: the metric column, largest (worst) first on the second click.
    _click_header(browser, table.metric)
    scores = [float(s) for s in _column(browser, table.metric)]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    _click_header(browser, table.metric)
    assert [float(s) for s in _column(browser, table.metric)] == sorted(scores, reverse=True)
    _click_header(browser, "fit s")
    seconds = [float(s) for s in _column(browser, "fit s")]
    assert seconds == sorted(seconds)
    _click_header(browser, "rank")
    assert [n.rstrip(" \u2605") for n in _column(browser, "run")] == best_first

    # Nothing left the machine: every request the page made was for a file.
    urls = set(browser.execute_script(
        "return performance.getEntries().filter(function (e) {"
        "  return e.entryType === 'navigation' || e.entryType === 'resource'; })"
        ".map(function (e) { return e.name; });"))
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    assert {Path(u).name for u in urls if u.startswith("file://")} >= FIGURES | {"index.html"}
    assert [u for u in urls if not u.startswith("file://")] == []

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 150, 8000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
