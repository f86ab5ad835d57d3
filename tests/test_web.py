"""jenkins-gearman web: the pool's status page and its JSON API (issue 18),
against real gearmand, Jenkins test servers, coordinators and node agents;
the page itself in headless Chromium (Debian's chromium + chromium-driver,
through python3-selenium)."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, CLI, CountingProxy, free_port, gearman_cli, wait_for

WEB_MAX_NODES = 2000   # agent/cli/web.h

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
# How a build is known as one of Gearman's (README "Status page"): declared as the README asks.
UNIQ = {"type": "string", "name": "GEARMAN_UNIQUE"}
ODD = "x'y\""        # legal in a Jenkins job name, and a trap for quoting
HOSTILE = "build:<b>x</b><img src=x onerror=alert(1)>"   # anyone on the bus can queue this


def fixture(prefix, odd=False):
    jobs = [{"name": "unit", "label": "linux", "params": [NODE, DUR, UNIQ], "concurrent": True},
            {"name": "gpu-only", "label": "gpu", "params": [NODE, DUR]},
            {"name": "plain"}]
    if odd:
        jobs.append({"name": ODD, "label": "linux", "params": [NODE, DUR], "concurrent": True})
    return {"version": "2.462.3",
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                      {"name": prefix + "1", "labels": "linux", "executors": 2, "mode": "NORMAL"}],
            "jobs": jobs}


def queue_hostile(gm):
    """A background job for a function no worker serves, named with HTML."""
    p = subprocess.run(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-b", "-f", HOSTILE, "{}"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: gm.status().get(HOSTILE, (0,))[0] == 1, what="the hostile job queued")


def one_master(system, odd=True, refresh=1):
    gm = system.gearmand()
    jk = system.jenkins(fixture("a", odd))
    coord = system.coordinator(gm, jk, name="masterA", refresh=refresh)
    system.node(gm, jk, "a1", master="masterA")
    wait_for(lambda: "build:unit" in (gm.functions_of("a1") or []), what="a1 registered")
    return gm, jk, coord


def answers_status(gm, master):
    """Does the coordinator answer {"status": true} (the interface of issue 18)?"""
    rc, out, err = gearman_cli(gm, "project_map:" + master, '{"status": true}', timeout_ms=5000)
    return rc == 0 and '"signed"' in out


def builds_ended(*jks):
    """Teardown stops agents with SIGTERM, which lets running builds finish and report."""
    for jk in jks:
        wait_for(lambda: not any(b["building"] for b in jk.builds()), timeout=40, what="builds ended")


def master_of(doc, name):
    return next((m for m in doc.get("masters", []) if m["name"] == name), None)


def test_api_shape_escaping_and_unoffered(system):
    gm, jk, _ = one_master(system)
    queue_hostile(gm)
    web = system.web(gm, ["--interval", "0.3"])
    doc = wait_for(lambda: (lambda d: master_of(d, "masterA") and any(
        f["name"] == HOSTILE for f in d["functions"]) and d)(web.status()), what="a full document")
    assert {"served_ms", "generated_ms", "servers", "functions", "unoffered", "masters", "builds"} <= set(doc)
    assert doc["servers"] == [{"server": gm.server, "reachable": True, "error": "", "workers": 2,
                               "queued": 1, "running": 0}]
    fns = {f["name"]: f for f in doc["functions"]}
    assert fns["build:unit"]["workers"] == 1
    assert fns["build:unit"]["offered_by"] == [{"master": "masterA", "node": "a1", "registered": True}]
    assert fns["build:" + ODD]["offered_by"][0]["node"] == "a1"
    assert fns[HOSTILE]["queued"] == 1 and fns[HOSTILE]["workers"] == 0
    reasons = {(u.get("job") or u.get("function"), u["master"]): u["reason"] for u in doc["unoffered"]}
    assert reasons[(HOSTILE, "")] == "no worker registered"
    assert reasons[("gpu-only", "masterA")] == "label matches no online node"
    assert "no Node or Label parameter" in reasons[("plain", "masterA")]
    m = master_of(doc, "masterA")
    assert m["coordinator_ok"] and m["url"] == jk.url.rstrip("/") or m["url"] == jk.url
    assert m["verified"] is False and m["verification"] == "unverified"
    a1 = next(n for n in m["nodes"] if n["name"] == "a1")
    assert a1["labels"] == ["a1", "linux"] or set(a1["labels"]) == {"a1", "linux"}
    assert a1["executors"] == 2 and a1["online"] and "build:unit" in a1["offers"]
    # The JSON is JSON: the hostile name comes back byte for byte, as a string.
    status, headers, body = web.get("/api/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert HOSTILE in [f["name"] for f in json.loads(body)["functions"]]


def test_read_only_and_headers(system):
    gm = system.gearmand()
    web = system.web(gm)
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = web.get("/api/status", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD", method
    status, headers, body = web.get("/")
    assert status == 200 and b"<title>Gearman pool status</title>" in body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert web.get("/app.js")[0] == 200 and web.get("/nothing")[0] == 404
    assert web.get("/", method="HEAD")[0] == 200
    # A rebound DNS name pointing at loopback: refused.
    assert web.get("/api/status", headers={"Host": "evil.example:80"})[0] == 403


def test_loopback_default_and_warning(system):
    gm = system.gearmand()
    out = subprocess.run([CLI, "web", "--help"], capture_output=True, text=True).stdout
    assert "default 127.0.0.1:8731" in out
    web = system.web(gm, port=free_port())
    assert "warning" not in web.log()
    port = free_port()
    p = subprocess.Popen([CLI, "web", "--listen", "0.0.0.0:%d" % port, "-s", gm.server],
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "not loopback" in line and "unauthenticated" in line
    finally:
        p.terminate()
        assert p.wait(10) == 0


def test_coordinator_going_away_shown(system):
    gm, jk, coord = one_master(system, odd=False)
    web = system.web(gm, ["--interval", "0.3"])
    wait_for(lambda: (master_of(web.status(), "masterA") or {}).get("coordinator_ok"), what="masterA up")
    coord.stop()
    # A call in flight when it stopped times out first; then gearmand lists no worker for it.
    m = wait_for(lambda: (lambda m: m and not m["coordinator_ok"] and "no coordinator" in m["error"] and m)(
        master_of(web.status(), "masterA")), timeout=20, what="masterA shown down")
    assert sorted(n["name"] for n in m["nodes"]) == ["a1", "built-in"]   # the last map is kept


def test_page_loads_cost_nothing_upstream(system):
    gm, jk, _ = one_master(system, odd=False, refresh=3600)
    proxy = CountingProxy(gm.port)
    try:
        web = system.web("127.0.0.1:%d" % proxy.port, ["--interval", "3600"])
        wait_for(lambda: master_of(web.status(), "masterA"), what="the first poll done")
        last = {"n": -1}

        def jenkins_quiet():   # the coordinator's start-up reads are done: no request since the last look
            n, prev = len(jk.requests()), last["n"]
            last["n"] = n
            return n == prev
        wait_for(jenkins_quiet, interval=0.3, what="no Jenkins request between two looks")
        before, jk_before = proxy.accepted, len(jk.requests())
        assert before > 0
        for _ in range(50):
            assert web.get("/")[0] == 200
            assert web.get("/app.js")[0] == 200
            assert web.get("/api/status")[0] == 200
        assert proxy.accepted == before, "page loads opened gearmand connections"
        assert len(jk.requests()) == jk_before, "page loads reached Jenkins"
    finally:
        proxy.close()


def test_status_answer_builds_and_busy(system):
    gm, jk, _ = one_master(system, odd=False)
    assert answers_status(gm, "masterA"), 'the coordinator does not answer {"status": true}'
    web = system.web(gm, ["--interval", "0.3"])
    client = subprocess.Popen(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-f", "build:unit",
                               json.dumps({"DURATION": "8"})], stdout=subprocess.DEVNULL)
    try:
        b = wait_for(lambda: (web.status().get("builds") or [None])[0], timeout=30, what="a running build")
        assert b["master"] == "masterA" and b["node"] == "a1" and b["job"] == "unit" and b["number"] == 1
        assert b["url"].startswith("http://") and b["elapsed_ms"] >= 0
        m = master_of(web.status(), "masterA")
        assert m["status_ok"] and m["jenkins_ok"] is True
        assert next(n for n in m["nodes"] if n["name"] == "a1")["busy"] == 1
        # Jenkins answers 503: the coordinator's status says so, the master is down.
        jk.fail(503, 4)
        m = wait_for(lambda: (lambda m: m and m["jenkins_ok"] is False and m)(master_of(web.status(), "masterA")),
                     timeout=20, what="masterA's Jenkins shown down")
        assert m["jenkins_error"]
    finally:
        client.kill()
        client.wait()
    builds_ended(jk)


# ---- the page in a real browser ----

def browser():
    """Headless Chromium. Missing is a failure, not a skip: make check installs it, and
    issue 18 asks for the page tested in a real browser."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("python3-selenium is not installed: make deps installs it")
    if not shutil.which("chromedriver") or not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium and chromium-driver are not installed: make deps installs them")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1400"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def dom(drv, script, what, timeout=20):
    return wait_for(lambda: drv.execute_script(script), timeout=timeout, interval=0.2, what=what)


