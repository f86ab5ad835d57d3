"""The C Jenkins client (common/jenkins.c) against the Jenkins test server.

Each test runs build/tests/it_jenkins (tests/it/it_jenkins.c), which performs
client operations on one client object and prints one JSON line per
operation, and asserts both what the driver printed and what the server
recorded (/_test/builds, /_test/requests).
"""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BUILD, HERE, CountingProxy, JenkinsServer, free_port, wait_for

DRIVER = os.path.join(BUILD, "tests", "it_jenkins")
FIX_MAIN = os.path.join(HERE, "fixtures", "jkclient_main.json")
FIX_QUIET = os.path.join(HERE, "fixtures", "jkclient_quiet.json")
FIX_OPEN = os.path.join(HERE, "fixtures", "jkclient_open.json")      # no security

TOKEN = ["-u", "gearman", "-t", "tok123"]
PASSWORD = ["-u", "gearman", "-p", "pw123"]
SECRETS = ("tok123", "pw123", "wrong-token", "wrong-pw")


def _cmd(url, ops, auth, timeout_ms, connect_ms):
    cmd = [DRIVER] + list(auth)
    if timeout_ms:
        cmd += ["-T", str(timeout_ms)]
    if connect_ms:
        cmd += ["-c", str(connect_ms)]
    cmd.append(url)
    for i, op in enumerate(ops):
        if i:
            cmd.append("--")
        cmd += [str(a) for a in op]
    return cmd


def _parse(out, err, rc, nops):
    assert rc != 3, "an error message leaked a secret:\n" + out
    # Built with SANITIZE=1, a report also exits 1: look for it.
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert rc in (0, 1), "driver failed (rc=%d): %s %s" % (rc, out, err)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert len(lines) == nops, "expected %d result lines, got %r (stderr %r)" % (nops, out, err)
    for r in lines:
        assert "stale_message" not in r, r
        for s in SECRETS:
            assert s not in r.get("message", ""), r
    return lines


def drive(srv, *ops, auth=TOKEN, timeout_ms=None, connect_ms=None):
    """Run ops (tuples) on one client; return the list of result dicts."""
    url = srv if isinstance(srv, str) else srv.url
    p = subprocess.run(_cmd(url, ops, auth, timeout_ms, connect_ms),
                       capture_output=True, text=True, timeout=120)
    return _parse(p.stdout, p.stderr, p.returncode, len(ops))


def ok(srv, *op, **kw):
    """Run one operation that must succeed; return its result."""
    r = drive(srv, op, **kw)[0]
    assert r["ok"], r
    return r


def failed(srv, *op, **kw):
    r = drive(srv, op, **kw)[0]
    assert not r["ok"], r
    return r


def job_path(full):
    return "/job/" + "/job/".join(full.split("/")) + "/"


def reqs(srv, method=None, path_has=None):
    out = []
    for r in srv.requests():
        if method and r["method"] != method:
            continue
        if path_has and path_has not in r["path"]:
            continue
        out.append(r)
    return out


@pytest.fixture
def jk():
    srv = JenkinsServer(FIX_MAIN).start()
    yield srv
    srv.stop()


@pytest.fixture
def jq():
    srv = JenkinsServer(FIX_QUIET).start()
    yield srv
    srv.stop()


# ---- reading ----

def test_version_and_session(jk):
    r = ok(jk, "version")
    assert r["version"] == "2.462.3"
    assert r["status"] == 200
    assert r["session"] != ""


def test_jobs_through_folders_in_one_request(jk):
    jk.reset_requests()
    r = ok(jk, "jobs")
    jobs = {j["full_name"]: j for j in r["jobs"]}
    assert sorted(jobs) == ["anywhere", "build-a", "folder1/job a", "folder1/sub/deep #1", "old", "run"]
    a = jobs["build-a"]
    assert a["name"] == "build-a"
    assert a["label"] == "linux"
    assert a["buildable"] and not a["disabled"] and a["concurrent"]
    assert [(p["name"], p["kind"]) for p in a["params"]] == [("NODE", 1), ("LABEL", 2), ("FOO", 0)]
    assert a["params"][0]["type"] == "NodeParameterDefinition"
    assert a["url"].endswith("/job/build-a/")
    assert jobs["old"]["disabled"] and not jobs["old"]["buildable"]
    assert jobs["run"]["label"] is None
    deep = jobs["folder1/sub/deep #1"]
    assert deep["name"] == "deep #1"
    assert [p["name"] for p in deep["params"]] == ["NODE", "DURATION"]
    assert jobs["folder1/job a"]["label"] == "x86"
    assert not jobs["folder1/job a"]["concurrent"]
    # One request, not one per folder.
    got = reqs(jk)
    assert len(got) == 1, got
    assert got[0]["method"] == "GET" and got[0]["path"] == "/api/json"


