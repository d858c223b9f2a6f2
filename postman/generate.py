#!/usr/bin/env python3
"""Writes the postapi Postman collection and environment next to this file.

The collection is generated rather than hand-edited because Postman scripts cannot
share functions: each request carries the helpers it uses. Edit this file, run
`python3 postman/generate.py`, and commit both outputs.
"""
import json
import os
import re
import uuid
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# JavaScript helpers, inlined into each test script that uses them
# (Postman scripts cannot share functions between requests).
# ---------------------------------------------------------------------------
HELPERS = {}

HELPERS["TS"] = r"""
// RFC 3339, UTC, with an explicit offset: 2021-08-22T19:55:27.727572+00:00
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?\+00:00$/;
"""

HELPERS["bodyJson"] = r"""
// The parsed body, or undefined when it is not JSON (the tests then fail, not the script).
function bodyJson() {
    try { return pm.response.json(); } catch (e) { return undefined; }
}
"""

HELPERS["expectJson"] = r"""
function expectJson() {
    pm.test('Content-Type is application/json', () => {
        pm.expect(pm.response.headers.get('Content-Type') || '').to.include('application/json');
    });
}
"""

HELPERS["expectStatus"] = r"""
function expectStatus(code) {
    pm.test('status is ' + code, () => pm.response.to.have.status(code));
}
"""

HELPERS["expectDetail"] = r"""
function expectDetail(detail) {
    pm.test('body is exactly {"detail": ' + JSON.stringify(detail) + '}', () => {
        pm.expect(pm.response.json()).to.eql({ detail: detail });
    });
}
"""

HELPERS["expectDetailString"] = r"""
function expectDetailString() {
    pm.test('body is {"detail": <non-empty string>}', () => {
        const body = pm.response.json();
        pm.expect(Object.keys(body)).to.eql(['detail']);
        pm.expect(body.detail).to.be.a('string').and.not.empty;
    });
}
"""

HELPERS["expectNoSecrets"] = r"""
function expectNoSecrets() {
    pm.test('no password or password hash anywhere in the body', () => {
        pm.expect(pm.response.text()).to.not.match(/password|\$2[abxy]\$/i);
    });
}
"""

HELPERS["checkUser"] = r"""
// A user as answers about the caller's own account show one (a sign-up).
function checkUser(u) {
    pm.expect(u, 'user').to.be.an('object');
    pm.expect(Object.keys(u).sort(), 'user keys').to.eql(['created_at', 'email', 'id']);
    pm.expect(Number.isInteger(u.id) && u.id > 0, 'user.id is a positive integer').to.be.true;
    pm.expect(u.email, 'user.email').to.be.a('string');
    pm.expect(u.created_at, 'user.created_at').to.match(TS);
}
"""

HELPERS["postShape"] = r"""
// The shape the server answers posts in: its POST_SHAPE, given to the run as
// the post_shape variable ('flat' when unset, as the server's default).
function postShape() {
    return pm.variables.get('post_shape') || 'flat';
}
"""

HELPERS["checkUserShownToOthers"] = r"""
// A user as anyone but themselves is shown one (GET /users/{id}, a post's
// owner): {id, created_at}, no email, in the flat shape; the course's
// {id, email, created_at} with POST_SHAPE=course, as the course shows it.
function checkUserShownToOthers(u) {
    if (postShape() === 'course') return checkUser(u);
    pm.expect(u, 'user').to.be.an('object');
    pm.expect(Object.keys(u).sort(), 'user keys (no email)').to.eql(['created_at', 'id']);
    pm.expect(Number.isInteger(u.id) && u.id > 0, 'user.id is a positive integer').to.be.true;
    pm.expect(u.created_at, 'user.created_at').to.match(TS);
}
"""

HELPERS["postOf"] = r"""
// The post inside an answer of GET /posts or /posts/{id}: the answer itself in
// the flat shape, its "Post" in the course's {"Post": ..., "votes": n}.
function postOf(answer) {
    return postShape() === 'course' ? (answer || {}).Post : answer;
}
"""

HELPERS["checkPost"] = r"""
// Checks a post answer's shape and field types; returns its fields as one flat
// object (votes included when the answer has them). `read`: an answer of
// GET /posts (each item) or GET /posts/{id}; otherwise of POST or PUT. Flat:
// every answer is the flat Post. Course: reads are {"Post": Post, "votes": n},
// writes the course's Post alone, keys in the course's order, no votes.
function checkPost(answer, read) {
    pm.expect(answer, 'post answer').to.be.an('object');
    let p = answer;
    if (postShape() === 'course') {
        if (read) {
            pm.expect(Object.keys(answer), 'keys of the course PostOut').to.eql(['Post', 'votes']);
            pm.expect(answer.Post, 'PostOut.Post').to.be.an('object');
            p = answer.Post;
        }
        pm.expect(Object.keys(p), 'keys of the course Post, in its order').to.eql(
            ['title', 'content', 'published', 'id', 'created_at', 'owner_id', 'owner']);
        p = Object.assign({}, p, read ? { votes: answer.votes } : {});
    } else {
        pm.expect(Object.keys(p).sort(), 'post keys (flat Post shape)').to.eql(
            ['content', 'created_at', 'id', 'owner', 'owner_id', 'published', 'title', 'votes']);
    }
    pm.expect(Number.isInteger(p.id) && p.id > 0, 'post.id is a positive integer').to.be.true;
    pm.expect(p.title, 'post.title').to.be.a('string');
    pm.expect(p.content, 'post.content').to.be.a('string');
    pm.expect(p.published, 'post.published').to.be.a('boolean');
    pm.expect(p.created_at, 'post.created_at').to.match(TS);
    pm.expect(Number.isInteger(p.owner_id), 'post.owner_id is an integer').to.be.true;
    checkUserShownToOthers(p.owner);
    pm.expect(p.owner.id, 'post.owner.id equals post.owner_id').to.eql(p.owner_id);
    if ('votes' in p) {
        pm.expect(Number.isInteger(p.votes) && p.votes >= 0, 'votes is a non-negative integer').to.be.true;
    }
    return p;
}
"""

HELPERS["expectPost"] = r"""
// Checks a post answer's shape (see checkPost), then its fields against the
// expected values; `votes` only where the shape answers them.
function expectPost(answer, read, exp) {
    const shape = postShape() === 'course' ? (read ? "the course's PostOut {Post, votes}" : "the course's Post (no votes)")
        : 'a flat Post (id, title, content, published, created_at, owner_id, owner, votes)';
    pm.test('body is ' + shape, () => checkPost(answer, read));
    pm.test('post fields have the expected values', () => {
        const p = checkPost(answer, read);
        for (const key of ['id', 'title', 'content', 'published', 'created_at', 'owner_id', 'votes']) {
            if (exp[key] !== undefined && (key !== 'votes' || 'votes' in p)) pm.expect(p[key], 'post.' + key).to.eql(exp[key]);
        }
        // Only the course's shape shows the owner's email (checkPost refuses it in the flat one).
        if (exp.owner_email !== undefined && postShape() === 'course') {
            pm.expect(p.owner.email, 'post.owner.email').to.eql(exp.owner_email);
        }
    });
}
"""

