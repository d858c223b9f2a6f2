"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS).

JSON Schema measures a string in characters; bcrypt measures a password in
bytes. The document states both for the sign-up password (`maxLength`, and
`x-max-utf8-bytes` from the server's own constant), but no JSON Schema keyword
can bound UTF-8 bytes. So valid passwords (`format: password`) are generated
here within both limits, read from the document the server serves: without
this, Schemathesis would send 60 three-byte characters as a valid password.
Negative cases (too short, too long, not a string, NUL) are untouched.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["POSTAPI_OPENAPI"], encoding="utf-8") as file:
    _DOCUMENT = json.load(file)
_PASSWORD = _DOCUMENT["components"]["schemas"]["UserCreate"]["properties"]["password"]
_MIN_CHARS = _PASSWORD["minLength"]
_MAX_BYTES = _PASSWORD["x-max-utf8-bytes"]


def _within_bytes(text: str) -> str:
    """The longest prefix of `text` that is at most `_MAX_BYTES` of UTF-8."""
    encoded = text.encode("utf-8")[:_MAX_BYTES]
    return encoded.decode("utf-8", errors="ignore")


# Cutting at the byte limit never leaves fewer than _MAX_BYTES / 4 characters,
# which is above the minimum; a shorter draw is left whole.
assert _MAX_BYTES // 4 >= _MIN_CHARS, "the byte limit leaves room for the minimum"

schemathesis.openapi.format(
    "password",
    st.text(
        alphabet=st.characters(exclude_characters="\x00"),
        min_size=_MIN_CHARS,
        max_size=_PASSWORD["maxLength"],
    ).map(_within_bytes),
)
