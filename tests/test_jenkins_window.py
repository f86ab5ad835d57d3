"""Issue 17, rows 2, 4, 5 and 6: the client against the parts of a real
master's life the test server used to skip. Each test asserts what the
Gearman clients received and what the Jenkins test server ran.

 - the start window of hudson.model.Executor.run: the queue item has left
   the queue (a LeftItem without executable) and the build does not exist
   yet; a lookup after a lost trigger answer must not trigger again then;
 - a job disabled while items of it are queued: one is cancelled, the
   others stay LeftItems without a build for five minutes;
 - a controller restart: builds in progress are loaded finished, ABORTED;
 - multi-node Node parameters whose concurrency does not match the job's:
   every build fails (TriggerNextBuildWrapper -> validateBuild).
"""
import json
import os
import subprocess
import time

from conftest import CLI, PerlClient, final_event, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
UNIQ = {"type": "string", "name": "GEARMAN_UNIQUE"}


def fixture(executors=1, concurrent=True, jobs=None):
    return {"version": "2.462.3",
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                      {"name": "n1", "labels": "", "executors": executors, "mode": "NORMAL"}],
            "jobs": jobs or [{"name": "unit", "params": [NODE, DUR, UNIQ], "concurrent": concurrent}]}


def start(system, fx, functions=("build:unit",)):
    gm = system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == list(functions), what="n1 registered")
    return gm, jk, agent


def cli(gm, *args, timeout=60):
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run([CLI] + list(args) + ["-s", gm.server], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def test_start_window_lost_trigger_answers_make_no_duplicate(system):
    """Row 2. With a 0.6 s start window, every lookup after a lost trigger
    answer falls into it: the item is gone from the queue, no build lists it.
    The old client took that for "never queued" and triggered again."""
    gm, jk, agent = start(system, fixture())
    jk.start_window(0.6)
    for i in range(3):
        jk.drop(1, after=True, method="POST")       # Jenkins queues it; the answer is lost
        ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "0.2"}), unique="window-%d" % i)
        end = final_event(ev)
        assert end["event"] == "complete", ev
        assert json.loads(end["data"])["number"] == i + 1, ev
    builds = jk.builds()
    assert sorted(b["params"]["GEARMAN_UNIQUE"] for b in builds) == ["window-0", "window-1", "window-2"], builds
    assert "are starting a build that may be it; looking again" in agent.log()


def test_disabled_job_with_queued_items_refused_promptly(system):
    """Row 4. Disabling a job cancels one queued item (AbstractProject.makeDisabled
    -> Queue.cancel(Task)); the other reaches an executor, createExecutable returns
    null and it stays a LeftItem without a build. Its Gearman job is refused in
    seconds, not after the five minutes Jenkins keeps the LeftItem."""
    gm, jk, agent = start(system, fixture(executors=3, concurrent=False))
    first = PerlClient(gm, "build:unit", json.dumps({"DURATION": "3"}), unique="dis-0", timeout=60)
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="first build running")
    others = [PerlClient(gm, "build:unit", json.dumps({"DURATION": "0.2"}), unique="dis-%d" % i,
                         timeout=60) for i in (1, 2)]
    # Both wait in the queue behind the running build (the job is not concurrent).
    wait_for(lambda: len(jk.queue()) == 2, what="two items queued")
    jk.update_job("unit", disabled=True)
    t0 = time.time()
    ends = [final_event(c.wait(60)) for c in others]
    took = time.time() - t0
    assert final_event(first.wait(60))["event"] == "complete"
    assert [e["event"] for e in ends] == ["fail", "fail"], ends
    warnings = [e["data"] for c in others for e in c.events if e["event"] == "warning"]
    assert any("is disabled" in w and "made no build of it" in w for w in warnings), warnings
    assert any("cancelled before it started" in w for w in warnings), warnings
    assert took < 20, took                           # not the LeftItem's five minutes
    assert len(jk.builds()) == 1, jk.builds()


