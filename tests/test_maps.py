"""Signed maps and coordinator names (issue 16).

gearmand has no authentication: anyone who reaches it can register
project_map:$host and answer an agent's map request. A hostile worker here
speaks Gearman to the real gearmand, registers project_map:jenkins01 once the
real coordinator is gone, and answers with forged maps. Each attack is one the
audit reproduced (a job restricted to another node built on this one, a job
that is not dispatchable built with chosen parameters, an empty pin) or one a
signature alone would not stop (another key, another master, a replay). The
agent must refuse every one: say why, count it, keep its last good map, and
build nothing.
"""
import base64
import json
import os
import select
import socket
import struct
import threading
import time

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from conftest import Daemon, gearman_cli, map_keys, stop_pid, wait_for

NODE = {"type": "node", "name": "NODE"}
FIXTURE = {
    "version": "2.462.3",
    "quiet_period": 0,
    "nodes": [
        {"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
        {"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"},
        {"name": "n2", "labels": "linux", "executors": 1, "mode": "NORMAL"},
    ],
    "jobs": [
        {"name": "unit", "params": [NODE], "concurrent": True},
        # Its Node parameter allows n2 only: never n1's.
        {"name": "restricted", "params": [dict(NODE, allowed=["n2"])], "concurrent": True},
        # No Node parameter: not dispatchable at all.
        {"name": "plain", "label": "linux", "params": [{"type": "string", "name": "CMD", "default": "true"}]},
    ],
}


def packet(typ, body=b""):
    return b"\0REQ" + struct.pack(">II", typ, len(body)) + body


class HostileMapWorker(threading.Thread):
    """Not the coordinator: registers project_map:NAME on the real gearmand and
    answers every request with answer(request) (a str), WORK_COMPLETE."""

    CAN_DO, PRE_SLEEP, NOOP, NO_JOB, WORK_COMPLETE, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ = 1, 4, 6, 10, 13, 30, 31

    def __init__(self, gm, answer, name="jenkins01"):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", gm.port), timeout=5)
        self.fn = "project_map:" + name
        self.answer = answer
        self.requests = []
        self.halt = threading.Event()
        self.sock.sendall(packet(self.CAN_DO, self.fn.encode()))
        self.start()

    def _read(self):
        head = self.sock.recv(12, socket.MSG_WAITALL)
        if len(head) < 12:
            raise EOFError
        typ, n = struct.unpack(">II", head[4:12])
        body = self.sock.recv(n, socket.MSG_WAITALL) if n else b""
        return typ, body

    def run(self):
        try:
            while not self.halt.is_set():
                self.sock.sendall(packet(self.GRAB_JOB_UNIQ))
                typ, body = self._read()
                if typ == self.NO_JOB:
                    self.sock.sendall(packet(self.PRE_SLEEP))
                    while not self.halt.is_set():
                        if select.select([self.sock], [], [], 0.2)[0]:
                            self._read()            # NOOP: a job waits
                            break
                elif typ == self.JOB_ASSIGN_UNIQ:
                    handle, _fn, _unique, workload = body.split(b"\0", 3)
                    req = json.loads(workload)
                    self.requests.append(req)
                    reply = self.answer(req).encode()
                    self.sock.sendall(packet(self.WORK_COMPLETE, handle + b"\0" + reply))
        except (OSError, EOFError, ValueError):
            pass

    def stop(self):
        self.halt.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(5)
        self.sock.close()


def sign(text, keyfile):
    """The envelope common/sign.c makes, signed with keyfile (an independent Ed25519: pyca/cryptography)."""
    with open(keyfile, "rb") as f:
        key = load_pem_private_key(f.read(), None)
    return json.dumps({"ed25519": base64.b64encode(key.sign(text.encode())).decode(), "signed": text})


def slice_text(req, url, functions, issued_ms=None, nonce=True, version="f0f0f0f0f0f0f0f0"):
    """A well-formed slice for n1, as the coordinator renders one."""
    doc = {"functions": functions, "issued_ms": issued_ms or int(time.time() * 1000), "master": "jenkins01",
           "node": {"executors": 1, "labels": ["linux", "n1"], "mode": "NORMAL", "name": "n1", "online": True},
           "url": url, "version": version}
    if nonce:
        doc["nonce"] = req.get("nonce")
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


FORGED = [{"job": "restricted", "name": "build:restricted", "pin": "NODE"},
          {"job": "plain", "name": "build:plain", "pin": "CMD"},
          {"job": "unit", "name": "build:unit", "pin": "NODE"}]


def master_url(jk):
    return jk.url.rstrip("/")


def good_map_then_hostile(system, tmp_path, answer):
    """n1's agent takes the real coordinator's map; the coordinator stops and a
    hostile worker answers from then on. Returns gm, jk, agent, worker, metrics path."""
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk)
    metrics = str(tmp_path / "node.prom")
    agent = system.node(gm, jk, "n1", extra={"metrics": {"textfile": metrics}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 offers its real map")
    co.stop()
    worker = HostileMapWorker(gm, lambda req: answer(req, jk))
    system.items.append(worker)
    wait_for(lambda: len(worker.requests) >= 2, timeout=10, what="the agent asking the hostile worker")
    return gm, jk, agent, worker, metrics


def rejected_total(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("jga_map_rejected_total "):
                    return float(line.split()[1])
    except FileNotFoundError:
        pass
    return 0.0


def assert_refused_and_nothing_built(gm, jk, agent, metrics, why):
    agent.wait_log("map refused", timeout=10)
    log = agent.log()
    assert why in log, log[-3000:]
    assert "keeping the current map" in log
    # The last good map stays: the real functions, none of the forged ones.
    assert gm.functions_of("n1") == ["build:unit"], gm.functions_of("n1")
    for fn in ("build:restricted", "build:plain"):
        rc, out, err = gearman_cli(gm, fn, json.dumps({"CMD": "rm -rf /", "NODE": "n1"}), timeout_ms=1500)
        # No worker takes it: the client times out with nothing back.
        assert out == "" and (rc != 0 or "timeout" in err), (fn, rc, out, err)
    assert [b for b in jk.builds() if b["job"] in ("restricted", "plain")] == []
    wait_for(lambda: rejected_total(metrics) >= 1, timeout=15, what="jga_map_rejected_total counted")


def test_unsigned_forged_map_builds_nothing(system, tmp_path):
    """The audit's forged map, as the old agents took it (plain JSON): a job restricted
    to n2 and a job without a Node parameter, offered on n1."""
    gm, jk, agent, worker, metrics = good_map_then_hostile(
        system, tmp_path, lambda req, jk: slice_text(req, master_url(jk), FORGED))
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "unsigned")


def test_map_signed_by_another_key(system, tmp_path):
    other, _ = map_keys("other")
    gm, jk, agent, worker, metrics = good_map_then_hostile(
        system, tmp_path, lambda req, jk: sign(slice_text(req, master_url(jk), FORGED), other))
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "bad signature")


def test_signed_map_for_another_master(system, tmp_path):
    """The coordinator's own key, but the map of another master (a coordinator of
    another master under the same key and name)."""
    key, _ = map_keys()
    gm, jk, agent, worker, metrics = good_map_then_hostile(
        system, tmp_path, lambda req, jk: sign(slice_text(req, "http://other.example:8080", FORGED), key))
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "is the map of the master http://other.example:8080")


