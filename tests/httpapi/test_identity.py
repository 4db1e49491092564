"""Identities from the platform: an authenticating proxy's headers (believed only from trusted
addresses, matched on the connection's own address), the owners file (users, e-mails and groups to
owners; admins; userOwners), identities that act for several owners, local mode (this machine only,
DNS rebinding refused) and cross-site writes refused. TokenReview against the real API server is
in test_kube.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from contentgen.catalog import Catalog
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.identity import (
    IdentityError,
    OwnerMap,
    OwnerMapSource,
    TrustedProxies,
    owner_from_user,
    parse_networks,
)
from contentgen.store import LocalStore
from localcluster.ports import free_port
from tests.httpapi.conftest import ALICE_IDS, BOB_IDS, TOKENS, auth, fill
from tests.waiting import wait_for

OWNERS = {
    "owners": [
        {"owner": "alice", "users": ["alice@example.com"]},
        {"owner": "bob", "groups": ["team-b"]},
        {"owner": "alice", "groups": ["team-a"]},
    ],
    "admins": {"groups": ["platform"]},
}
PROXY = {"X-Auth-Request-User": "u-123", "X-Auth-Request-Email": "alice@example.com"}


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- the pieces ---------------------------------------------------------------------------------


def test_the_owners_file_maps_users_emails_and_groups() -> None:
    mapping = OwnerMap.parse(yaml.safe_dump(OWNERS))
    alice = mapping.caller("u-123", [], via="proxy", also=["alice@example.com"])
    assert (alice.owner, alice.owners, alice.admin, alice.user) == ("alice", ("alice",), False, "u-123")
    both = mapping.caller("carol", ["team-b", "team-a"], via="kubernetes")
    assert both.owners == ("bob", "alice") and both.scope == ("bob", "alice") and both.owner == "bob"
    assert both.may_act_for("alice") and not both.may_act_for("dora")
    admin = mapping.caller("ops", ["platform"], via="proxy")
    assert admin.admin and admin.owners == () and admin.scope is None and admin.may_act_for("anyone")
    nobody = mapping.caller("mallory", ["interns"], via="proxy")
    assert nobody.owners == () and not nobody.admin
    own = OwnerMap.parse("userOwners: true").caller("Alice.Smith@Example.com", [], via="proxy")
    assert own.owners == ("alice.smith-example.com",)
    assert owner_from_user("system:serviceaccount:team-a:ci") == "system-serviceaccount-team-a-ci"
    assert owner_from_user("@@@") == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("owners: [{owner: Alice}]", "owners.0.owner: String should match pattern"),
        ("owners: [{owner: a, user: [x]}]", "owners.0.user: Extra inputs are not permitted"),
        ("owners: [", "not valid YAML or JSON (line 1)"),
    ],
)
def test_a_bad_owners_file_says_where(text: str, message: str) -> None:
    with pytest.raises(IdentityError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        OwnerMap.parse(text)


def test_the_owners_file_is_read_again_and_a_bad_version_keeps_the_last(tmp_path: Path) -> None:
    path = tmp_path / "owners.yaml"
    path.write_text("owners: [{owner: alice, users: [a]}]")
    source = OwnerMapSource(path)
    assert source.current().caller("a", [], via="proxy").owners == ("alice",)
    path.write_text("owners: [{owner: bob, users: [a]}]  # longer, so its stamp changes")
    assert source.current().caller("a", [], via="proxy").owners == ("bob",)
    path.write_text("owners: [")
    assert source.current().caller("a", [], via="proxy").owners == ("bob",)


def test_trusted_proxies_match_the_connections_own_address() -> None:
    proxies = TrustedProxies(parse_networks(["10.0.0.0/8", "127.0.0.1", " "]))
    assert proxies.trusts("10.1.2.3") and proxies.trusts("127.0.0.1") and proxies.trusts("::ffff:10.9.9.9")
    assert not proxies.trusts("192.168.1.10") and not proxies.trusts("") and not proxies.trusts("not-an-ip")
    assert not proxies.trusts(None)
    with pytest.raises(IdentityError, match=r"'10\.0\.0\.0/33' is not an address or CIDR"):
        parse_networks(["10.0.0.0/33"])
    header = {"X-Auth-Request-Email": "a@b.c", "X-Auth-Request-Groups": "g1, g2,,"}.get
    assert proxies.identity(header) == ("a@b.c", "a@b.c", ["g1", "g2"])
    assert proxies.identity({}.get) is None


# --- through the app ------------------------------------------------------------------------------


def client_at(app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 51000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://api")


@pytest.fixture
def proxied(settings: ApiSettings, catalog: Catalog, store: LocalStore, tmp_path: Path) -> object:
    fill(catalog, store)
    owners = tmp_path / "owners.yaml"
    owners.write_text(yaml.safe_dump(OWNERS))
    settings = settings.model_copy(
        update={
            "api_auth": ["tokens", "proxy"],
            "api_trusted_proxies": ["10.0.0.0/8"],
            "api_owners_file": owners,
        }
    )
    return create_app(settings, catalog=catalog, store=lambda: store, creator=None)


@pytest.mark.asyncio
async def test_proxy_headers_from_a_trusted_address_are_the_identity(proxied: object) -> None:
    async with client_at(proxied, "10.1.2.3") as http:
        assert ids(await http.get("/api/jobs", headers=PROXY)) == ALICE_IDS
        session = (await http.get("/ui/session", headers=PROXY)).json()
        assert session == {
            "owner": "alice",
            "owners": ["alice"],
            "admin": False,
            "user": "u-123",
            "via": "proxy",
        }
        # A group that maps to two owners: both owners' records, and only theirs.
        both = {"X-Auth-Request-User": "carol", "X-Auth-Request-Groups": "team-a,team-b"}
        assert sorted(ids(await http.get("/api/jobs", headers=both))) == sorted(ALICE_IDS + BOB_IDS)
        assert ids(await http.get("/api/jobs?owner=bob", headers=both)) == BOB_IDS
        refused = await http.get("/api/jobs?owner=dora", headers=both)
        assert refused.status_code == 403 and "carol does not act for owner 'dora'" in refused.text
        stats = (await http.get("/api/assets/stats", headers=both)).json()
        assert (stats["owner"], stats["owners"], stats["totalJobs"]) == (None, ["alice", "bob"], 8)
        admin = {"X-Auth-Request-User": "ops", "X-Auth-Request-Groups": "platform"}
        assert len(ids(await http.get("/api/jobs", headers=admin))) == 8
        # Mapped to nobody: told why, not shown anything.
        nobody = await http.get("/api/jobs", headers={"X-Auth-Request-User": "mallory"})
        assert nobody.status_code == 403 and nobody.json()["error"]["code"] == "no_owner"
        assert "mallory acts for no owner" in nobody.text and "CONTENTGEN_API_OWNERS_FILE" in nobody.text


@pytest.mark.asyncio
async def test_proxy_headers_from_an_untrusted_address_are_ignored(proxied: object) -> None:
    async with client_at(proxied, "192.168.7.7") as http:
        ignored = await http.get("/api/jobs", headers={**PROXY, "X-Forwarded-For": "10.1.2.3"})
        assert ignored.status_code == 401
        assert ignored.json()["error"]["message"] == (
            "missing bearer token: send Authorization: Bearer TOKEN "
            "or sign in through the authenticating proxy"
        )
        # The same client with a token: the token's identity, whatever the headers claim.
        headers = {**auth("bob"), "X-Auth-Request-Email": "alice@example.com"}
        assert ids(await http.get("/api/jobs", headers=headers)) == BOB_IDS
    async with client_at(proxied, "10.1.2.3") as http:  # a trusted proxy with a token and no user
        assert ids(await http.get("/api/jobs", headers=auth("bob"))) == BOB_IDS


@pytest.mark.asyncio
async def test_local_mode_answers_this_machine_only(
    settings: ApiSettings, catalog: Catalog, store: LocalStore
) -> None:
    fill(catalog, store)
    local = settings.model_copy(
        update={"api_auth": ["local"], "api_local_owner": "bob", "api_tokens_file": None}
    )
    app = create_app(local, catalog=catalog, store=lambda: store, creator=None)
    async with client_at(app, "127.0.0.1") as http:
        assert ids(await http.get("/api/jobs", headers={"Host": "localhost:8080"})) == BOB_IDS
        assert ids(await http.get("/api/jobs", headers={"Host": "127.0.0.1:8080"})) == BOB_IDS
        # A page elsewhere whose name now points at 127.0.0.1 (DNS rebinding) gets nothing.
        rebound = await http.get("/api/jobs", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403 and "Host header" in rebound.text
        config = (await http.get("/ui/config", headers={"Host": "localhost"})).json()
        assert config["auth"] == ["local"] and config["tokens"] is False and config["create"] == "off"
    async with client_at(app, "10.0.0.5") as http:
        assert (await http.get("/api/jobs", headers={"Host": "localhost"})).status_code == 403


@pytest.mark.asyncio
async def test_cross_site_writes_are_refused(client: httpx.AsyncClient) -> None:
    foreign = await client.post(
        "/ui/session", json={"token": TOKENS["alice"]}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "cross_site"
    fetched = await client.delete("/ui/session", headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 403
    same = await client.post("/ui/session", json={"token": TOKENS["alice"]}, headers={"Origin": "http://api"})
    assert same.status_code == 200
    # Reading stays open to links from elsewhere (a bookmark, a chat message).
    assert (await client.get("/health", headers={"Sec-Fetch-Site": "cross-site"})).status_code == 200


# --- `contentgen api` on a real socket -------------------------------------------------------------


def test_contentgen_api_matches_proxies_on_the_connections_address(tmp_path: Path) -> None:
    """The peer a proxy is trusted by is the TCP connection's: X-Forwarded-For from elsewhere does
    not make a request come from a trusted proxy (`contentgen api` runs uvicorn without proxy
    headers). 127.0.0.2 plays the trusted proxy; 127.0.0.1 a client that claims to be behind it."""
    store = LocalStore(tmp_path / "store")
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    fill(catalog, store)
    catalog.close()
    owners = tmp_path / "owners.yaml"
    owners.write_text(yaml.safe_dump(OWNERS))
    port = free_port()
    env = {
        **os.environ,
        "CONTENTGEN_CATALOG": str(tmp_path / "catalog"),
        "CONTENTGEN_STORE": str(store.root),
        "CONTENTGEN_API_AUTH": "proxy",
        "CONTENTGEN_API_TRUSTED_PROXIES": "127.0.0.2/32",
        "CONTENTGEN_API_OWNERS_FILE": str(owners),
        "CONTENTGEN_API_CREATE": "off",
    }
    contentgen = str(Path(sys.executable).parent / "contentgen")
    log = (tmp_path / "api.log").open("w")
    server = subprocess.Popen(
        [contentgen, "api", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base) or server.poll() is not None, 60, "contentgen api to start")
        assert server.poll() is None, (tmp_path / "api.log").read_text()
        trusted = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        claims = httpx.Client()
        assert ids(trusted.get(f"{base}/api/jobs", headers=PROXY)) == ALICE_IDS
        spoofed = claims.get(
            f"{base}/api/jobs", headers={**PROXY, "X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"}
        )
        assert spoofed.status_code == 401
        trusted.close()
        claims.close()
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.1)
        return False
