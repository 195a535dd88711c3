"""Issue 13, point 5: the dashboard in a real browser (headless Chromium through Selenium),
over a real embedded queue whose dead letters a real consumer wrote.

With BOTQUEUE_UPDATE_SCREENSHOTS=1 the overview and dead-letter tests save the PNGs that
docs/dashboard.md shows (docs/img/); otherwise the pictures go to the test's tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from botqueue.transports import SqliteTransport
from tests.browser.conftest import Screenshot
from tests.browser.dashboard_server import Dashboard, running_dashboard
from tests.browser.queue_seed import (
    ANN,
    FINN,
    PREMIUM,
    SCRIPT_BODY,
    VIP,
    SeededQueue,
    enqueue_invites,
    on_queue,
)
from tests.integration.sqs_servers import CREDENTIALS, REGION, free_port

WAIT = 20.0
"""Longest wait for the page to show something (a bound, not a timing assertion)."""


def counts(url: str) -> tuple[int, int, int]:
    """The queue's visible, in-flight and dead-letter counts (its age grows by itself)."""
    stats = on_queue(url, lambda t: t.stats())
    return stats.visible, stats.in_flight, stats.dead_letters


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    """A bounded wait on the page."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.1)


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    """The element with this id."""
    return driver.find_element(By.ID, element_id)


def points(driver: WebDriver, chart_id: str) -> int:
    """How many points a chart plots, as its data-points attribute says."""
    return int(by_id(driver, chart_id).get_attribute("data-points") or 0)


def table_ids(driver: WebDriver) -> list[str]:
    """The message ids of the dead-letter table's rows, top to bottom."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#dead-letter-table tr.dead-letter")
    return [row.get_attribute("data-message-id") or "" for row in rows]


def cells(driver: WebDriver, css_class: str) -> list[str]:
    """The texts of one column of the dead-letter table."""
    found = driver.find_elements(By.CSS_SELECTOR, f"#dead-letter-table tr.dead-letter .{css_class}")
    return [cell.text for cell in found]


def filtered(driver: WebDriver, dashboard: Dashboard, name: str, value: str) -> list[str]:
    """Open the table, choose one filter in the form, apply it; the rows left."""
    driver.get(f"{dashboard.url}/dead-letters")
    Select(driver.find_element(By.CSS_SELECTOR, f"#filters select[name='{name}']")).select_by_value(
        value
    )
    by_id(driver, "apply-filters").click()
    wait(driver).until(lambda d: f"{name}={value}" in d.current_url)
    return table_ids(driver)