def test_page_in_chromium(system):
    gm = system.gearmand()
    ja, jb = system.jenkins(fixture("a", odd=True)), system.jenkins(fixture("b"))
    system.coordinator(gm, ja, name="masterA")
    cb = system.coordinator(gm, jb, name="masterB")
    system.node(gm, ja, "a1", master="masterA")
    system.node(gm, jb, "b1", master="masterB")
    wait_for(lambda: "build:unit" in (gm.functions_of("a1") or []) and
             "build:unit" in (gm.functions_of("b1") or []), timeout=20, what="both agents registered")
    queue_hostile(gm)
    assert answers_status(gm, "masterA"), 'the coordinator does not answer {"status": true}'
    client = subprocess.Popen(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-f", "build:unit",
                               json.dumps({"DURATION": "12"})], stdout=subprocess.DEVNULL)
    web = system.web(gm, ["--interval", "0.5"])
    drv = browser()
    try:
        drv.get(web.url + "/")
        # A queued job with no worker: marked, its HTML name shown as text, no element made of it.
        dom(drv, "return [...document.querySelectorAll('#unoffered li.starving')]"
                 ".some(li => li.textContent.includes(arguments[0]) && li.textContent.includes('no worker registered'))"
            .replace("arguments[0]", json.dumps(HOSTILE)), "the starving function marked")
        assert drv.execute_script("return document.querySelectorAll('img').length") == 0
        assert drv.execute_script("return [...document.querySelectorAll('b')].every(b => b.textContent != 'x')")
        assert drv.execute_script("return [...document.querySelectorAll('#functions tr.starving')]"
                                  ".some(tr => tr.textContent.includes('(queued, no worker)'))")
        # The odd job name, as text; the unoffered ones with their reasons; both masters with their nodes.
        dom(drv, "return document.body.textContent.includes(%s)" % json.dumps("build:" + ODD), "the odd job name")
        text = drv.execute_script("return document.body.innerText")
        assert "label matches no online node" in text and "no Node or Label parameter" in text
        dom(drv, "return document.querySelectorAll('#masters .master').length == 2 && "
                 "!document.querySelector('#masters .master.down')", "two masters up")
        assert "a1" in text and "b1" in text and "linux" in text
        dom(drv, "return [...document.querySelectorAll('#builds a')].some(a => "
                 "a.textContent == 'unit #1' && a.href.startsWith('http'))", "the running build's link")
        drv.save_screenshot(os.path.join(BUILD, "web-status.png"))
        # masterB's coordinator stops: shown down.
        cb.stop()
        dom(drv, "return [...document.querySelectorAll('#masters .master.down')]"
                 ".some(m => m.textContent.includes('masterB') && m.textContent.includes('DOWN'))",
            "masterB shown down")
        drv.save_screenshot(os.path.join(BUILD, "web-status-down.png"))
    finally:
        drv.quit()
        client.kill()
        client.wait()
    builds_ended(ja, jb)


