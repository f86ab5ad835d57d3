"""Harness for the fake Jenkins (jenkins_server.py) and client of its control API.

    with JenkinsServer("tests/fixtures/basic.json") as jk:
        qid = jk.start_native("folder1/build-a", node="node1")
        jk.wait_for(lambda: any(b["queue_id"] == qid and not b["building"]
                                for b in jk.builds()), what="build finished")

The server runs as its own process (started with Debian's /usr/bin/python3 by
default); `stop()` ends it by PID.  Control calls use urllib and are never
affected by the latency/fail/drop faults they configure.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import quote

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jenkins_server.py")


class ControlError(RuntimeError):
    """A /_test/... call failed; `status` and `body` tell why."""

    def __init__(self, method, path, status, body):
        super().__init__("%s %s -> %s: %s" % (method, path, status, body))
        self.status, self.body = status, body


class JenkinsServer:
    """One fake Jenkins process.  `fixture` is a dict or a path to a JSON file."""

    START_TIMEOUT = 10.0

    def __init__(self, fixture, *, python="/usr/bin/python3", quiet=False):
        self.fixture = fixture
        self.python = python
        self.quiet = quiet
        self.proc = None
        self.pid = None
        self.port = None
        self.url = None
        self._tmpdir = None
        self._log_path = None
        self._log_text = ""

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        if self.proc is not None:
            raise RuntimeError("already started")
        self._tmpdir = tempfile.mkdtemp(prefix="jkfake-")
        if isinstance(self.fixture, dict):
            fixture_path = os.path.join(self._tmpdir, "fixture.json")
            with open(fixture_path, "w", encoding="utf-8") as f:
                json.dump(self.fixture, f)
        else:
            fixture_path = os.fspath(self.fixture)
        port_file = os.path.join(self._tmpdir, "port")
        self._log_path = os.path.join(self._tmpdir, "server.log")
        cmd = [self.python, SERVER, "--fixture", fixture_path, "--port", "0",
               "--port-file", port_file, "--host", "127.0.0.1"]
        if self.quiet:
            cmd.append("--quiet")
        # stderr goes to a file: a pipe nobody reads would block a chatty server
        with open(self._log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.pid = self.proc.pid
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                log = self.log()
                self._cleanup()
                raise RuntimeError("fake Jenkins exited with %s:\n%s" % (self.proc.returncode, log))
            if self.port is None and os.path.exists(port_file):
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    self.url = "http://127.0.0.1:%d/" % self.port
            if self.port is not None and self._answers():
                return self
            if time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError("fake Jenkins did not answer within %.0f s:\n%s"
                                   % (self.START_TIMEOUT, log))
            time.sleep(0.02)

    def _answers(self):
        """GET / answered at all (403 on a locked-down fixture counts)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self):
        """SIGTERM by PID, up to 5 s, then SIGKILL.  Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._cleanup()

    def _cleanup(self):
        if self._log_path and os.path.exists(self._log_path):
            self._log_text = self.log()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def log(self):
        """The server's stderr so far (kept after stop())."""
        if self._tmpdir and self._log_path and os.path.exists(self._log_path):
            with open(self._log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        return self._log_text

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- raw HTTP ----------------------------------------------------------

    def http(self, method, path, body=None, headers=None, timeout=10):
        """One request on a fresh connection -> (status, headers dict with
        lower-case names, body bytes).  Does not follow redirects."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body.encode("utf-8") if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
        finally:
            conn.close()

    def _control(self, method, path, data=None):
        body = None if data is None else json.dumps(data).encode("utf-8")
        req = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            raise ControlError(method, path, e.code, e.read().decode("utf-8", "replace"))
        return json.loads(text) if text else None

    # -- control API -------------------------------------------------------

    def latency(self, ms):
        return self._control("POST", "/_test/latency", {"ms": ms})

    def fail(self, status, seconds):
        return self._control("POST", "/_test/fail", {"status": status, "seconds": seconds})

    def drop(self, count, after=False, method=None):
        """Close the next `count` connections (of `method` only, if given) without an
        answer; with after=True the request is processed first (the answer is lost)."""
        return self._control("POST", "/_test/drop", {"count": count, "after": after, "method": method})

    def restart(self):
        return self._control("POST", "/_test/restart", {})

    def start_window(self, seconds):
        """Executor.run's window between an item leaving the queue and its build existing."""
        return self._control("POST", "/_test/start_window", {"seconds": seconds})

    def start_native(self, job, node=None, params=None, delay=0, old=False):
        """old: the build's queueId is -1, as an old record's (issue 17)."""
        data = {"job": job, "params": params or {}, "delay": delay}
        if old:
            data["old"] = True
        if node is not None:
            data["node"] = node
        return self._control("POST", "/_test/build", data)["queue_id"]

    def quiet_down(self, on=True, reason=None):
        """Put the master into quiet-down (or take it out), as /quietDown does."""
        return self._control("POST", "/_test/quietdown", {"on": on, "reason": reason})

    def add_job(self, spec, folder=None):
        data = dict(spec)
        if folder is not None:
            data["folder"] = folder
        return self._control("POST", "/_test/jobs", data)

    def remove_job(self, full_name):
        return self._control("DELETE", "/_test/jobs/" + quote(full_name))

    def update_job(self, full_name, **fields):
        return self._control("PATCH", "/_test/jobs/" + quote(full_name), fields)

    def add_node(self, spec):
        return self._control("POST", "/_test/nodes", spec)

    def remove_node(self, name):
        return self._control("DELETE", "/_test/nodes/" + quote(name, safe=""))

    def update_node(self, name, **fields):
        return self._control("PATCH", "/_test/nodes/" + quote(name, safe=""), fields)

    def builds(self):
        return self._control("GET", "/_test/builds")

    def concurrency(self):
        return self._control("GET", "/_test/concurrency")

    def queue(self):
        return self._control("GET", "/_test/queue")

    def requests(self):
        return self._control("GET", "/_test/requests")

    def reset_requests(self):
        return self._control("POST", "/_test/requests/reset", {})

    def state(self):
        return self._control("GET", "/_test/state")

    # -- waiting -----------------------------------------------------------

    @staticmethod
    def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
        """Poll `predicate` until it returns a truthy value (returned)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
            time.sleep(interval)

    def build_for(self, queue_id):
        """The /_test/builds entry started from a queue item, or None."""
        for b in self.builds():
            if b["queue_id"] == queue_id:
                return b
        return None
