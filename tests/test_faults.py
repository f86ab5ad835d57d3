"""Faults survived (issue: reliability and security): agents killed and
restarted, signals, gearmand restarts, several gearmand servers, the
coordinator away, secrets kept out of logs. Each test asserts what the
clients received and what the Jenkins test server ran: one build per job,
one final answer per submission."""
import json
import os
import signal
import time

from conftest import Gearmand, PerlClient, build_records, final_event, perl_call, raw_take_job, unwrap_map, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}


def fixture(nodes, users=None):
    fx = {"version": "2.462.3",
          "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] + nodes,
          "jobs": [{"name": "unit", "params": [NODE, DUR], "concurrent": True}]}
    if users:
        fx["users"] = users
    return fx


ONE = [{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}]


def start(system, nodes=ONE, gm=None):
    gm = gm or system.gearmand()
    jk = system.jenkins(fixture(nodes))
    co = system.coordinator(gm, jk)
    agents = {n["name"]: system.node(gm, jk, n["name"]) for n in nodes}
    for n in nodes:
        wait_for(lambda: (gm.functions_of(n["name"]) or []) == ["build:unit"], what="%s registered" % n["name"])
    return gm, jk, co, agents


def data_docs(ev):
    return [json.loads(e["data"]) for e in ev if e["event"] in ("data", "complete")]


def test_sigkill_mid_build_reattaches_after_restart(system):
    gm, jk, co, agents = start(system)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "4"}), unique="zuul-uuid-1")
    # Killed once the agent knows its build (the record is written when it logs the start).
    agents["n1"].wait_log("started for build:unit")
    agents["n1"].stop(signal.SIGKILL)
    # gearmand re-queued the job; the build goes on in Jenkins.
    wait_for(lambda: gm.status()["build:unit"][:2] == (1, 0), what="job re-queued")
    agents["n1"].restart()
    ev = c.wait(60)
    end = final_event(ev)
    assert end["event"] == "complete", ev
    docs = data_docs(ev)
    assert {d["number"] for d in docs} == {1} and docs[-1]["result"] == "SUCCESS"
    assert len(jk.builds()) == 1, jk.builds()          # re-attached, not built twice
    assert "came back: re-attaching" in agents["n1"].log()
    # Its record was there for the restart, and is gone once the result was delivered.
    assert "(unique zuul-uuid-1) is re-attached when its job comes back" in agents["n1"].log()
    wait_for(lambda: build_records(os.path.join(system.tmp, "state-n1")) == {}, what="record removed")


def test_second_agent_on_the_same_state_dir_is_refused(system):
    gm, jk, co, agents = start(system)
    # Two agents appending to one journal would lose each other's records.
    other = system.node(gm, jk, "n1-again", extra={"node": {"state_dir": os.path.join(system.tmp, "state-n1")}})
    assert other.proc.wait(10) == 1
    assert "state_dir %s: in use by another agent" % os.path.join(system.tmp, "state-n1") in other.log()
    # The first one keeps its directory and runs builds.
    end = final_event(PerlClient(gm, "build:unit", "{}", unique="u-after").wait(30))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    assert len(jk.builds()) == 1


def test_sigterm_finishes_running_builds(system):
    gm, jk, co, agents = start(system)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "2"}), unique="u-term")
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="build running")
    agents["n1"].signal(signal.SIGTERM)
    end = final_event(c.wait(30))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    assert agents["n1"].proc.wait(15) == 0
    # Stopped means: no new job taken; a new one waits in gearmand with no worker.
    c2 = PerlClient(gm, "build:unit", "{}", timeout=30)
    wait_for(lambda: gm.status().get("build:unit") == (1, 0, 0), what="queued, no worker")
    c2.kill()
    assert len(jk.builds()) == 1


def test_second_sigterm_leaves_build_and_restart_reattaches(system):
    gm, jk, co, agents = start(system)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "5"}), unique="u-twice")
    agents["n1"].wait_log("started for build:unit")
    agents["n1"].signal(signal.SIGTERM)
    agents["n1"].wait_log("signal again to leave at once")
    agents["n1"].signal(signal.SIGTERM)
    assert agents["n1"].proc.wait(10) == 0
    assert jk.builds()[0]["building"]                  # left running in Jenkins
    agents["n1"].restart()
    end = final_event(c.wait(60))
    assert end["event"] == "complete" and json.loads(end["data"])["number"] == 1
    assert len(jk.builds()) == 1


