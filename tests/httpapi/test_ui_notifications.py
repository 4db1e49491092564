"""The web UI's Notifications view, in Debian's chromium (Playwright), against `contentgen api
--local` (auth local: the one owner demo-user) over a catalog whose webhook deliveries were made
and attempted through the delivery log's own API (contentgen.catalog.deliveries), as the
operator's notifier makes them: newest first, by Notification, a row opening to every attempt,
filters by Notification and status, a receiver's answer shown as text (never HTML), and another
owner's deliveries never listed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contentgen.catalog import Catalog
from contentgen.catalog.deliveries import Deliveries
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.laptop_notifications import KeptNotifications
from contentgen.httpapi import ApiSettings, create_app
from tests.harness.browser import load, local_page, no_stray_text, ready, until
from tests.harness.deliveries import Clock, deliver, events, notification
from tests.harness.servers import serve_app

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">busy'


@dataclass
class Served:
    base: str
    catalog: Catalog


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-notifications-ui-"))
    catalog = EmbeddedCatalog(root / "catalog")
    try:
        settings = ApiSettings(
            catalog="unused://",
            store=str(root / "store"),
            api_auth=["local"],
            api_create="local",
            api_offline=True,
        )
        app = create_app(settings, catalog=catalog)
        with serve_app(app) as base:
            yield Served(base, catalog)
        app.state.services.creator.close()
    finally:
        catalog.close()
        shutil.rmtree(root, ignore_errors=True)


def _cell(row: Any, label: str) -> str:
    return str(row.locator(f"td[data-label='{label}']").inner_text())


def _open(page: Any, base: str, hash_: str = "#/notifications") -> None:
    """The view at `hash_`, read again from the API (a reload where the page is there already)."""
    if page.url == f"{base}/{hash_}":
        page.reload()
    elif page.url.startswith(base):
        page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
        page.evaluate(f"location.hash = {hash_!r}")
    else:
        load(page, f"{base}/{hash_}")
    ready(page, "notifications")


def test_the_delivery_log_by_notification_with_every_attempt_and_answers_as_text(
    chromium: Any,
    served: Served,
) -> None:
    clock = Clock()
    store = Deliveries(served.catalog, clock)
    # studio-backend is kept on this machine (`contentgen run` of its manifest); chat-bot is not
    hooks, _ = KeptNotifications(served.catalog).keep(
        {"apiVersion": "contentgen.io/v1alpha1", "kind": "Notification",
         "metadata": {"namespace": "team-a", "name": "studio-backend"}, "spec": {"url": "http://127.0.0.1:9/"}}
    )  # fmt: skip
    bot = notification("team-b", "chat-bot")
    # Bob's resource's delivery: never shown to demo-user.
    [bobs] = events("bob", "bob-0001", "bobs-talk")
    deliver(store, clock, bobs, hooks, [(500, "bob's secret answer", "")])

    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page, outside = local_page(context, served.base)
        _open(page, served.base)
        assert page.locator("nav a[data-section=notifications].active").count() == 1
        empty = page.locator("#empty").inner_text()
        assert "No webhook deliveries yet" in empty and "docs/notifications.md" in empty
        laptop = page.locator("#notifications-laptop").inner_text()
        assert (
            "contentgen run examples/notification.yaml" in laptop
            and "contentgen notifications receive" in laptop
        )
        assert page.locator("#notifications-docs").get_attribute("href") == "/docs#/notifications"
        assert "bob" not in page.locator("main").inner_text()

        # demo-user's: a LoRA's two versions to studio-backend (one retried, then delivered; one
        # answered with HTML and waiting to be retried), a transcript's to chat-bot (410: disabled).
        lora_v1, lora_v2 = events("demo-user", "lora-0001", "avatar", "LoraTraining", versions=2)
        deliver(
            store, clock, lora_v1, hooks, [(503, "busy", ""), (0, "", "timeout after 10 s"), (204, "", "")]
        )
        deliver(store, clock, lora_v2, hooks, [(502, HOSTILE, "")])
        [talk] = events("demo-user", "talk-0001", "talk")
        deliver(store, clock, talk, bot, [(410, "gone", "")])
        [pending] = events("demo-user", "talk-0002", "talk-2")
        deliver(store, clock, pending, bot, [])

        _open(page, served.base)
        text = page.locator("main").inner_text()
        assert "bob" not in text and "secret answer" not in text
        groups = page.locator("section.notification-group")
        # by Notification, the one with the newest delivery first
        assert [groups.nth(i).get_attribute("data-notification") for i in range(groups.count())] == [
            "team-b/chat-bot",
            "team-a/studio-backend",
        ]
        rows = page.locator("tr.delivery")
        assert [rows.nth(i).get_attribute("data-event") for i in range(rows.count())] == [
            pending["id"],
            talk["id"],
            lora_v2["id"],
            lora_v1["id"],
        ]
        assert [rows.nth(i).get_attribute("data-status") for i in range(rows.count())] == [
            "pending",
            "disabled",
            "retrying",
            "delivered",
        ]
        hostile = page.locator(f"tr.delivery[data-event='{lora_v2['id']}']")
        assert "loratraining.succeeded" in _cell(hostile, "event")
        assert _cell(hostile, "resource") == "LoraTraining/avatar"
        assert hostile.locator("td[data-label=resource] a").get_attribute("href") == "#/lora/lora-0001"
        assert _cell(hostile, "status") == "retrying" and _cell(hostile, "attempts") == "1"
        assert _cell(hostile, "created").endswith("UTC") and _cell(hostile, "next attempt").endswith("UTC")
        # the receiver's answer, as text: no element made of it, no script run
        last = hostile.locator("td.last-answer")
        assert last.locator("[data-code='502']").count() == 1
        assert "<script>window.pwned = 1</script>" in last.inner_text()
        assert last.locator("script, img").count() == 0
        assert page.evaluate("window.pwned === undefined")
        delivered = page.locator(f"tr.delivery[data-event='{lora_v1['id']}']")
        assert _cell(delivered, "attempts") == "3"
        assert _cell(delivered, "next attempt") == "-"  # no attempt is due
        disabled = page.locator(f"tr.delivery[data-event='{talk['id']}'] td.last-answer")
        assert disabled.inner_text() == "410 gone"
        assert (
            page.locator(f"tr.delivery[data-event='{pending['id']}'] td.last-answer").inner_text()
            == "none yet"
        )
        assert "1 pending" in groups.nth(0).locator("h2").inner_text()

        # a row opens to every attempt: when, the code, the answer's start, why there was none
        detail = page.locator(f"tr.delivery-detail[data-for$='{lora_v1['id']}']")
        assert not detail.is_visible()
        delivered.locator("td[data-label=created]").click()  # the row, anywhere but a link or button
        assert detail.is_visible()
        assert delivered.locator("button.expand").get_attribute("aria-expanded") == "true"
        attempts = detail.locator("tr[data-attempt]")
        assert attempts.count() == 3
        first, second, third = (attempts.nth(i) for i in range(3))
        assert _cell(first, "code") == "503" and _cell(first, "answer") == "busy"
        assert _cell(second, "code") == "no answer" and _cell(second, "error") == "timeout after 10 s"
        assert _cell(third, "code") == "204" and _cell(third, "attempt") == "3"
        assert lora_v1["id"] in detail.inner_text()
        delivered.locator("button.expand").click()
        assert not detail.is_visible()
        hostile.locator("button.expand").click()
        no_stray_text(page)
        answer = page.locator(f"tr.delivery-detail[data-for$='{lora_v2['id']}'] pre.answer")
        assert answer.inner_text() == HOSTILE and answer.locator("*").count() == 0
        assert page.evaluate("window.pwned === undefined")
        # at 420 px the tables are stacked cards, nothing wider than the window
        page.set_viewport_size({"width": 420, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
        page.set_viewport_size({"width": 1400, "height": 1000})
        # Send again, on a laptop: the delivery waits again for the next `contentgen run` here
        opened = page.locator(f"tr.delivery-detail[data-for$='{lora_v2['id']}']")
        assert (
            "contentgen notifications send team-a/studio-backend"
            in opened.locator(".delivery-actions").inner_text()
        )
        opened.locator("button.replay").click()
        queued = opened.locator(".replay-status .notice:not(.error)")
        queued.wait_for()
        assert queued.inner_text().startswith(
            f"{lora_v2['id']} waits again for Notification team-a/studio-backend"
        )
        [again] = store.find(None, event_id=lora_v2["id"])
        assert again["status"] == "pending" and again["replays"] == 1
        # chat-bot's is not kept here (a cluster's, say): nothing on this machine can send it
        talks = page.locator(f"tr.delivery-detail[data-for$='{talk['id']}']")
        page.locator(f"tr.delivery[data-event='{talk['id']}'] button.expand").click()
        talks.locator("button.replay").click()
        gone = talks.locator(".replay-status .notice.error")
        gone.wait_for()
        assert "is no longer kept here" in gone.inner_text()

        # filters: a status, a Notification
        page.select_option("#filter-delivery-status", "delivered")
        page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
        page.click("#filters button[type=submit]")
        until(page, "location.hash.includes('status=delivered')")
        ready(page, "notifications")
        assert page.locator("tr.delivery").count() == 1
        assert page.locator("tr.delivery").get_attribute("data-event") == lora_v1["id"]
        _open(page, served.base, "#/notifications?notification=team-b%2Fchat-bot")
        assert page.locator("#filter-notification").input_value() == "team-b/chat-bot"
        assert page.locator("section.notification-group").count() == 1
        assert page.locator("tr.delivery").count() == 2
        _open(page, served.base, "#/notifications?notification=team-b%2Fchat-bot&status=failed")
        assert "No deliveries match these filters" in page.locator("#empty").inner_text()
        assert outside == []
    finally:
        context.close()


def test_an_api_that_cannot_send_again_offers_the_kubectl_command_instead(
    chromium: Any, served: Served
) -> None:
    """With creates off (no Kubernetes API, no laptop's catalog to put it back in), "Send again"
    could only be refused: the page offers the annotation to set in the delivery's cluster."""
    clock = Clock()
    [event] = events("demo-user", "talk-0009", "talk-9")
    deliver(Deliveries(served.catalog, clock), clock, event, notification("team-c", "hooks"), [(503, "", "")])
    settings = ApiSettings(
        catalog="unused://",
        store=str(Path(tempfile.mkdtemp()) / "store"),
        api_auth=["local"],
        api_create="off",
    )
    with serve_app(create_app(settings, catalog=served.catalog)) as base:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page, outside = local_page(context, base)
            _open(page, base, "#/notifications?notification=team-c%2Fhooks")
            page.locator(f"tr.delivery[data-event='{event['id']}'] button.expand").click()
            opened = page.locator(f"tr.delivery-detail[data-for$='{event['id']}']")
            assert opened.locator("button.replay").count() == 0
            assert opened.locator(".replay-elsewhere code").inner_text() == (
                "kubectl annotate -n team-c notification/hooks "
                f"contentgen.io/replay={event['id']} --overwrite"
            )
            assert outside == []
        finally:
            context.close()
