"""Dispatch: no job stranded, no executor idle while work waits, no node stalled.

Real gearmand (two where it matters), the Jenkins test server, our
coordinator and agent, Perl's Gearman::Client as the client. Each test
reproduces a defect the agent had and checks what the client received and
what Jenkins recorded.
"""
import json
import signal
import socket
import struct
import threading
import time

from conftest import PerlClient, final_event, perl_call, raw_take_job, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}


def job(name, **kw):
    j = {"name": name, "params": [NODE, DUR], "concurrent": True}
    j.update(kw)
    return j


def fixture(nodes, jobs):
    return {"version": "2.462.3", "quiet_period": 0,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] + nodes,
            "jobs": jobs}


def n1(executors=1):
    return {"name": "n1", "labels": "", "executors": executors, "mode": "NORMAL"}


def registered(gm, fn, worker="n1"):
    fns = gm.functions_of(worker)
    return fns is not None and fn in fns


def builds_of(jk, name):
    return [b for b in jk.builds() if b["job"] == name]


def warning_then_fail(ev):
    """The refusal the agent sends: WORK_WARNING {"error": ...}, then WORK_FAIL."""
    assert final_event(ev)["event"] == "fail", ev
    warnings = [json.loads(e["data"]) for e in ev if e["event"] == "warning"]
    assert warnings and "error" in warnings[-1], ev
    return warnings[-1]["error"]


def test_job_queued_on_a_reconnecting_gearmand_is_taken(system):
    """Server A dies and comes back with a job queued before the agent
    re-registers; the connection to B sleeps meanwhile. The job is taken."""
    ga, gb = system.gearmand(), system.gearmand()
    jk = system.jenkins(fixture([n1()], [job("unit")]))
    system.coordinator([ga, gb], jk)
    agent = system.node([ga, gb], jk, "n1")
    wait_for(lambda: registered(ga, "build:unit") and registered(gb, "build:unit"), what="registered on A and B")
    ga.kill()
    assert final_event(perl_call(gb, "build:unit", "{}"))["event"] == "complete"
    ga.start()
    client = PerlClient(ga, "build:unit", json.dumps({"DURATION": "0"}), timeout=30)
    try:
        ev = client.wait(40)
    finally:
        client.kill()
    assert final_event(ev)["event"] == "complete", (ev, agent.log()[-3000:])
    assert len(builds_of(jk, "unit")) == 2


