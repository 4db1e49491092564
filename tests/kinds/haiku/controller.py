"""Haiku in the controller: nothing beyond every kind's lifecycle."""

from __future__ import annotations

from contentgen.controller.kinds import ControllerKind

KIND = ControllerKind("Haiku")
