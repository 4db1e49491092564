"""providers/fal/uploads.Upload, the file a fal request sends as a URL (a training's dataset, a
picture to animate, an image to caption): uploaded once before the first submit and checkpointed,
so a retry sends the same URL; uploaded once more, and no more, when fal reports that it could not
fetch that field; any other failure is not healed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contentgen.providers.fal.queue import JobFailure
from contentgen.providers.fal.uploads import UPLOADS, Upload


class _Sent:
    def __init__(self) -> None:
        self.uploads: list[tuple[Path, str]] = []
        self.saves: list[dict[str, Any]] = []

    def upload(self, path: Path, what: str) -> str:
        self.uploads.append((path, what))
        return f"https://cdn.example/{len(self.uploads)}"

    def save(self, saved: dict[str, Any]) -> None:
        self.saves.append(dict(saved))


def _upload(sent: _Sent, saved: dict[str, Any]) -> Upload:
    return Upload(
        sent.upload,
        Path("data.zip"),
        "the dataset",
        "images_data_url",
        saved,
        sent.save,
        url_key="dataset_url",
        count_key="dataset_uploads",
    )


def _unfetched(field: str) -> JobFailure:
    error = {"loc": ["body", field], "msg": "Failed to download the file", "type": "file_download_error"}
    return JobFailure("req-1", "unprocessable", errors=[error])


def test_the_url_is_uploaded_once_and_checkpointed_before_it_is_sent() -> None:
    sent, saved = _Sent(), {}
    upload = _upload(sent, saved)
    assert upload.url() == upload.url() == "https://cdn.example/1"
    assert sent.uploads == [(Path("data.zip"), "the dataset")]
    assert sent.saves == [{"dataset_url": "https://cdn.example/1", "dataset_uploads": 1}]


def test_a_retry_sends_the_checkpointed_url_without_uploading() -> None:
    sent = _Sent()
    upload = _upload(sent, {"dataset_url": "https://cdn.example/old", "dataset_uploads": 1})
    assert upload.url() == "https://cdn.example/old" and sent.uploads == []


def test_a_link_fal_could_not_fetch_is_uploaded_once_more_and_no_more() -> None:
    sent, saved = _Sent(), {}
    upload = _upload(sent, saved)
    upload.url()
    assert upload.heal(_unfetched("images_data_url"))
    assert saved == {"dataset_url": "https://cdn.example/2", "dataset_uploads": 2} == sent.saves[-1]
    assert not upload.heal(_unfetched("images_data_url"))
    assert len(sent.uploads) == UPLOADS == 2


def test_other_failures_are_not_healed() -> None:
    sent = _Sent()
    upload = _upload(sent, {})
    upload.url()
    assert not upload.heal(_unfetched("image_url"))  # another field's link
    assert not upload.heal(JobFailure("req-1", "internal error", status=500))
    assert len(sent.uploads) == 1