def test_signed_map_with_an_empty_pin(system, tmp_path):
    """Even signed: an entry without a pin would let the client choose the node."""
    key, _ = map_keys()
    fns = [{"job": "unit", "name": "build:unit", "pin": ""}, {"job": "restricted", "name": "build:restricted",
                                                              "pin": "NODE"}]
    gm, jk, agent, worker, metrics = good_map_then_hostile(
        system, tmp_path, lambda req, jk: sign(slice_text(req, master_url(jk), fns), key))
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "has no pin parameter")


def test_replayed_real_answer(system, tmp_path):
    """A genuine answer of the coordinator, recorded off the bus, replayed: its nonce
    answers another request."""
    recorded = {}

    def replay(req, jk):
        return recorded["answer"]
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk)
    wait_for(lambda: gm.status().get("project_map:jenkins01", (0, 0, 0))[2] == 1, what="coordinator")
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", json.dumps({"node": "n1", "nonce": "0" * 32}),
                               timeout_ms=10000)
    assert rc == 0, (rc, out, err)
    recorded["answer"] = out.strip()
    metrics = str(tmp_path / "node.prom")
    agent = system.node(gm, jk, "n1", extra={"metrics": {"textfile": metrics}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 offers its real map")
    co.stop()
    worker = HostileMapWorker(gm, lambda req: replay(req, jk))
    system.items.append(worker)
    wait_for(lambda: len(worker.requests) >= 2, timeout=10, what="the agent asking the hostile worker")
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "replayed: it does not answer this request")


def test_signed_map_older_than_the_last_taken(system, tmp_path):
    """With the right nonce but issued a minute before the map the agent holds."""
    key, _ = map_keys()
    old = int(time.time() * 1000) - 60000
    gm, jk, agent, worker, metrics = good_map_then_hostile(
        system, tmp_path, lambda req, jk: sign(slice_text(req, master_url(jk), FORGED, issued_ms=old), key))
    assert_refused_and_nothing_built(gm, jk, agent, metrics, "replayed: issued at %d ms" % old)


def coordinator_as(system, gm, jk, file_name, name, extra=None):
    """A coordinator with its own INI and log (file_name) under [coordinator] name (may be "": the default)."""
    sec = {"gearman": {"servers": gm.server}, "jenkins": {"url": jk.url},
           "coordinator": {"name": name, "refresh": 1}, "log": {"level": "debug"}}
    for k, v in (extra or {}).items():
        sec.setdefault(k, {}).update(v)
    d = Daemon(system.tmp, "coordinator", file_name, sec).start()
    system.items.append(d)
    return d


def test_agent_refuses_to_start_without_its_key(system, tmp_path):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    for i, (path, why) in enumerate(((str(tmp_path / "missing.pub"), "cannot open"),
                                     (map_keys()[0], "not a PEM public key"))):
        agent = system.node(gm, jk, "n%d" % (i + 5), extra={"node": {"map_public_key_file": path}})
        wait_for(lambda: not agent.alive(), what="agent exits")
        assert agent.proc.returncode == 1
        assert "map_public_key_file" in agent.log() and why in agent.log(), agent.log()
    writable = tmp_path / "w.pub"
    with open(map_keys()[1]) as f:
        writable.write_text(f.read())
    os.chmod(writable, 0o666)
    agent = system.node(gm, jk, "n9", extra={"node": {"map_public_key_file": str(writable)}})
    wait_for(lambda: not agent.alive(), what="agent exits")
    assert "may be written by group or others" in agent.log(), agent.log()


def test_coordinator_refuses_to_start_without_its_key(system, tmp_path):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    loose = tmp_path / "loose.key"
    with open(map_keys()[0]) as f:
        loose.write_text(f.read())
    os.chmod(loose, 0o644)
    public = tmp_path / "public.key"
    with open(map_keys()[1]) as f:
        public.write_text(f.read())
    os.chmod(public, 0o600)
    for i, (path, why) in enumerate(((str(tmp_path / "missing.key"), "cannot open"), (str(loose), "chmod 600"),
                                     (str(public), "not a PEM private key"))):
        co = coordinator_as(system, gm, jk, "c%d" % i, "jenkins01", {"coordinator": {"map_key_file": path}})
        wait_for(lambda: not co.alive(), what="coordinator exits")
        assert co.proc.returncode == 1
        assert "map_key_file" in co.log() and why in co.log(), co.log()


def test_two_masters_under_one_name(system):
    """A second coordinator whose name another master's coordinator already serves
    refuses to start; one for the same master (a restart, HA) starts."""
    gm = system.gearmand()
    ja = system.jenkins(FIXTURE)
    jb = system.jenkins(FIXTURE)
    first = system.coordinator(gm, ja)
    wait_for(lambda: gm.status().get("project_map:jenkins01", (0, 0, 0))[2] == 1, what="first coordinator")
    other = coordinator_as(system, gm, jb, "other", "jenkins01")
    wait_for(lambda: not other.alive(), timeout=15, what="the other master's coordinator exits")
    assert other.proc.returncode == 1
    assert ("another coordinator already serves project_map:jenkins01, for the master %s, not %s"
            % (master_url(ja), master_url(jb))) in other.log(), other.log()
    twin = coordinator_as(system, gm, ja, "twin", "jenkins01")
    twin.wait_log("another coordinator serves project_map:jenkins01 for the same master")
    wait_for(lambda: gm.status().get("project_map:jenkins01", (0, 0, 0))[2] == 2, what="both serve")
    assert first.alive() and twin.alive()


def test_default_names_of_two_masters_on_one_host(system):
    """No [coordinator] name: two masters on one host (127.0.0.1, two ports) get
    two names, host_port, and both serve."""
    gm = system.gearmand()
    ja = system.jenkins(FIXTURE)
    jb = system.jenkins(FIXTURE)
    for i, jk in enumerate((ja, jb)):
        coordinator_as(system, gm, jk, "default%d" % i, "")
    names = ["127.0.0.1_%s" % jk.url.rstrip("/").rsplit(":", 1)[1] for jk in (ja, jb)]
    for n in names:
        wait_for(lambda: gm.status().get("project_map:" + n, (0, 0, 0))[2] == 1, what="project_map:" + n)


def test_keygen_never_overwrites(tmp_path):
    from conftest import AGENT
    import subprocess
    out = subprocess.run([AGENT, "keygen", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out
    assert oct(os.stat(tmp_path / "map.key").st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "map.pub").st_mode & 0o777) == "0o644"
    before = (tmp_path / "map.key").read_bytes()
    again = subprocess.run([AGENT, "keygen", "--out", str(tmp_path)], capture_output=True, text=True)
    assert again.returncode == 1 and "never overwrites" in again.stderr, again
    assert (tmp_path / "map.key").read_bytes() == before
    # A planted symlink in place of the private key is not followed.
    d = tmp_path / "d"
    d.mkdir()
    os.symlink(str(tmp_path / "victim"), str(d / "map.key"))
    third = subprocess.run([AGENT, "keygen", "--out", str(d)], capture_output=True, text=True)
    assert third.returncode == 1 and not (tmp_path / "victim").exists(), third