def test_nodes(jk):
    r = ok(jk, "nodes")
    nodes = {n["name"]: n for n in r["nodes"]}
    assert sorted(nodes) == ["built-in", "gpu 1", "node1", "off1"]
    assert "built-in" in nodes["built-in"]["labels"]
    assert nodes["built-in"]["executors"] == 0
    n1 = nodes["node1"]
    assert sorted(n1["labels"]) == ["linux", "node1", "x86"]
    assert n1["executors"] == 2 and n1["idle"] == 2
    assert not n1["offline"] and not n1["temp_offline"] and n1["reason"] == ""
    assert nodes["gpu 1"]["executors"] == 1
    assert nodes["off1"]["offline"] and nodes["off1"]["temp_offline"]


def test_node_get(jk):
    r = drive(jk, ("node", "node1"), ("node", "built-in"), ("node", "gpu 1"), ("node", "nosuch"))
    assert r[0]["ok"] and r[0]["node"]["name"] == "node1"
    assert r[1]["ok"] and r[1]["node"]["name"] == "built-in"
    assert r[2]["ok"] and r[2]["node"]["name"] == "gpu 1"
    assert not r[3]["ok"] and r[3]["err"] == "not found" and r[3]["status"] == 404
    assert "no node 'nosuch'" in r[3]["message"]
    paths = [q["path"] for q in reqs(jk, "GET", "/computer/")]
    assert "/computer/(built-in)/api/json" in paths
    assert "/computer/gpu%201/api/json" in paths


def test_node_mode(jk):
    r = drive(jk, ("mode", "node1"), ("mode", "gpu 1"), ("mode", "nosuch"), ("mode", "built-in"))
    assert r[0]["ok"] and r[0]["mode"] == "NORMAL"
    assert r[1]["ok"] and r[1]["mode"] == "EXCLUSIVE"
    assert not r[2]["ok"] and r[2]["err"] == "not found"
    # The controller's config.xml answers 400: its mode comes from /api/json.
    assert r[3]["ok"] and r[3]["mode"] == "NORMAL", r[3]
    assert reqs(jk, "GET", "/computer/gpu%201/config.xml")
    assert not reqs(jk, "GET", "/computer/(built-in)/config.xml")


def test_allowed_nodes(jk):
    r = drive(jk, ("allowed", "build-a", "NODE"), ("allowed", "run", "NODE"),
              ("allowed", "anywhere", "NODE"), ("allowed", "folder1/job a", "NODE"),
              ("allowed", "build-a", "FOO"), ("allowed", "nosuch", "NODE"))
    assert r[0]["ok"] and not r[0]["all"] and r[0]["names"] == ["node1", "gpu 1"]
    assert r[1]["ok"] and r[1]["all"] and r[1]["names"] == []
    assert r[2]["ok"] and r[2]["all"]
    assert r[3]["ok"] and r[3]["names"] == ["node1"]
    assert not r[4]["ok"] and r[4]["err"] == "not found" and "no Node parameter named 'FOO'" in r[4]["message"]
    assert not r[5]["ok"] and r[5]["err"] == "not found" and r[5]["status"] == 404
    assert reqs(jk, "GET", "/job/folder1/job/job%20a/config.xml")


# ---- builds ----

