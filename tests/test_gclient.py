"""Our Gearman client (common/gclient.c) against real gearmand and a hostile
worker: a call has one deadline, however the worker keeps it busy (issue 16:
a fake project_map worker that sends WORK_STATUS forever froze an agent's
map, since libgearman's timeout was per wait)."""
import os
import select
import socket
import struct
import subprocess
import threading
import time

from conftest import CLI, wait_for

FIXTURE = {
    "version": "2.462.3",
    "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
              {"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
    "jobs": [{"name": "unit", "label": "linux",
              "params": [{"type": "node", "name": "NODE"}], "concurrent": True}],
}


def packet(typ, body=b""):
    return b"\0REQ" + struct.pack(">II", typ, len(body)) + body


class StatusForever(threading.Thread):
    """A worker for function that takes every job and never ends one: it sends
    WORK_STATUS for each job it holds every 100 ms, for as long as it runs."""

    def __init__(self, gm, function):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", gm.port), timeout=5)
        self.sock.sendall(packet(1, function.encode()))            # CAN_DO
        self.handles, self.lock, self.halt = [], threading.Lock(), threading.Event()
        self.buf = b""

    def jobs(self):
        with self.lock:
            return len(self.handles)

    def _take(self):
        while len(self.buf) >= 12:
            typ, n = struct.unpack(">II", self.buf[4:12])
            if len(self.buf) < 12 + n:
                return
            body, self.buf = self.buf[12:12 + n], self.buf[12 + n:]
            if typ == 31:                                           # JOB_ASSIGN_UNIQ
                with self.lock:
                    self.handles.append(body.split(b"\0")[0])

    def run(self):
        try:
            while not self.halt.is_set():
                out = packet(30)                                    # GRAB_JOB_UNIQ
                with self.lock:
                    for h in self.handles:
                        out += packet(12, h + b"\x001\x002")        # WORK_STATUS 1/2
                self.sock.sendall(out)
                end = time.monotonic() + 0.1
                while (left := end - time.monotonic()) > 0:
                    if select.select([self.sock], [], [], left)[0]:
                        data = self.sock.recv(65536)
                        if not data:
                            return
                        self.buf += data
                        self._take()
        except OSError:
            pass

    def stop(self):
        self.halt.set()
        self.join(5)
        self.sock.close()


def hostile(system, gm, function):
    w = StatusForever(gm, function)
    w.start()
    system.items.append(w)     # stopped with the rest, in reverse order
    return w


def test_map_call_ends_at_its_deadline_under_a_status_stream(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    w = hostile(system, gm, "project_map:jenkins01")
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: w.jobs() >= 1, timeout=10, what="the agent asks the fake map worker")
    # The agent's map call (MAP_CALL_TIMEOUT_MS, 5 s) gives up although statuses keep coming...
    agent.wait_log("project_map:jenkins01: no answer within 5000 ms", timeout=15)
    # ...and asks again: its map is not frozen on the first call.
    wait_for(lambda: w.jobs() >= 2, timeout=15, what="a second map call")


def test_cli_call_ends_at_its_deadline_under_a_status_stream(system):
    gm = system.gearmand()
    hostile(system, gm, "project_map:jenkins01")
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    t = time.monotonic()
    p = subprocess.Popen([CLI, "map", "--master", "jenkins01", "-t", "2", "-s", gm.server],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 5 and "no answer within 2000 ms" in err, (p.returncode, err)
    assert time.monotonic() - t < 6


def test_cli_second_server_when_the_first_is_down(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    system.coordinator(gm, jk)
    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % s.getsockname()[1]
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    wait_for(lambda: "project_map:jenkins01" in gm.status(), what="coordinator registered")
    p = subprocess.run([CLI, "map", "--master", "jenkins01", "--json", "-s", dead + "," + gm.server],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 0 and '"master":"jenkins01"' in p.stdout.replace(" ", ""), p.stderr