def test_restart_ends_build_in_progress_with_its_result(system):
    """Row 5. A controller restart loads a freestyle build in progress as
    finished, ABORTED (Run.reload). The client reports that result."""
    gm, jk, agent = start(system, fixture())
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "60"}), unique="restarted", timeout=60)
    try:
        wait_for(lambda: any(b["building"] for b in jk.builds()), what="build running")
        t0 = time.time()
        jk.restart()
        end = final_event(c.wait(60))
    finally:
        c.kill()
    assert end["event"] == "complete", c.events
    doc = json.loads(end["data"])
    assert doc["result"] == "ABORTED" and doc["number"] == 1, doc
    assert time.time() - t0 < 30
    assert [b["result"] for b in jk.builds()] == ["ABORTED"]


def test_restart_in_the_start_window_refuses_promptly(system):
    """Row 5 with row 2: a restart while the item is in Executor.run's start
    window drops it (it had left the saved queue, its build was never made):
    the queue item answers 404 and no build of it ever comes. The job is
    refused at once with the reason, not after start_timeout; a 404 while
    the node still starts a build is waited out (test_faults'
    test_queue_item_forgotten_by_jenkins)."""
    gm, jk, agent = start(system, fixture())
    jk.start_window(5)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "0.2"}), unique="dropped", timeout=60)
    try:
        def starting():
            st, _, body = jk.http("GET", "/computer/n1/api/json?tree=executors%5Bidle,currentExecutable%5D")
            ex = json.loads(body)["executors"] if st == 200 else []
            return any(not e["idle"] and e["currentExecutable"] is None for e in ex)
        wait_for(starting, what="the item in its start window")
        t0 = time.time()
        jk.restart()
        ev = c.wait(60)
    finally:
        c.kill()
    end = final_event(ev)
    assert end["event"] == "fail", ev
    warn = [e["data"] for e in ev if e["event"] == "warning"]
    assert warn and "no longer knows queue item" in warn[0] and "no build of it exists" in warn[0], ev
    assert time.time() - t0 < 15
    assert jk.builds() == []


def test_multi_node_param_with_wrong_concurrency_not_dispatchable(system):
    """Row 6. A Node parameter that allows several nodes puts a
    TriggerNextBuildWrapper on every build; validateBuild fails it when the
    job's concurrency does not match. Such jobs are not offered, and map says why."""
    def job(name, trigger, concurrent):
        return {"name": name, "concurrent": concurrent, "params": [
            dict(NODE, trigger_if_result=trigger), DUR]}
    fx = fixture(jobs=[job("seq-conc", "allCases", True),          # sequential, job concurrent: fails
                       job("conc-seq", "allowMultiSelectionForConcurrentBuilds", False),  # fails
                       job("seq-ok", "success", False),
                       job("conc-ok", "allowMultiSelectionForConcurrentBuilds", True),
                       job("single", "multiSelectionDisallowed", True)])
    gm, jk, agent = start(system, fx, functions=("build:conc-ok", "build:seq-ok", "build:single"))
    rc, out, err = cli(gm, "map", "--master", "jenkins01", "--json")
    assert rc == 0, err
    undisp = {u["job"]: u["reason"] for u in json.loads(out)["undispatchable"]}
    assert "several nodes built one after another" in undisp["seq-conc"], undisp
    assert "several nodes with concurrent builds" in undisp["conc-seq"], undisp
    assert "NodeParameterDefinition.validateBuild" in undisp["conc-seq"]
    assert not {"seq-ok", "conc-ok", "single"} & set(undisp), undisp
    rc, out, err = cli(gm, "map", "--master", "jenkins01")
    assert rc == 0 and "seq-conc" in out and "validateBuild" in out, out
    # The matching ones build.
    for name in ("seq-ok", "conc-ok"):
        end = final_event(perl_call(gm, "build:" + name, "{}"))
        assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS", end
