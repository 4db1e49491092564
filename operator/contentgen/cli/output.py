"""What a command prints for a program to read."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    """The document in one write: a reader that stops at its first match (`| grep -q`) finds the
    whole of it in the pipe, where a write per token would meet a closed pipe part way."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()
