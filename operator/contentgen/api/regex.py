"""Regular expressions every engine reads alike. The server checks a pattern with Python's re,
pydantic with Rust's regex crate, and a client's JSON Schema library with its own (ECMA-262, RE2,
Python's), and they disagree on the classes `\\s`, `\\w` and `\\d`: RE2's are ASCII only, ECMA's and
Rust's Unicode's (ECMA's `\\s` with U+FEFF, neither with U+001C-U+001F), Python's its str methods'.
A pattern the HTTP API's document states spells its characters out instead (tests/httpapi/
test_openapi.py holds every pattern of the document to that)."""

from __future__ import annotations

# The characters Python's `\s` matches in a str pattern (str.isspace()), for a character class.
SPACES = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
