"""The status page in headless Chromium: runs -> run -> dead letters -> replay, with screenshots.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
selenium package; the screenshots land in artifacts/ at the repository root.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from bp_ops.emulators import LOOPBACK, free_port
from bp_ops.status import create_app

from tests.status.conftest import RecordedRuns

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

if not CHROMIUM.exists():
    pytest.skip(
        "headless browser test needs Debian's chromium at /usr/bin/chromium"
        " (apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


@pytest.fixture
def status_url(recorded: RecordedRuns) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of this test."""
    port = free_port()
    config = uvicorn.Config(
        create_app(recorded.sources()), host=LOOPBACK, port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://{LOOPBACK}:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="bp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Without the background-networking flags Chromium keeps dialling Google's hosts, which a
    # closed network refuses; a fresh profile keeps runs independent.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def waiting_on_export(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "#dlq-export .waiting").text)


def test_an_operator_follows_a_failed_run_to_its_dead_letter_and_replays_it(
    recorded: RecordedRuns, status_url: str, browser: webdriver.Chrome
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(status_url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert {r.get_attribute("data-run") for r in rows} == {
        recorded.succeeded,
        recorded.dead_lettered,
    }
    ok_row = browser.find_element(By.CSS_SELECTOR, f"tr[data-run='{recorded.succeeded}']")
    report = f"{status_url}/runs/{recorded.succeeded}/reports/probe"
    assert ok_row.find_element(By.LINK_TEXT, "probe").get_attribute("href") == report
    browser.save_screenshot(str(ARTIFACTS / "status-page.png"))

    ok_row.find_element(By.LINK_TEXT, "probe").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(report))
    assert browser.find_element(By.TAG_NAME, "h1").text == "probe: 9 of 10 episodes passed"
    browser.back()

    browser.find_element(By.LINK_TEXT, recorded.dead_lettered).click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains(recorded.dead_lettered))
    stage = browser.find_element(By.ID, "stage-export").text
    assert "failed" in stage and "probe refuses this scene" in stage
    assert browser.find_element(By.ID, "run-dead-letters").is_displayed()
    browser.save_screenshot(str(ARTIFACTS / "status-page-run.png"))

    browser.find_element(By.LINK_TEXT, "Dead letters").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("Dead letters"))
    assert waiting_on_export(browser) == "1"
    browser.save_screenshot(str(ARTIFACTS / "status-page-dead-letters.png"))

    browser.find_element(By.ID, "replay-export").click()
    confirmation = WebDriverWait(browser, 10).until(expected_conditions.alert_is_present())
    assert "Replay 1 dead letter(s) of stage export to scene-uploads?" in confirmation.text
    confirmation.accept()
    WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((By.ID, "notice"))
    )
    assert "Replayed 1 dead letter(s) of stage export" in browser.find_element(By.ID, "notice").text
    assert waiting_on_export(browser) == "0"
    assert recorded.waiting() == 0
    browser.save_screenshot(str(ARTIFACTS / "status-page-replayed.png"))
