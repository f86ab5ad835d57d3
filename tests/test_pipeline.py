"""Pipeline jobs dispatched (issue 17): real gearmand, the Jenkins test
server's Pipeline runs (a flyweight WorkflowRun, node() through a placeholder
task that takes a regular executor), our coordinator and node agent, and
independent clients (Perl's Gearman::Client, Debian's `gearman` CLI)."""
import json
import subprocess

from conftest import CLI, PerlClient, final_event, gearman_cli, json_docs, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
LABEL = {"type": "label", "name": "LABEL"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}


def pipeline(name, script, params=(NODE,)):
    return {"name": name, "type": "pipeline", "params": list(params), "script": script}


def fixture(executors, jobs):
    return {"version": "2.462.3", "quiet_period": 0,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                      {"name": "n1", "labels": "linux", "executors": executors, "mode": "NORMAL"}],
            "jobs": jobs}


def start(system, fx):
    gm = system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    system.node(gm, jk, "n1")
    return gm, jk


def registered(gm, fn):
    wait_for(lambda: fn in (gm.functions_of("n1") or []), timeout=15, what="n1 registers " + fn)


def max_overlap(intervals):
    """The most intervals (start, end) open at one time."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = cur = 0
    for _, step in events:
        cur += step
        most = max(most, cur)
    return most


def busy_on_n1(jk):
    """Every build that held (or, for a Pipeline run, was bound to) n1, start to end."""
    return [(b["start"], b["end"]) for b in jk.builds() if b["node"] == "n1"]


def test_pipeline_run_counts_against_executors_while_its_placeholder_waits(system):
    """2 executors, a native build on one: a Pipeline run of ours still
    before its node() holds the other (Jenkins shows it idle), so a second
    Pipeline job stays in gearmand, not as a placeholder in Jenkins' queue."""
    script = "sleep 2; node(params.NODE) { sleep 2 }"
    fx = fixture(2, [pipeline("pipe", script),
                     {"name": "native", "params": [NODE, DUR], "concurrent": True}])
    gm, jk = start(system, fx)
    registered(gm, "build:pipe")
    first = PerlClient(gm, "build:pipe", "{}", timeout=60)
    wait_for(lambda: any(b["job"] == "pipe" and b["building"] for b in jk.builds()),
             what="the first run started")
    jk.start_native("native", node="n1", params={"DURATION": "8"})
    wait_for(lambda: any(b["job"] == "native" and b["building"] for b in jk.builds()),
             what="the native build on n1")
    second = PerlClient(gm, "build:pipe", "{}", timeout=60)
    wait_for(lambda: gm.status().get("build:pipe", (0,))[0] == 2, what="both submitted")
    # The first run's placeholder takes the free executor; the second job is still queued.
    wait_for(lambda: any(b["job"] == "pipe" and b["node_blocks"] for b in jk.builds()),
             what="the first run inside node()")
    assert gm.status()["build:pipe"][:2] == (2, 1)
    assert [b["number"] for b in jk.builds() if b["job"] == "pipe"] == [1]
    assert jk.queue() == []
    for c in (first, second):
        ev = c.wait(60)
        assert final_event(ev)["event"] == "complete"
        assert json.loads(final_event(ev)["data"])["result"] == "SUCCESS"
    # Never more builds bound to n1 than executors, the placeholders included.
    assert max_overlap(busy_on_n1(jk)) <= 2, jk.builds()
    waits = [b["node_blocks"][0][2] - b["start"] for b in jk.builds() if b["job"] == "pipe"]
    assert all(w < 2.6 for w in waits), waits  # no placeholder waited for an executor


def test_one_executor_three_pipelines_one_at_a_time(system):
    fx = fixture(1, [pipeline("pipe", "node(params.NODE) { sleep 1 }; sleep 0.5")])
    gm, jk = start(system, fx)
    registered(gm, "build:pipe")
    clients = [PerlClient(gm, "build:pipe", json.dumps({"i": str(i)}), timeout=60) for i in range(3)]
    wait_for(lambda: gm.status().get("build:pipe") == (3, 1, 1), what="3 submitted, 1 running")
    # The agent took one job; its run reaches Jenkins a moment later.
    wait_for(lambda: jk.builds(), what="the first run")
    assert len(jk.builds()) == 1 and jk.queue() == []
    assert gm.status().get("build:pipe") == (3, 1, 1)
    for c in clients:
        ev = c.wait(60)
        kinds = [e["event"] for e in ev if e["event"] in ("data", "complete")]
        assert kinds == ["data", "complete"], ev
        data = json.loads([e for e in ev if e["event"] == "data"][0]["data"])
        done = json.loads(final_event(ev)["data"])
        assert done == dict(data, result="SUCCESS") and data["node_name"] == "n1"
    assert len(jk.builds()) == 3
    assert max_overlap(busy_on_n1(jk)) == 1, jk.builds()