def test_sighup_reload(system):
    gm, jk, co, agents = start(system)
    a = agents["n1"]
    good = open(a.path).read()
    with open(a.path, "w") as f:
        f.write(good + "\n[bogus]\nkey = 1\n")
    a.signal(signal.SIGHUP)
    a.wait_log("keeping the running configuration")
    assert a.alive()
    with open(a.path, "w") as f:
        f.write(good.replace("level = debug", "level = info"))
    a.signal(signal.SIGHUP)
    a.wait_log("log level, status_interval and refresh applied")
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"


def test_gearmand_restart_reregisters(system):
    gm, jk, co, agents = start(system, nodes=[{"name": "n1", "labels": "", "executors": 4, "mode": "NORMAL"}])
    gm.kill()
    gm2 = Gearmand(system.tmp, port=gm.port).start()
    system.items.append(gm2)
    # The node's connection and the manager are back, with their ids, within a few seconds.
    wait_for(lambda: gm2.functions_of("n1") == ["build:unit"] and
             gm2.functions_of("jenkins01_manager") is not None, timeout=10, what="re-registered")
    assert final_event(perl_call(gm2, "build:unit", "{}"))["event"] == "complete"


def test_one_of_two_gearmand_down(system):
    g1, g2 = system.gearmand(), system.gearmand()
    jk = system.jenkins(fixture(ONE))
    system.coordinator([g1, g2], jk)
    system.node([g1, g2], jk, "n1")
    for g in (g1, g2):
        wait_for(lambda: g.functions_of("n1") == ["build:unit"], what="registered on both servers")
    assert final_event(perl_call(g1, "build:unit", "{}"))["event"] == "complete"
    g1.kill()
    assert final_event(perl_call(g2, "build:unit", "{}"))["event"] == "complete"
    assert len(jk.builds()) == 2


def test_coordinator_away_agents_keep_serving(system):
    gm, jk, co, agents = start(system)
    co.stop()
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"
    agents["n1"].wait_log("keeping the current map", timeout=10)
    jk.add_job({"name": "later", "params": [NODE], "concurrent": True})
    co.restart()
    wait_for(lambda: gm.functions_of("n1") == ["build:later", "build:unit"], timeout=15,
             what="change picked up after the coordinator returned")


def test_two_coordinators_agree(system):
    gm, jk, co, agents = start(system)
    co2 = system.coordinator(gm, jk, name="jenkins01")
    wait_for(lambda: [cid for cid, f in gm.workers()].count("jenkins01_manager") == 2, what="two managers")
    co2.wait_log("map ")
    answers = {unwrap_map(final_event(perl_call(gm, "project_map:jenkins01", "{}"))["data"])["version"]
               for _ in range(8)}
    assert len(answers) == 1


def test_secrets_never_logged(system):
    gm = system.gearmand()
    jk = system.jenkins(fixture(ONE, users={"gearman": {"token": "s3cr3t-tok3n", "password": "pw-not-used"}}))
    tokfile = os.path.join(system.tmp, "token")
    with open(tokfile, "w") as f:
        f.write("s3cr3t-tok3n\n")
    os.chmod(tokfile, 0o600)
    auth = {"jenkins": {"user": "gearman", "token_file": tokfile}}
    co = system.coordinator(gm, jk, extra=auth)
    agent = system.node(gm, jk, "n1", extra=auth)
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered with a token")
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"
    # A wrong token: a clear 401 in the log, still no secret.
    bad = system.node(gm, jk, "n2", extra={"jenkins": {"user": "gearman", "token": "wr0ng-t0ken"}})
    co.stop()
    for d in (co, agent, bad):
        assert "s3cr3t-tok3n" not in d.log() and "wr0ng-t0ken" not in d.log()
    # A token file others can read is refused.
    os.chmod(tokfile, 0o644)
    d = system.node(gm, jk, "n3", extra=auth)
    assert d.proc.wait(10) == 1
    assert "accessible by group or others" in d.log()


