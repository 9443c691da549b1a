"""The fleet dashboard in a real browser (issue 16): Debian's headless Chromium, driven by
Selenium through Debian's chromedriver, against a real `vmprep serve` with a seeded store.
`.ci/run` installs both and sets VMPREP_BROWSER_REQUIRED=1, so CI runs this, never skips it.
A screenshot is written to $VMPREP_ARTIFACTS (default: the test's temporary directory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.server.conftest import write_repo
from tests.server.test_fleet import report, seed
from vmprep.server.fleet import Served
from vmprep.server.keys import write_keypair
from vmprep.server.service import hash_token
from vmprep.server.store import SqliteStore

pytestmark = pytest.mark.slow
ADMIN = "dashboard-admin-token"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _missing() -> str | None:
    for path in (CHROMIUM, DRIVER):
        if not Path(path).exists():
            return f"{path} is not installed (Debian: chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


@pytest.fixture
def browser(tmp_path):
    why = _missing()
    if why:
        if os.environ.get("VMPREP_BROWSER_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path, serve_process):
    data = tmp_path / "data"
    store = SqliteStore(data)
    seed(store, 40)
    store.add_reports(
        [
            report(
                "i-broken",
                "sql",
                "failed",
                1_900_000_000,
                steps=[
                    {
                        "id": "join",
                        "status": "failed",
                        "exit_code": 5,
                        "output_tail": "ACCESS DENIED <b>x</b>",
                    }
                ],
                error={"code": "step_failed", "message": "join failed"},
            )
        ]
    )
    store.add_served([Served("i-silent", "web", 9, 1_800_000_100.0)])
    store.close()
    (tmp_path / "tokens").write_text(f"admin {hash_token(ADMIN)}\n")
    write_keypair(tmp_path / "k")
    args = ["--configs", str(write_repo(tmp_path / "configs", sql=True))]
    args += ["--key", str(tmp_path / "k.pem"), "--data-dir", str(data)]
    args += ["--tokens", str(tmp_path / "tokens"), "--poll", "0"]
    return serve_process(args, env={"TEST_JOIN_USER": "u"}).start()


def test_an_operator_finds_the_failed_instance_and_its_output(browser, server, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(server.url + "/dashboard")
    token = browser.find_element(By.ID, "token")
    assert browser.switch_to.active_element != token
    token.send_keys(ADMIN, Keys.ENTER)  # the keyboard alone signs in
    wait.until(lambda d: d.find_element(By.ID, "fleet").is_displayed())
    rows = browser.execute_script(  # read at once: the page refreshes itself every 5 s
        "return Object.fromEntries([...document.querySelectorAll('#counts tbody tr')]"
        ".map(r => [r.querySelector('th').textContent,"
        " [...r.querySelectorAll('td')].map(c => c.textContent)]))"
    )
    # seed(40): i % 3 picks the role, i % 4 the state; plus i-broken (sql, failed), i-silent
    assert rows["sql"] == ["4", "3", "4", "3", "0", "14"]  # running done failed halted never
    assert rows["web"][4] == "1"  # i-silent was served a document and never reported
    Select(browser.find_element(By.ID, "state")).select_by_value("failed")
    browser.find_element(By.ID, "search").send_keys("i-bro", Keys.ENTER)
    wait.until(
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, "#instances tbody tr td:first-child")]
            == ["i-broken"]
        )
    )

    def open_it(d):  # the row may be re-rendered between finding and pressing it
        d.find_element(By.CSS_SELECTOR, "#instances tbody button").send_keys(Keys.ENTER)
        return d.find_element(By.ID, "detail").is_displayed()

    wait.until(open_it)
    assert browser.find_element(By.ID, "detail-error").text == "Error step_failed: join failed"
    # output is shown as text: markup in it is not interpreted
    assert browser.find_element(By.ID, "detail-tail").text == "ACCESS DENIED <b>x</b>"
    assert browser.switch_to.active_element == browser.find_element(By.ID, "detail")
    out = Path(os.environ.get("VMPREP_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(out / "dashboard.png"))
    if os.environ.get("VMPREP_ARTIFACTS") is None:
        shutil.copy(out / "dashboard.png", tmp_path / "kept.png")


def test_the_basics_of_accessibility(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/dashboard")
    browser.find_element(By.ID, "token").send_keys(ADMIN, Keys.ENTER)
    browser.find_element(By.CSS_SELECTOR, "#instances tbody tr")
    unlabeled = browser.execute_script(
        "return [...document.querySelectorAll('input, select')]"
        ".filter(e => !document.querySelector(`label[for='${e.id}']`) && !e.closest('label'))"
        ".map(e => e.id)"
    )
    assert unlabeled == []
    ratios = browser.execute_script(
        """
        function lum(c) {
          const v = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(x => x / 255)
            .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
          return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
        }
        const bg = lum(getComputedStyle(document.body).backgroundColor);
        return [...document.querySelectorAll('td, th, caption, label, button, p, h1, h2')]
          .filter(e => e.offsetParent !== null && e.textContent.trim())
          .map(e => { const f = lum(getComputedStyle(e).color);
                      return (Math.max(f, bg) + 0.05) / (Math.min(f, bg) + 0.05); });
        """
    )
    assert ratios
    assert min(ratios) >= 4.5  # WCAG 2.1 AA, normal text
    # every control is reachable with Tab, in document order
    browser.find_element(By.ID, "refresh").click()  # no re-render while tabbing
    browser.execute_script("document.getElementById('token').focus()")
    reached = set()
    for _ in range(40):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        reached.add(browser.switch_to.active_element.get_attribute("id"))
    assert {"role", "state", "search", "refresh"} <= reached