def test_map_public_key_verifies(system):
    from conftest import map_keys
    gm, jk, _ = one_master(system, odd=False)
    good = system.web(gm, ["--interval", "0.3", "--map-public-key", map_keys()[1]])
    m = wait_for(lambda: master_of(good.status(), "masterA"), what="masterA")
    assert m["verified"] is True and m["verification"] == "verified" and m["coordinator_ok"]
    # Signed by another key than the one given: not shown as the master's data.
    bad = system.web(gm, ["--interval", "0.3", "--map-public-key", map_keys("other")[1]])
    m = wait_for(lambda: master_of(bad.status(), "masterA"), what="masterA")
    assert not m["coordinator_ok"] and not m["verified"] and m["nodes"] == []
    assert "verif" in m["error"] or "signature" in m["error"]


class FakeCoordinator:
    """A hostile worker for project_map:NAME: answers every request with `answer`
    (bytes), or, with answer None, takes each request and never answers."""

    def __init__(self, gm, name, answer):
        import struct
        self.struct = struct
        self.answer = answer
        self.stop = False
        self.s = socket.create_connection(("127.0.0.1", gm.port), timeout=30)
        self.s.sendall(self.packet(1, ("project_map:" + name).encode()))        # CAN_DO
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def packet(self, typ, body=b""):
        return b"\0REQ" + self.struct.pack(">II", typ, len(body)) + body

    def run(self):
        try:
            while not self.stop:
                self.s.sendall(self.packet(30))                                  # GRAB_JOB_UNIQ
                head = self.s.recv(12, socket.MSG_WAITALL)
                typ, n = self.struct.unpack(">II", head[4:12])
                body = self.s.recv(n, socket.MSG_WAITALL) if n else b""
                if typ == 31 and self.answer is not None:                        # JOB_ASSIGN_UNIQ
                    self.s.sendall(self.packet(13, body.split(b"\0")[0] + b"\0" + self.answer))
                elif typ != 31:
                    time.sleep(0.05)                                             # NO_JOB
        except (OSError, ValueError, self.struct.error):
            pass

    def close(self):
        self.stop = True
        self.s.close()


