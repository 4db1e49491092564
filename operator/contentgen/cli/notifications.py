"""A laptop's Notifications (docs/notifications.md#on-a-laptop), kept by `contentgen run
notification.yaml`: list them with the state of their deliveries; pause, resume or delete one; send
what waits now, or events again (replay: one by its id, or every event kept with --all, those from
before the Notification too); and receive deliveries on this machine (receive: a receiver that checks
each delivery's signature with the Notification's key and prints its event). In a cluster the same
is kubectl's: `kubectl get notifications`, `spec.paused`, `kubectl delete`, the annotation
contentgen.io/replay.
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from contentgen.cli.main import CommandError
from contentgen.cli.output import print_json

RECEIVE_PORT = 8000
TOLERANCE_SECONDS = 300  # a delivery's timestamp at most this far from now (the specification's 5 min)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalog",
        metavar="URL",
        help="the catalog (default: $CONTENTGEN_CATALOG or ./contentgen-data/catalog)",
    )


def _named(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "notification",
        metavar="NOTIFICATION",
        nargs=None if required else "?",
        help="NAMESPACE/NAME, or NAME in the default namespace",
    )
    _common(p)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list", help="the kept Notifications and their deliveries' state", description="List them."
    )
    listing.add_argument("-o", "--output", choices=("table", "json"), help="table (on a terminal) or json")
    _common(listing)
    for action, text in (
        ("pause", "send nothing to it until it is resumed (its events are still kept for it)"),
        ("resume", "send again: what waits, and what failed while it was failing, at once"),
        ("delete", "forget it; its waiting deliveries are given up (its signing key stays)"),
    ):
        _named(sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + "."))
    send = sub.add_parser(
        "send",
        help="attempt what waits now, past a backoff (not a pause)",
        description="Attempt the waiting deliveries now, of one Notification or of every one.",
    )
    _named(send, required=False)
    replay = sub.add_parser(
        "replay",
        help="send events again: by their ids, or every event kept (--all)",
        description="Send events to the Notification again, whatever their deliveries came to: those "
        "EVENT_IDs (as the delivery log lists them), or with --all every event kept (the last 30 days) "
        "that its filters match, those from before it was made too.",
    )
    _named(replay)
    replay.add_argument("events", nargs="*", metavar="EVENT_ID")
    replay.add_argument("--all", action="store_true", help="every event kept that it matches")
    receive = sub.add_parser(
        "receive",
        help="a receiver on this machine: check each delivery's signature, print its event",
        description="Listen for deliveries, check each one's Standard Webhooks signature with the "
        "Notification's key (the file `contentgen run` made, or --key-file), answer 204 and print the "
        "event (401 for a bad signature). Ctrl-C stops it.",
    )
    _named(receive, required=False)
    receive.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    receive.add_argument(
        "--port", type=int, default=RECEIVE_PORT, help=f"the port to listen on (default {RECEIVE_PORT})"
    )
    receive.add_argument(
        "--key-file", metavar="FILE", help="the signing key (whsec_...), if not a kept one's"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "receive" and args.key_file:
        return receive(args, Path(args.key_file).read_text().strip(), args.key_file)
    from contentgen.catalog import CatalogMissing, catalog_url, open_catalog

    try:
        catalog = open_catalog(catalog_url(args.catalog))
    except CatalogMissing as exc:
        raise CommandError(f"{exc} (no Notification is kept there)") from None
    try:
        return ACTIONS[args.action](_Context(args, catalog))
    finally:
        catalog.close()


class _Context:
    def __init__(self, args: argparse.Namespace, catalog: Any) -> None:
        from contentgen.catalog.laptop_notifications import KeptNotifications
        from contentgen.pipeline.settings import PipelineSettings

        self.args, self.catalog = args, catalog
        self.kept = KeptNotifications(catalog)
        self.settings = PipelineSettings()
        self.data_dir = self.settings.work_dir.parent

    def one(self) -> dict[str, Any]:
        """The Notification the arguments name; with no name, the only one kept."""
        from contentgen.catalog.laptop_notifications import name_of, split_name

        given = getattr(self.args, "notification", None)
        if given is None:
            kept = self.kept.all()
            if len(kept) != 1:
                listed = ", ".join(name_of(n) for n in kept) or "none is kept"
                raise CommandError(f"name the Notification: {listed}")
            return kept[0]
        found = self.kept.get(*split_name(given))
        if found is None:
            raise CommandError(
                f"no Notification {given} is kept here: `contentgen run NOTIFICATION.yaml` keeps one "
                "(`contentgen notifications list` lists them)"
            )
        return found

    def laptop(self) -> Any:
        from .laptop_notifications import Laptop

        return Laptop(self.catalog, self.data_dir, allow_private=self.settings.allow_private_sources)


def _say(lines: list[str], nothing: str) -> None:
    for line in lines or [nothing]:
        print(line)


def _list(ctx: _Context) -> int:
    from contentgen.catalog.deliveries import Deliveries

    deliveries = Deliveries(ctx.catalog)
    items = [_summary(n, deliveries) for n in ctx.kept.all()]
    output = ctx.args.output or ("table" if sys.stdout.isatty() else "json")
    if output == "json":
        print_json({"items": items})
        return 0
    rows = [("NOTIFICATION", "URL", "EVENTS", "STATE", "WAITING", "LAST DELIVERY")]
    rows += [
        (
            f"{i['namespace']}/{i['name']}",
            i["url"],
            ",".join(i["events"]) or "every event",
            i["state"],
            str(i["waiting"]),
            i["last"] or "-",
        )
        for i in items
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
    if not items:
        print("(none: `contentgen run examples/notification.yaml` keeps one)", file=sys.stderr)
    return 0


def _summary(notification: Mapping[str, Any], deliveries: Any) -> dict[str, Any]:
    from contentgen.catalog.laptop_notifications import failing, paused

    meta, spec = notification["metadata"], notification.get("spec") or {}
    newest, waiting = deliveries.summary(notification["_id"])
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "createdAt": meta.get("creationTimestamp"),
        "url": spec.get("url"),
        "events": list(spec.get("events") or []),
        "kinds": list(spec.get("kinds") or []),
        "owners": list(spec.get("owners") or []),
        "paused": paused(notification),
        "pausedBy": (notification.get("status") or {}).get("pausedBy"),
        "failing": failing(notification),
        "state": state_of(notification),
        "waiting": waiting,
        "last": _last(newest),
    }


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def state_of(notification: Mapping[str, Any]) -> str:
    """Its state in words: sending, backing off (till when, after what), paused (by whom)."""
    from contentgen.api.words import counted
    from contentgen.catalog.laptop_notifications import PAUSED_BY_FAILURES, PAUSED_BY_GONE, failing, paused

    state = failing(notification)
    tries = counted(int(state["tries"]), "failed try") if state else ""
    by = (notification.get("status") or {}).get("pausedBy")
    if paused(notification):
        if by == PAUSED_BY_GONE:
            return "paused: its receiver answered 410 Gone"
        return f"paused after {tries}" if by == PAUSED_BY_FAILURES and state else "paused"
    if state:
        return f"backing off till {_clock(float(state['retryAt']))} ({tries} in a row)"
    return "sending"


def _last(delivery: Mapping[str, Any] | None) -> str:
    if delivery is None:
        return ""
    attempts = delivery.get("attempts") or [{}]
    code = attempts[-1].get("code") or attempts[-1].get("error") or "no answer"
    when = _clock(float(delivery.get("lastAttemptAt") or 0))
    return f"{delivery.get('type')} {delivery.get('status')} ({code}) at {when}"


def _pause(ctx: _Context) -> int:
    from contentgen.catalog.laptop_notifications import name_of

    notification = ctx.one()
    spec = {**notification["spec"], "paused": True}
    status = {k: v for k, v in (notification.get("status") or {}).items() if k != "pausedBy"}
    ctx.kept.save({**notification, "spec": spec, "status": status})
    print(f"Notification {name_of(notification)} paused: its events are kept for it, nothing is sent "
          f"until `contentgen notifications resume {name_of(notification)}`")  # fmt: skip
    return 0


def _resume(ctx: _Context) -> int:
    from contentgen.catalog.deliveries import Deliveries
    from contentgen.catalog.laptop_notifications import failing, name_of, resumed

    notification = ctx.one()
    since = float((failing(notification) or {}).get("since") or time.time())
    deliveries = Deliveries(ctx.catalog)
    for delivery in deliveries.given_up(notification["_id"], since):  # while it was failing: sent again
        deliveries.replay(notification, str(delivery["eventId"]))
    ctx.kept.save(resumed(notification))
    print(f"Notification {name_of(notification)} resumed")
    _say(ctx.laptop().send([notification["_id"]], asked=True), "nothing waits for it")
    return 0


def _delete(ctx: _Context) -> int:
    from contentgen.api.words import counted
    from contentgen.catalog.deliveries import Deliveries
    from contentgen.catalog.laptop_notifications import name_of

    from .laptop_notifications import key_file

    notification = ctx.one()
    deliveries = Deliveries(ctx.catalog)
    waiting = deliveries.waiting(notification["_id"])
    for delivery in waiting:
        deliveries.abandon(delivery, "the Notification was deleted")
    meta = notification["metadata"]
    ctx.kept.delete(meta["namespace"], meta["name"])
    key = key_file(ctx.data_dir, meta["namespace"], meta["name"])
    print(
        f"Notification {name_of(notification)} deleted: {counted(len(waiting), 'waiting delivery')} given "
        f"up; its delivery log stays (30 days), and its signing key stays in {key} (one kept again under "
        "this name signs with it)"
    )
    return 0


def _send(ctx: _Context) -> int:
    only = [ctx.one()["_id"]] if ctx.args.notification else None
    _say(ctx.laptop().send(only, asked=True), "nothing waits (or every Notification is paused)")
    return 0


def _replay(ctx: _Context) -> int:
    from contentgen.catalog import webhooks
    from contentgen.catalog.deliveries import Deliveries
    from contentgen.catalog.laptop_notifications import name_of

    notification = ctx.one()
    if bool(ctx.args.events) == bool(ctx.args.all):
        raise CommandError("give the EVENT_IDs to send again, or --all (every event kept that it matches)")
    deliveries = Deliveries(ctx.catalog)
    meta = notification["metadata"]
    wanted = ctx.args.events or [
        str(e["id"])
        for e in deliveries.kept_events()
        if webhooks.matches(notification["spec"], meta["namespace"], e)
    ]
    missing = [e for e in wanted if not deliveries.replay(notification, e)]
    if missing:
        raise CommandError(f"no event {', '.join(missing)} is kept (events are kept 30 days)")
    if not wanted:
        print(f"no event kept matches Notification {name_of(notification)}")
        return 0
    _say(
        ctx.laptop().send([notification["_id"]], asked=True), f"{name_of(notification)} is paused: resume it"
    )
    return 0


def _receive(ctx: _Context) -> int:
    from .laptop_notifications import key_file, signing_key

    meta = ctx.one()["metadata"]
    path = key_file(ctx.data_dir, meta["namespace"], meta["name"])
    return receive(ctx.args, signing_key(path), f"{meta['namespace']}/{meta['name']}")


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float) -> dict[str, Any]:
    """The event a delivery carries, where its Standard Webhooks signature holds (`v1`, HMAC-SHA256
    of `{webhook-id}.{webhook-timestamp}.{body}`) and its timestamp is within TOLERANCE_SECONDS of
    `now`; ValueError saying why not."""
    from contentgen.catalog import webhooks

    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit():
        raise ValueError("no webhook-id or webhook-timestamp header")
    if abs(now - int(stamp)) > TOLERANCE_SECONDS:
        raise ValueError(f"its timestamp is more than {TOLERANCE_SECONDS} s from now")
    expected = webhooks.sign([key], msg_id, int(stamp), body)
    given = headers.get("webhook-signature", "").split()
    if not any(hmac.compare_digest(s.encode(), expected.encode()) for s in given):
        raise ValueError("its signature does not match the key")
    event: dict[str, Any] = json.loads(body)
    return event


def receive(args: argparse.Namespace, key_text: str, whose: str) -> int:
    """Serve until Ctrl-C: each delivery verified, answered, its event printed (once per id)."""
    from contentgen.catalog import webhooks

    key = webhooks.decode_secret(key_text)
    server = ThreadingHTTPServer((args.host, args.port), _handler(key, time.time, print))
    print(
        f"contentgen notifications receive: listening on http://{args.host}:{args.port}/ for the deliveries "
        f"of {whose} (Ctrl-C stops)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _handler(
    key: bytes, clock: Callable[[], float], say: Callable[..., None]
) -> type[BaseHTTPRequestHandler]:
    from contentgen.catalog import webhooks

    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # each event is printed, not each request
            pass

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            if size > webhooks.MAX_BODY_BYTES:
                return self._answer(413)
            body = self.rfile.read(size)
            try:
                event = verify(key, {k.lower(): v for k, v in self.headers.items()}, body, clock())
            except ValueError as exc:
                say(f"refused a delivery: {exc}", file=sys.stderr, flush=True)
                return self._answer(401)
            again = " (again: deliveries are at least once)" if event.get("id") in seen else ""
            seen.add(str(event.get("id")))
            data = event.get("data") or {}
            version = f" v{data['version']}" if data.get("version") else ""
            when = time.strftime("%H:%M:%S", time.localtime(clock()))
            say(
                f"{when} {event.get('type')} {event.get('subject')}{version} {event.get('id')}{again}",
                flush=True,
            )
            self._answer(204)

        def _answer(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


ACTIONS: dict[str, Callable[[_Context], int]] = {
    "list": _list,
    "pause": _pause,
    "resume": _resume,
    "delete": _delete,
    "send": _send,
    "replay": _replay,
    "receive": _receive,
}