HELPERS["expect401"] = r"""
function expect401() {
    pm.test('status is 401', () => pm.response.to.have.status(401));
    pm.test('body is exactly {"detail": "Could not validate credentials"}', () => {
        pm.expect(pm.response.json()).to.eql({ detail: 'Could not validate credentials' });
    });
    pm.test('WWW-Authenticate header starts with "Bearer"', () => {
        const h = pm.response.headers.get('WWW-Authenticate');
        pm.expect(h, 'WWW-Authenticate').to.be.a('string');
        pm.expect(h.startsWith('Bearer'), 'starts with Bearer: ' + h).to.be.true;
    });
}
"""

HELPERS["expect422"] = r"""
// FastAPI validation shape: {"detail": [{"loc": [where, ...], "msg": "...", "type": "..."}]}
function expect422(where, field) {
    pm.test('status is 422', () => pm.response.to.have.status(422));
    pm.test('detail is a non-empty array of {loc, msg, type} with loc[0] = "' + where + '"', () => {
        const body = pm.response.json();
        pm.expect(Object.keys(body)).to.eql(['detail']);
        pm.expect(body.detail).to.be.an('array').that.is.not.empty;
        body.detail.forEach((e) => {
            pm.expect(e).to.include.all.keys('loc', 'msg', 'type');
            pm.expect(e.loc).to.be.an('array').that.is.not.empty;
            pm.expect(e.loc[0]).to.eql(where);
            pm.expect(e.msg).to.be.a('string').and.not.empty;
            pm.expect(e.type).to.be.a('string').and.not.empty;
        });
    });
    if (field) {
        pm.test('an error points at "' + field + '"', () => {
            const locs = pm.response.json().detail.map((e) => e.loc);
            pm.expect(locs.some((l) => l.includes(field)), JSON.stringify(locs)).to.be.true;
        });
    }
}
"""

HELPERS["decodeJwtPart"] = r"""
// CryptoJS is a global of the Postman sandbox.
function decodeJwtPart(part) {
    let s = part.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    return JSON.parse(CryptoJS.enc.Base64.parse(s).toString(CryptoJS.enc.Utf8));
}
"""

HELPERS["jwtClaims"] = r"""
// The claims of a JWT (its payload), unverified.
function jwtClaims(token) {
    return decodeJwtPart(String(token).split('.')[1]);
}
"""

HELPERS["expectToken"] = r"""
// A Token answer (of a login or a refresh) for the user whose id is in userIdVar.
function expectToken(userIdVar) {
    pm.test('body is a Token {access_token, token_type: "bearer", refresh_token, expires_in}', () => {
        const body = pm.response.json();
        pm.expect(Object.keys(body).sort()).to.eql(['access_token', 'expires_in', 'refresh_token', 'token_type']);
        pm.expect(body.token_type).to.eql('bearer');
        pm.expect(body.access_token).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
        // Opaque, and long enough that guessing one is hopeless.
        pm.expect(body.refresh_token, 'refresh_token').to.be.a('string').with.length.of.at.least(32);
        pm.expect(body.refresh_token, 'refresh_token is not a JWT').to.not.include('.');
        pm.expect(Number.isInteger(body.expires_in) && body.expires_in > 0, 'expires_in is a positive integer').to.be.true;
    });
    pm.test('JWT: configured algorithm, integer user_id of the user, exp in the future, exp - iat = expires_in, a session id', () => {
        const body = pm.response.json();
        const parts = body.access_token.split('.');
        const header = decodeJwtPart(parts[0]);
        const payload = decodeJwtPart(parts[1]);
        pm.expect(header.alg).to.eql(pm.variables.get('algorithm') || 'HS256');
        pm.expect(payload.user_id).to.eql(parseInt(pm.variables.get(userIdVar), 10));
        pm.expect(Number.isInteger(payload.exp), 'exp is an integer').to.be.true;
        pm.expect(payload.exp).to.be.above(Math.floor(Date.now() / 1000));
        pm.expect(Number.isInteger(payload.iat), 'iat is an integer').to.be.true;
        pm.expect(payload.exp - payload.iat, 'exp - iat').to.eql(body.expires_in);
        pm.expect(Number.isInteger(payload.sid) && payload.sid > 0, 'sid is a positive integer').to.be.true;
    });
}
"""

HELPERS["savePair"] = r"""
// Keeps a Token answer as <prefix>_token, <prefix>_refresh_token and
// <prefix>_sid (the session its access token names).
function savePair(prefix) {
    const body = bodyJson() || {};
    if (!body.access_token || !body.refresh_token) return;
    pm.environment.set(prefix + '_token', body.access_token);
    pm.environment.set(prefix + '_refresh_token', body.refresh_token);
    pm.environment.set(prefix + '_sid', jwtClaims(body.access_token).sid);
}
"""

HELPERS["expectNoContent"] = r"""
function expectNoContent() {
    expectStatus(204);
    pm.test('body is empty', () => pm.expect(pm.response.text()).to.eql(''));
}
"""

HELPERS["expectMe"] = r"""
// GET /users/me answered the user of <who>_id, <who>_email.
function expectMe(who) {
    expectStatus(200);
    expectJson();
    expectNoSecrets();
    const user = bodyJson();
    pm.test('body is a User {id, email, created_at}', () => checkUser(user));
    pm.test('it is ' + who + ', with her email', () => {
        pm.expect(user.id).to.eql(parseInt(pm.environment.get(who + '_id'), 10));
        pm.expect(user.email).to.eql(pm.environment.get(who + '_email'));
    });
}
"""

HELPERS["checkSessions"] = r"""
// A GET /sessions answer: an array of live sessions, exactly one of them
// current, the one named by the request token's sid. Returns their ids.
function checkSessions(body, token) {
    pm.test('body is an array of sessions {id, created_at, last_used_at, expires_at, user_agent, client_addr, current}', () => {
        pm.expect(body).to.be.an('array').that.is.not.empty;
        const now = Date.now();
        body.forEach((s) => {
            pm.expect(Object.keys(s).sort(), 'session keys').to.eql(
                ['client_addr', 'created_at', 'current', 'expires_at', 'id', 'last_used_at', 'user_agent']);
            pm.expect(Number.isInteger(s.id) && s.id > 0, 'session.id is a positive integer').to.be.true;
            for (const key of ['created_at', 'last_used_at', 'expires_at']) pm.expect(s[key], 'session.' + key).to.match(TS);
            pm.expect(Date.parse(s.last_used_at), 'last_used_at >= created_at').to.be.at.least(Date.parse(s.created_at));
            pm.expect(Date.parse(s.expires_at), 'expires_at is in the future').to.be.above(now);
            pm.expect(s.user_agent === null || typeof s.user_agent === 'string', 'user_agent is a string or null').to.be.true;
            pm.expect(s.client_addr === null || typeof s.client_addr === 'string', 'client_addr is a string or null').to.be.true;
            pm.expect(s.current, 'session.current').to.be.a('boolean');
        });
    });
    pm.test('exactly one session is current: the one the token names (sid)', () => {
        const current = body.filter((s) => s.current).map((s) => s.id);
        pm.expect(current).to.eql([jwtClaims(pm.environment.get(token)).sid]);
    });
    return Array.isArray(body) ? body.map((s) => s.id) : [];
}
"""

