"""Haiku in the HTTP API: named haiku-…, written by the offline provider."""

from __future__ import annotations

from contentgen.httpapi.kinds import HttpKind

KIND = HttpKind("Haiku", prefix="haiku", runs_here=lambda: ("offline",))
