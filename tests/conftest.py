"""Shared pytest harness for the integration tests.

Every service a test needs is real and started here on a free loopback
port: gearmand (Debian's gearman-job-server), the Jenkins test server
(tests/jenkins), our coordinator and node agents. Each is stopped by PID
when the test ends. Conditions are polled with a timeout, never slept on.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "jenkins"))

from jkctl import JenkinsServer  # noqa: E402

BUILD = os.environ.get("JGA_BUILD", os.path.join(os.path.dirname(HERE), "build"))
AGENT = os.path.join(BUILD, "jenkins-gearman-agent")
CLI = os.path.join(BUILD, "jenkins-gearman")
PERL_CLIENT = os.path.join(HERE, "perl", "client.pl")


_KEYS = {}


def map_keys(name="default"):
    """(private, public): a map signing pair made by `jenkins-gearman-agent keygen`,
    once per test session and name. Every daemon the fixtures start gets the
    default pair unless its sections name another key."""
    if name not in _KEYS:
        d = tempfile.mkdtemp(prefix="jga-keys-")
        atexit.register(shutil.rmtree, d, True)
        subprocess.run([AGENT, "keygen", "--out", d], check=True, capture_output=True)
        _KEYS[name] = (os.path.join(d, "map.key"), os.path.join(d, "map.pub"))
    return _KEYS[name]


def unwrap_map(text):
    """The map inside a project_map answer (a signed envelope, common/sign.h), not verified."""
    env = json.loads(text)
    assert set(env) == {"ed25519", "signed"}, "not a signed envelope: %r" % text[:300]
    return json.loads(env["signed"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def stop_pid(proc, sig=signal.SIGTERM, timeout=10.0):
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("pid %d did not stop within %.0fs of signal %d" % (proc.pid, timeout, sig))


def build_records(state_dir):
    """The uniques an agent has a build record of: its journal replayed (agent/node/state.h)."""
    live = {}
    try:
        with open(os.path.join(state_dir, "builds.jsonl")) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("done"):
                    live.pop(rec.get("unique"), None)
                elif "unique" in rec:
                    live[rec["unique"]] = rec
    except FileNotFoundError:
        pass
    return live


class Gearmand:
    def __init__(self, tmp, port=None, extra=()):
        self.tmp = tmp
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.tmp, "gearmand-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(
            ["gearmand", "--listen=127.0.0.1", "--port=%d" % self.port, "--threads=1",
             "--log-file=stderr", "--verbose=ERROR",
             "--pid-file=%s" % os.path.join(self.tmp, "gearmand-%d.pid" % self.port)] + self.extra,
            stdout=self.log, stderr=self.log)
        wait_for(self._answers, timeout=10, what="gearmand on port %d" % self.port)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("gearmand exited with %s" % self.proc.returncode)
        try:
            return self.admin("version")
        except OSError:
            return None

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def admin(self, cmd):
        """Run one text admin command; return its lines (without the final '.')."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith((b"OK", b"ERR")) and data.endswith(b"\n"):
                    break
                if data == b".\n" or data.endswith(b"\n.\n"):
                    break
        lines = data.decode().split("\n")
        return [l for l in lines if l not in (".", "")]

    def status(self):
        """{function: (total, running, available_workers)}"""
        out = {}
        for line in self.admin("status"):
            parts = line.split("\t")
            if len(parts) == 4:
                out[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
        return out

    def workers(self):
        """[(client_id, [functions])] for connections that have an id or functions."""
        out = []
        for line in self.admin("workers"):
            left, _, fns = line.partition(" : ")
            parts = left.split()
            cid = parts[2] if len(parts) >= 3 else "-"
            out.append((cid, fns.split()))
        return out

    def functions_of(self, client_id):
        for cid, fns in self.workers():
            if cid == client_id:
                return sorted(fns)
        return None

    def stop(self, sig=signal.SIGTERM):
        if self.proc and not self.log.closed:
            stop_pid(self.proc, sig)
            self.log.close()

    def kill(self):
        self.stop(signal.SIGKILL)


class Daemon:
    """A jenkins-gearman-agent process (node or coordinator) with its own INI file."""

    def __init__(self, tmp, role, name, sections):
        self.role = role
        self.name = name
        self.path = os.path.join(tmp, "%s-%s.ini" % (role, name))
        self.logpath = os.path.join(tmp, "%s-%s.log" % (role, name))
        priv, pub = map_keys()
        if role == "coordinator":
            sections.setdefault("coordinator", {}).setdefault("map_key_file", priv)
        else:
            sections.setdefault("node", {}).setdefault("map_public_key_file", pub)
        with open(self.path, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
        self.proc = None

    def start(self, env=None, nice=0):
        self.logf = open(self.logpath, "ab")
        e = dict(os.environ)
        e.pop("GEARMAN_SERVERS", None)
        e.pop("GEARMAN_SERVER", None)
        if env:
            e.update(env)
        cmd = [AGENT, self.role, "-c", self.path]
        if os.environ.get("JGA_VALGRIND"):
            # memcheck: any error or definite leak makes the daemon exit 99, which stop() reports.
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--track-origins=yes"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, env=e,
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)
        return self

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=10.0):
        return wait_for(lambda: text in self.log(), timeout=timeout,
                        what="%r in %s log:\n%s" % (text, self.name, self.log()[-3000:]))

    def stop(self, sig=signal.SIGTERM, timeout=15.0, check=True):
        """Stop by PID. A daemon must exit 0 on SIGTERM, with no sanitizer report."""
        if not self.proc or self.logf.closed:
            return None
        was_running = self.proc.poll() is None
        rc = stop_pid(self.proc, sig, timeout)
        self.logf.close()
        log = self.log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, "%s %s: %s report:\n%s" % (self.role, self.name, bad, log[-4000:])
        # An exit the test caused on purpose (a refused file, SIGKILL) is the test's to check.
        if check and was_running and sig == signal.SIGTERM:
            assert rc == 0, "%s %s exited %s on SIGTERM:\n%s" % (self.role, self.name, rc, log[-2000:])
        return rc

    def restart(self):
        """Start the same daemon again (same file, same state_dir) after it stopped."""
        assert not self.alive()
        return self.start()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Web:
    """`jenkins-gearman web` (the status page) on a free loopback port."""

    def __init__(self, tmp, gm, args=(), port=None):
        self.port = port or free_port()
        self.servers = ",".join(g if isinstance(g, str) else g.server
                                for g in (gm if isinstance(gm, list) else [gm]))
        self.args = list(args)
        self.logpath = os.path.join(tmp, "web-%d.log" % self.port)
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None

    def start(self):
        self.logf = open(self.logpath, "ab")
        e = dict(os.environ)
        e.pop("GEARMAN_SERVERS", None)
        cmd = [CLI, "web", "--listen", "127.0.0.1:%d" % self.port, "-s", self.servers] + self.args
        if os.environ.get("JGA_VALGRIND"):
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, env=e)
        wait_for(lambda: self.status(check_alive=True).get("generated_ms"), timeout=60,
                 what="the web's first poll")
        return self

    def get(self, path, method="GET", headers=None):
        """(status, headers, body) of one request; errors are answers too."""
        import urllib.error
        import urllib.request
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {},
                                     data=b"x" if method in ("POST", "PUT") else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def status(self, check_alive=False):
        if check_alive and self.proc.poll() is not None:
            raise AssertionError("jenkins-gearman web exited %s:\n%s" % (self.proc.returncode, self.log()))
        try:
            return json.loads(self.get("/api/status")[2])
        except (OSError, ValueError):
            return {}

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and not self.logf.closed:
            rc = stop_pid(self.proc)
            self.logf.close()
            log = self.log()
            for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert bad not in log, "web: %s report:\n%s" % (bad, log[-4000:])
            assert rc == 0, "web exited %s on SIGTERM:\n%s" % (rc, log[-2000:])


