"""Real clients, end to end: PHP's pecl gearman, a Zuul v2 launcher, nodepool's
demand parsing, Perl's Gearman::Client and the `gearman` CLI, against real
gearmand, the Jenkins test server, our coordinator and node agents.

The helpers in tests/clients/ are written from the clients' code and the
protocol description, not from ours: client.php (php-gearman addTask
callbacks), gearproto.py (a raw Gearman client shaped like `gear`),
zuul_v2.py (zuul/launcher/gearman.py of Zuul 2.6.0) and nodepool_demand.py
(nodepool v0's getNeededWorkers).
"""
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from conftest import PerlClient, final_event, gearman_cli, json_docs, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
sys.path.insert(0, CLIENTS)

import gearproto  # noqa: E402
import nodepool_demand  # noqa: E402
import zuul_v2  # noqa: E402

PHP_CLIENT = os.path.join(CLIENTS, "client.php")

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
RES = {"type": "string", "name": "RESULT", "default": "SUCCESS"}
ZUUL_UUID = {"type": "string", "name": "ZUUL_UUID"}
DATA_KEYS = {"name", "number", "manager", "worker", "url", "node_name", "node_labels"}


def job(name, label=None, params=(), **kw):
    j = {"name": name, "params": [NODE, DUR, RES] + list(params), "concurrent": True}
    if label:
        j["label"] = label
    j.update(kw)
    return j


def node(name, labels="", executors=1):
    return {"name": name, "labels": labels, "executors": executors, "mode": "NORMAL"}


def fixture(nodes, jobs):
    return {"version": "2.462.3", "quiet_period": 5,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] + nodes,
            "jobs": jobs}


def start(system, nodes, jobs, coordinator_extra=None):
    gm = system.gearmand()
    jk = system.jenkins(fixture(nodes, jobs))
    system.coordinator(gm, jk, extra=coordinator_extra)
    agents = {n["name"]: system.node(gm, jk, n["name"]) for n in nodes}
    return gm, jk, agents


def wait_registered(gm, name, executors, fn):
    """The node's one worker connection (id = node name) offers fn."""
    wait_for(lambda: fn in (gm.functions_of(name) or []), timeout=10, what="%s registers %s" % (name, fn))


def jenkins_json(jk, path):
    with urllib.request.urlopen(jk.url + path + "api/json", timeout=10) as r:
        return json.loads(r.read())


def types_of(doc):
    return {k: type(v).__name__ for k, v in doc.items()}


@pytest.fixture
def stop_after():
    """Clients a test started; killed or shut down before the system stops."""
    items = []
    yield items
    for it in reversed(items):
        try:
            it()
        except Exception:
            pass


# ---- PHP (pecl gearman over libgearman) ----

class PhpClient(PerlClient):
    """tests/clients/client.php: one job through GearmanClient::addTask + runTasks()."""

    def __init__(self, gm, function, arg, unique=None, timeout_ms=30000, priority="normal"):
        if isinstance(arg, bytes):
            arg = "hex:" + arg.hex()
        self.proc = subprocess.Popen(
            ["php", PHP_CLIENT, "127.0.0.1", str(gm.port), function, arg, unique or "",
             str(timeout_ms), priority],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)



def php_call(gm, function, arg, stop_after, **kw):
    c = PhpClient(gm, function, arg, **kw)
    stop_after.append(c.kill)
    ev = c.wait(60)
    assert c.proc.returncode in (0, 1), (c.proc.returncode, c.stderr)
    assert "PHP Warning" not in c.stderr and "Fatal" not in c.stderr, c.stderr
    return ev


def kinds(ev):
    return [e["event"] for e in ev if e["event"] in ("data", "status", "warning", "complete", "fail", "exception")]


def of(ev, kind):
    return [e for e in ev if e["event"] == kind]