def test_lost_trigger_answer_makes_no_second_build(system):
    gm = system.gearmand()
    fx = fixture(ONE)
    fx["jobs"][0]["params"].append({"type": "string", "name": "GEARMAN_UNIQUE"})
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    # Jenkins queues the build, but the answer to the trigger never arrives.
    jk.drop(1, after=True, method="POST")
    ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "0.5"}), unique="lost-answer-1")
    end = final_event(ev)
    assert end["event"] == "complete" and json.loads(end["data"])["number"] == 1, ev
    assert "found the build of unique lost-answer-1" in agent.log()
    assert len(jk.builds()) == 1, jk.builds()
    assert jk.builds()[0]["params"]["GEARMAN_UNIQUE"] == "lost-answer-1"
    # A client may not set it.
    ev = perl_call(gm, "build:unit", json.dumps({"GEARMAN_UNIQUE": "forged"}))
    assert final_event(ev)["event"] == "fail"


def test_job_requeued_to_another_agent_finds_its_build(system):
    gm = system.gearmand()
    two = ONE + [{"name": "n2", "labels": "", "executors": 1, "mode": "NORMAL"}]
    fx = fixture(two)
    fx["jobs"][0]["params"].append({"type": "string", "name": "GEARMAN_UNIQUE"})
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    n1, n2 = system.node(gm, jk, "n1"), system.node(gm, jk, "n2")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"] and gm.functions_of("n2") == ["build:unit"],
             what="both registered")
    # One build each first, so both ask gearmand on their kept admin connections.
    warm = [PerlClient(gm, "build:unit", json.dumps({"DURATION": "1"}), unique="warm-%d" % i) for i in (1, 2)]
    assert all(final_event(w.wait(30))["event"] == "complete" for w in warm)
    assert sorted(b["params"]["NODE"] for b in jk.builds()) == ["n1", "n2"]
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "3"}), unique="moved-1")
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="build running")
    on = [b["params"]["NODE"] for b in jk.builds() if b["building"]]
    runner, other = (n1, n2) if on == ["n1"] else (n2, n1)
    # The agent running it dies for good: gearmand hands the job to the other one.
    runner.stop(signal.SIGKILL)
    end = final_event(c.wait(60))
    assert end["event"] == "complete", end
    doc = json.loads(end["data"])
    running = [b for b in jk.builds() if b["params"].get("GEARMAN_UNIQUE") == "moved-1"]
    assert len(running) == 1, jk.builds()                      # found, not built again
    assert doc["number"] == running[0]["number"] and doc["result"] == "SUCCESS"
    assert "(unique moved-1) was re-queued: re-attaching to its build" in other.log()


def grab_and_drop(gm, function, timeout=10.0):
    """A raw Gearman worker that takes one job and dies before doing anything with
    it: gearmand re-queues the job (retries 1) for the next worker."""
    return raw_take_job(gm, function, timeout=timeout)[1]


def test_requeued_lookup_is_bounded(system):
    """A re-queued job this agent has no record of is looked for in the queue and the
    job's newest builds, a few small pages: never allBuilds, never the whole history."""
    gm = system.gearmand()
    nodes = ONE + [{"name": "old", "labels": "", "executors": 8, "mode": "NORMAL"}]
    fx = fixture(nodes)
    fx["quiet_period"] = 0
    fx["jobs"][0]["params"].append({"type": "string", "name": "GEARMAN_UNIQUE"})
    jk = system.jenkins(fx)
    for i in range(300):                      # a history longer than "builds" exports
        jk.start_native("unit", node="old", params={"GEARMAN_UNIQUE": "old-%d" % i})
    jk.wait_for(lambda: len(jk.builds()) == 300 and not jk.queue(), timeout=60, interval=0.2,
                what="300 builds")
    c = PerlClient(gm, "build:unit", "{}", unique="never-built")
    wait_for(lambda: gm.status().get("build:unit", (0,))[0] == 1, what="job queued")
    assert grab_and_drop(gm, "build:unit") == "never-built"
    jk.reset_requests()
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    end = final_event(c.wait(60))
    assert end["event"] == "complete", end
    mine = [b for b in jk.builds() if b["params"].get("GEARMAN_UNIQUE") == "never-built"]
    assert len(mine) == 1 and json.loads(end["data"])["number"] == mine[0]["number"] == 301
    pages = [r for r in jk.requests() if r["path"] == "/job/unit/api/json" and "uilds" in r["query"]]
    assert pages, "no lookup seen:\n" + agent.log()[-3000:]
    assert not [r for r in pages if "allBuilds" in r["query"]], [r["query"] for r in pages]
    assert len(pages) <= 4, [r["query"] for r in pages]        # 25 a page, 100 at most
    assert all(r["query"].endswith("%7D") for r in pages)          # every one a range