def test_hostile_coordinators_bounded(system):
    gm = system.gearmand()
    long = "<script>alert(1)</script>" + "n" * 2000
    nodes = [{"node": {"name": "%s%d" % (long, i), "labels": [long] * (100 if i == 0 else 1), "executors": 1,
                       "online": True}, "functions": [{"name": "build:" + long}] * 3000 if i == 0 else []}
             for i in range(WEB_MAX_NODES + 500)]
    text = json.dumps({"master": "evil", "url": "javascript:alert(1)", "issued_ms": 1, "nodes": nodes,
                       "jobs": [], "undispatchable": [{"job": long, "reason": long}] * 3000})
    evil = FakeCoordinator(gm, "evil", json.dumps({"ed25519": "AAAA", "signed": text}).encode())
    slow = FakeCoordinator(gm, "slow", None)
    # A function name that is not UTF-8, queued by anyone on the bus.
    subprocess.run([b"gearman", b"-h", b"127.0.0.1", b"-p", str(gm.port).encode(), b"-b", b"-f",
                    b"build:bad\xff\xfename", b"{}"], check=True, capture_output=True, timeout=20)
    try:
        web = system.web(gm, ["--interval", "0.5", "-t", "1"])
        d = wait_for(lambda: (lambda d: (master_of(d, "evil") or {}).get("nodes") and
                              master_of(d, "slow") and d)(web.status()), timeout=30, what="both fakes polled")
        m = master_of(d, "evil")
        assert len(m["nodes"]) == WEB_MAX_NODES and m["url"] == "" and not m["verified"]
        assert all(len(n["name"].encode()) <= 256 and len(n["labels"]) <= 64 for n in m["nodes"])
        assert len(m["nodes"][0]["offers"]) <= 2000 and len(d["unoffered"]) <= 2000
        assert all(len((u.get("reason") or "").encode()) <= 256 for u in d["unoffered"])
        s = master_of(d, "slow")
        assert not s["coordinator_ok"] and s["error"]
        assert any(f["name"].startswith("build:bad?") for f in d["functions"])
        # The slow one never answers: polls go on, each within its budget (1 s a call, 3 s the coordinators).
        g1 = d["generated_ms"]
        wait_for(lambda: web.status()["generated_ms"] > g1, timeout=30, what="a later poll")
    finally:
        evil.close()
        slow.close()