def test_php_successful_build(system, stop_after):
    gm, jk, _ = start(system, [node("n1", "linux")], [job("unit", "linux")])
    wait_registered(gm, "n1", 1, "build:unit:linux")
    ev = php_call(gm, "build:unit", json.dumps({"DURATION": "2.5", "FLAG": True, "N": 3}),
                  stop_after, unique="php-1")
    k = kinds(ev)
    # WORK_DATA first, WORK_STATUS right after and every status_interval, WORK_COMPLETE last.
    assert k[0] == "data" and k[1] == "status" and k[-1] == "complete", ev
    assert k.count("data") == 1 and k.count("status") >= 2, k
    assert not {"fail", "warning", "exception"} & set(k), ev
    assert of(ev, "created")[0]["handle"].startswith("H:")
    end = of(ev, "end")[0]
    assert end["ok"] is True and end["rc"] == 0, end     # GEARMAN_SUCCESS
    data = json.loads(of(ev, "data")[0]["data"])
    assert set(data) == DATA_KEYS, data
    assert types_of(data) == {"name": "str", "number": "int", "manager": "str", "worker": "str",
                              "url": "str", "node_name": "str", "node_labels": "list"}
    assert data == {"name": "unit", "number": 1, "manager": "jenkins01", "worker": "n1_exec-0",
                    "url": jk.url + "job/unit/1/", "node_name": "n1", "node_labels": ["linux", "n1"]}
    # Elapsed ms, growing; the denominator -1 (no estimate for a first build) reaches PHP as
    # 2**32-1: libgearman parses WORK_STATUS numbers as uint32.
    st = of(ev, "status")
    assert all(isinstance(s["num"], int) and s["num"] >= 0 for s in st), st
    assert st[-1]["num"] >= 1000 and st[0]["num"] < st[-1]["num"], st
    assert {s["den"] for s in st} == {2 ** 32 - 1}, st
    done = json.loads(of(ev, "complete")[0]["data"])
    assert done == dict(data, result="SUCCESS")
    b = jk.builds()
    assert len(b) == 1 and b[0]["node"] == "n1" and b[0]["result"] == "SUCCESS"
    assert b[0]["params"]["DURATION"] == "2.5" and b[0]["params"]["NODE"] == "n1"
    # The unique the PHP client gave reached Jenkins with the build.
    trig = [r for r in jk.requests() if "buildWithParameters" in r["path"]]
    assert trig and all("php-1" in r["query"] + r["body"] for r in trig), trig


def test_php_refused_job(system, stop_after):
    gm, jk, _ = start(system, [node("n1")], [job("unit")])
    wait_registered(gm, "n1", 1, "build:unit")
    for arg, text in (('{"NODE":"elsewhere"}', "may not be set by a client"),
                      ('{"a":{"b":1}}', "must be a string, number or boolean"),
                      (b'{"a":"\xff"}', "not valid JSON")):
        ev = php_call(gm, "build:unit", arg, stop_after)
        # A WORK_WARNING naming the problem, then WORK_FAIL; never WORK_EXCEPTION (the
        # "exceptions" option php-gearman sets would show one).
        assert kinds(ev) == ["warning", "fail"], (arg, ev)
        assert text in of(ev, "warning")[0]["data"], (arg, ev)
        assert of(ev, "end")[0]["ok"] is True, ev
    assert jk.builds() == [] and jk.queue() == []
    assert not [r for r in jk.requests() if r["method"] == "POST"]
    # The worker goes on: the next valid job runs.
    ev = php_call(gm, "build:unit", "{}", stop_after)
    assert kinds(ev)[-1] == "complete" and json.loads(of(ev, "complete")[0]["data"])["result"] == "SUCCESS"


def test_php_failed_build_is_complete(system, stop_after):
    gm, jk, _ = start(system, [node("n1")], [job("unit")])
    wait_registered(gm, "n1", 1, "build:unit")
    ev = php_call(gm, "build:unit", json.dumps({"RESULT": "FAILURE"}), stop_after)
    k = kinds(ev)
    assert k[0] == "data" and k[-1] == "complete" and "fail" not in k and "warning" not in k, ev
    done = json.loads(of(ev, "complete")[0]["data"])
    assert done["result"] == "FAILURE" and done["number"] == 1
    assert [b["result"] for b in jk.builds()] == ["FAILURE"]


def test_php_perl_cli_see_the_same_documents(system, stop_after):
    gm, jk, _ = start(system, [node("n1", "linux")], [job("unit", "linux")])
    wait_registered(gm, "n1", 1, "build:unit:linux")
    arg = json.dumps({"DURATION": "0.2"})

    php = php_call(gm, "build:unit", arg, stop_after)
    php_docs = [json.loads(of(php, "data")[0]["data"]), json.loads(of(php, "complete")[0]["data"])]

    perl = PerlClient(gm, "build:unit", arg)
    stop_after.append(perl.kill)
    pev = perl.wait(60)
    assert final_event(pev)["event"] == "complete", pev
    perl_docs = [json.loads(of(pev, "data")[0]["data"]), json.loads(final_event(pev)["data"])]

    rc, out, err = gearman_cli(gm, "build:unit", arg)
    assert rc == 0, (out, err)
    cli_docs = json_docs(out)
    assert len(cli_docs) == 2, out

    for name, (data, done) in (("php", php_docs), ("perl", perl_docs), ("cli", cli_docs)):
        assert set(data) == DATA_KEYS, (name, data)
        assert done == dict(data, result="SUCCESS"), (name, data, done)
    # Same keys and same JSON types for every client; only the build number differs.
    assert types_of(php_docs[0]) == types_of(perl_docs[0]) == types_of(cli_docs[0])
    assert types_of(php_docs[1]) == types_of(perl_docs[1]) == types_of(cli_docs[1])
    assert [d[0]["number"] for d in (php_docs, perl_docs, cli_docs)] == [1, 2, 3]
    assert all(isinstance(l, str) for l in php_docs[0]["node_labels"])
    assert [b["result"] for b in jk.builds()] == ["SUCCESS"] * 3