def test_requeued_deep_build_found_through_the_agent_that_started_it(system):
    """A killed agent's job goes to the end of gearmand's queue; when another agent
    takes it, its build may be older than the newest 100 a lookup reads. The
    restarted agent advertises the build it has a record of; the taker re-attaches."""
    gm = system.gearmand()
    nodes = ONE + [{"name": "n2", "labels": "", "executors": 1, "mode": "NORMAL"},
                   {"name": "old", "labels": "", "executors": 8, "mode": "NORMAL"}]
    fx = fixture(nodes)
    fx["quiet_period"] = 0
    fx["jobs"][0]["params"].append({"type": "string", "name": "GEARMAN_UNIQUE"})
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    n1 = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 registered")
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "25"}), unique="deep-1", timeout=90)
    n1.wait_log("started for build:unit")
    n1.stop(signal.SIGKILL)
    # Restarted, n1 has the record but no idle executor (its build runs): it advertises.
    n1.restart()
    n1.wait_log("advertising the build of a job this agent no longer holds", timeout=15)
    for i in range(120):                      # the build falls out of the newest 100
        jk.start_native("unit", node="old", params={"GEARMAN_UNIQUE": "filler-%d" % i})
    jk.wait_for(lambda: len(jk.builds()) == 121 and not jk.queue(), timeout=60, interval=0.2,
                what="121 builds")
    n2 = system.node(gm, jk, "n2")
    end = final_event(c.wait(90))
    assert end["event"] == "complete", end
    mine = [b for b in jk.builds() if b["params"].get("GEARMAN_UNIQUE") == "deep-1"]
    assert len(mine) == 1, mine                                # found, not built again
    assert json.loads(end["data"])["number"] == 1
    log = n1.log() + n2.log()
    assert "(unique deep-1) was re-queued: re-attaching to its build" in log
    assert "the build of unique deep-1 is advertised by the agent that started it" in log


def test_sigterm_while_the_master_is_slow(system):
    """A trigger hanging on a slow master does not hold up a stop: the request is
    abandoned, the job handed back; after a restart it re-attaches to the build
    that trigger made, and no second one is made."""
    gm = system.gearmand()
    fx = fixture(ONE)
    fx["jobs"][0]["params"].append({"type": "string", "name": "GEARMAN_UNIQUE"})
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    jk.latency(8000)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "0.5"}), unique="slow-1", timeout=90)
    # Three requests before the trigger: the node's room, quiet-down, a crumb.
    wait_for(lambda: any("buildWithParameters" in r["path"] for r in jk.requests()), timeout=40,
             what="trigger sent")
    t = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.proc.wait(5) == 0
    assert time.monotonic() - t < 4, "stopped only after %.1fs" % (time.monotonic() - t)
    agent.logf.close()
    assert "handed back to gearmand before its build started" in agent.log()
    # The abandoned trigger still reaches Jenkins (it was slow, not lost).
    jk.wait_for(lambda: jk.queue() or jk.builds(), timeout=20, what="the slow trigger's item")
    jk.latency(0)
    agent.restart()
    end = final_event(c.wait(60))
    assert end["event"] == "complete", end
    assert len(jk.builds()) == 1, jk.builds()
    assert jk.builds()[0]["params"]["GEARMAN_UNIQUE"] == "slow-1"
    assert json.loads(end["data"])["number"] == 1


