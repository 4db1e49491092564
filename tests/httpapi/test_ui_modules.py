"""The web UI's script is native ES modules (no build step): each is served as JavaScript, each
import names a module of the page and something that module exports, and the package ships every
one. The kinds, models and sizes it offers come from the API's OpenAPI document, so no module but
the kind registry (kinds.js) names a kind, and none copies a list of models or sizes."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contentgen.httpapi import ApiSettings, create_app

UI = Path(str(resources.files("contentgen.httpapi") / "ui"))
MODULES = sorted(UI.glob("*.js"))
REGISTRY = "kinds.js"
ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([^"]+)";', re.M)
EXPORT = re.compile(r"^export (?:async )?(?:function|const|let|class) (\w+)", re.M)
ARRAY = re.compile(r"\[[^\[\]]*\]")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    tokens = tmp_path_factory.mktemp("ui") / "tokens.yaml"
    tokens.write_text("tokens: [{owner: alice, token: alice-token-0123456789}]")
    app = create_app(ApiSettings(catalog="unused://", api_tokens_file=tokens), catalog=object(), creator=None)  # type: ignore[arg-type]
    return TestClient(app)


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    """The OpenAPI document as the page reads it (no login)."""
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def choices(definition: dict[str, Any]) -> list[str]:
    alternatives = [d["enum"] for d in definition.get("anyOf", []) if "enum" in d]
    return list(definition.get("enum") or (alternatives[0] if alternatives else []))


def named(document: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The kinds, their type names, and every kind's models and image sizes, as the API documents them."""
    schemas = document["components"]["schemas"]
    kinds = list(schemas["ResourceRequest"]["discriminator"]["mapping"])
    listing = document["paths"]["/api/jobs"]["get"]["parameters"]
    types = choices(next(p for p in listing if p["name"] == "type")["schema"])
    values = [
        value
        for kind in kinds
        for field in ("model", "imageSize")
        for value in choices(schemas[f"{kind}RequestSpec"]["properties"].get(field, {}))
    ]
    return kinds, types, values


def without_comments(source: str) -> str:
    return re.sub(r"^\s*//.*$|\s//.*$", "", source, flags=re.M)


def test_the_page_loads_its_script_as_a_module(client: TestClient) -> None:
    page = client.get("/").text
    assert '<script src="/ui/app.js" type="module"></script>' in page
    assert len(MODULES) > 10


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_module_is_served_as_javascript_and_imports_what_another_exports(
    client: TestClient, module: Path
) -> None:
    answer = client.get(f"/ui/{module.name}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.content == module.read_bytes()
    source = module.read_text()
    imports = IMPORT.findall(source)
    assert len(imports) == source.count("\nimport "), f"{module.name}: an import this test cannot read"
    for names, target in imports:
        assert (UI / target).is_file(), f"{module.name} imports {target}, which the page does not have"
        exported = set(EXPORT.findall((UI / target).read_text()))
        missing = {n.strip() for n in names.split(",") if n.strip()} - exported
        assert not missing, f"{module.name} imports {sorted(missing)} from {target}, which exports none"


def test_no_other_file_is_served(client: TestClient) -> None:
    assert client.get("/ui/nothing.js").status_code == 404
    assert client.get("/ui/index.html").status_code == 404
    assert client.get("/ui/style.js").status_code == 404


def test_the_package_ships_every_file_of_the_page() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["contentgen"]
    for file in UI.iterdir():
        if file.name.startswith(".") or file.name == "__pycache__":
            continue
        relative = f"httpapi/ui/{file.name}"
        shipped = file.is_file() and any(fnmatch(relative, p) for p in patterns)
        assert shipped, f"the wheel leaves out {relative}"


def test_no_module_but_the_registry_names_a_kind(document: dict[str, Any]) -> None:
    kinds, types, values = named(document)
    assert len(kinds) >= 5 and len(types) == len(kinds) and values
    for module in MODULES:
        code = without_comments(module.read_text())
        slugs = [t for t in types if re.search(rf"([\"'`]){t}\1|type={t}\b", code)]
        assert not slugs, f"{module.name} names kinds by their type {slugs}: the schema lists them"
        if module.name == REGISTRY:
            continue
        quoted = [k for k in kinds if re.search(rf"([\"'`]){k}\1", code)]
        assert not quoted, f"{module.name} compares kind names {quoted}: declare it in {REGISTRY}"


def test_the_registry_declares_each_kind_once_and_copies_no_list(document: dict[str, Any]) -> None:
    kinds, _, values = named(document)
    registry = without_comments((UI / REGISTRY).read_text())
    for kind in kinds:
        declared = re.findall(rf'kind: "{kind}"', registry)
        assert len(declared) == 1, f"{kind} is not declared once in {REGISTRY}"
    for module in MODULES:
        code = without_comments(module.read_text())
        for array in ARRAY.findall(code):
            copied = [v for v in values if re.search(rf"[\"']{re.escape(v)}[\"']", array)]
            assert len(copied) < 2, f"{module.name} copies the API's list {copied}: read it from the schema"