# helpers used by other helpers
DEPS = {
    "checkUser": ["TS"],
    "postOf": ["postShape"],
    "checkUserShownToOthers": ["postShape", "checkUser", "TS"],
    "checkPost": ["postShape", "checkUserShownToOthers", "TS"],
    "expectPost": ["postShape", "checkPost"],
    "jwtClaims": ["decodeJwtPart"],
    "expectToken": ["decodeJwtPart"],
    "savePair": ["bodyJson", "jwtClaims"],
    "expectNoContent": ["expectStatus"],
    "expectMe": ["expectStatus", "expectJson", "expectNoSecrets", "bodyJson", "checkUser"],
    "checkSessions": ["TS", "jwtClaims"],
}
ORDER = list(HELPERS.keys())


MINT_JWT = r"""
// CryptoJS is a global of the Postman sandbox.

function b64url(words) {
    return CryptoJS.enc.Base64.stringify(words).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// HMAC-signed JWT with the server's SECRET_KEY (environment variable secret_key).
function mintJwt(payload) {
    const alg = pm.variables.get('algorithm') || 'HS256';
    const hmac = { HS256: CryptoJS.HmacSHA256, HS384: CryptoJS.HmacSHA384, HS512: CryptoJS.HmacSHA512 }[alg];
    if (!hmac) throw new Error('unsupported algorithm: ' + alg);
    const secret = pm.variables.get('secret_key');
    if (!secret) throw new Error('the secret_key variable is not set');
    const header = b64url(CryptoJS.enc.Utf8.parse(JSON.stringify({ alg: alg, typ: 'JWT' })));
    const body = b64url(CryptoJS.enc.Utf8.parse(JSON.stringify(payload)));
    const signature = b64url(hmac(header + '.' + body, secret));
    return header + '.' + body + '.' + signature;
}
"""

SET_RUN_VARS = r"""
// A fresh suffix per run keeps the e-mail addresses unique, so the collection
// can run again and again against the same database.
const suffix = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
pm.environment.set('run_suffix', suffix);
pm.environment.set('alice_email', 'alice_' + suffix + '@example.com');
pm.environment.set('bob_email', 'bob_' + suffix + '@example.com');
// bob signs up with a mixed-case address; it must be stored lower-cased.
pm.environment.set('bob_signup_email', 'Bob_' + suffix + '@Example.COM');
pm.environment.set('carol_email', 'carol_' + suffix + '@example.com');
"""

COLLECTION_PRE = r"""
// Runs before every request. The first request ("GET /") always picks a new
// run suffix; this only covers running a single request or folder on its own.
if (!pm.variables.get('run_suffix')) {
""" + "\n".join("    " + l if l else l for l in SET_RUN_VARS.strip().splitlines()) + "\n}\n"


def used_helpers(code):
    needed = set()

    def add(name):
        if name in needed:
            return
        needed.add(name)
        for d in DEPS.get(name, []):
            add(d)

    for name in HELPERS:
        pattern = r"\b" + re.escape(name) + r"\b"
        if re.search(pattern, code):
            add(name)
    return [n for n in ORDER if n in needed]


def test_script(code):
    code = code.strip("\n")
    names = used_helpers(code)
    parts = []
    for n in names:
        parts.append(HELPERS[n].strip("\n"))
    parts.append(code)
    return "\n\n".join(parts) + "\n"


def url(path, query=None):
    raw = "{{base_url}}" + path
    q = []
    if query:
        raw += "?" + "&".join(f"{k}={v}" for k, v in query)
        q = [{"key": k, "value": v} for k, v in query]
    segs = path.lstrip("/").split("/") if path != "/" else [""]
    u = {"raw": raw, "host": ["{{base_url}}"], "path": segs}
    if q:
        u["query"] = q
    return u


def event(listen, code):
    return {
        "listen": listen,
        "script": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, listen + code)), "type": "text/javascript",
                   "exec": code.rstrip("\n").split("\n")},
    }


def req(name, method, path, tests, *, query=None, token=None, json_body=None, raw_body=None, form=None,
        pre=None, description=None):
    headers = []
    body = None
    if token:
        headers.append({"key": "Authorization", "value": "Bearer {{" + token + "}}", "type": "text"})
    if json_body is not None or raw_body is not None:
        raw = raw_body if raw_body is not None else json.dumps(json_body, indent=4, ensure_ascii=False)
        headers.append({"key": "Content-Type", "value": "application/json", "type": "text"})
        body = {"mode": "raw", "raw": raw, "options": {"raw": {"language": "json"}}}
    if form is not None:
        headers.append({"key": "Content-Type", "value": "application/x-www-form-urlencoded", "type": "text"})
        body = {"mode": "urlencoded", "urlencoded": [{"key": k, "value": v, "type": "text"} for k, v in form]}
    request = {"method": method, "header": headers, "url": url(path, query)}
    if body:
        request["body"] = body
    if description:
        request["description"] = description
    events = []
    if pre:
        events.append(event("prerequest", pre.strip("\n") + "\n"))
    events.append(event("test", test_script(tests)))
    return {"name": name, "event": events, "request": request, "response": []}


def created_post_tests(title, content, published, owner, saves, *, secrets=True, owner_email=True):
    """The test script of a 201 post creation: a post in the run's shape with these
    fields, then `saves` (environment name -> post field) stored for later requests.
    `title` is a JavaScript expression; the run suffix makes titles unique."""
    lines = ["expectStatus(201);", "expectJson();"]
    if secrets:
        lines.append("expectNoSecrets();")
    lines += [
        "const post = bodyJson();",
        "expectPost(post, false, {",
        f"    title: {title},",
        f"    content: '{content}',",
        f"    published: {'true' if published else 'false'},",
        f"    owner_id: parseInt(pm.environment.get('{owner}_id'), 10),",
    ]
    if owner_email:
        lines.append(f"    owner_email: pm.environment.get('{owner}_email'),")
    lines += ["    votes: 0,", "});"]
    sets = [f"pm.environment.set('{name}', post.{field});" for name, field in saves]
    if len(sets) == 1:
        lines.append(f"if (post && post.id) {sets[0]}")
    else:
        lines += ["if (post && post.id) {"] + [f"    {line}" for line in sets] + ["}"]
    return "\n" + "\n".join(lines) + "\n"