def test_status_derived_parts_against_a_fake_coordinator(system):
    """The status-derived parts (running builds, busy counts, Jenkins down), fed by a
    fake coordinator that answers every request with one document holding both a
    map's and a status answer's fields (the interface of issue 18), so that they are
    tested before the real coordinator's status answer exists."""
    gm = system.gearmand()
    now = int(time.time() * 1000)
    node = {"node": {"name": "f1", "labels": ["f1", "linux"], "executors": 2, "mode": "NORMAL", "online": True},
            "functions": [{"name": "build:fakejob", "job": "fakejob", "pin": "NODE"}],
            "name": "f1", "online": True, "executors": 2, "busy": 2,
            "builds": [{"job": "fakejob", "number": 7, "url": "http://jenkins.example/job/fakejob/7/",
                        "timestamp_ms": now - 5000, "estimated_ms": 60000, "gearman": True},
                       {"job": "local", "number": 1, "url": "http://jenkins.example/job/local/1/",
                        "timestamp_ms": now, "estimated_ms": -1, "gearman": False},
                       {"job": "<b>evil</b>", "number": 2, "url": "javascript:alert(1)",
                        "timestamp_ms": now, "estimated_ms": -1, "gearman": True}]}
    text = json.dumps({"master": "fake", "url": "http://jenkins.example/", "issued_ms": now, "read_ms": now - 1000,
                       "jenkins_ok": False, "jenkins_error": "HTTP 503 from Jenkins", "refresh_s": 1,
                       "version": "0123456789abcdef", "nodes": [node], "jobs": [], "undispatchable": [],
                       "collisions": [], "skipped": []})
    fake = FakeCoordinator(gm, "fake", json.dumps({"ed25519": "AAAA", "signed": text}).encode())
    try:
        web = system.web(gm, ["--interval", "0.5"])
        d = wait_for(lambda: (lambda d: d.get("builds") and d)(web.status()), what="the fake's builds")
        builds = {b["job"]: b for b in d["builds"]}
        assert set(builds) == {"fakejob", "<b>evil</b>"}            # gearman: false is not ours
        b = builds["fakejob"]
        assert (b["master"], b["node"], b["number"], b["url"]) == ("fake", "f1", 7, "http://jenkins.example/job/fakejob/7/")
        assert b["elapsed_ms"] >= 5000 and b["estimated_ms"] == 60000
        assert builds["<b>evil</b>"]["url"] == ""                   # not http(s): no link
        m = master_of(d, "fake")
        assert m["status_ok"] and m["jenkins_ok"] is False and m["jenkins_error"] == "HTTP 503 from Jenkins"
        assert m["coordinator_ok"] and 1000 <= m["age_ms"] < 60000
        assert m["nodes"][0]["busy"] == 2 and m["nodes"][0]["online"]
        drv = browser()
        try:
            drv.get(web.url + "/")
            dom(drv, "return [...document.querySelectorAll('#builds a')].some(a => a.textContent == 'fakejob #7'"
                     " && a.href == 'http://jenkins.example/job/fakejob/7/')", "the running build's link")
            assert drv.execute_script("return [...document.querySelectorAll('#builds td')]"
                                      ".some(td => td.textContent == '<b>evil</b> #2' && !td.querySelector('a, b'))")
            assert drv.execute_script("return document.querySelector('#builds progress').max == 60000")
            dom(drv, "return [...document.querySelectorAll('#masters .master.down')].some(m => "
                     "m.textContent.includes('fake') && m.textContent.includes('HTTP 503 from Jenkins'))",
                "the master whose Jenkins is down marked")
            assert "2 busy / 0 idle" in drv.execute_script("return document.body.innerText")
            drv.save_screenshot(os.path.join(BUILD, "web-status-builds.png"))
        finally:
            drv.quit()
    finally:
        fake.close()