# ---- Zuul v2 launcher ----

def test_raw_client_precedences_and_admin(system, stop_after):
    """gearproto itself, against gearmand alone: the three SUBMIT types land in the
    three priority queues, and `cancel job` answers on the job's connection."""
    gm = system.gearmand()
    c = gearproto.Client("127.0.0.1", gm.port)
    stop_after.append(c.shutdown)
    jobs = [c.submitJob(gearproto.Job("prio", "x", "u%d" % p), precedence=p)
            for p in (gearproto.PRECEDENCE_HIGH, gearproto.PRECEDENCE_NORMAL, gearproto.PRECEDENCE_LOW,
                      gearproto.PRECEDENCE_LOW)]
    assert len({j.handle for j in jobs[:3]}) == 3 and jobs[3].handle == jobs[2].handle   # same unique
    assert "prio\t1\t1\t1\t0" in gm.admin("prioritystatus")
    assert "prio\t3\t0\t0" in c.status_lines().splitlines()
    req = c.connection.sendAdminRequest(gearproto.CancelJobAdminRequest(jobs[0].handle))
    assert req.response.startswith("OK")
    req = c.connection.sendAdminRequest(gearproto.CancelJobAdminRequest(b"H:nosuch:1"))
    assert req.response.startswith("ERR")
    assert not c.poll_errors


def zuul(gm, stop_after):
    sched = zuul_v2.Scheduler()
    z = zuul_v2.Gearman("127.0.0.1", gm.port, sched)
    stop_after.append(z.stop)
    return z, sched


def launch(z, name, parameter_function=None, pipeline=None):
    item = zuul_v2.Item(zuul_v2.Change("openstack/nova"))
    return z.launch(zuul_v2.Job(name, parameter_function), item, pipeline or zuul_v2.Pipeline())


def on_node(label):
    def fn(item, job, params):
        params["ZUUL_NODE"] = label
    return fn


def on_dur(d, then=None):
    def fn(item, job, params):
        params["DURATION"] = d
        if then:
            then(item, job, params)
    return fn


def test_zuul_full_build(system, stop_after):
    gm, jk, _ = start(system, [node("n1", "linux")], [job("unit", "linux", [ZUUL_UUID])])
    wait_registered(gm, "n1", 1, "build:unit:linux")
    z, sched = zuul(gm, stop_after)
    build = launch(z, "unit", on_node("linux"), zuul_v2.Pipeline("gate", zuul_v2.PRECEDENCE_HIGH))
    gj = z.gearman_job(build)
    assert gj.name == "build:unit:linux" and gj.handle
    # unique = ZUUL_UUID, a uuid4 hex, also sent as a parameter
    assert gj.unique == build.uuid == build.parameters["ZUUL_UUID"] and len(build.uuid) == 32
    assert json.loads(gj.arguments)["ZUUL_UUID"] == build.uuid
    sched.wait("started", build)
    assert build.number == 1 and build.url == jk.url + "job/unit/1/"
    assert build._Gearman__gearman_manager == "jenkins01"
    sched.wait("completed", build)
    assert build.result == "SUCCESS" and not build.retry and not build.canceled
    assert build.node_name == "n1" and build.node_labels == ["linux", "n1"]
    assert build.uuid not in z.builds and not z.gearman.poll_errors
    # What the client received: complete JSON documents only, data before status.
    ev = [k for k, _ in gj.events]
    assert ev[:3] == ["created", "data", "status"] and ev[-1] == "complete", ev
    assert json.loads(gj.data[-1])["result"] == "SUCCESS"
    b = jk.builds()
    assert len(b) == 1 and b[0]["params"]["ZUUL_UUID"] == build.uuid and b[0]["result"] == "SUCCESS"
    trig = [r for r in jk.requests() if "buildWithParameters" in r["path"]]
    assert trig and all("GEARMAN_UNIQUE=" + build.uuid in r["query"] + r["body"] for r in trig), trig