def test_pipeline_resumed_after_a_restart_reports_its_own_result(system):
    """A controller restart while a Pipeline run is inside node(): Jenkins
    resumes it (AfterRestartTask, its placeholder queued again for n1), so
    the node's executor shows idle for a while. The job is reported with the
    run's real result, not ABORTED, and the agent does not take the waiting
    job meanwhile: one executor, one run at a time."""
    fx = fixture(1, [pipeline("pipe", "node(params.NODE) { sleep 3 }")])
    gm, jk = start(system, fx)
    registered(gm, "build:pipe")
    clients = [PerlClient(gm, "build:pipe", json.dumps({"i": str(i)}), timeout=90) for i in range(2)]
    wait_for(lambda: any(b["node_blocks"] for b in jk.builds()), what="the first run inside node()")
    jk.restart()
    for c in clients:
        ev = c.wait(90)
        end = final_event(ev)
        assert end["event"] == "complete", ev
        assert json.loads(end["data"])["result"] == "SUCCESS", ev
    builds = sorted(jk.builds(), key=lambda b: b["number"])
    assert [(b["number"], b["result"]) for b in builds] == [(1, "SUCCESS"), (2, "SUCCESS")]
    assert builds[1]["start"] >= builds[0]["end"], builds
    assert max_overlap(busy_on_n1(jk)) == 1, builds


def test_pipeline_results_reported(system):
    fx = fixture(1, [pipeline("unstable", "node(params.NODE) { currentBuild.result = 'UNSTABLE' }"),
                     pipeline("failing", "node(params.NODE) { sleep 0.2; error 'boom' }")])
    gm, jk = start(system, fx)
    registered(gm, "build:failing")
    registered(gm, "build:unstable")
    rc, out, err = gearman_cli(gm, "build:unstable", "{}")
    docs = json_docs(out)
    assert len(docs) == 2 and docs[1] == dict(docs[0], result="UNSTABLE"), (out, err)
    ev = perl_call(gm, "build:failing", "{}")
    assert final_event(ev)["event"] == "complete"
    assert json.loads(final_event(ev)["data"])["result"] == "FAILURE"
    assert sorted(b["result"] for b in jk.builds()) == ["FAILURE", "UNSTABLE"]


def test_stop_aborts_a_running_pipeline(system):
    fx = fixture(1, [pipeline("slow", "node(params.NODE) { sleep 60 }")])
    gm, jk = start(system, fx)
    registered(gm, "build:slow")
    c = PerlClient(gm, "build:slow", "{}", timeout=60)
    wait_for(lambda: any(b["node_blocks"] for b in jk.builds()), what="the run inside node()")
    ev = perl_call(gm, "stop:jenkins01", json.dumps({"name": "slow", "number": 1}))
    assert final_event(ev)["event"] == "complete", ev
    end = final_event(c.wait(60))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "ABORTED"
    b = jk.builds()[0]
    assert b["result"] == "ABORTED" and b["node_blocks"][0][3] is not None


def test_map_offers_pipelines_with_a_node_parameter(system):
    fx = fixture(1, [pipeline("pinned", "node(params.NODE) { sleep 1 }"),
                     pipeline("labelled", "node(params.LABEL) { sleep 1 }", params=(LABEL,)),
                     pipeline("bare", "node { sleep 1 }", params=())])
    gm, jk = start(system, fx)
    registered(gm, "build:pinned")
    out = subprocess.run([CLI, "map", "--master", "jenkins01", "--json", "-s", gm.server],
                         capture_output=True, text=True, timeout=30)
    m = json.loads(out.stdout)
    jobs = {j["job"]: j for j in m["jobs"]}
    assert jobs["pinned"]["pipeline"] is True and jobs["pinned"]["pin"] == "NODE"
    why = {u["job"]: u["reason"] for u in m["undispatchable"]}
    assert "Pipeline job without a Node parameter" in why["labelled"], why
    assert "no Node or Label parameter" in why["bare"], why
    assert "build:labelled" not in (gm.functions_of("n1") or [])
    out = subprocess.run([CLI, "map", "--master", "jenkins01", "-s", gm.server],
                         capture_output=True, text=True, timeout=30)
    assert "Pipeline jobs" in out.stdout and "node(params.NODE)" in out.stdout, out.stdout


def test_pipeline_start_window_lost_trigger_answers_make_no_duplicate(system):
    """A Pipeline run's OneOffExecutor goes through Executor.run's start
    window too (Computer.startFlyWeightTask): the item has left the queue, no
    build lists it yet, and only the node's oneOffExecutors show a busy
    executor without currentExecutable. A lookup after a lost trigger answer
    that read the regular executors alone took that for "never queued" and
    triggered again."""
    uniq = {"type": "string", "name": "GEARMAN_UNIQUE"}
    gm = system.gearmand()
    jk = system.jenkins(fixture(1, [pipeline("pipe", "node(params.NODE) { sleep 0.2 }", (NODE, uniq))]))
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    registered(gm, "build:pipe")
    jk.start_window(0.6)
    for i in range(3):
        jk.drop(1, after=True, method="POST")       # Jenkins queues it; the answer is lost
        ev = perl_call(gm, "build:pipe", "{}", unique="pwin-%d" % i)
        end = final_event(ev)
        assert end["event"] == "complete", ev
        assert json.loads(end["data"])["number"] == i + 1, ev
    assert sorted(b["params"]["GEARMAN_UNIQUE"] for b in jk.builds()) == ["pwin-0", "pwin-1", "pwin-2"]
    assert "are starting a build that may be it; looking again" in agent.log()