def folder(name, description, items):
    return {"name": name, "description": description, "item": items}


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------
public = folder("1. Public", "Routes that need no token.", [
    req("GET / says Hello World", "GET", "/", r"""
expectStatus(200);
expectJson();
pm.test('body is exactly {"message": "Hello World"}', () => {
    pm.expect(pm.response.json()).to.eql({ message: 'Hello World' });
});
""", pre=SET_RUN_VARS),
    req("GET /health is ok", "GET", "/health", r"""
expectStatus(200);
expectJson();
pm.test('body is exactly {"status": "ok", "database": "ok"}', () => {
    pm.expect(pm.response.json()).to.eql({ status: 'ok', database: 'ok' });
});
"""),
])

users = folder("2. Users", "Sign-up and user lookup. Creates alice and bob for the rest of the run.", [
    req("Sign up alice (201)", "POST", "/users", r"""
expectStatus(201);
expectJson();
expectNoSecrets();
const user = bodyJson();
pm.test('body is a User {id, email, created_at}', () => checkUser(user));
pm.test('email is the one signed up with', () => {
    pm.expect(user.email).to.eql(pm.environment.get('alice_email'));
});
if (user && user.id) {
    pm.environment.set('alice_id', user.id);
    pm.environment.set('alice_created_at', user.created_at);
}
""", json_body={"email": "{{alice_email}}", "password": "{{password}}"}),
    req("Sign up bob with a mixed-case email, trailing slash (201, stored lower-cased)", "POST", "/users/", r"""
expectStatus(201);
expectJson();
expectNoSecrets();
const user = bodyJson();
pm.test('body is a User {id, email, created_at}', () => checkUser(user));
pm.test('email is stored trimmed and lower-cased', () => {
    pm.expect(user.email).to.eql(pm.environment.get('bob_email'));
});
pm.test('bob gets a different id from alice', () => {
    pm.expect(user.id).to.not.eql(parseInt(pm.environment.get('alice_id'), 10));
});
if (user && user.id) pm.environment.set('bob_id', user.id);
""", json_body={"email": "{{bob_signup_email}}", "password": "{{password}}"}),
    req("Sign up with a taken email (409)", "POST", "/users", r"""
expectStatus(409);
expectJson();
expectDetailString();
""", json_body={"email": "{{alice_email}}", "password": "{{password}}"}),
    req("Sign up with a taken email in another case (409)", "POST", "/users", r"""
expectStatus(409);
expectJson();
expectDetailString();
""", json_body={"email": "{{alice_email_upper}}", "password": "{{password}}"},
        pre="pm.variables.set('alice_email_upper', (pm.environment.get('alice_email') || '').toUpperCase());\n"),
    req("Sign up with an invalid email (422)", "POST", "/users", r"""
expectJson();
expect422('body', 'email');
""", json_body={"email": "not-an-email", "password": "{{password}}"}),
    req("Sign up with a 5-character password (422)", "POST", "/users", r"""
expectJson();
expect422('body', 'password');
""", json_body={"email": "carol_{{run_suffix}}@example.com", "password": "short"}),
    req("Get alice by id (200)", "GET", "/users/{{alice_id}}", r"""
expectStatus(200);
expectJson();
expectNoSecrets();
const user = bodyJson();
const course = postShape() === 'course';
pm.test('body is a User as others see one: ' + (course ? '{id, email, created_at}' : '{id, created_at}, no email'),
    () => checkUserShownToOthers(user));
pm.test('it is alice, as she signed up', () => {
    pm.expect(user.id).to.eql(parseInt(pm.environment.get('alice_id'), 10));
    if (course) pm.expect(user.email).to.eql(pm.environment.get('alice_email'));
    pm.expect(user.created_at).to.eql(pm.environment.get('alice_created_at'));
});
if (!course) {
    pm.test('her address appears nowhere in the body', () => {
        pm.expect(pm.response.text()).to.not.include(pm.environment.get('alice_email'));
    });
}
"""),
    req("Get a missing user (404)", "GET", "/users/{{missing_id}}", r"""
expectStatus(404);
expectJson();
expectDetail('User with id: ' + pm.variables.get('missing_id') + ' does not exist');
"""),
    req("Get /users/abc (422, path)", "GET", "/users/abc", r"""
expectJson();
expect422('path');
"""),
])

login = folder("3. Login", "POST /login with the OAuth2 form and with JSON. Stores alice's and bob's pairs "
               "(alice_token, alice_refresh_token, alice_sid; bob_token).", [
    req("Log in alice with the OAuth2 form (200)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('alice_id');
savePair('alice');
""", form=[("username", "{{alice_email}}"), ("password", "{{password}}")]),
    req("Log in bob with JSON {email, password}, email in another case (200)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('bob_id');
savePair('bob');
""", json_body={"email": "{{bob_signup_email}}", "password": "{{password}}"}),
    req("Log in with a wrong password (403)", "POST", "/login", r"""
expectStatus(403);
expectJson();
expectDetail('Invalid Credentials');
""", form=[("username", "{{alice_email}}"), ("password", "wrong-{{password}}")]),
    req("Log in with an unknown email (403)", "POST", "/login", r"""
expectStatus(403);
expectJson();
expectDetail('Invalid Credentials');
""", form=[("username", "nobody_{{run_suffix}}@example.com"), ("password", "{{password}}")]),
    req("Log in without a password field (422)", "POST", "/login", r"""
expectJson();
expect422('body', 'password');
""", form=[("username", "{{alice_email}}")]),
])