def test_zuul_not_registered(system, stop_after):
    gm, jk, _ = start(system, [node("n1", "linux")],
                      [job("unit", "linux"), job("winonly", "windows")])
    wait_registered(gm, "n1", 1, "build:unit")
    z, sched = zuul(gm, stop_after)
    for name in ("winonly", "nosuch"):          # in Jenkins but no node offers it; not in Jenkins
        build = launch(z, name)
        assert build in sched.completed and build.result == "NOT_REGISTERED", name
        assert z.gearman_job(build).handle is None and build.uuid not in z.builds
    assert not any(fn.startswith(("build:winonly", "build:nosuch")) for fn in gm.status())
    # The registration check sees what the agents registered.
    build = launch(z, "unit")
    sched.wait("completed", build)
    assert build.result == "SUCCESS"
    assert [b["job"] for b in jk.builds()] == ["unit"]


def test_zuul_cancel_queued_and_running_builds(system, stop_after):
    gm, jk, agents = start(system, [node("n1")], [job("unit")])
    wait_registered(gm, "n1", 1, "build:unit")
    z, sched = zuul(gm, stop_after)
    run = launch(z, "unit", on_dur("10"))
    sched.wait("started", run)
    # The node's only executor is busy: the next build waits in gearmand.
    queued = launch(z, "unit", on_dur("10"))
    wait_for(lambda: gm.status()["build:unit"][:2] == (2, 1), what="second build queued")
    assert queued.number is None
    assert z.setBuildDescription(queued, "too early") is False     # manager not known yet

    # Not started: admin `cancel job <handle>`.
    z.cancel(queued)
    assert queued.uuid not in z.builds and z.meta_submitted == []
    # gearmand marks it ignored, as for a client that left, and throws it away the next
    # time a worker looks: the agent asks (PRE_SLEEP) every 500 ms while its node is full.
    handle = z.gearman_job(queued).handle.decode()
    wait_for(lambda: not [l for l in gm.admin("show jobs") if l.startswith(handle + "\t")
                          and not l.startswith(handle + "\t0\t1\t0")],
             what="the cancelled job ignored or gone")

    # Started: stop:$manager {"name", "number"}.
    z.cancel(run)
    stop = z.meta_submitted[0]
    assert stop.name == "stop:jenkins01" and json.loads(stop.arguments) == {"name": "unit", "number": 1}
    assert stop.done.wait(15) and stop.complete and not stop.failure, stop.events
    gj = z.gearman_job(run)
    assert gj.done.wait(20), gj.events
    # The client got WORK_COMPLETE with result ABORTED; Zuul, having cancelled, reports nothing.
    assert gj.complete and not gj.failure and json.loads(gj.data[-1])["result"] == "ABORTED"
    assert run.canceled and run not in sched.completed and run.uuid not in z.builds
    assert run.node_name == "n1"
    b = jk.builds()
    assert len(b) == 1 and b[0]["result"] == "ABORTED" and not b[0]["building"], b
    assert any(r["method"] == "POST" and r["path"].startswith("/job/unit/1/stop") for r in jk.requests())
    # The cancelled job never runs, now that the executor is free.
    wait_for(lambda: gm.status()["build:unit"][:2] == (0, 0), what="no job left in gearmand")
    assert len(jk.builds()) == 1 and not z.gearman.poll_errors


def test_zuul_set_description(system, stop_after):
    gm, jk, _ = start(system, [node("n1")], [job("unit")])
    wait_registered(gm, "n1", 1, "build:unit")
    z, sched = zuul(gm, stop_after)
    build = launch(z, "unit", on_dur("3"))
    sched.wait("started", build)
    desc = '<a href="https://review.example/1001">Change 1001,1</a> & more'
    assert z.setBuildDescription(build, desc) is True
    dj = z.meta_submitted[0]
    assert dj.name == "set_description:jenkins01"
    assert json.loads(dj.arguments) == {"name": "unit", "number": 1, "html_description": desc}
    assert dj.done.wait(15) and dj.complete and not dj.failure, dj.events
    assert dj.data == [("Description for Jenkins build 1 was updated to " + desc).encode()]
    assert jenkins_json(jk, "job/unit/1/")["description"] == desc
    sched.wait("completed", build)
    assert build.result == "SUCCESS"
    assert jk.builds()[0]["description"] == desc and not z.gearman.poll_errors


