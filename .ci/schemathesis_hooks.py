"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS):
valid passwords within bcrypt's byte limit, and a token of a new session for
every case (below).

Environment: POSTAPI_OPENAPI (the document, as served), POSTAPI_URL (the
server), POSTAPI_EMAIL and POSTAPI_PASSWORD (the fuzz account).

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

import requests
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


# ---------------------------------------------------------------------------
# Authentication: a session of its own for every case, opened as it is sent.
#
# Some operations end the very token they are sent with: POST /logout and
# POST /logout/all (every session of the account), DELETE /sessions/{id}
# (when the id is the token's own session), PUT /users/me/password (every
# other session) and DELETE /users/me (the account itself). The examples
# phase sends the document's example password, which is the fuzz account's,
# so the password change and the deletion succeed there. With one token for
# the whole run, everything after the first of those would be a 401.
#
# So every case that needs a token gets one of a new login (bcrypt cost 4 on
# the fuzzed server: cheap), and the account is put back as it was right
# after a case changed its password or deleted it. The login happens when
# the case is sent (before_call), not when it is generated: the examples and
# coverage phases generate all of an operation's cases before sending any,
# so a token taken then would be dead by its turn (revoked by a case sent
# before it, or as the oldest past the cap on live sessions).
# ---------------------------------------------------------------------------

_BASE_URL = os.environ["POSTAPI_URL"]
_ACCOUNT_PASSWORD = os.environ["POSTAPI_PASSWORD"]
# A sign-up's body, and a login's (JSON).
_CREDENTIALS = {"email": os.environ["POSTAPI_EMAIL"], "password": _ACCOUNT_PASSWORD}
_TIMEOUT = 10

# (METHOD, path template) of the operations that declare a security
# requirement; the others are sent without a token.
_SECURED = {
    (method.upper(), path)
    for path, item in _DOCUMENT["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and operation.get("security")
}
assert ("DELETE", "/users/me") in _SECURED, "the document lists the account's operations"

# What a generated case carries until before_call logs in for it.
_PENDING = "Bearer login-when-sent"

_HTTP = requests.Session()

# Every access token the hooks handed out. Each is sent once, right after
# its login: a 401 to one is a finding, not a harness artefact.
_ISSUED = set()


class FuzzAccountError(Exception):
    """The fuzz account could not be signed up, logged in or restored, or a
    token of a login made just before was refused."""


def _sign_up() -> None:
    """Signs the fuzz account up; already there (409) is fine."""
    answer = _HTTP.post(f"{_BASE_URL}/users", json=_CREDENTIALS, timeout=_TIMEOUT)
    if answer.status_code not in (201, 409):
        raise FuzzAccountError(f"signing the fuzz account up: {answer.status_code} {answer.text}")


def _log_in() -> dict:
    """The Token answer of a new session of the fuzz account; signs it up
    again first if a case deleted it."""
    for attempt in range(2):
        answer = _HTTP.post(f"{_BASE_URL}/login", json=_CREDENTIALS, timeout=_TIMEOUT)
        if answer.status_code == 200:
            token = answer.json()
            _ISSUED.add(token["access_token"])
            return token
        if answer.status_code == 403 and attempt == 0:
            _sign_up()
            continue
        raise FuzzAccountError(f"logging the fuzz account in: {answer.status_code} {answer.text}")
    raise AssertionError("unreachable")


@schemathesis.auth(refresh_interval=None)
class FreshSession:
    """Marks every case of an operation that needs a token (no caching:
    `refresh_interval=None`); before_call puts a real one in."""

    def get(self, case, context):
        # The operation's own method: the coverage phase also sends undeclared
        # methods to its path, which should meet the 405, not the 401.
        if (context.operation.method.upper(), context.operation.path) not in _SECURED:
            return None
        return _PENDING

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data


@schemathesis.hook
def before_call(context, case, kwargs):
    """Logs in for a case marked by FreshSession, as it is sent."""
    if case.headers and case.headers.get("Authorization") == _PENDING:
        case.headers["Authorization"] = f"Bearer {_log_in()['access_token']}"


@schemathesis.hook
def after_call(context, case, response):
    """Fails the case when a token of a login made just before it was
    refused. Puts the fuzz account back after a case changed its password
    (the caller's session survives a change, so its token changes it back)
    or deleted it (signed up again), so the next login works as before."""
    operation = (case.method.upper(), case.operation.path)
    authorization = (case.headers or {}).get("Authorization", "")
    if response.status_code == 401 and authorization.removeprefix("Bearer ") in _ISSUED:
        raise FuzzAccountError(
            f"{operation[0]} {case.formatted_path} refused the token of a login made just before "
            f"it (401 {response.text})"
        )
    if response.status_code != 204:
        return
    if operation == ("PUT", "/users/me/password"):
        new_password = case.body["new_password"]
        if new_password == _ACCOUNT_PASSWORD:
            return
        answer = _HTTP.put(
            f"{_BASE_URL}/users/me/password",
            json={"current_password": new_password, "new_password": _ACCOUNT_PASSWORD},
            headers={"Authorization": authorization},
            timeout=_TIMEOUT,
        )
        if answer.status_code != 204:
            raise FuzzAccountError(
                f"changing the fuzz account's password back: {answer.status_code} {answer.text}"
            )
    elif operation == ("DELETE", "/users/me"):
        _sign_up()


@schemathesis.hook("flatmap_case").apply_to(method="POST", path="/login/refresh")
def flatmap_case(context, case):
    """A valid refresh body carries a generated string, which the server
    rightly refuses (401): Hypothesis also draws, for each positive case,
    whether to send the refresh token of a new login instead, so that the
    200 and its Token are fuzzed too (a form or JSON, any grant_type the
    document allows, extra fields). (Hypothesis sends what it generates at
    once, so the token is fresh when sent.)"""
    meta = case.meta
    if not (
        meta is not None
        and meta.generation.mode.is_positive
        and isinstance(case.body, dict)
        and isinstance(case.body.get("refresh_token"), str)
    ):
        return st.just(case)

    def with_real_token(real):
        if real:
            case.body = {**case.body, "refresh_token": _log_in()["refresh_token"]}
        return case

    return st.booleans().map(with_real_token)
