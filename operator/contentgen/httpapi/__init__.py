"""The catalog's HTTP API: FastAPI app (app.py), settings from the environment (settings.py),
bearer-token auth (auth.py), JSON errors (errors.py), injected services and parameters (deps.py),
and the routes (routes/: jobs, assets, stream, health)."""

from .app import create_app
from .auth import TokenError, TokenSource, TokenTable
from .identity import Caller, Identities
from .settings import ApiSettings

__all__ = ["ApiSettings", "Caller", "Identities", "TokenError", "TokenSource", "TokenTable", "create_app"]
