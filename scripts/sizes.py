"""How big each part of the two packages is, in lines of Python: the table in docs/architecture.md
(`make generate` writes it; tests/docs/test_sizes.py checks it is near the truth and that the
product, not the local cluster, is the bulk of `contentgen`)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENTGEN = ROOT / "operator" / "contentgen"
LOCALCLUSTER = ROOT / "local-cluster" / "localcluster"


def lines(path: Path) -> int:
    """Lines of Python in a module or under a folder (caches excluded)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    return sum(
        len(f.read_text().splitlines()) for f in files if "__pycache__" not in f.parts and f.suffix == ".py"
    )


def parts(root: Path = ROOT) -> dict[str, int]:
    """`contentgen/<folder>/` for each subpackage, `contentgen/*.py` for its top-level modules
    together, and `localcluster/` as one: lines of each."""
    package = root / CONTENTGEN.relative_to(ROOT)
    out = {
        f"contentgen/{folder.name}/": lines(folder)
        for folder in sorted(package.iterdir())
        if folder.is_dir() and (folder / "__init__.py").exists()
    }
    out["contentgen/*.py"] = sum(lines(f) for f in package.glob("*.py"))
    out["localcluster/"] = lines(root / LOCALCLUSTER.relative_to(ROOT))
    return out


def table(root: Path = ROOT) -> str:
    sizes = parts(root)
    contentgen = sum(n for name, n in sizes.items() if name.startswith("contentgen/"))
    rows = ["| part | lines of Python | share of `contentgen` |", "|---|---:|---:|"]
    for name, n in sorted(sizes.items(), key=lambda item: -item[1]):
        if name.startswith("contentgen/"):
            rows.append(f"| `{name}` | {n:,} | {100 * n / contentgen:.0f} % |")
    rows.append(f"| **`contentgen`, in all** | {contentgen:,} | 100 % |")
    rows.append(f"| `localcluster/` (its own package, in no image) | {sizes['localcluster/']:,} | |")
    return "\n".join(rows)