def test_master_outage_during_a_build(system):
    gm, jk, co, agents = start(system)
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "3"}), unique="u-outage")
    agents["n1"].wait_log("started for build:unit")
    jk.fail(503, 4)            # longer than the build: its end is seen only after the outage
    end = final_event(c.wait(60))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    assert len(jk.builds()) == 1


def test_trigger_timeout_refuses_the_job(system):
    gm = system.gearmand()
    jk = system.jenkins(fixture(ONE))
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1", extra={"node": {"trigger_timeout": 2}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    jk.drop(1000, method="POST")          # every trigger is lost before Jenkins sees it
    ev = perl_call(gm, "build:unit", "{}", unique="never-triggered")
    end = final_event(ev)
    assert end["event"] == "fail", ev
    warn = [e for e in ev if e["event"] == "warning"]
    assert warn and "Jenkins refused to build unit" in warn[0]["data"]
    assert jk.builds() == []
    jk.drop(0)
    # The worker goes on.
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"


def test_queue_item_forgotten_by_jenkins(system):
    """A queue item Jenkins no longer knows (left over 5 minutes ago, or the master
    restarted with a new X-Jenkins-Session) is resolved through the job's builds."""
    gm = system.gearmand()
    fx = fixture(ONE)
    fx["left_item_ttl"] = 0          # every item is forgotten as soon as it leaves the queue
    jk = system.jenkins(fx)
    system.coordinator(gm, jk)
    system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    for i in range(3):
        jk.restart()                 # new X-Jenkins-Session each time
        ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "0.3"}), unique="forgotten-%d" % i)
        end = final_event(ev)
        assert end["event"] == "complete" and json.loads(end["data"])["number"] == i + 1, ev
    assert len(jk.builds()) == 3


def test_tls_verify_off_is_a_warning(system):
    gm = system.gearmand()
    jk = system.jenkins(fixture(ONE))
    co = system.coordinator(gm, jk, extra={"jenkins": {"tls_verify": "false"}})
    a = system.node(gm, jk, "n1")
    co.wait_log("warn: TLS certificate verification is off")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    assert "TLS certificate verification is off" not in a.log()     # on by default


def test_credentials_in_url_never_logged(system):
    """Issue 16: [jenkins] url with user:token@ was logged as it is ("node n1
    of http://gearman:TOKEN@..."). The credentials leave the URL when the file
    is read, still authenticate, and appear in no log line."""
    gm = system.gearmand()
    jk = system.jenkins(fixture(ONE, users={"gearman": {"token": "s3cr3t-tok3n"}}))
    url = jk.url.replace("://", "://gearman:s3cr3t-tok3n@", 1)
    co = system.coordinator(gm, jk, extra={"jenkins": {"url": url}})
    agent = system.node(gm, jk, "n1", extra={"jenkins": {"url": url}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"
    agent.wait_log("node n1 of %s" % jk.url)
    co.stop()
    for d in (co, agent):
        assert "s3cr3t-tok3n" not in d.log(), d.log()[-2000:]


def test_sighup_with_fifo_as_token_file(system):
    """Issue 16: a FIFO planted as token_file hung the SIGHUP reload forever
    (open(2) waits for a writer). Now it is refused at once; the agent keeps
    its configuration and serves."""
    gm = system.gearmand()
    jk = system.jenkins(fixture(ONE, users={"gearman": {"token": "s3cr3t-tok3n"}}))
    tokfile = os.path.join(system.tmp, "token")
    with open(tokfile, "w") as f:
        f.write("s3cr3t-tok3n\n")
    os.chmod(tokfile, 0o600)
    auth = {"jenkins": {"user": "gearman", "token_file": tokfile}}
    system.coordinator(gm, jk, extra=auth)
    agent = system.node(gm, jk, "n1", extra=auth)
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered with a token")
    os.unlink(tokfile)
    os.mkfifo(tokfile, 0o600)
    agent.signal(signal.SIGHUP)
    agent.wait_log("keeping the running configuration", timeout=10)
    assert "not a regular file" in agent.log()
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"
