"""Model files that ship inside installed packages, checked before they are used.

Nothing is downloaded at run time: each model is one file of a PyPI package in the worker's
pinned set, found through the package's metadata, and its sha256 is pinned, so another version
of the package with another model fails loudly instead of behaving differently.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path


def packaged_file(package: str, member: str, sha256: str, what: str) -> Path:
    """`member` (a path inside the installed distribution `package`), whose content must hash to
    `sha256`; RuntimeError naming `what` (e.g. "face detector's model") and the fix otherwise."""
    try:
        located = importlib.metadata.distribution(package).locate_file(member)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"the {what} comes with the package {package}, which is not installed: install the "
            "worker's pinned set (requirements/worker.txt)"
        ) from None
    path = Path(str(located))
    if not path.is_file():
        raise RuntimeError(f"{package} is installed without {member}; reinstall it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(
            f"{path} is not the {what} this version was measured with (sha256 {digest[:12]}…); "
            f"install {package} from requirements/worker.txt"
        )
    return path
