"""A local file that a fal request sends as a URL (a training's dataset, a picture to animate, an
image to caption): uploaded to fal's CDN before the request is first submitted, its URL kept in
the request's checkpoint so that a retry sends the same one, and uploaded once more when fal
reports that it could not fetch it (an expired upload). An upload is not billed; the request is,
so its checkpoint is saved before the request is submitted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import input_unreachable
from .queue import JobFailure

log = logging.getLogger(__name__)

UPLOADS = 2  # the first, and one more when fal could not fetch it


@dataclass
class Upload:
    """`path` on fal's CDN for one request; `saved` is the request's checkpoint (shared with its
    queue run), where the URL is kept under `url_key` and the uploads are counted under
    `count_key`."""

    send: Callable[[Path, str], str]  # FalProvider.upload
    path: Path
    what: str  # "the dataset": for the upload's and the heal's messages
    field: str  # the argument fal names when it cannot fetch the URL
    saved: dict[str, Any]
    save: Callable[[dict[str, Any]], None]
    url_key: str
    count_key: str

    def url(self) -> str:
        """The URL to send: the checkpointed one, or the file uploaded now."""
        if not self.saved.get(self.url_key):
            self._upload()
        return str(self.saved[self.url_key])

    def heal(self, failure: JobFailure) -> bool:
        """Whether `failure` was fal not fetching this file and it was uploaded once more (at most
        UPLOADS in all), so that the request may be submitted again at once."""
        if not input_unreachable(failure.errors, self.field):
            return False
        if int(self.saved.get(self.count_key) or 1) >= UPLOADS:
            return False
        log.warning("fal could not fetch %s of request %s; uploading it again", self.what, failure.request_id)
        self._upload()
        return True

    def _upload(self) -> None:
        self.saved[self.url_key] = self.send(self.path, self.what)
        self.saved[self.count_key] = int(self.saved.get(self.count_key) or 0) + 1
        self.save(self.saved)