class System:
    """Everything a test started, stopped in reverse order at the end."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.items = []

    def gearmand(self, **kw):
        g = Gearmand(self.tmp, **kw).start()
        self.items.append(g)
        return g

    def jenkins(self, fixture):
        j = JenkinsServer(fixture).start()
        self.items.append(j)
        return j

    def coordinator(self, gm, jenkins, name="jenkins01", refresh=1, extra=None):
        servers = ",".join(g.server for g in (gm if isinstance(gm, list) else [gm]))
        sec = {"gearman": {"servers": servers},
               "jenkins": {"url": jenkins.url},
               "coordinator": {"name": name, "refresh": refresh},
               "log": {"level": "debug"}}
        for k, v in (extra or {}).items():
            sec.setdefault(k, {}).update(v)
        d = Daemon(self.tmp, "coordinator", name, sec).start()
        self.items.append(d)
        return d

    def node(self, gm, jenkins, node, master="jenkins01", refresh=1, extra=None, nice=0):
        servers = ",".join(g.server for g in (gm if isinstance(gm, list) else [gm]))
        sec = {"gearman": {"servers": servers},
               "jenkins": {"url": jenkins.url},
               "node": {"name": node, "status_interval": 1,
                        "state_dir": os.path.join(self.tmp, "state-" + node)},
               "coordinator": {"name": master, "refresh": refresh},
               "log": {"level": "debug"}}
        for k, v in (extra or {}).items():
            sec.setdefault(k, {}).update(v)
        d = Daemon(self.tmp, "node", node, sec).start(nice=nice)
        self.items.append(d)
        return d

    def web(self, gm, args=(), port=None):
        w = Web(self.tmp, gm, args, port).start()
        self.items.append(w)
        return w

    def cleanup(self):
        errors = []
        for it in reversed(self.items):
            try:
                it.stop()
            except Exception as e:  # keep stopping the others
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def system(tmp_path):
    s = System(tmp_path)
    yield s
    s.cleanup()


# ---- independent Gearman clients ----

def gearman_cli(gm, function, arg, timeout_ms=20000, unique=None):
    """Run Debian's `gearman` CLI as a client; return (rc, stdout, stderr)."""
    cmd = ["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-t", str(timeout_ms), "-f", function]
    if unique:
        cmd += ["-u", unique]
    cmd += [arg]
    env = dict(os.environ)
    env.pop("GEARMAN_SERVER", None)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_ms / 1000 + 10, env=env)
    return p.returncode, p.stdout, p.stderr


