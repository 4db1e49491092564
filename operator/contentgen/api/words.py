"""A count and its noun, as a person says them: "1 person", "2 people", "1 member", "0 images";
never "1 people", "(1 members)" or "image(s)"."""

from __future__ import annotations

# Nouns whose plural English's rule of thumb (below) gets wrong, as the messages use them.
IRREGULAR = {"person": "people"}


def plural(noun: str) -> str:
    """`noun`'s plural: the irregular ones by name, the rest by English's rule of thumb; a noun of
    several words (`stored object`, `image generation`) by its last word."""
    head, space, last = noun.rpartition(" ")
    if last in IRREGULAR:
        many = IRREGULAR[last]
    elif last.endswith("y") and last[-2:-1] not in ("", "a", "e", "i", "o", "u"):
        many = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        many = last + "es"
    else:
        many = last + "s"
    return f"{head}{space}{many}"


def counted(count: int, noun: str, many: str | None = None) -> str:
    """`count` and `noun`, in the plural unless the count is one (`many`: the plural, where the
    rule of thumb would get it wrong)."""
    return f"{count} {noun if count == 1 else (many or plural(noun))}"
