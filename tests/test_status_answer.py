"""The coordinator's status answer (issue 18): project_map:$host with
{"status": true} gives the master's nodes and the builds they run, from what
its last refresh read (README "Wire contract"). Real gearmand, the Jenkins
test server, our coordinator and node agent, Debian's `gearman` CLI and
Perl's Gearman::Client as clients; answers verified with the coordinator's
public key by an independent Ed25519 (pyca/cryptography)."""
import base64
import json
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from conftest import PerlClient, final_event, gearman_cli, map_keys, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
UNIQ = {"type": "string", "name": "GEARMAN_UNIQUE"}
# Util.rawEncode leaves '(' ')' '+' ',' '=' "'" bare and writes ' ' as %20 and '~' as %7E.
ODD = "deploy (prod)+x,y=z~'q'"

FIXTURE = {
    "version": "2.462.3",
    "quiet_period": 0,
    "nodes": [
        {"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
        {"name": "n1", "labels": "linux", "executors": 3, "mode": "NORMAL"},
        {"name": "n2", "labels": "linux", "executors": 1, "mode": "NORMAL"},
        {"name": "n3", "labels": "linux", "executors": 1, "mode": "NORMAL", "temporarily_offline": True},
    ],
    "jobs": [
        # Both declare GEARMAN_UNIQUE: a build from the UI has it too, empty.
        {"name": ODD, "params": [NODE, DUR, UNIQ], "concurrent": True},
        {"name": "unit", "params": [NODE, DUR, UNIQ], "concurrent": True},
        {"name": "pipe", "type": "pipeline", "params": [NODE, UNIQ], "script": "node(params.NODE) { sleep 10 }"},
        {"name": "team x", "type": "folder", "jobs": [
            {"name": "lint (b)", "params": [NODE, DUR], "concurrent": True},
        ]},
    ],
}


def opened(out):
    """The signed text of a project_map answer, verified with the coordinator's public key."""
    env = json.loads(out)
    assert set(env) == {"ed25519", "signed"}, out[:300]
    with open(map_keys()[1], "rb") as f:
        key = load_pem_public_key(f.read())
    key.verify(base64.b64decode(env["ed25519"]), env["signed"].encode())   # raises if it does not
    return json.loads(env["signed"])


def status(gm, nonce=None):
    arg = {"status": True}
    if nonce is not None:
        arg["nonce"] = nonce
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", json.dumps(arg), timeout_ms=10000)
    assert rc == 0, "status failed: rc=%d out=%r err=%r" % (rc, out, err)
    return opened(out)


def ready(system, refresh=1, agents=()):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk, refresh=refresh)
    for n in agents:
        system.node(gm, jk, n)
    wait_for(lambda: gm.status().get("project_map:jenkins01", (0, 0, 0))[2] == 1,
             what="project_map:jenkins01 registered")
    return gm, jk, co


def jenkins_build(jk, url):
    """The build as Jenkins' own API gives it, from its url."""
    path = urlsplit(url).path + "api/json?tree=number,timestamp,estimatedDuration,url"
    st, _, body = jk.http("GET", path)
    assert st == 200, (path, st, body)
    return json.loads(body)


def builds_on(doc, node):
    return [n for n in doc["nodes"] if n["name"] == node][0]["builds"]


def test_status_shows_running_builds_gearman_and_native(system):
    gm, jk, co = ready(system, agents=("n1",))
    wait_for(lambda: gm.status().get("build:pipe", (0, 0, 0))[2] == 1, timeout=15, what="n1 offers build:pipe")
    # 10 s builds: long enough to be seen running, short enough for the agent to follow them to their end.
    clients = [PerlClient(gm, "build:" + ODD, json.dumps({"DURATION": "10"}), unique="st-odd", timeout=60),
               PerlClient(gm, "build:pipe", "{}", unique="st-pipe", timeout=60)]
    try:
        jk.start_native("unit", node="n1", params={"DURATION": "10"})
        jk.start_native("team x/lint (b)", node="n2", params={"DURATION": "10"})
        doc = wait_for(lambda: (lambda d: d if len(builds_on(d, "n1")) == 3 and builds_on(d, "n2") else None)(
            status(gm, nonce="n-1")), timeout=20, what="three builds on n1 and one on n2")
        assert doc["master"] == "jenkins01" and doc["url"] == jk.url.rstrip("/")
        assert doc["nonce"] == "n-1" and doc["refresh_s"] == 1
        assert doc["jenkins_ok"] is True and doc["jenkins_error"] == ""
        assert 0 < doc["read_ms"] <= doc["issued_ms"]
        nodes = {n["name"]: n for n in doc["nodes"]}
        assert [n["name"] for n in doc["nodes"]] == ["built-in", "n1", "n2", "n3"]
        assert {k: v for k, v in nodes["n1"].items() if k != "builds"} == \
            {"name": "n1", "online": True, "executors": 3, "busy": 3}
        assert {k: v for k, v in nodes["n3"].items()} == \
            {"name": "n3", "online": False, "executors": 1, "busy": 0, "builds": []}
        by_job = {b["job"]: b for n in doc["nodes"] for b in n["builds"]}
        # Each build once: the Pipeline run under the node its node() holds, not again for its one-off executor.
        assert sorted(by_job) == sorted([ODD, "unit", "pipe", "team x/lint (b)"])
        assert sum(len(n["builds"]) for n in doc["nodes"]) == 4
        assert {b["job"]: b["gearman"] for b in builds_on(doc, "n1")} == {ODD: True, "pipe": True, "unit": False}
        assert builds_on(doc, "n2")[0]["gearman"] is False
        for b in by_job.values():
            real = jenkins_build(jk, b["url"])
            assert set(b) == {"job", "number", "url", "timestamp_ms", "estimated_ms", "gearman"}
            assert (b["number"], b["url"], b["timestamp_ms"], b["estimated_ms"]) == \
                (real["number"], real["url"], real["timestamp"], real["estimatedDuration"]), (b, real)
        ours = [b for b in jk.builds() if b["params"].get("GEARMAN_UNIQUE") in ("st-odd", "st-pipe")]
        assert sorted((b["job"], b["number"]) for b in ours) == sorted(
            (by_job[j]["job"], by_job[j]["number"]) for j in (ODD, "pipe"))
        for c in clients:
            assert final_event(c.wait(60))["event"] == "complete"
        done = status(gm)
        wait_for(lambda: not any(n["builds"] for n in status(gm)["nodes"]), timeout=10, what="no build left")
        assert done["read_ms"] >= doc["read_ms"]
    finally:
        for c in clients:
            c.kill()