def test_the_overview_shows_the_queue_stats_and_alarm_states(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    stats = on_queue(seeded.url, lambda t: t.stats())
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (2, 1, 4)
    browser.get(dashboard.url + "/")
    wait(browser).until(lambda d: by_id(d, "dead-letters").text == str(stats.dead_letters))
    assert by_id(browser, "visible").text == str(stats.visible)
    assert by_id(browser, "in-flight").text == str(stats.in_flight)
    states = {
        name: by_id(browser, name).get_attribute("data-state")
        for name in ("visible", "in-flight", "dead-letters", "oldest-age")
    }
    # The spec's alarms: depth > 1000, oldest > 5 min, any dead letter.
    assert states == {
        "visible": "ok",
        "in-flight": "ok",
        "dead-letters": "alarm",
        "oldest-age": "ok",
    }
    assert any(ch.isdigit() for ch in by_id(browser, "oldest-age").text)
    assert (
        not browser.find_elements(By.ID, "error-banner")
        or not by_id(browser, "error-banner").is_displayed()
    )

    # Past the depth threshold the same page turns the depth to an alarm.
    on_queue(seeded.url, lambda t: enqueue_invites(t, range(1000, 2000)))
    wait(browser).until(lambda d: by_id(d, "visible").get_attribute("data-state") == "alarm")
    assert by_id(browser, "visible").text.replace(",", "") == str(stats.visible + 1000)


async def take(transport: SqliteTransport, count: int) -> None:
    """Receive and delete ``count`` visible messages, as a worker finishing them would."""
    received = await transport.receive(count, wait_seconds=1, visibility_timeout=30)
    assert len(received) == count
    assert await transport.delete_batch([message.receipt for message in received]) == []


def test_the_charts_fill_and_the_overview_updates_without_a_reload(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue, screenshot: Screenshot
) -> None:
    browser.get(dashboard.url + "/")
    wait(browser).until(lambda d: points(d, "chart-depth") > 0)
    # Survives only as long as this page does: a reload would wipe it.
    browser.execute_script("window.botqueueTestMarker = 'same page';")
    before, plotted = int(by_id(browser, "visible").text), points(browser, "chart-depth")
    updated = by_id(browser, "updated-at").text

    on_queue(seeded.url, lambda t: enqueue_invites(t, range(300, 305)))
    wait(browser).until(lambda d: by_id(d, "visible").text == str(before + 5))
    wait(browser).until(lambda d: points(d, "chart-depth") > plotted)
    wait(browser).until(lambda d: points(d, "chart-rate") > 0)
    assert by_id(browser, "updated-at").text != updated
    assert browser.execute_script("return window.botqueueTestMarker;") == "same page"

    # Work three off, as a worker would: the depth falls on the same page.
    on_queue(seeded.url, lambda t: take(t, 3))
    wait(browser).until(lambda d: by_id(d, "visible").text == str(before + 2))
    assert browser.execute_script("return window.botqueueTestMarker;") == "same page"
    # A few more points, so the picture shows the rise and the fall.
    plotted = points(browser, "chart-depth")
    wait(browser).until(lambda d: points(d, "chart-depth") >= plotted + 3)
    assert screenshot(browser, "dashboard-overview").stat().st_size > 0


def test_filters_narrow_the_table_and_viewing_consumes_nothing(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue, screenshot: Screenshot
) -> None:
    listed = on_queue(seeded.url, lambda t: t.dlq_list())
    before = counts(seeded.url)
    letters = seeded.letters

    browser.get(f"{dashboard.url}/dead-letters")
    assert table_ids(browser) == [letter.message_id for letter in listed]
    assert sorted(cells(browser, "kind")) == ["exhausted", "permanent", "permanent", "undecodable"]
    assert "bot_blocked" in cells(browser, "reason")
    # The two Telegram letters come first; between them, their groups raced (any order).
    rows = sorted(zip(cells(browser, "channel")[:2], cells(browser, "user")[:2], strict=True))
    assert rows == sorted([(PREMIUM, str(FINN)), (VIP, str(ANN))])
    assert screenshot(browser, "dashboard-dead-letters").stat().st_size > 0

    assert sorted(filtered(browser, dashboard, "kind", "permanent")) == sorted(
        [letters["invite"], letters["remove"]]
    )
    assert set(cells(browser, "kind")) == {"permanent"}
    assert filtered(browser, dashboard, "reason", "bot_blocked") == [letters["invite"]]
    assert filtered(browser, dashboard, "type", "VERIFY_PERMISSIONS") == [letters["verify"]]
    assert cells(browser, "attempts") == ["2"]
    assert filtered(browser, dashboard, "kind", "undecodable") == [letters["script"]]

    # Nothing read by the pages was consumed or reordered.
    after = on_queue(seeded.url, lambda t: t.dlq_list())
    assert [letter.message_id for letter in after] == [letter.message_id for letter in listed]
    assert counts(seeded.url) == before


async def received_bodies(transport: SqliteTransport) -> list[str]:
    """Every visible message's body (received for a second, then visible again)."""
    bodies: list[str] = []
    while batch := await transport.receive(10, wait_seconds=0.5, visibility_timeout=1):
        bodies.extend(message.body for message in batch)
    return bodies


def test_redriving_one_dead_letter_through_the_buttons(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    target = seeded.letters["verify"]
    (letter,) = [x for x in on_queue(seeded.url, lambda t: t.dlq_list()) if x.message_id == target]
    before = on_queue(seeded.url, lambda t: t.stats())

    browser.get(f"{dashboard.url}/dead-letters")
    browser.find_element(
        By.CSS_SELECTOR, f"tr.dead-letter[data-message-id='{target}'] a.detail"
    ).click()
    wait(browser).until(lambda d: d.current_url.endswith(f"/dead-letters/{target}"))
    by_id(browser, "redrive-one").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "confirm"))
    assert browser.find_elements(By.ID, "cancel")
    # The confirmation alone changes nothing.
    assert counts(seeded.url) == (before.visible, before.in_flight, before.dead_letters)
    by_id(browser, "confirm").click()

    wait(browser).until(lambda d: d.find_elements(By.ID, "flash"))
    assert by_id(browser, "flash").text == "Redrove 1 dead letter."
    assert target not in table_ids(browser)
    assert len(table_ids(browser)) == before.dead_letters - 1
    after = on_queue(seeded.url, lambda t: t.stats())
    assert (after.visible, after.dead_letters) == (before.visible + 1, before.dead_letters - 1)
    assert target not in [x.message_id for x in on_queue(seeded.url, lambda t: t.dlq_list())]
    assert letter.body in on_queue(seeded.url, received_bodies)


