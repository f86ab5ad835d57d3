"""The Gearman connections themselves (issue 14): a job too big to read is
failed by its handle and the connection kept, instead of a reconnect loop
(gearmand hands a job from a dropped connection out again); a path that
went silent (a firewall or NAT that forgot it) is found by the ECHO
heartbeat and replaced within seconds, instead of the kernel's two hours."""
import json
import os
import socket
import sys
import threading

from conftest import HERE, final_event, gearman_cli, perl_call, unwrap_map, wait_for

sys.path.insert(0, os.path.join(HERE, "clients"))
import gearproto  # noqa: E402

NODE = {"type": "node", "name": "NODE"}
FIXTURE = {"version": "2.462.3",
           "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                     {"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
           "jobs": [{"name": "unit", "params": [NODE], "concurrent": True}]}

LIMIT = 64 * 1024 * 1024          # GW_MAX_BODY in common/gwconn.h
TAG = b"jga-heartbeat"            # the heartbeat ECHO's payload (dispatch.c, coordinator.c)


def submit_big(gm, function, size):
    """Submit a foreground job with a workload of size bytes; the Job once it ended."""
    client = gearproto.Client("127.0.0.1", gm.port)
    try:
        job = client.submitJob(gearproto.Job(function, b"{" + b" " * (size - 2) + b"}", b"big-1"), timeout=60)
        assert job.done.wait(60), "no answer to the oversize job: %r" % (job.events,)
        return job
    finally:
        client.shutdown()


def test_oversize_job_failed_by_handle_and_connection_kept(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 registered")
    agent_drops, co_drops = agent.log().count("reconnecting"), co.log().count("reconnecting")

    job = submit_big(gm, "build:unit", LIMIT + 1)
    assert job.failure and [k for k, _ in job.events] == ["created", "warning", "fail"], job.events
    assert json.loads(job.events[1][1]) == {
        "error": "job workload of %d bytes is over the limit of %d bytes" % (LIMIT + 1, LIMIT)}
    # Failed once, not handed out again: gearmand holds no job, the worker is still there.
    assert gm.status()["build:unit"] == (0, 0, 1)
    assert agent.log().count("refused build:unit") == 1
    assert agent.log().count("reconnecting") == agent_drops, agent.log()[-3000:]
    assert jk.builds() == []
    # The same connection takes the next job.
    end = final_event(perl_call(gm, "build:unit", "{}"))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    assert agent.log().count("reconnecting") == agent_drops

    # The coordinator's functions the same.
    job = submit_big(gm, "stop:jenkins01", LIMIT + 10)
    assert job.failure and [k for k, _ in job.events] == ["created", "warning", "fail"], job.events
    assert job.events[1][1].decode() == ("stop:jenkins01: job workload of %d bytes is over the limit of %d bytes"
                                         % (LIMIT + 10, LIMIT))
    assert gm.status()["stop:jenkins01"] == (0, 0, 1)
    assert co.log().count("refused job") == 1
    assert co.log().count("reconnecting") == co_drops, co.log()[-3000:]
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", json.dumps({"node": "n1"}), timeout_ms=10000)
    assert rc == 0 and unwrap_map(out)["functions"], (rc, out, err)
    assert co.log().count("reconnecting") == co_drops


class BlackholeProxy:
    """A TCP proxy in front of gearmand that can go silent: blackhole() makes
    every connection open at that moment swallow what it reads, both ways,
    with its sockets kept open (as a firewall or NAT that forgot them).
    Connections made afterwards are forwarded. Counts the heartbeat ECHOs
    that went through, per direction."""

    def __init__(self, port):
        self.target = port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.links = []
        self.threads = []
        self.echoes = {"up": 0, "down": 0}
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            u.settimeout(None)
            link = {"dead": False, "socks": (c, u)}
            with self.lock:
                self.links.append(link)
                for src, dst, way in ((c, u, "up"), (u, c, "down")):
                    t = threading.Thread(target=self._pump, args=(src, dst, link, way), daemon=True)
                    t.start()
                    self.threads.append(t)

    def _pump(self, src, dst, link, way):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                break
            if link["dead"]:
                continue
            with self.lock:
                self.echoes[way] += data.count(TAG)
            try:
                dst.sendall(data)
            except OSError:
                return
        if not link["dead"]:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def blackhole(self):
        with self.lock:
            for link in self.links:
                link["dead"] = True
            return len(self.links)

    def stop(self):
        self.lsock.close()
        with self.lock:
            for link in self.links:
                for s in link["socks"]:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()
        self.accepter.join(5)
        for t in self.threads:
            t.join(5)


def test_silent_path_found_by_heartbeat_and_replaced(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    proxy = BlackholeProxy(gm.port)
    system.items.append(proxy)
    beat = {"gearman": {"heartbeat": 1}}
    co = system.coordinator(proxy, jk, extra=beat)
    agent = system.node(proxy, jk, "n1", extra=beat)
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 registered through the proxy")
    # A quiet but working path: heartbeats go out and are answered, nothing is dropped.
    wait_for(lambda: proxy.echoes["down"] >= 4, timeout=15, what="heartbeats answered")
    assert proxy.echoes["up"] >= proxy.echoes["down"]
    assert "no answer to a heartbeat" not in agent.log() + co.log()
    assert "reconnecting" not in agent.log() + co.log()

    assert proxy.blackhole() >= 2
    # Each finds its path dead within two heartbeats (and a loop's slack), and reconnects.
    agent.wait_log("gearmand %s: no answer to a heartbeat within 1 s; reconnecting" % proxy.server, timeout=6)
    co.wait_log("gearman %s: no answer to a heartbeat within 1 s; reconnecting" % proxy.server, timeout=6)
    agent.wait_log("n1: connected to gearmand %s" % proxy.server, timeout=6)
    wait_for(lambda: co.log().count("manager jenkins01_manager serving") == 2, timeout=6,
             what="coordinator serving again")
    # Through the new connections: the agent still gets its map, and runs a build.
    end = final_event(perl_call(gm, "build:unit", "{}"))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", json.dumps({"node": "n1"}), timeout_ms=10000)
    assert rc == 0, (rc, out, err)
    assert len(jk.builds()) == 1