def test_zuul_single_use_node(system, stop_after):
    gm, jk, _ = start(system, [node("n1", "", 2)], [job("unit")])
    wait_registered(gm, "n1", 2, "build:unit")
    z, sched = zuul(gm, stop_after)
    build = launch(z, "unit", on_dur("1", zuul_v2.single_use_node))
    assert build.parameters["OFFLINE_NODE_WHEN_COMPLETE"] == "1"
    sched.wait("completed", build, timeout=30)
    assert build.result == "SUCCESS" and build.node_name == "n1"
    # By the time the client has the result, the node is temporarily offline in Jenkins,
    # with Gearman named as the cause.
    comp = jenkins_json(jk, "computer/n1/")
    assert comp["temporarilyOffline"] is True and "Gearman" in comp["offlineCauseReason"], comp
    # Its workers stay connected but offer nothing, so no further build lands on it.
    wait_for(lambda: gm.functions_of("n1") == [],
             what="n1's workers withdraw their functions")
    wait_for(lambda: gm.status()["build:unit"][2] == 0, what="no worker for build:unit")
    nxt = launch(z, "unit")          # gearmand still lists the function: Zuul submits, it waits
    assert z.gearman_job(nxt).handle and nxt.result is None
    wait_for(lambda: gm.status()["build:unit"][:2] == (1, 0), what="next build queued")
    assert len(jk.builds()) == 1


def test_zuul_refused_build_is_retried(system, stop_after):
    gm, jk, _ = start(system, [node("n1")], [job("unit")],
                      coordinator_extra={"coordinator": {"refresh": 3600}})
    wait_registered(gm, "n1", 1, "build:unit")
    jk.update_job("unit", disabled=True)       # the map still offers it
    z, sched = zuul(gm, stop_after)
    build = launch(z, "unit")
    gj = z.gearman_job(build)
    assert gj.done.wait(15), gj.events
    assert [k for k, _ in gj.events] == ["created", "warning", "fail"], gj.events
    wait_for(lambda: build in sched.completed or z.gearman.poll_errors, timeout=5,
             what="the launcher handled the failure")
    assert not z.gearman.poll_errors, z.gearman.poll_errors
    assert build.result is None and build.retry
    assert jk.builds() == []


# ---- nodepool v0 demand ----

def test_nodepool_demand_per_label(system, stop_after):
    gm, jk, agents = start(system, [node("l1", "linux"), node("g1", "gpu")],
                           [job("any", "linux || gpu"), job("gpuonly", "gpu")])
    wait_registered(gm, "l1", 1, "build:any:linux")
    wait_registered(gm, "g1", 1, "build:any:gpu")
    wait_registered(gm, "g1", 1, "build:gpuonly:gpu")
    assert gm.functions_of("l1") == ["build:any", "build:any:linux"]
    # Every executor busy with a build Jenkins started itself: the agents do not grab.
    jk.start_native("any", node="l1", params={"DURATION": "60"})
    jk.start_native("gpuonly", node="g1", params={"DURATION": "60"})
    wait_for(lambda: len([b for b in jk.builds() if b["building"]]) == 2, what="both nodes busy")

    client = gearproto.Client("127.0.0.1", gm.port)
    stop_after.append(client.shutdown)
    queue = {"build:any": 2, "build:any:linux": 1, "build:any:gpu": 1,
             "build:gpuonly": 2, "build:gpuonly:gpu": 1}
    jobs = []
    for fn, n in queue.items():
        for i in range(n):
            jobs.append(client.submitJob(gearproto.Job(fn, "{}", "np-%s-%d" % (fn, i))))
    assert all(j.handle for j in jobs)
    wait_for(lambda: all(gm.status().get(fn, (0,))[0] == n for fn, n in queue.items()),
             what="all jobs queued")
    for a in agents.values():
        a.wait_log("not taking jobs: no idle executor")

    demand = nodepool_demand.getNeededWorkers(client)
    # Plain build:any is charged to the first label gearmand lists as build:any:*.
    first = [fn for fn in gm.status() if fn.startswith("build:any:")][0].split(":")[-1]
    expect = {"linux": 1, "gpu": 1 + 2 + 1}
    expect[first] += 2
    assert demand == expect, (demand, gm.admin("status"))
    assert sum(demand.values()) == sum(queue.values())
    # Nothing was taken meanwhile: only the two native builds exist.
    assert all(v[1] == 0 for fn, v in gm.status().items() if fn.startswith("build:"))
    assert len(jk.builds()) == 2