def test_a_script_in_a_body_renders_as_text(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    browser.get(f"{dashboard.url}/dead-letters")
    title = browser.title
    assert title and "pwned" not in title
    browser.get(f"{dashboard.url}/dead-letters/{seeded.letters['script']}")
    assert by_id(browser, "operation-body").text == SCRIPT_BODY
    assert browser.title != "pwned"
    # Not in the DOM as an element either: it is text inside the <pre>.
    assert not browser.execute_script(
        "return [...document.scripts].some(s => s.text.includes('pwned'));"
    )
    assert not browser.find_elements(By.CSS_SELECTOR, "#operation-body script")
    assert "undecodable" in by_id(browser, "failure-record").text


def test_the_detail_shows_the_undelivered_invite_link(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    browser.get(f"{dashboard.url}/dead-letters/{seeded.letters['invite']}")
    assert seeded.invite_link in by_id(browser, "invite-link").text
    record = by_id(browser, "failure-record").text
    assert "bot_blocked" in record and seeded.invite_link in record
    assert json.loads(by_id(browser, "operation-body").text)["userId"] == FINN
    # A letter without a link has no link element.
    browser.get(f"{dashboard.url}/dead-letters/{seeded.letters['remove']}")
    assert not browser.find_elements(By.ID, "invite-link")


def test_the_bot_token_appears_on_no_page(
    browser: WebDriver, seeded: SeededQueue, tmp_path: Path
) -> None:
    # The token of the bot whose dead letters these are, configured as a worker's would be.
    token = seeded.bot_token
    env = {"TELEGRAM_BOT_TOKEN": token}
    with running_dashboard(tmp_path, ["--queue-url", seeded.url], env=env) as dashboard:
        browser.get(dashboard.url + "/")
        wait(browser).until(lambda d: by_id(d, "dead-letters").text == "4")
        pages = ["/", "/dead-letters", f"/dead-letters/{seeded.letters['invite']}"]
        for page in [*pages, "/api/overview"]:
            browser.get(dashboard.url + page)
            assert token.split(":")[-1] not in browser.page_source, page


@pytest.mark.parametrize("page", ["/", "/dead-letters"])
def test_an_unreachable_queue_shows_the_error_banner(
    browser: WebDriver, tmp_path: Path, page: str
) -> None:
    closed = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{closed}"
    queue = ["--queue-url", f"{endpoint}/000000000000/botqueue.fifo"]
    queue += ["--dlq-url", f"{endpoint}/000000000000/botqueue-dlq.fifo"]
    env = {
        "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SQS_ENDPOINT": endpoint,
    }
    with running_dashboard(tmp_path, queue, env=env) as dashboard:
        browser.get(dashboard.url + page)
        if page == "/":
            # The first stats call may still be under way: the script shows the banner then.
            wait(browser).until(lambda d: d.find_elements(By.ID, "error-banner"))
            wait(browser).until(lambda d: by_id(d, "error-banner").is_displayed())
            assert by_id(browser, "visible").is_displayed()
        banner = by_id(browser, "error-banner")
        assert banner.is_displayed() and banner.text.strip()
        assert browser.title


def confirm_from_table(driver: WebDriver, button_id: str) -> None:
    """Press one of the table's action buttons, then #confirm on the confirmation page."""
    by_id(driver, button_id).click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "confirm"))
    by_id(driver, "confirm").click()
    wait(driver).until(lambda d: d.find_elements(By.ID, "flash"))


def test_a_selection_is_redriven_and_purge_asks_first(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    letters = seeded.letters
    visible, in_flight, dead = counts(seeded.url)
    browser.get(f"{dashboard.url}/dead-letters")
    for name in ("invite", "remove"):
        browser.find_element(
            By.CSS_SELECTOR, f"tr.dead-letter[data-message-id='{letters[name]}'] input.select"
        ).click()
    confirm_from_table(browser, "redrive-selected")
    assert by_id(browser, "flash").text == "Redrove 2 dead letters."
    assert sorted(table_ids(browser)) == sorted([letters["script"], letters["verify"]])
    assert counts(seeded.url) == (visible + 2, in_flight, dead - 2)

    # Cancelling a purge leaves the DLQ as it was.
    by_id(browser, "purge").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "cancel"))
    by_id(browser, "cancel").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "dead-letter-table"))
    assert counts(seeded.url) == (visible + 2, in_flight, dead - 2)

    confirm_from_table(browser, "purge")
    assert by_id(browser, "flash").text == "Purged 2 dead letters."
    assert table_ids(browser) == []
    assert counts(seeded.url) == (visible + 2, in_flight, 0)


def test_a_post_with_a_wrong_csrf_token_changes_nothing(
    browser: WebDriver, dashboard: Dashboard, seeded: SeededQueue
) -> None:
    before = counts(seeded.url)
    browser.get(f"{dashboard.url}/dead-letters")
    by_id(browser, "redrive-all").click()
    wait(browser).until(lambda d: d.find_elements(By.ID, "confirm"))
    # The same form as the page's own, but its CSRF token is not the one the server issued.
    browser.execute_script(
        "for (const input of document.querySelectorAll(\"input[name='csrf_token']\"))"
        " input.value = 'forged';"
    )
    by_id(browser, "confirm").click()
    wait(browser).until(lambda d: not d.find_elements(By.ID, "confirm"))
    assert "CSRF" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.ID, "flash")
    assert counts(seeded.url) == before