def raw_take_job(gm, function, complete=False, timeout=10.0):
    """A raw Gearman worker that takes one job of function: with complete, it
    answers WORK_COMPLETE at once; without, it dies holding it (gearmand
    re-queues it, retries 1). Returns (handle, unique)."""
    def packet(typ, body=b""):
        return b"\0REQ" + struct.pack(">II", typ, len(body)) + body
    with socket.create_connection(("127.0.0.1", gm.port), timeout=timeout) as s:
        s.sendall(packet(1, function.encode()))                 # CAN_DO
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.sendall(packet(30))                                # GRAB_JOB_UNIQ
            head = s.recv(12, socket.MSG_WAITALL)
            typ, n = struct.unpack(">II", head[4:12])
            body = s.recv(n, socket.MSG_WAITALL) if n else b""
            if typ == 31:                                        # JOB_ASSIGN_UNIQ
                handle, _, unique = body.split(b"\0")[:3]
                if complete:
                    s.sendall(packet(13, handle + b"\0done"))   # WORK_COMPLETE
                return handle.decode(), unique.decode()
            time.sleep(0.05)                                     # NO_JOB: not queued yet
    raise AssertionError("no job to grab within %.0fs" % timeout)


def json_docs(text):
    """The JSON objects in text, which the gearman CLI prints back to back."""
    dec, docs, i = json.JSONDecoder(), [], text.find("{")
    while i >= 0:
        try:
            doc, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        docs.append(doc)
        i = text.find("{", end)
    return docs


class PerlClient:
    """tests/perl/client.pl: Perl's Gearman::Client, reporting every event as a JSON line."""

    def __init__(self, gm, function, arg, unique=None, timeout=30, priority="normal"):
        if isinstance(arg, bytes):
            arg = "hex:" + arg.hex()
        cmd = ["perl", PERL_CLIENT, gm.server if not isinstance(gm, str) else gm, function, arg,
               unique or "", str(timeout), priority]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        self.stderr = err
        self.events = [json.loads(l) for l in out.splitlines() if l.strip()]
        return self.events

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def perl_call(gm, function, arg, unique=None, timeout=30):
    c = PerlClient(gm, function, arg, unique, timeout)
    try:
        return c.wait(timeout + 10)
    finally:
        c.kill()


def final_event(events):
    """The last complete/fail event of a Perl client run."""
    ends = [e for e in events if e["event"] in ("complete", "fail", "exception", "timeout")]
    assert ends, "no final event in %r" % (events,)
    return ends[-1]


class CountingProxy:
    """A TCP forwarder on a loopback port of its own (port, url) to target
    that counts the connections clients open through it (accepted): what
    neither gearmand nor the Jenkins test server's request log tells."""

    def __init__(self, target):
        self.target = target
        self.accepted = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/" % self.port
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            u = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.lsock.close()
        for s in self.socks:
            s.close()