def test_status_answer_costs_no_jenkins_request(system):
    """Answers come from the last refresh: 20 of them, no request to the master."""
    gm, jk, co = ready(system, refresh=3600)
    first = wait_for(lambda: (lambda d: d if d["read_ms"] else None)(status(gm)), what="a read")
    jk.reset_requests()
    docs = [status(gm, nonce="burst-%d" % i) for i in range(20)]
    assert [r["path"] for r in jk.requests()] == []
    assert [d["nonce"] for d in docs] == ["burst-%d" % i for i in range(20)]
    assert {d["read_ms"] for d in docs} == {first["read_ms"]}
    issued = [d["issued_ms"] for d in docs]
    assert issued == sorted(issued) and issued[0] >= first["issued_ms"]


def test_status_says_when_jenkins_fails_and_read_ms_stops(system):
    gm, jk, co = ready(system)
    wait_for(lambda: status(gm)["jenkins_ok"], what="a good read")
    jk.fail(503, 60)
    down = wait_for(lambda: (lambda d: d if not d["jenkins_ok"] else None)(status(gm)), timeout=10,
                    what="jenkins_ok false")
    assert "503" in down["jenkins_error"], down["jenkins_error"]
    assert down["nodes"] and down["read_ms"] > 0      # the last good read is still shown
    # Two more failed refreshes (said at the debug level): read_ms has not moved.
    seen = co.log().count("cannot refresh the map")
    wait_for(lambda: co.log().count("cannot refresh the map") >= seen + 2, timeout=10, what="two more failures")
    later = status(gm)
    assert later["read_ms"] == down["read_ms"] and later["jenkins_ok"] is False
    assert later["issued_ms"] > down["read_ms"]
    jk.fail(503, 0)
    up = wait_for(lambda: (lambda d: d if d["jenkins_ok"] else None)(status(gm)), timeout=10, what="jenkins_ok again")
    assert up["jenkins_error"] == "" and up["read_ms"] > down["read_ms"]
    # The master gone altogether: a connection error, said the same way.
    jk.stop()
    gone = wait_for(lambda: (lambda d: d if not d["jenkins_ok"] else None)(status(gm)), timeout=10,
                    what="jenkins_ok false, master stopped")
    assert gone["jenkins_error"] and gone["read_ms"] >= up["read_ms"]


def test_status_request_refuses_other_keys_and_types(system):
    gm, jk, co = ready(system)
    for arg, text in (('{"status":true,"node":"n1"}', 'no other key than "nonce" (got "node")'),
                      ('{"status":true,"version":"x"}', '(got "version")'),
                      ('{"status":1}', '"status" must be true'),
                      ('{"status":false}', '"status" must be true'),
                      ('{"status":true,"nonce":5}', '"nonce" must be a string'),
                      ('{"status":true,"nonce":"%s"}' % ("x" * 129), '"nonce" must be a string of at most 128')):
        ev = perl_call(gm, "project_map:jenkins01", arg)
        warnings = [e["data"] for e in ev if e["event"] == "warning"]
        assert final_event(ev)["event"] == "fail" and warnings, (arg, ev)
        assert text in warnings[0], (arg, warnings)
    # The map requests are as they were.
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", '{"node":"n1"}')
    assert rc == 0 and opened(out)["node"]["name"] == "n1", (rc, out, err)
    rc, out, err = gearman_cli(gm, "project_map:jenkins01", "{}")
    assert rc == 0 and "jobs" in opened(out) and "builds" not in out, (rc, out, err)
