"""Transcription in the controller: nothing beyond every kind's lifecycle."""

from __future__ import annotations

from ._base import ControllerKind

KIND = ControllerKind("Transcription")
