"""A receiver of Fluentd's forward protocol, in its JSON form, on a free port of one address.

SeaweedFS's S3 gateway writes its access log (one record a request: operation, key, status, the
access key that signed it) only to a Fluentd server, through fluent-logger-golang; with
`marshal_as_json` each record comes as a JSON array, `[tag, time, record, options]`, one after
another on the connection with nothing between them. `FluentReceiver(path).start()` keeps each
record as one line of JSON in PATH, in the order it came.
"""

from __future__ import annotations

import codecs
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port


@dataclass
class FluentReceiver:
    path: Path
    host: str = "127.0.0.1"
    port: int = 0
    _server: socket.socket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def config(self) -> dict[str, object]:
        """fluent-logger-golang's configuration (JSON) for sending here."""
        return {"fluent_host": self.host, "fluent_port": self.port, "marshal_as_json": True}

    def start(self) -> FluentReceiver:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self.port = self.port or free_port(self.host)
        server = socket.create_server((self.host, self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True, name="fluent-accept").start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._read, args=(connection,), daemon=True, name="fluent-read").start()

    def _read(self, connection: socket.socket) -> None:
        decoder, pending = json.JSONDecoder(), ""
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character split by recv
        with connection:
            while chunk := connection.recv(65536):
                pending += text.decode(chunk)
                records, pending = _complete(decoder, pending)
                self._keep(records)

    def _keep(self, records: list[object]) -> None:
        if not records:
            return
        with self._lock, self.path.open("a") as out:
            for entry in records:
                record = entry[2] if isinstance(entry, list) and len(entry) > 2 else entry
                out.write(json.dumps(record, sort_keys=True) + "\n")

    def records(self) -> list[dict[str, object]]:
        with self._lock:
            return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


def _complete(decoder: json.JSONDecoder, text: str) -> tuple[list[object], str]:
    """The whole JSON values at the start of `text`, and what is left (a value still coming)."""
    values: list[object] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values, ""
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return values, text[at:]
        values.append(value)
