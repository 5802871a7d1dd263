"""The status page in headless Chromium, served by `bp status serve` as an operator starts it:
the printed address -> runs -> run -> charts -> dead letters -> replay, with screenshots; and
replay refused without the access token and without the CSRF token.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
selenium package; the screenshots land in artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_ops.emulators import LOOPBACK, free_port

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
def printed_address(recorded: RecordedRuns, tmp_path: Path) -> Iterator[str]:
    """`bp status serve` over the recorded run folder; yields the address it printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BP_", "OTEL_"))}
    env["PIPELINE_ENV"] = "local"
    log = tmp_path / "status.log"
    command = [sys.executable, "-m", "bp_common.cli", "status", "serve", "--port", str(port)]
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [*command, "--out", str(recorded.pipeline.root)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        address = ""
        while not address:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            for line in log.read_text().splitlines():
                if line.startswith("status page on "):
                    address = line.removeprefix("status page on ").strip()
            time.sleep(0.1)
        while not _answers(port):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield address
    finally:
        server.terminate()
        server.wait(20)


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def status_url(printed_address: str) -> str:
    return printed_address.split("/?", 1)[0]


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
    recorded: RecordedRuns, printed_address: str, status_url: str, browser: webdriver.Chrome
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert "/?token=" in printed_address
    browser.get(printed_address)
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(status_url + "/"))
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

    browser.find_element(By.LINK_TEXT, "Charts").click()
    WebDriverWait(browser, 10).until(expected_conditions.title_contains("Charts"))
    for chart in ("throughput-export", "latency", "backlog", "dead-letters"):
        assert browser.find_element(By.ID, chart).find_element(By.TAG_NAME, "svg").is_displayed()
    browser.save_screenshot(str(ARTIFACTS / "status-page-charts.png"))

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


def post_replay_from_the_page(driver: webdriver.Chrome, fields: dict[str, str]) -> str:
    """Submit a replay form of the page's own origin that carries only `fields`; the answer."""
    driver.execute_script(
        "const form = document.createElement('form');"
        "form.method = 'post'; form.action = '/dead-letters/replay';"
        "for (const [name, value] of Object.entries(arguments[0])) {"
        "  const input = document.createElement('input');"
        "  input.type = 'hidden'; input.name = name; input.value = value;"
        "  form.appendChild(input); }"
        "document.body.appendChild(form); form.submit();",
        fields,
    )
    WebDriverWait(driver, 10).until(expected_conditions.url_contains("/dead-letters/replay"))
    return str(driver.find_element(By.TAG_NAME, "main").text)


def test_replay_is_refused_without_the_token_and_without_the_csrf_token(
    recorded: RecordedRuns, printed_address: str, status_url: str, browser: webdriver.Chrome
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # A browser that never opened the printed address: even on loopback, nothing is served.
    browser.get(status_url + "/dead-letters")
    assert "Access token needed" in browser.title
    assert "?token=" in browser.find_element(By.TAG_NAME, "main").text
    answer = post_replay_from_the_page(browser, {"stage": "export"})
    assert "Access token needed" in browser.title and "?token=" in answer
    assert recorded.waiting() == 1
    browser.save_screenshot(str(ARTIFACTS / "status-page-no-token.png"))

    # With the token, a form that lacks the page's CSRF token (or forges one) is refused too.
    browser.get(printed_address)
    browser.get(status_url + "/dead-letters")
    assert waiting_on_export(browser) == "1"
    answer = post_replay_from_the_page(browser, {"stage": "export"})
    assert "Request refused" in browser.title and "CSRF token" in answer
    browser.get(status_url + "/dead-letters")
    answer = post_replay_from_the_page(browser, {"stage": "export", "csrf_token": "f" * 64})
    assert "CSRF token" in answer
    assert recorded.waiting() == 1
    browser.save_screenshot(str(ARTIFACTS / "status-page-no-csrf.png"))

    # The page's own button carries the token and goes through.
    browser.get(status_url + "/dead-letters")
    browser.find_element(By.ID, "replay-export").click()
    WebDriverWait(browser, 10).until(expected_conditions.alert_is_present()).accept()
    WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((By.ID, "notice"))
    )
    assert recorded.waiting() == 0