def test_trigger_with_params(jk):
    jk.reset_requests()
    r = ok(jk, "trigger", "build-a", "NODE=node1", "FOO=x y&z=1 ü")
    assert r["status"] == 201 and r["existing"] is False and r["queue_id"] > 0
    b = jk.wait_for(lambda: [b for b in jk.builds() if b["queue_id"] == r["queue_id"]],
                    what="build of queue item %d" % r["queue_id"])[0]
    assert b["job"] == "build-a"
    assert b["node"] == "node1"
    assert b["params"]["FOO"] == "x y&z=1 ü"
    assert b["params"]["NODE"] == "node1"
    posts = reqs(jk, "POST")
    assert len(posts) == 1
    assert posts[0]["path"] == "/job/build-a/buildWithParameters"
    assert posts[0]["query"] == "delay=0sec"
    assert posts[0]["body"] == "NODE=node1&FOO=x%20y%26z%3D1%20%C3%BC"
    assert posts[0]["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert posts[0]["basic_user"] == "gearman"


def test_trigger_in_folder_and_errors(jk):
    r = drive(jk, ("trigger", "folder1/sub/deep #1", "NODE=node1"),
              ("trigger", "old", "NODE=node1"),
              ("trigger", "nosuch", "NODE=node1"),
              ("trigger", "a//b", "NODE=node1"))
    assert r[0]["ok"] and r[0]["status"] == 201
    assert not r[1]["ok"] and r[1]["err"] == "conflict" and r[1]["status"] == 409
    assert not r[2]["ok"] and r[2]["err"] == "not found" and "no job 'nosuch'" in r[2]["message"]
    assert not r[3]["ok"] and r[3]["err"] == "bad request" and "empty path segment" in r[3]["message"]
    # Each segment encoded on its own; the bad name never reached the server.
    paths = [q["path"] for q in reqs(jk, "POST")]
    assert paths == ["/job/folder1/job/sub/job/deep%20%231/buildWithParameters",
                     "/job/old/buildWithParameters", "/job/nosuch/buildWithParameters"]
    jk.wait_for(lambda: [b for b in jk.builds() if b["job"] == "folder1/sub/deep #1"], what="folder build")


def test_identical_queued_item_is_303(jq):
    # Pinned to a node that is offline, the item stays in the queue.
    r = drive(jq, ("trigger", "queued", "NODE=off1", "FOO=1"),
              ("trigger", "queued", "NODE=off1", "FOO=1"),
              ("trigger", "queued", "NODE=off1", "FOO=2"))
    assert all(x["ok"] for x in r), r
    assert r[0]["status"] == 201 and not r[0]["existing"]
    assert r[1]["status"] == 303 and r[1]["existing"]
    assert r[1]["queue_id"] == r[0]["queue_id"]
    assert r[2]["status"] == 201 and r[2]["queue_id"] != r[0]["queue_id"]
    # The 303 was not followed.
    assert not reqs(jq, "GET", "/queue/item/")


def test_follow_queue_item_to_build(jk):
    t = ok(jk, "trigger", "run", "NODE=node1", "DURATION=1.0", "RESULT=UNSTABLE")
    qid = t["queue_id"]
    r = drive(jk, ("wait-queue", qid, 10), ("wait-build", "run", "1", 15))
    q = r[0]["item"]
    assert r[0]["ok"] and q["state"] == "started" and q["id"] == qid
    assert q["build_number"] == 1 and q["build_url"].endswith("/job/run/1/")
    b = r[1]["build"]
    assert r[1]["ok"], r[1]
    assert r[1]["seen"] == ["running", "finished"]
    assert b["number"] == 1 and not b["building"]
    assert b["result"] == "UNSTABLE"
    assert b["built_on"] == "node1"
    assert b["queue_id"] == qid
    assert b["duration"] > 0 and b["timestamp"] > 0
    rec = [x for x in jk.builds() if x["queue_id"] == qid][0]
    assert rec["result"] == "UNSTABLE" and not rec["building"]


@pytest.mark.parametrize("result", ["SUCCESS", "FAILURE", "ABORTED", "NOT_BUILT"])
def test_build_results(jk, result):
    t = ok(jk, "trigger", "run", "NODE=node1", "DURATION=0.1", "RESULT=" + result)
    q = ok(jk, "wait-queue", t["queue_id"], 10)["item"]
    assert q["state"] == "started"
    b = ok(jk, "wait-build", "run", q["build_number"], 10)["build"]
    assert b["result"] == result


def test_stop_build(jk):
    t = ok(jk, "trigger", "run", "NODE=node1", "DURATION=60")
    q = ok(jk, "wait-queue", t["queue_id"], 10)["item"]
    n = q["build_number"]
    r = drive(jk, ("build", "run", n), ("stop", "run", n), ("wait-build", "run", n, 10),
              ("stop", "run", n))
    assert r[0]["ok"] and r[0]["build"]["building"] and r[0]["build"]["result"] is None
    assert r[1]["ok"] and r[1]["status"] == 302
    assert r[2]["ok"] and r[2]["build"]["result"] == "ABORTED"
    assert r[3]["ok"] and r[3]["status"] == 302          # stopping a finished build is a no-op
    stops = reqs(jk, "POST", "/stop")
    assert [q["headers"].get("content-length") for q in stops] == ["0", "0"]
    # The 302s were not followed to the build page.
    assert not [x for x in reqs(jk, "GET") if x["path"] == "/job/run/%d/" % n]
    jk.wait_for(lambda: [b for b in jk.builds() if b["queue_id"] == t["queue_id"] and not b["building"]],
                what="build stopped")


def test_set_description(jk):
    t = ok(jk, "trigger", "run", "NODE=node1", "DURATION=0.1")
    q = ok(jk, "wait-queue", t["queue_id"], 10)["item"]
    text = "pinned to node1 & <b>bold</b> é #1 100%"
    r = drive(jk, ("describe", "run", q["build_number"], text), ("build", "run", q["build_number"]),
              ("describe", "run", 999, "x"))
    assert r[0]["ok"] and r[0]["status"] == 302
    assert r[1]["build"]["description"] == text
    assert not r[2]["ok"] and r[2]["err"] == "not found" and "no build run #999" in r[2]["message"]


def test_node_offline_online(jk):
    jk.reset_requests()
    # No HTML-special characters: real Jenkins exports the reason HTML-escaped (reference 4.2).
    msg = "maintenance: back at 5 (node1)"
    r = drive(jk, ("offline", "node1", msg), ("node", "node1"), ("offline", "node1", "second"),
              ("node", "node1"), ("online", "node1"), ("node", "node1"), ("online", "node1"))
    assert all(x["ok"] for x in r), r
    assert r[1]["node"]["temp_offline"] and r[1]["node"]["offline"]
    assert r[1]["node"]["reason"] == msg
    assert r[3]["node"]["temp_offline"] and r[3]["node"]["reason"] == "second"
    assert not r[5]["node"]["temp_offline"] and not r[5]["node"]["offline"]
    # Bringing an online node online again does not toggle it.
    assert len(reqs(jk, "POST", "/toggleOffline")) == 1
    assert len(reqs(jk, "POST", "/changeOfflineCause")) == 2


def test_built_in_offline_online(jk):
    r = drive(jk, ("offline", "built-in", "x"), ("node", "built-in"), ("online", "built-in"),
              ("node", "built-in"))
    assert all(x["ok"] for x in r), r
    assert r[1]["node"]["temp_offline"]
    assert not r[3]["node"]["temp_offline"]


def test_cancel_queue_item(jq):
    t = ok(jq, "trigger", "queued", "NODE=off1")
    qid = t["queue_id"]
    r = drive(jq, ("queue", qid), ("cancel", qid), ("queue", qid), ("cancel", 99999))
    assert r[0]["ok"] and r[0]["item"]["state"] == "waiting" and r[0]["item"]["why"]
    assert r[1]["ok"] and r[1]["status"] == 204
    assert r[2]["ok"] and r[2]["item"]["state"] == "cancelled"
    assert not r[3]["ok"] and r[3]["err"] == "not found" and r[3]["status"] == 404
    assert not [b for b in jq.builds() if b["queue_id"] == qid]


# ---- authentication ----

def test_wrong_token_is_401(jk):
    r = failed(jk, "nodes", auth=["-u", "gearman", "-t", "wrong-token"])
    assert r["err"] == "authentication failed" and r["status"] == 401
    assert "401 Unauthorized: check [jenkins] user and token" in r["message"]
    r = failed(jk, "trigger", "build-a", "NODE=node1", auth=["-u", "gearman", "-p", "wrong-pw"])
    assert r["err"] == "authentication failed"
    assert "check [jenkins] user and password" in r["message"]
    assert not jk.builds()


def test_anonymous_is_403(jk):
    r = drive(jk, ("jobs",), ("trigger", "build-a", "NODE=node1"), auth=[])
    for x in r:
        assert not x["ok"] and x["err"] == "forbidden" and x["status"] == 403, x
        assert "anonymous" in x["message"]
    assert not jk.builds()


def test_password_uses_crumb(jk):
    jk.reset_requests()
    r = drive(jk, ("trigger", "build-a", "NODE=node1"), ("trigger", "build-a", "NODE=gpu 1"),
              ("offline", "node1", "m"), auth=PASSWORD)
    assert all(x["ok"] for x in r), r
    got = [(q["method"], q["path"]) for q in jk.requests()]
    # One crumb, fetched before the first POST and reused.
    assert got[0] == ("GET", "/crumbIssuer/api/json"), got
    assert got.count(("GET", "/crumbIssuer/api/json")) == 1, got
    assert len([g for g in got if g[0] == "POST"]) == 3


def test_token_needs_no_crumb(jk):
    jk.reset_requests()
    ok(jk, "trigger", "build-a", "NODE=node1")
    assert not reqs(jk, "GET", "/crumbIssuer")


def test_anonymous_posts_use_a_crumb_without_security():
    """Security off, CSRF still on: an anonymous POST needs crumb + session."""
    with JenkinsServer(FIX_OPEN) as srv:
        srv.reset_requests()
        r = drive(srv, ("trigger", "run", "NODE=node1"), ("offline", "node1", "m"), ("online", "node1"),
                  auth=[])
        assert all(x["ok"] for x in r), r
        got = [(q["method"], q["path"]) for q in srv.requests()]
        assert got[0] == ("GET", "/crumbIssuer/api/json"), got
        assert got.count(("GET", "/crumbIssuer/api/json")) == 1, got
        for q in srv.requests():
            if q["method"] == "POST":
                assert q["headers"].get("jenkins-crumb") and "JSESSIONID." in q["headers"].get("cookie", "")
                assert q["basic_user"] is None


def test_crumb_refetched_after_restart(jk):
    """A restart invalidates session and crumb: one 403, one new crumb, one retry."""
    p = subprocess.Popen(_cmd(jk.url, [("trigger", "build-a", "NODE=node1"), ("pause",),
                                       ("trigger", "build-a", "NODE=gpu 1")], PASSWORD, None, None),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline())
        assert first["ok"], first
        jk.restart()
        jk.reset_requests()
        p.stdin.write("\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    rest = _parse(out, err, p.returncode, 2)
    assert rest[1]["ok"], rest[1]
    assert rest[1]["session"] != first["session"]
    got = [(q["method"], q["path"]) for q in jk.requests()]
    assert got == [("POST", "/job/build-a/buildWithParameters"), ("GET", "/crumbIssuer/api/json"),
                   ("POST", "/job/build-a/buildWithParameters")], got


# ---- failures of the server and the network ----

def test_server_errors_then_recovery(jk):
    jk.fail(503, 2)
    r = failed(jk, "nodes")
    assert r["err"] == "server error" and r["status"] == 503
    assert r["message"].startswith("GET %scomputer/api/json: 503" % jk.url)
    wait_for(lambda: drive(jk, ("nodes",))[0]["ok"], timeout=10, what="Jenkins answering again")


def test_timeout(jk):
    jk.latency(1500)
    t0 = time.monotonic()
    r = failed(jk, "jobs", timeout_ms=400)
    assert time.monotonic() - t0 < 1.4
    assert r["err"] == "timeout", r
    assert "timeout" in r["message"]
    jk.latency(0)
    ok(jk, "jobs", timeout_ms=2000)


def test_dropped_connection(jk):
    jk.drop(1)
    r = drive(jk, ("nodes",), ("nodes",))
    assert not r[0]["ok"] and r[0]["err"] == "cannot connect", r[0]
    assert "connection dropped" in r[0]["message"]
    assert r[1]["ok"], r[1]


def test_connection_refused():
    port = free_port()      # bound and released: nothing listens there
    r = failed("http://127.0.0.1:%d/" % port, "version")
    assert r["err"] == "cannot connect" and r["status"] == 0
    assert r["message"] == "GET http://127.0.0.1:%d/: cannot connect: Connection refused" % port


def test_connect_timeout():
    # A listening socket that never accepts: the backlog fills, SYNs go unanswered.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    try:
        url = "http://127.0.0.1:%d/" % s.getsockname()[1]
        fillers = []
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(s.getsockname())
            except BlockingIOError:
                pass
            fillers.append(c)
        r = failed(url, "version", connect_ms=300, timeout_ms=600)
        assert r["err"] == "timeout", r
    finally:
        for c in fillers:
            c.close()
        s.close()


def test_keep_alive(jk):
    proxy = CountingProxy(jk.port)
    try:
        jk.reset_requests()
        r = drive(proxy.url, ("version",), ("jobs",), ("nodes",), ("node", "node1"),
                  ("trigger", "build-a", "NODE=node1"), ("offline", "off1", "m"), ("mode", "gpu 1"),
                  ("nodes",))
        assert all(x["ok"] for x in r), r
        assert len(jk.requests()) == 8
        # The six GETs share one connection; each POST (trigger, offline) takes a fresh one,
        # so that libcurl never silently re-sends a POST whose answer was lost.
        posts = [q for q in jk.requests() if q["method"] == "POST"]
        assert len(posts) == 2
        assert proxy.accepted == 1 + len(posts)
    finally:
        proxy.close()
