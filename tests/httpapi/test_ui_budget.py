"""GET /ui/budget: the operator's monthly budgets (CONTENTGEN_BUDGETS) as they apply to the caller,
for the web UI's Spend page: each of its owners' limit and where it comes from; an admin also sees
the owners the budgets name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pricing import Budgets
from contentgen.store import LocalStore
from tests.httpapi.conftest import auth


async def _budget(settings: ApiSettings, catalog: Catalog, store: LocalStore, who: str) -> httpx.Response:
    app = create_app(settings, catalog=catalog, store=lambda: store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        return await http.get("/ui/budget", headers=auth(who))


@pytest.mark.asyncio
async def test_each_owner_gets_its_own_limit_or_the_default(
    catalog: Catalog, store: LocalStore, tokens_file: Path
) -> None:
    budgets = Budgets(owner_monthly_usd=5.0, owners={"alice": 2.5, "zed": 9.0}, namespaces={"team-a": 40.0})
    settings = ApiSettings(
        catalog="unused://", store=str(store.root), api_tokens_file=tokens_file, budgets=budgets
    )
    alice = (await _budget(settings, catalog, store, "alice")).json()
    assert alice["owners"] == [{"owner": "alice", "monthlyUsd": 2.5, "source": "budgets.owners"}]
    assert alice["namespaces"] == {"team-a": 40.0} and alice["namespaceMonthlyUsd"] is None
    bob = (await _budget(settings, catalog, store, "bob")).json()
    assert bob["owners"] == [{"owner": "bob", "monthlyUsd": 5.0, "source": "budgets.ownerMonthlyUsd"}]
    ops = (await _budget(settings, catalog, store, "ops")).json()  # an admin: its own and the named ones
    assert [o["owner"] for o in ops["owners"]] == ["ops", "alice", "zed"]


@pytest.mark.asyncio
async def test_no_budgets_means_no_limit_and_a_login_is_needed(
    catalog: Catalog, store: LocalStore, tokens_file: Path
) -> None:
    settings = ApiSettings(catalog="unused://", store=str(store.root), api_tokens_file=tokens_file)
    answer = (await _budget(settings, catalog, store, "alice")).json()
    assert answer["owners"] == [{"owner": "alice", "monthlyUsd": None, "source": "none"}]
    app = create_app(settings, catalog=catalog, store=lambda: store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/ui/budget")).status_code == 401