sessions = folder(
    "4. Sessions",
    "Refresh tokens (rotation, reuse detection), GET /users/me, GET /sessions and POST /logout. "
    "A reuse revokes alice's first session here; she logs in again, and the rest of the run "
    "uses that session's alice_token.", [
    req("GET /users/me answers alice, with her email (200)", "GET", "/users/me", r"""
expectMe('alice');
""", token="alice_token"),
    req("GET /users/me without a token (401)", "GET", "/users/me", r"""
expect401();
"""),
    req("Refresh alice's pair with JSON (200, a new pair in the same session)", "POST", "/login/refresh", r"""
expectStatus(200);
expectJson();
expectToken('alice_id');
const body = bodyJson() || {};
pm.test('a new refresh token, not the one presented', () => {
    pm.expect(body.refresh_token).to.be.a('string').and.not.eql(pm.environment.get('alice_refresh_token'));
});
pm.test('the new access token names the same session', () => {
    pm.expect(jwtClaims(body.access_token).sid).to.eql(parseInt(pm.environment.get('alice_sid'), 10));
});
// The presented token is spent now; keep it to present it again below.
if (body.refresh_token) pm.environment.set('alice_spent_refresh_token', pm.environment.get('alice_refresh_token'));
savePair('alice');
""", json_body={"refresh_token": "{{alice_refresh_token}}"}),
    req("The new pair's access token works: GET /users/me (200)", "GET", "/users/me", r"""
expectMe('alice');
""", token="alice_token"),
    req("GET /sessions lists alice's session, marked current (200)", "GET", "/sessions", r"""
expectStatus(200);
expectJson();
const ids = checkSessions(bodyJson(), 'alice_token');
pm.test('alice has exactly this one live session', () => {
    pm.expect(ids).to.eql([parseInt(pm.environment.get('alice_sid'), 10)]);
});
""", token="alice_token"),
    req("Present the spent refresh token again (401: a reuse, which revokes the session)", "POST", "/login/refresh",
        r"""
expect401();
""", json_body={"refresh_token": "{{alice_spent_refresh_token}}"}),
    req("The access token issued from the spent one is refused now (401)", "GET", "/users/me", r"""
expect401();
""", token="alice_token"),
    req("The refresh token issued from the spent one is refused too (401)", "POST", "/login/refresh", r"""
expect401();
""", json_body={"refresh_token": "{{alice_refresh_token}}"}),
    req("Refresh with an unknown refresh token (401)", "POST", "/login/refresh", r"""
expect401();
""", json_body={"refresh_token": "no-such-refresh-token-{{run_suffix}}"}),
    req("Refresh without a refresh_token (422, body)", "POST", "/login/refresh", r"""
expectJson();
expect422('body', 'refresh_token');
""", json_body={}),
    req("Log alice in again (200, a new session)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('alice_id');
pm.test('a new session, not the revoked one', () => {
    const sid = jwtClaims((bodyJson() || {}).access_token).sid;
    pm.expect(sid).to.not.eql(parseInt(pm.environment.get('alice_sid'), 10));
});
savePair('alice');
""", form=[("username", "{{alice_email}}"), ("password", "{{password}}")]),
    req("Refresh with the OAuth2 form, grant_type=refresh_token (200)", "POST", "/login/refresh", r"""
expectStatus(200);
expectJson();
expectToken('alice_id');
pm.test('the new access token names the same session', () => {
    pm.expect(jwtClaims((bodyJson() || {}).access_token).sid).to.eql(parseInt(pm.environment.get('alice_sid'), 10));
});
savePair('alice');
""", form=[("grant_type", "refresh_token"), ("refresh_token", "{{alice_refresh_token}}")]),
    req("Log alice in a second time, JSON {username, password} (200, a second session)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('alice_id');
savePair('alice_second');
""", json_body={"username": "{{alice_email}}", "password": "{{password}}"}),
    req("GET /sessions from the second session: both live sessions, the second current (200)", "GET", "/sessions",
        r"""
expectStatus(200);
expectJson();
const ids = checkSessions(bodyJson(), 'alice_second_token');
pm.test('alice\'s two live sessions, and not the revoked one', () => {
    const expected = [pm.environment.get('alice_sid'), pm.environment.get('alice_second_sid')].map((id) => parseInt(id, 10));
    pm.expect(ids.slice().sort((a, b) => a - b)).to.eql(expected.sort((a, b) => a - b));
});
""", token="alice_second_token"),
    req("Log out the second session (204, empty body)", "POST", "/logout", r"""
expectNoContent();
""", token="alice_second_token"),
    req("The logged-out access token is refused (401)", "GET", "/users/me", r"""
expect401();
""", token="alice_second_token"),
    req("The logged-out session's refresh token is refused (401)", "POST", "/login/refresh", r"""
expect401();
""", json_body={"refresh_token": "{{alice_second_refresh_token}}"}),
    req("alice's other session goes on: GET /sessions lists it alone (200)", "GET", "/sessions", r"""
expectStatus(200);
expectJson();
const ids = checkSessions(bodyJson(), 'alice_token');
pm.test('only the session alice did not log out', () => {
    pm.expect(ids).to.eql([parseInt(pm.environment.get('alice_sid'), 10)]);
});
""", token="alice_token"),
])

