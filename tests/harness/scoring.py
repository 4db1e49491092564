"""The score and promote routes' app: a trained LoRA in a laptop's catalog, its settings, a client
(tests/httpapi)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from contentgen.httpapi import ApiSettings
from contentgen.store import LocalStore


def score_settings(store: LocalStore, tokens_file: Path, create: str) -> ApiSettings:
    return ApiSettings(
        catalog="unused://",
        store=str(store.root),
        api_tokens_file=tokens_file,
        api_create=create,
        api_offline=True,
        api_default_namespace="default",
    )


def score_client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://api", timeout=120)
