#!/usr/bin/env python3
"""A bounded mixed load of reads and writes against postapi, for .ci/rolling-restart.

Usage: loadgen.py BASE_URL SECONDS OUT_DIR [THREADS] [RATE_PER_THREAD]

Signs up and logs in one user per thread, writes OUT_DIR/started when the
load begins, then for SECONDS each thread sends, at most RATE_PER_THREAD a
second, a mix of GET /posts, GET /posts/{id}, GET /health, POST /posts,
PUT /posts/{id} and POST /vote. Every request's outcome goes to
OUT_DIR/requests.csv; every acknowledged write (a post created or replaced, a
vote added) to OUT_DIR/writes.json, for checking against the database later.
Prints a summary and exits 1 if any request failed or was answered non-2xx.
Only stdlib: it runs on CI's bare python3.
"""

import csv
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

PASSWORD = "rolling-restart-password"


class Client:
    """One keep-alive connection to nginx; a broken one is a failed request."""

    def __init__(self, base_url):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname, url.port
        self.conn = None

    def request(self, method, path, body=None, token=None, form=False):
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            if form:
                body = urllib.parse.urlencode(body)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(body)
                headers["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            request_id = response.getheader("X-Request-ID", "")
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, data, request_id, None
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return None, b"", "", f"{type(error).__name__}: {error}"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def set_up_user(base_url, index):
    client = Client(base_url)
    email = f"load-{index}-{os.getpid()}@example.com"
    status, data, _, error = client.request("POST", "/users", {"email": email, "password": PASSWORD})
    if status != 201:
        sys.exit(f"setup: sign-up {email} got {status or error}: {data[:200]!r}")
    user_id = json.loads(data)["id"]
    status, data, _, error = client.request(
        "POST", "/login", {"username": email, "password": PASSWORD}, form=True
    )
    if status != 200:
        sys.exit(f"setup: log-in {email} got {status or error}: {data[:200]!r}")
    client.close()
    return user_id, json.loads(data)["access_token"]


class Worker(threading.Thread):
    def __init__(self, index, base_url, token, user_id, deadline, rate, shared):
        super().__init__(daemon=True)
        self.index, self.token, self.user_id = index, token, user_id
        self.client = Client(base_url)
        self.deadline, self.interval = deadline, 1.0 / rate
        self.shared = shared
        self.rng = random.Random(index)
        self.own_posts = []
        self.voted = set()
        self.outcomes = []
        self.posts_written = {}  # id -> title last acknowledged
        self.votes_written = []

    def send(self, method, path, body=None):
        started = time.monotonic()
        status, data, request_id, error = self.client.request(method, path, body, self.token)
        elapsed = time.monotonic() - started
        ok = status is not None and 200 <= status < 300
        self.outcomes.append(
            (round(time.time(), 3), method, path, status or "", round(elapsed * 1000, 1), request_id, error or "")
        )
        return ok, data

    def run(self):
        sequence = 0
        next_at = time.monotonic()
        while time.monotonic() < self.deadline:
            sequence += 1
            roll = self.rng.random()
            if roll < 0.30 or not self.own_posts:
                title = f"load {self.index}-{sequence}"
                ok, data = self.send("POST", "/posts", {"title": title, "content": "rolling restart"})
                if ok:
                    post_id = json.loads(data)["id"]
                    self.own_posts.append(post_id)
                    self.posts_written[post_id] = title
                    with self.shared["lock"]:
                        self.shared["posts"].append(post_id)
            elif roll < 0.60:
                self.send("GET", f"/posts?limit={self.rng.randint(1, 20)}")
            elif roll < 0.75:
                self.send("GET", f"/posts/{self.rng.choice(self.own_posts)}")
            elif roll < 0.85:
                post_id = self.rng.choice(self.own_posts)
                title = f"load {self.index}-{sequence} (edited)"
                ok, _ = self.send(
                    "PUT", f"/posts/{post_id}", {"title": title, "content": "rolling restart, edited"}
                )
                if ok:
                    self.posts_written[post_id] = title
            elif roll < 0.95:
                with self.shared["lock"]:
                    candidates = [p for p in self.shared["posts"][-200:] if p not in self.voted]
                if candidates:
                    post_id = self.rng.choice(candidates)
                    self.voted.add(post_id)
                    ok, _ = self.send("POST", "/vote", {"post_id": post_id, "dir": 1})
                    if ok:
                        self.votes_written.append([self.user_id, post_id])
            else:
                self.send("GET", "/health")
            next_at += self.interval
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()
        self.client.close()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base_url, seconds, out_dir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 40.0

    users = [set_up_user(base_url, i) for i in range(threads)]
    shared = {"lock": threading.Lock(), "posts": []}
    started = time.monotonic()
    deadline = started + seconds
    workers = [
        Worker(i, base_url, token, user_id, deadline, rate, shared)
        for i, (user_id, token) in enumerate(users)
    ]
    for worker in workers:
        worker.start()
    with open(os.path.join(out_dir, "started"), "w") as marker:
        marker.write(f"{time.time()}\n")
    for worker in workers:
        worker.join()
    took = time.monotonic() - started

    outcomes = [o for w in workers for o in w.outcomes]
    outcomes.sort()
    with open(os.path.join(out_dir, "requests.csv"), "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "method", "path", "status", "ms", "request_id", "error"])
        writer.writerows(outcomes)
    posts = {str(k): v for w in workers for k, v in w.posts_written.items()}
    votes = [v for w in workers for v in w.votes_written]
    with open(os.path.join(out_dir, "writes.json"), "w") as out:
        json.dump({"posts": posts, "votes": votes}, out)

    errors = [o for o in outcomes if o[6]]
    non_2xx = [o for o in outcomes if not o[6] and not 200 <= o[3] < 300]
    by_method = {}
    for o in outcomes:
        by_method[o[1]] = by_method.get(o[1], 0) + 1
    latencies = sorted(o[4] for o in outcomes)
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0
    print(
        f"load: {len(outcomes)} requests in {took:.1f} s ({len(outcomes) / took:.0f}/s) "
        f"from {threads} threads; by method {json.dumps(by_method, sort_keys=True)}"
    )
    print(f"load: latency p50 {p(0.5)} ms, p99 {p(0.99)} ms, max {latencies[-1] if latencies else 0} ms")
    print(
        f"load: acknowledged writes: {len(posts)} posts (created or replaced), {len(votes)} votes"
    )
    print(f"load: failed requests (no answer): {len(errors)}; non-2xx answers: {len(non_2xx)}")
    for o in (errors + non_2xx)[:20]:
        print(f"load:   {o}")
    sys.exit(1 if errors or non_2xx or not outcomes else 0)


if __name__ == "__main__":
    main()