def test_executor_freed_by_a_native_build_is_reused_at_once(system):
    """A build Jenkins ran by itself frees the executor: the job waiting in
    Gearman starts within 2 s (it took up to 15 s), and the agent asks the
    master about once a second while it waits, never while it is idle."""
    jk = system.jenkins(fixture([n1()], [job("unit"), {"name": "native", "params": [DUR], "concurrent": True}]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    system.node(gm, jk, "n1")
    wait_for(lambda: registered(gm, "build:unit"), what="registered")
    for rnd in range(2):
        qid = jk.start_native("native", node="n1", params={"DURATION": "4"})
        wait_for(lambda: any(b["queue_id"] == qid and b["building"] for b in jk.builds()), what="native build")
        jk.reset_requests()
        client = PerlClient(gm, "build:unit", "{}", timeout=60)
        try:
            wait_for(lambda: len(builds_of(jk, "unit")) == rnd + 1, timeout=30, what="gearman build started")
            ev = client.wait(30)
        finally:
            client.kill()
        assert final_event(ev)["event"] == "complete"
        native = [b for b in jk.builds() if b["queue_id"] == qid][0]
        gear = builds_of(jk, "unit")[rnd]
        delay = gear["start"] - native["end"]
        assert 0 <= delay < 2.0, "reused %.2f s after the native build ended" % delay
        # While the job waited (about 4 s), about one look a second at the node.
        looks = [r for r in jk.requests() if "/computer/n1/" in r["path"] and r["method"] == "GET"
                 and r["time"] <= gear["start"]]
        assert 1 <= len(looks) <= 8, looks
    # Idle: nothing waits, no request to the master.
    jk.reset_requests()
    time.sleep(3)
    assert [r for r in jk.requests() if "/computer/n1/" in r["path"]] == []


def test_blocked_item_does_not_stall_the_node_and_times_out(system):
    """A pinned item blocked behind a running build of a non-concurrent job
    holds no executor: the node's other executor takes the next job. After
    [node] start_timeout the item is cancelled and the job refused."""
    jk = system.jenkins(fixture([n1(2)], [job("serial", concurrent=False), job("unit")]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1", extra={"node": {"start_timeout": 4}})
    wait_for(lambda: registered(gm, "build:serial") and registered(gm, "build:unit"), what="registered")
    jk.start_native("serial", node="n1", params={"DURATION": "60", "NODE": "n1"})
    wait_for(lambda: any(b["building"] for b in builds_of(jk, "serial")), what="native serial build")
    blocked = PerlClient(gm, "build:serial", "{}", timeout=60)
    try:
        wait_for(lambda: any(q["job"] == "serial" and q["state"] == "blocked" for q in jk.queue()),
                 what="the serial job's item blocked in Jenkins")
        t0 = time.time()
        ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "0"}), timeout=20)
        assert final_event(ev)["event"] == "complete", (ev, agent.log()[-3000:])
        assert time.time() - t0 < 4, "the other executor waited for the blocked item"
        err = warning_then_fail(blocked.wait(30))
    finally:
        blocked.kill()
    assert "start_timeout" in err and "already in progress" in err, err
    assert [q for q in jk.queue() if q["job"] == "serial"] == []
    assert len(builds_of(jk, "serial")) == 1       # the native one only


def test_quieting_down_master_takes_no_new_job(system):
    jk = system.jenkins(fixture([n1()], [job("unit")]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: registered(gm, "build:unit"), what="registered")
    jk.quiet_down(True)
    client = PerlClient(gm, "build:unit", "{}", timeout=60)
    try:
        agent.wait_log("not taking jobs: the master is quieting down")
        wait_for(lambda: gm.status().get("build:unit", (0,))[0] == 1, what="the job queued in gearmand")
        assert gm.status()["build:unit"][1] == 0          # not taken
        assert jk.queue() == [] and builds_of(jk, "unit") == []
        jk.quiet_down(False)
        ev = client.wait(30)
    finally:
        client.kill()
    assert final_event(ev)["event"] == "complete"
    assert len(builds_of(jk, "unit")) == 1


def test_build_deleted_while_running_is_reported_at_once(system):
    jk = system.jenkins(fixture([n1()], [job("unit")]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: registered(gm, "build:unit"), what="registered")
    client = PerlClient(gm, "build:unit", json.dumps({"DURATION": "60"}), timeout=60)
    try:
        agent.wait_log("build unit #1 started", timeout=20)
        jk.remove_job("unit")
        t0 = time.time()
        err = warning_then_fail(client.wait(30))
    finally:
        client.kill()
    assert time.time() - t0 < 10
    assert "gone from Jenkins" in err, err


def test_master_unreachable_past_follow_timeout_ends_the_job(system):
    jk = system.jenkins(fixture([n1()], [job("unit")]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1", extra={"node": {"follow_timeout": 3}})
    wait_for(lambda: registered(gm, "build:unit"), what="registered")
    client = PerlClient(gm, "build:unit", json.dumps({"DURATION": "60"}), timeout=90)
    try:
        agent.wait_log("build unit #1 started")
        jk.fail(503, 60)
        t0 = time.time()
        err = warning_then_fail(client.wait(60))
    finally:
        client.kill()
        jk.fail(503, 0)
    assert time.time() - t0 < 20
    assert "follow_timeout" in err, err


# ---- a JOB_ASSIGN the node did not ask for ----

REQ, RES = b"\0REQ", b"\0RES"
JOB_ASSIGN_UNIQ, WORK_FAIL, WORK_WARNING = 31, 14, 29


class InjectingProxy:
    """TCP proxy in front of gearmand that can send a worker connection a
    JOB_ASSIGN_UNIQ of its own: what a gearmand (or anyone on the path) may do."""

    def __init__(self, gm):
        self.gm = gm
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.lock = threading.Lock()
        self.worker = None          # (agent socket) of the connection that got a JOB_ASSIGN
        self.closed_by_agent = []   # agent sockets the agent closed
        self.from_agent = []        # (type, args) the agent sent
        self.stop = False
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def accept(self):
        while not self.stop:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.gm.port))
            threading.Thread(target=self.pump, args=(a, b, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(b, a, False), daemon=True).start()

    def pump(self, src, dst, from_agent):
        buf = b""
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                if from_agent:
                    with self.lock:
                        self.closed_by_agent.append(src)
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            buf += chunk
            while len(buf) >= 12 and buf[:4] in (REQ, RES):
                typ, n = struct.unpack(">II", buf[4:12])
                if len(buf) < 12 + n:
                    break
                body, buf = buf[12:12 + n], buf[12 + n:]
                with self.lock:
                    if from_agent:
                        self.from_agent.append((typ, body.split(b"\0")))
                    elif typ == JOB_ASSIGN_UNIQ:
                        self.worker = dst
                    data = (REQ if from_agent else RES) + struct.pack(">II", typ, n) + body
                    dst.sendall(data)
            if buf and buf[:4] not in (REQ, RES):   # text admin protocol: pass through
                dst.sendall(buf)
                buf = b""

    def inject(self, handle, function):
        body = b"\0".join([handle, function, b"injected-unique", b"{}"])
        with self.lock:
            self.worker.sendall(RES + struct.pack(">II", JOB_ASSIGN_UNIQ, len(body)) + body)

    def close(self):
        self.stop = True
        self.srv.close()


def test_job_assign_with_no_free_executor_keeps_the_connection(system):
    """The node's only executor runs a build; a JOB_ASSIGN arrives anyway. It
    is refused by handle (WORK_WARNING + WORK_FAIL); the connection, which
    holds the running job, stays: that job is not handed back or run twice."""
    gm = system.gearmand()
    proxy = InjectingProxy(gm)
    try:
        jk = system.jenkins(fixture([n1()], [job("unit")]))
        system.coordinator(gm, jk)
        agent = system.node(proxy, jk, "n1")
        wait_for(lambda: registered(gm, "build:unit"), what="registered")
        client = PerlClient(gm, "build:unit", json.dumps({"DURATION": "3"}), timeout=60)
        try:
            wait_for(lambda: any(b["building"] for b in builds_of(jk, "unit")), what="build running")
            proxy.inject(b"H:injected:1", b"build:unit")
            wait_for(lambda: any(t == WORK_FAIL and a[0] == b"H:injected:1" for t, a in proxy.from_agent),
                     what="WORK_FAIL for the injected job:\n" + agent.log()[-2000:])
            assert any(t == WORK_WARNING and a[0] == b"H:injected:1" for t, a in proxy.from_agent)
            ev = client.wait(30)
        finally:
            client.kill()
        assert final_event(ev)["event"] == "complete"
        assert proxy.closed_by_agent == [] or proxy.worker not in proxy.closed_by_agent
        assert len(builds_of(jk, "unit")) == 1
    finally:
        proxy.close()


def test_node_told_of_a_job_it_had_no_room_for_still_hears_of_new_ones(system):
    """gearmand NOOPs a sleeping worker once, then not again until it grabs.
    A node that was NOOPed while full, and whose job another worker took,
    must still take the next job once it has room."""
    jk = system.jenkins(fixture([n1()], [job("unit"), {"name": "native", "params": [DUR], "concurrent": True}]))
    gm = system.gearmand()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: registered(gm, "build:unit"), what="registered")
    qid = jk.start_native("native", node="n1", params={"DURATION": "3"})
    wait_for(lambda: any(b["queue_id"] == qid and b["building"] for b in jk.builds()), what="native build")
    first = PerlClient(gm, "build:unit", "{}", timeout=30)
    try:
        agent.wait_log("not taking jobs: no idle executor")
        raw_take_job(gm, "build:unit", complete=True)            # someone else takes it
        assert final_event(first.wait(20))["event"] == "complete"
    finally:
        first.kill()
    wait_for(lambda: all(not b["building"] for b in jk.builds()), what="native build over")
    ev = perl_call(gm, "build:unit", "{}", timeout=20)
    assert final_event(ev)["event"] == "complete", (ev, agent.log()[-2000:])
    assert len(builds_of(jk, "unit")) == 1


def test_requeued_job_whose_item_waits_on_another_node_is_followed_not_cancelled(system):
    """An agent dies while its build waits, blocked, in the Jenkins queue; the
    job goes to an agent of another node. That agent finds the item by the
    job's unique and follows it: the item is pinned to the first node, which
    is right, so it must not be taken for a pin that did not hold."""
    uniq = {"type": "string", "name": "GEARMAN_UNIQUE"}
    fx = fixture([dict(n1(2)), {"name": "n2", "labels": "", "executors": 2, "mode": "NORMAL"}],
                 [job("serial", concurrent=False, params=[NODE, DUR, uniq])])
    jk = system.jenkins(fx)
    gm = system.gearmand()
    system.coordinator(gm, jk)
    second = system.node(gm, jk, "n2")
    wait_for(lambda: registered(gm, "build:serial", "n2"), what="n2 registered")
    qid = jk.start_native("serial", node="n2", params={"DURATION": "6", "NODE": "n2"})
    wait_for(lambda: any(b["queue_id"] == qid and b["building"] for b in jk.builds()), what="native build")
    client = PerlClient(gm, "build:serial", json.dumps({"DURATION": "0"}), unique="moved-q", timeout=60)
    try:
        wait_for(lambda: any(q["params"].get("GEARMAN_UNIQUE") == "moved-q" and q["state"] == "blocked"
                             for q in jk.queue()), what="n2's item blocked behind the native build")
        second.stop(signal.SIGKILL)
        first = system.node(gm, jk, "n1")
        ev = client.wait(40)
    finally:
        client.kill()
    assert final_event(ev)["event"] == "complete", (ev, first.log()[-2000:])
    ours = [b for b in builds_of(jk, "serial") if b["params"].get("GEARMAN_UNIQUE") == "moved-q"]
    assert len(ours) == 1 and ours[0]["node"] == "n2" and ours[0]["result"] == "SUCCESS"
    assert "was re-queued: re-attaching to its build" in first.log()
