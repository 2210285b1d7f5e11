"""The report in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``; ``.ci/run`` installs them) opens the generated
``index.html`` from the disk, and the rendered DOM shows every model x attack
of a small store with its numbers; sorting and filtering work; every image
and plot of every page loads; the console stays free of errors; and no
request leaves the file system."""
from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from board_fixtures import ATTACKS, FAMILY, MODELS, small_store  # noqa: F401  (a fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("Chromium or chromedriver is not installed (.ci/run installs them: "
                    "apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(small_store, tmp_path_factory):
    from click.testing import CliRunner

    from iqabench.cli import cli

    out = tmp_path_factory.mktemp("browser-site")
    result = CliRunner().invoke(cli, ["report", "--store", str(small_store), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def _requests(driver) -> list[str]:
    """The URLs the page asked for since the last call (the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _check_page(driver, url: str) -> None:
    """Load ``url``: every image loaded, no console error, no request off the disk."""
    driver.get_log("browser"), _requests(driver)  # drop what an earlier page left
    driver.get(url)
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], (url, broken)
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], (url, errors)
    requests = _requests(driver)
    assert any(u.endswith("/assets/site.js") for u in requests)  # the log sees the page's requests
    off_disk = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert off_disk == [], (url, off_disk)


def _rows(driver, table: str) -> list[list[str]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).filter(r => !r.hidden)"
        ".map(r => Array.from(r.cells).map(c => c.textContent))", f"#{table}")


def _name(label: str) -> str:
    """A model's name from its row label: the fixture's plugin is no longer installed, so the
    board shows every recorded parameter after the name."""
    return label.split()[0]


def test_the_report_renders_every_cell_sorts_filters_and_stays_offline(browser, site, small_store, tmp_path):
    from selenium.webdriver.common.by import By

    _check_page(browser, (site / "index.html").as_uri())
    shot = tmp_path / "index.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    header = browser.execute_script(
        "return Array.from(document.querySelectorAll('#index-table-0 thead th')).map(h => h.textContent)")
    rows = {_name(r[0]): r for r in _rows(browser, "index-table-0")}
    assert sorted(rows) == sorted(MODELS)
    db = sqlite3.connect(small_store)
    stored = [(json.loads(c), json.loads(s)) for c, s in db.execute("SELECT config, summary FROM cells")]
    robustness = {}
    for model in MODELS:  # a column per family: each of the small store's families has one attack
        for attack in ATTACKS:
            col = header.index(FAMILY[attack])
            values = [s["robustness"] for c, s in stored if c["model"]["name"] == model and c["attack"]["name"] == attack]
            robustness[model, attack] = float(np.mean(values))
            assert rows[model][col].split(" ± ")[0].split(" (")[0] == f"{robustness[model, attack]:.4f}", (model, attack)
            assert rows[model][col].split(" (")[1].startswith(attack)  # the family's worst attack, named

    # sorting: a click on the one-step column (fgsm) orders the models by their robustness, a second click reverses
    col = header.index("one-step")
    button = browser.find_elements(By.CSS_SELECTOR, "#index-table-0 thead th button")[col]
    expected = sorted(MODELS, key=lambda m: robustness[m, "fgsm"])
    button.click()
    assert [_name(r[0]) for r in _rows(browser, "index-table-0")] == expected
    button.click()
    assert [_name(r[0]) for r in _rows(browser, "index-table-0")] == expected[::-1]
    # filtering: typing a model's name keeps its row only
    browser.find_element(By.CSS_SELECTOR, "input.filter").send_keys(MODELS[1])
    assert [_name(r[0]) for r in _rows(browser, "index-table-0")] == [MODELS[1]]

    # every page of the site: images and plots load, no error, nothing off the disk
    key = db.execute("SELECT key FROM cells WHERE attack = 'fgsm'").fetchone()[0]
    for page in ("adversarial.html", "universal.html", "galleries.html", f"cells/{key}.html", "cards/index.html"):
        _check_page(browser, (site / page).as_uri())
    browser.get((site / "cells" / f"{key}.html").as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, ".gallery img")) > 0
    # the adversarial page: every model x attack, then one row per cell plus a universal mean per model
    _check_page(browser, (site / "adversarial.html").as_uri())
    header = browser.execute_script(
        "return Array.from(document.querySelectorAll('#adversarial-table-0 thead th')).map(h => h.textContent)")
    rows = {_name(r[0]): r for r in _rows(browser, "adversarial-table-0")}
    for (model, attack), value in robustness.items():
        col = next(i for i, h in enumerate(header) if h.split(" (")[0] == attack)
        assert rows[model][col].split(" ± ")[0] == f"{value:.4f}", (model, attack)
    assert len(_rows(browser, "adversarial-table-1")) == len(stored) + len(MODELS)
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure img")) == 5  # a bar chart per score
