"""The console in a real headless browser: Debian's chromium driven through its own chromedriver (both from
apt, installed by .ci/run; nothing is downloaded at run time). An operator logs in, finds a parked message
on the Failures page, replays it after the dry run, and sees the replay's row on the Audit page.

With HMC_CONSOLE_SCREENSHOTS=docs the Flow and Failures pages are saved there for the README
(docs/console-flow.png, docs/console-failures.png); otherwise in the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from broker.bootstrap import store as open_store
from broker.config import Settings
from broker.runtime import Worker
from console.cli import in_thread
from tests.support.console import PASSWORD, add_person, app_of, invalid_orders, parked, traffic
from tests.support.fakes import FakeTransport
from tests.support.fixtures import Store
from tests.support.replaying import CUSTOMERS, Broker

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver (.ci/run does)",
)


@pytest.fixture
def broker(store: Store) -> Broker:
    settings = Settings(db_url=store.url, customers=CUSTOMERS, publish_attempts=2, wire_tap=False)
    transport = FakeTransport()
    sessions = open_store(settings)
    return Broker(settings, transport, Worker(settings, transport, sessions), sessions)  # type: ignore[arg-type]


@pytest.fixture
def console_url(broker: Broker) -> Iterator[str]:
    with in_thread(app_of(broker)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _screenshot(browser: WebDriver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("HMC_CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(max(int(height) + 40, 700), 2400))
    assert browser.save_screenshot(str(folder / f"console-{name}.png"))
    browser.set_window_size(1400, 1000)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_an_operator_replays_a_parked_message_in_the_browser_and_sees_it_audited(
    broker: Broker, console_url: str, browser: WebDriver, tmp_path: Path
) -> None:
    traffic(broker, 40)
    for _why, body in invalid_orders():
        broker.receive(body)  # rejected, each for its own rule: the Failures page groups them
    pk = parked(broker)
    add_person(broker, "olle.operator", "operator", "privacy")

    browser.get(f"{console_url}/flow")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.NAME, "name").send_keys("olle.operator")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("/flow"))  # a click does not wait for it
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg rect")
    _screenshot(browser, "flow", tmp_path)

    browser.get(f"{console_url}/failures")
    row = browser.find_element(By.XPATH, "//table[@class='failures']//tr[td[@class='status' and text()='parked']]")
    _screenshot(browser, "failures", tmp_path)
    row.find_element(By.LINK_TEXT, "1").click()
    browser.find_element(By.LINK_TEXT, f"#{pk}").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains(f"/messages/{pk}"))
    assert f"Message #{pk}" in browser.find_element(By.TAG_NAME, "h1").text

    form = browser.find_element(By.XPATH, f"//form[@action='/messages/{pk}/replay']")
    form.find_element(By.NAME, "reason").send_keys("INC-4711: SESAM2 was down")
    form.find_element(By.ID, "replay-preview").click()
    WebDriverWait(browser, 10).until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Dry run"))
    assert "would-send" in browser.page_source
    browser.find_element(By.ID, "replay-confirm").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("/jobs"))

    deadline = time.monotonic() + 20
    while "done" not in browser.find_element(By.CSS_SELECTOR, "table.jobs tbody td.status").text:
        assert time.monotonic() < deadline, "the replay job did not finish"
        time.sleep(0.3)
        browser.refresh()
    assert broker.row(pk).status == "replayed"

    browser.get(f"{console_url}/audit?action=replay")
    entry = browser.find_element(By.CSS_SELECTOR, "table.audit tbody tr")
    cells = [td.text for td in entry.find_elements(By.TAG_NAME, "td")]
    assert cells[2:6] == ["olle.operator", "console", "replay", "INC-4711: SESAM2 was down"]