account = folder(
    "5. Account",
    "A third user, carol: ending one of her sessions, changing her password, logging out everywhere "
    "and deleting her account.", [
    req("Sign up carol (201)", "POST", "/users", r"""
expectStatus(201);
expectJson();
const user = bodyJson();
pm.test('body is a User {id, email, created_at}', () => checkUser(user));
if (user && user.id) pm.environment.set('carol_id', user.id);
""", json_body={"email": "{{carol_email}}", "password": "{{password}}"}),
    req("Log in carol (200)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('carol_id');
savePair('carol');
""", form=[("username", "{{carol_email}}"), ("password", "{{password}}")]),
    req("Log in carol again (200, a second session)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('carol_id');
savePair('carol_second');
""", form=[("username", "{{carol_email}}"), ("password", "{{password}}")]),
    req("End carol's first session from her second: DELETE /sessions/{id} (204)", "DELETE", "/sessions/{{carol_sid}}",
        r"""
expectNoContent();
""", token="carol_second_token"),
    req("The ended session's access token is refused (401)", "GET", "/users/me", r"""
expect401();
""", token="carol_token"),
    req("End it again (404)", "DELETE", "/sessions/{{carol_sid}}", r"""
expectStatus(404);
expectJson();
expectDetail('session with id: ' + pm.environment.get('carol_sid') + ' was not found');
""", token="carol_second_token"),
    req("End one of alice's sessions as carol (404)", "DELETE", "/sessions/{{alice_sid}}", r"""
expectStatus(404);
expectJson();
expectDetail('session with id: ' + pm.environment.get('alice_sid') + ' was not found');
""", token="carol_second_token"),
    req("Change the password with a wrong current one (403)", "PUT", "/users/me/password", r"""
expectStatus(403);
expectJson();
expectDetail('Invalid Credentials');
""", token="carol_second_token",
        json_body={"current_password": "wrong-{{password}}", "new_password": "{{new_password}}"}),
    req("Change the password to a 5-character one (422, body)", "PUT", "/users/me/password", r"""
expectJson();
expect422('body', 'new_password');
""", token="carol_second_token", json_body={"current_password": "{{password}}", "new_password": "short"}),
    req("Change carol's password (204)", "PUT", "/users/me/password", r"""
expectNoContent();
""", token="carol_second_token", json_body={"current_password": "{{password}}", "new_password": "{{new_password}}"}),
    req("Her own session goes on after the change: GET /users/me (200)", "GET", "/users/me", r"""
expectMe('carol');
""", token="carol_second_token"),
    req("Log in with the old password (403)", "POST", "/login", r"""
expectStatus(403);
expectJson();
expectDetail('Invalid Credentials');
""", form=[("username", "{{carol_email}}"), ("password", "{{password}}")]),
    req("Log in with the new password (200)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('carol_id');
savePair('carol');
""", form=[("username", "{{carol_email}}"), ("password", "{{new_password}}")]),
    req("Log out everywhere (204)", "POST", "/logout/all", r"""
expectNoContent();
""", token="carol_token"),
    req("The token that logged out everywhere is refused (401)", "GET", "/users/me", r"""
expect401();
""", token="carol_token"),
    req("Her other session's token is refused too (401)", "GET", "/users/me", r"""
expect401();
""", token="carol_second_token"),
    req("Log in again after logging out everywhere (200)", "POST", "/login", r"""
expectStatus(200);
expectJson();
expectToken('carol_id');
savePair('carol');
""", form=[("username", "{{carol_email}}"), ("password", "{{new_password}}")]),
    req("Delete the account with a wrong password (403)", "DELETE", "/users/me", r"""
expectStatus(403);
expectJson();
expectDetail('Invalid Credentials');
""", token="carol_token", json_body={"password": "{{password}}"}),
    req("Delete carol's account (204)", "DELETE", "/users/me", r"""
expectNoContent();
""", token="carol_token", json_body={"password": "{{new_password}}"}),
    req("Her token is refused once the account is gone (401)", "GET", "/users/me", r"""
expect401();
""", token="carol_token"),
    req("carol is gone: GET /users/{id} (404)", "GET", "/users/{{carol_id}}", r"""
expectStatus(404);
expectJson();
expectDetail('User with id: ' + pm.environment.get('carol_id') + ' does not exist');
"""),
])

posts = folder("6. Posts", "Creating, listing, searching, reading and updating posts.", [
    req("Create a post with published omitted (201, published = true)", "POST", "/posts", created_post_tests(
        "'Alice\\'s first post ' + pm.environment.get('run_suffix')", "Hello from alice", True, "alice",
        [("alice_post_id", "id"), ("alice_post_created_at", "created_at")]),
        token="alice_token", json_body={"title": "Alice's first post {{run_suffix}}", "content": "Hello from alice"}),
    req("Create a post with published = false (201)", "POST", "/posts", created_post_tests(
        "'Alice draft ' + pm.environment.get('run_suffix')", "not ready yet", False, "alice",
        [("alice_draft_id", "id"), ("alice_draft_created_at", "created_at")]),
        token="alice_token", json_body={"title": "Alice draft {{run_suffix}}", "content": "not ready yet", "published": False}),
    req("Create bob's post, trailing slash (201)", "POST", "/posts/", created_post_tests(
        "'Bob post ' + pm.environment.get('run_suffix')", "Hello from bob", True, "bob",
        [("bob_post_id", "id")]),
        token="bob_token", json_body={"title": "Bob post {{run_suffix}}", "content": "Hello from bob", "published": True}),
    req("Create a post whose title contains % (201)", "POST", "/posts", created_post_tests(
        "'100% sure ' + pm.environment.get('run_suffix')", "a literal percent sign", True, "alice",
        [("percent_post_id", "id")], secrets=False, owner_email=False),
        token="alice_token", json_body={"title": "100% sure {{run_suffix}}", "content": "a literal percent sign"}),
    req("Create a post without a token (401)", "POST", "/posts", r"""
expect401();
""", json_body={"title": "no token", "content": "should not be created"}),
    req("List posts with an expired token (401)", "GET", "/posts", r"""
expect401();
""", token="expired_token", pre=MINT_JWT + r"""
// alice's id, signed with the right key, but expired a minute ago.
pm.environment.set('expired_token', mintJwt({
    user_id: parseInt(pm.environment.get('alice_id'), 10),
    exp: Math.floor(Date.now() / 1000) - 60,
}));
"""),
    req("List posts with a self-minted valid token (200, control for the expired one)", "GET", "/posts", r"""
expectStatus(200);
expectJson();
pm.test('body is an array of Posts', () => {
    const body = pm.response.json();
    pm.expect(body).to.be.an('array');
    body.forEach((p) => checkPost(p, true));
});
""", token="minted_token", pre=MINT_JWT + r"""
// Same claims and key as the expired token, but exp five minutes ahead: proves the
// 401 above comes from exp, not from a key mismatch (secret_key must equal SECRET_KEY).
pm.environment.set('minted_token', mintJwt({
    user_id: parseInt(pm.environment.get('alice_id'), 10),
    exp: Math.floor(Date.now() / 1000) + 300,
}));
""", description="Needs the server's SECRET_KEY in the secret_key variable."),
    req("List posts with limit=2&skip=0 (200, newest first)", "GET", "/posts", r"""
expectStatus(200);
expectJson();
expectNoSecrets();
const body = bodyJson();
pm.test('body is an array of exactly 2 Posts', () => {
    pm.expect(body).to.be.an('array').with.lengthOf(2);
    body.forEach((p) => checkPost(p, true));
});
pm.test('newest first', () => {
    pm.expect(Date.parse(postOf(body[0]).created_at)).to.be.at.least(Date.parse(postOf(body[1]).created_at));
});
if (Array.isArray(body)) pm.environment.set('page_ids', JSON.stringify(body.map((p) => postOf(p).id)));
""", token="alice_token", query=[("limit", "2"), ("skip", "0")]),
    req("List posts with limit=1&skip=1, trailing slash (200)", "GET", "/posts/", r"""
expectStatus(200);
expectJson();
const body = bodyJson();
pm.test('body is an array of exactly 1 Post', () => {
    pm.expect(body).to.be.an('array').with.lengthOf(1);
    body.forEach((p) => checkPost(p, true));
});
pm.test('skip=1 gives the second post of the previous page', () => {
    pm.expect(postOf(body[0]).id).to.eql(JSON.parse(pm.environment.get('page_ids'))[1]);
});
""", token="alice_token", query=[("limit", "1"), ("skip", "1")]),
    req("Search for a literal % (200, only titles containing %)", "GET", "/posts", r"""
expectStatus(200);
expectJson();
const body = bodyJson();
pm.test('body is an array of Posts', () => {
    pm.expect(body).to.be.an('array').that.is.not.empty;
    body.forEach((p) => checkPost(p, true));
});
pm.test('every title contains a literal %', () => {
    body.forEach((p) => pm.expect(postOf(p).title, 'title').to.include('%'));
});
pm.test('finds the % post and not the others of this run', () => {
    const ids = body.map((p) => postOf(p).id);
    pm.expect(ids).to.include(parseInt(pm.environment.get('percent_post_id'), 10));
    pm.expect(ids).to.not.include(parseInt(pm.environment.get('alice_post_id'), 10));
    pm.expect(ids).to.not.include(parseInt(pm.environment.get('alice_draft_id'), 10));
    pm.expect(ids).to.not.include(parseInt(pm.environment.get('bob_post_id'), 10));
});
""", token="alice_token", query=[("search", "%25"), ("limit", "100")]),
    req("Search is case-insensitive and quotes match themselves (200)", "GET", "/posts", r"""
expectStatus(200);
expectJson();
const body = bodyJson();
pm.test('exactly alice\'s first post is found', () => {
    pm.expect(body).to.be.an('array').with.lengthOf(1);
    checkPost(body[0], true);
    pm.expect(postOf(body[0]).id).to.eql(parseInt(pm.environment.get('alice_post_id'), 10));
});
""", token="alice_token", query=[("search", "{{search_ci}}")], pre=r"""
// "ALICE'S FIRST POST <SUFFIX>": upper case, with a quote and spaces.
pm.variables.set('search_ci', encodeURIComponent(('Alice\'s first post ' + pm.environment.get('run_suffix')).toUpperCase()));
"""),
    req("Get one post (200)", "GET", "/posts/{{alice_post_id}}", r"""
expectStatus(200);
expectJson();
expectNoSecrets();
expectPost(bodyJson(), true, {
    id: parseInt(pm.environment.get('alice_post_id'), 10),
    title: 'Alice\'s first post ' + pm.environment.get('run_suffix'),
    content: 'Hello from alice',
    published: true,
    created_at: pm.environment.get('alice_post_created_at'),
    owner_id: parseInt(pm.environment.get('alice_id'), 10),
    owner_email: pm.environment.get('alice_email'),
    votes: 0,
});
""", token="alice_token"),
    req("Get a missing post (404)", "GET", "/posts/{{missing_id}}", r"""
expectStatus(404);
expectJson();
expectDetail('post with id: ' + pm.variables.get('missing_id') + ' was not found');
""", token="alice_token"),
    req("Get /posts/abc (422, path)", "GET", "/posts/abc", r"""
expectJson();
expect422('path');
""", token="alice_token"),
    req("Update own post, published omitted (200, full replace)", "PUT", "/posts/{{alice_draft_id}}", r"""
expectStatus(200);
expectJson();
expectNoSecrets();
expectPost(bodyJson(), false, {
    id: parseInt(pm.environment.get('alice_draft_id'), 10),
    title: 'Alice draft, now published ' + pm.environment.get('run_suffix'),
    content: 'ready now',
    published: true,
    created_at: pm.environment.get('alice_draft_created_at'),
    owner_id: parseInt(pm.environment.get('alice_id'), 10),
    owner_email: pm.environment.get('alice_email'),
    votes: 0,
});
""", token="alice_token", json_body={"title": "Alice draft, now published {{run_suffix}}", "content": "ready now"}),
    req("Update bob's post as alice (403)", "PUT", "/posts/{{bob_post_id}}", r"""
expectStatus(403);
expectJson();
expectDetail('Not authorized to perform requested action');
""", token="alice_token", json_body={"title": "hijacked", "content": "by alice", "published": False}),
    req("Update a missing post (404)", "PUT", "/posts/{{missing_id}}", r"""
expectStatus(404);
expectJson();
expectDetail('post with id: ' + pm.variables.get('missing_id') + ' does not exist');
""", token="alice_token", json_body={"title": "ghost", "content": "nobody home"}),
    req("Bob's post is unchanged after alice's attempt (200)", "GET", "/posts/{{bob_post_id}}", r"""
expectStatus(200);
expectJson();
expectPost(bodyJson(), true, {
    id: parseInt(pm.environment.get('bob_post_id'), 10),
    title: 'Bob post ' + pm.environment.get('run_suffix'),
    content: 'Hello from bob',
    published: true,
    owner_id: parseInt(pm.environment.get('bob_id'), 10),
    owner_email: pm.environment.get('bob_email'),
    votes: 0,
});
""", token="bob_token"),
    req("Bob's post as alice: his address only with POST_SHAPE=course (200)", "GET", "/posts/{{bob_post_id}}", r"""
expectStatus(200);
expectJson();
expectPost(bodyJson(), true, {
    id: parseInt(pm.environment.get('bob_post_id'), 10),
    owner_id: parseInt(pm.environment.get('bob_id'), 10),
    owner_email: pm.environment.get('bob_email'),
});
if (postShape() !== 'course') {
    pm.test('bob\'s address appears nowhere in the body', () => {
        pm.expect(pm.response.text()).to.not.include(pm.environment.get('bob_email'));
    });
}
""", token="alice_token"),
    req("Create a post with a blank title (422, body)", "POST", "/posts", r"""
expectJson();
expect422('body', 'title');
""", token="alice_token", json_body={"title": "   ", "content": "blank title"}),
    req("List posts with limit=101 (422, query)", "GET", "/posts", r"""
expectJson();
expect422('query', 'limit');
""", token="alice_token", query=[("limit", "101")]),
    req("List posts with skip=-1 (422, query)", "GET", "/posts", r"""
expectJson();
expect422('query', 'skip');
""", token="alice_token", query=[("skip", "-1")]),
])

votes = folder("7. Votes", "POST /vote: bob votes on alice's first post, then takes the vote back.", [
    req("Vote (201, successfully added vote)", "POST", "/vote", r"""
expectStatus(201);
expectJson();
pm.test('body is exactly {"message": "successfully added vote"}', () => {
    pm.expect(pm.response.json()).to.eql({ message: 'successfully added vote' });
});
""", token="bob_token", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 1\n}'),
    req("Vote again (409)", "POST", "/vote", r"""
expectStatus(409);
expectJson();
expectDetailString();
""", token="bob_token", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 1\n}'),
    req("The post now shows votes = 1 (200)", "GET", "/posts/{{alice_post_id}}", r"""
expectStatus(200);
expectJson();
expectPost(bodyJson(), true, {
    id: parseInt(pm.environment.get('alice_post_id'), 10),
    title: 'Alice\'s first post ' + pm.environment.get('run_suffix'),
    content: 'Hello from alice',
    published: true,
    owner_id: parseInt(pm.environment.get('alice_id'), 10),
    owner_email: pm.environment.get('alice_email'),
    votes: 1,
});
""", token="alice_token"),
    req("Vote on a missing post (404)", "POST", "/vote", r"""
expectStatus(404);
expectJson();
expectDetailString();
""", token="bob_token", raw_body='{\n    "post_id": {{missing_id}},\n    "dir": 1\n}'),
    req("Unvote, trailing slash (201, successfully deleted vote)", "POST", "/vote/", r"""
expectStatus(201);
expectJson();
pm.test('body is exactly {"message": "successfully deleted vote"}', () => {
    pm.expect(pm.response.json()).to.eql({ message: 'successfully deleted vote' });
});
""", token="bob_token", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 0\n}'),
    req("Unvote again (404, Vote does not exist)", "POST", "/vote", r"""
expectStatus(404);
expectJson();
expectDetail('Vote does not exist');
""", token="bob_token", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 0\n}'),
    req("The post shows votes = 0 again (200)", "GET", "/posts/{{alice_post_id}}", r"""
expectStatus(200);
expectJson();
expectPost(bodyJson(), true, {
    id: parseInt(pm.environment.get('alice_post_id'), 10),
    owner_id: parseInt(pm.environment.get('alice_id'), 10),
    votes: 0,
});
""", token="alice_token"),
    req("Vote with dir = 2 (422, body)", "POST", "/vote", r"""
expectJson();
expect422('body', 'dir');
""", token="bob_token", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 2\n}'),
    req("Vote without a token (401)", "POST", "/vote", r"""
expect401();
""", raw_body='{\n    "post_id": {{alice_post_id}},\n    "dir": 1\n}'),
])

cleanup = folder("8. Cleanup and errors", "Deletes what the run created, and checks the generic 404 and 405.", [
    req("Delete bob's post as alice (403)", "DELETE", "/posts/{{bob_post_id}}", r"""
expectStatus(403);
expectJson();
expectDetail('Not authorized to perform requested action');
""", token="alice_token"),
    req("Delete own post (204, empty body)", "DELETE", "/posts/{{alice_post_id}}", r"""
expectStatus(204);
pm.test('body is empty', () => pm.expect(pm.response.text()).to.eql(''));
""", token="alice_token"),
    req("Delete it again (404)", "DELETE", "/posts/{{alice_post_id}}", r"""
expectStatus(404);
expectJson();
pm.test('detail is "post with id: <id> does not exist" (or "was not found")', () => {
    const body = pm.response.json();
    pm.expect(Object.keys(body)).to.eql(['detail']);
    const id = pm.environment.get('alice_post_id');
    pm.expect(['post with id: ' + id + ' does not exist', 'post with id: ' + id + ' was not found']).to.include(body.detail);
});
""", token="alice_token"),
    req("The deleted post is gone (404)", "GET", "/posts/{{alice_post_id}}", r"""
expectStatus(404);
expectJson();
expectDetail('post with id: ' + pm.environment.get('alice_post_id') + ' was not found');
""", token="alice_token"),
    req("Bob deletes his post (204)", "DELETE", "/posts/{{bob_post_id}}", r"""
expectStatus(204);
pm.test('body is empty', () => pm.expect(pm.response.text()).to.eql(''));
""", token="bob_token"),
    req("Alice deletes her updated draft (204)", "DELETE", "/posts/{{alice_draft_id}}", r"""
expectStatus(204);
pm.test('body is empty', () => pm.expect(pm.response.text()).to.eql(''));
""", token="alice_token"),
    req("Alice deletes her % post (204)", "DELETE", "/posts/{{percent_post_id}}", r"""
expectStatus(204);
pm.test('body is empty', () => pm.expect(pm.response.text()).to.eql(''));
""", token="alice_token"),
    req("Unknown route (404 Not Found)", "GET", "/no-such-route-{{run_suffix}}", r"""
expectStatus(404);
expectJson();
expectDetail('Not Found');
"""),
    req("Wrong method on a public route: DELETE /health (405)", "DELETE", "/health", r"""
expectStatus(405);
expectJson();
expectDetail('Method Not Allowed');
"""),
    req("Wrong method on a protected route: PATCH /posts/{id} with a token (405)", "PATCH",
        "/posts/{{percent_post_id}}", r"""
expectStatus(405);
expectJson();
expectDetail('Method Not Allowed');
""", token="alice_token", json_body={"title": "patch is not a route"}),
])

collection = {
    "info": {
        "_postman_id": "6f1f7a52-6b7e-4f0e-9d55-7d3c1f0a5e01",
        "name": "postapi",
        "description": (
            "End-to-end checks of the postapi HTTP contract (docs: API.md).\n\n"
            "Run top to bottom against a running server, empty or not:\n\n"
            "    newman run postman/postapi.postman_collection.json "
            "-e postman/postapi.postman_environment.json --env-var base_url=http://127.0.0.1:8000\n\n"
            "The first request picks a random run suffix for the e-mail addresses, so the "
            "collection can be run again against the same database. The expired-token and "
            "self-minted-token requests sign JWTs with the environment's secret_key, which must "
            "equal the server's SECRET_KEY.\n\n"
            "The assertions on posts and on users shown to others follow the environment's "
            "post_shape: flat (the default, where no one is shown another account's email) for a "
            "server with POST_SHAPE unset or flat, course for one started with POST_SHAPE=course "
            "(--env-var post_shape=course)."
        ),
        "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
    },
    "item": [public, users, login, sessions, account, posts, votes, cleanup],
    "event": [event("prerequest", COLLECTION_PRE)],
    "variable": [
        {"key": "password", "value": "correct-horse-battery", "type": "string"},
        {"key": "new_password", "value": "battery-staple-horse", "type": "string"},
        {"key": "missing_id", "value": "999999", "type": "string"},
    ],
}

env_values = [
    ("base_url", "http://127.0.0.1:8000", "default"),
    ("secret_key", "postman-collection-secret-key-0123456789abcdef", "secret"),
    ("algorithm", "HS256", "default"),
    ("post_shape", "flat", "default"),
]
for k in ["run_suffix", "alice_email", "bob_email", "bob_signup_email", "carol_email", "alice_id", "alice_created_at",
          "bob_id", "carol_id", "alice_token", "alice_refresh_token", "alice_sid", "alice_spent_refresh_token",
          "alice_second_token", "alice_second_refresh_token", "alice_second_sid", "bob_token", "bob_refresh_token",
          "bob_sid", "carol_token", "carol_refresh_token", "carol_sid", "carol_second_token",
          "carol_second_refresh_token", "carol_second_sid", "expired_token", "minted_token", "alice_post_id",
          "alice_post_created_at", "alice_draft_id", "alice_draft_created_at", "bob_post_id", "percent_post_id",
          "page_ids"]:
    env_values.append((k, "", "default"))

environment = {
    "id": "2b8c0c7e-3d7a-4c4e-8f7e-6a1d2f9b0c11",
    "name": "postapi local",
    "values": [{"key": k, "value": v, "type": t, "enabled": True} for k, v, t in env_values],
    "_postman_variable_scope": "environment",
}

with open(f"{OUT}/postapi.postman_collection.json", "w") as f:
    json.dump(collection, f, indent=2, ensure_ascii=False)
    f.write("\n")
with open(f"{OUT}/postapi.postman_environment.json", "w") as f:
    json.dump(environment, f, indent=2, ensure_ascii=False)
    f.write("\n")

n = sum(len(fo["item"]) for fo in collection["item"])
print("requests:", n)
