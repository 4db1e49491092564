"""Probes: /health (the process serves; liveness) and /health/ready (the catalog answers)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..deps import ServicesDep

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/health", summary="Liveness")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: the catalog can be read")
async def ready(svc: ServicesDep) -> JSONResponse:
    try:
        await run_in_threadpool(svc.catalog.ping)
    except Exception as exc:
        log.warning("catalog not ready: %s", exc.__class__.__name__)
        return JSONResponse({"status": "unavailable", "catalog": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "catalog": "ok"})
