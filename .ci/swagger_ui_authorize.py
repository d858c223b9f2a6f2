#!/usr/bin/env python3
"""Clicks through Swagger UI's Authorize button in headless Chromium, as a
user would: opens the page (URL as argv[1]), fills the OAuth2 password flow's
username and password (argv[2], argv[3]; the account must exist), presses
Authorize, checks the dialog says so, closes it, then runs GET /users/me
with "Try it out" and "Execute" and checks that Swagger UI's own request,
carrying the token it got, is answered 200 with that email.

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
NUL-terminated JSON on file descriptors 3 and 4), so it needs nothing beyond
Python's standard library. Run by .ci/check-docs-in-browser.
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

TIMEOUT = 60

# Runs in the page; resolves to what it saw, or rejects saying what it
# waited for in vain.
DRIVE = r"""
(async (email, password) => {
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    const until = async (what, probe) => {
        for (let i = 0; i < 200; i++) {
            const found = probe();
            if (found) return found;
            await sleep(100);
        }
        throw new Error('timed out waiting for ' + what);
    };
    // React reads an input's value from its own setter and the input event.
    const type = (input, text) => {
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, text);
        input.dispatchEvent(new Event('input', { bubbles: true }));
    };

    (await until('the Authorize button', () => document.querySelector('.auth-wrapper button.authorize'))).click();
    const username = await until('the OAuth2 username field', () => document.querySelector('.modal-ux #oauth_username'));
    const oauth2 = username.closest('.auth-container');
    const flow = (oauth2.querySelector('.flow code') || {}).textContent;
    type(username, email);
    type(oauth2.querySelector('#oauth_password'), password);
    oauth2.querySelector('button.authorize').click();
    await until('the OAuth2 block to say it is authorized (or an error)', () =>
        oauth2.querySelector('button[aria-label="Remove authorization"]') || oauth2.querySelector('.errors'));
    const errors = oauth2.querySelector('.errors');
    if (errors) throw new Error('Swagger UI reports: ' + errors.textContent);
    const saved = JSON.parse(localStorage.getItem('authorized') || '{}').OAuth2PasswordBearer;
    const token = saved && saved.token ? saved.token : {};
    (await until('the dialog\'s Close button', () => document.querySelector('.modal-ux button.btn-done'))).click();

    const block = await until('GET /users/me', () => document.querySelector('#operations-users-get_me'));
    if (!block.classList.contains('is-open')) block.querySelector('button.opblock-summary-control').click();
    (await until('its Try it out button', () => block.querySelector('button.try-out__btn'))).click();
    (await until('its Execute button', () => block.querySelector('button.execute'))).click();
    const status = await until('the live response', () => {
        const cell = block.querySelector('.live-responses-table .response .response-col_status');
        return cell && cell.textContent.trim();
    });
    const body = (block.querySelector('.live-responses-table .response-col_description pre') || {}).textContent;
    const curl = (block.querySelector('.curl-command') || {}).textContent || '';
    return {
        flow: flow,
        token_keys: Object.keys(token).sort(),
        status: status,
        body: body,
        sent_bearer: /Authorization: Bearer [A-Za-z0-9_.-]+/.test(curl),
    };
})
"""


class Browser:
    """Headless Chromium, spoken to over --remote-debugging-pipe."""

    def __init__(self):
        self.profile = tempfile.TemporaryDirectory()
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds():
            # The protocol's fixed descriptors: the browser reads 3, writes 4.
            high_r, high_w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def send(self, method, params=None, session=None, timeout=TIMEOUT):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_browser, 65536)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_event(self, method, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(self.receive(deadline - time.monotonic()))

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)
        self.profile.cleanup()


def main():
    url, email, password = sys.argv[1:4]
    browser = Browser()
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {
            "expression": f"{DRIVE}({json.dumps(email)}, {json.dumps(password)})",
            "awaitPromise": True,
            "returnByValue": True,
        }, session=session, timeout=TIMEOUT)
    finally:
        browser.close()
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        print("Authorize in Swagger UI failed:",
              details.get("exception", {}).get("description") or details.get("text"), file=sys.stderr)
        return 1
    seen = result["result"]["value"]
    print(f"Authorize ({seen['flow']} flow): Swagger UI keeps a token with {', '.join(seen['token_keys'])}")
    problems = []
    if "access_token" not in seen["token_keys"]:
        problems.append("Swagger UI kept no access_token")
    if not seen["sent_bearer"]:
        problems.append("Swagger UI's request carried no bearer token")
    if seen["status"] != "200":
        problems.append(f"GET /users/me answered {seen['status']}: {seen['body']}")
    else:
        try:
            me = json.loads(seen["body"] or "null")
        except ValueError:
            me = None
        if not isinstance(me, dict) or me.get("email") != email:
            problems.append(f"GET /users/me answered someone else: {seen['body']}")
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"GET /users/me, tried out with that token: 200, {email}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
