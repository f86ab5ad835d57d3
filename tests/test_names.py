"""Issue 17, names and identities as real Jenkins writes them: job URLs
(Util.rawEncode), builds whose queueId is -1, the controller's URL before
2.307, and job names with spaces. Real gearmand, the Jenkins test server,
and independent clients (Perl Gearman::Client, Debian's `gearman` CLI)."""
import json

import pytest

from conftest import final_event, gearman_cli, perl_call, unwrap_map, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
UNIQ = {"type": "string", "name": "GEARMAN_UNIQUE"}

# Legal in Jenkins (checkGoodName), and written bare by Util.rawEncode except
# ' ' (%20) and '~' (%7E): our own encoding is the reverse ('+' '(' ')' ',' '=' "'" as %XX,
# '~' bare), so a comparison of encoded URLs never matches.
ODD = "deploy(prod)+x,y=z~'q'"
ODD_SPACED = "deploy (prod)+x,y=z~'q'"


def fixture(jobs, version="2.462.3", nodes=None):
    return {"version": version, "quiet_period": 0,
            "nodes": nodes or [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                               {"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
            "jobs": jobs}


def project_map(gm, arg, master="jenkins01"):
    rc, out, err = gearman_cli(gm, "project_map:" + master, arg, timeout_ms=10000)
    assert rc == 0, (rc, out, err)
    return unwrap_map(out)


@pytest.mark.parametrize("name", [ODD, ODD_SPACED])
def test_lost_trigger_answer_for_raw_encoded_name_makes_one_build(system, name):
    """Issue 17 row 1: the trigger's answer is lost; the agent looks for its
    still-queued item by task.url, which Jenkins wrote with rawEncode. Found:
    one build. Missed (the old suffix compare of encodings): a second trigger."""
    gm = system.gearmand()
    nodes = [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
             {"name": "n1", "labels": "", "executors": 2, "mode": "NORMAL"}]
    jk = system.jenkins(fixture([{"name": name, "params": [NODE, DUR, UNIQ]}], nodes=nodes))
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    # (gearmand's "workers" list splits such a name: its "status" does not)
    wait_for(lambda: gm.status().get("build:" + name, (0, 0, 0))[2] == 1, what="registered")
    # A build of the (non-concurrent) job already runs: ours stays queued,
    # blocked, so the agent finds a queue item, not a build.
    jk.start_native(name, node="n1", params={"DURATION": "3"})
    wait_for(lambda: [b for b in jk.builds() if b["building"]], what="first build running")
    jk.reset_requests()
    jk.drop(1, after=True, method="POST")
    ev = perl_call(gm, "build:" + name, json.dumps({"DURATION": "0.2"}), unique="odd-1")
    end = final_event(ev)
    assert end["event"] == "complete", ev
    builds = [b for b in jk.builds() if b["params"].get("GEARMAN_UNIQUE") == "odd-1"]
    assert len(builds) == 1, jk.builds()
    assert json.loads(end["data"])["number"] == builds[0]["number"] == 2
    assert "found the build of unique odd-1: %s queue item" % name in agent.log()
    posts = [r for r in jk.requests() if r["method"] == "POST" and "buildWithParameters" in r["path"]]
    assert len(posts) == 1, posts


def coordinator_ready(system, fx):
    gm = system.gearmand()
    jk = system.jenkins(fx)
    co = system.coordinator(gm, jk)
    wait_for(lambda: gm.status().get("stop:jenkins01", (0, 0, 0))[2] == 1, what="stop:jenkins01 registered")
    co.wait_log("map ")
    return gm, jk, co


def test_stop_and_describe_build_with_queue_id_minus_one(system):
    """Issue 17 row 3: Run.getQueueId is -1 for an old record (and until
    setQueueId); the coordinator read that as a protocol error and refused
    stop: and set_description: for such builds."""
    slow = [NODE, {"type": "string", "name": "DURATION", "default": "30"}]
    gm, jk, co = coordinator_ready(system, fixture([{"name": "slow", "params": slow, "concurrent": True}]))
    jk.start_native("slow", node="n1", old=True)
    b = wait_for(lambda: [x for x in jk.builds() if x["job"] == "slow" and x["building"]], what="running")[0]
    assert b["queue_id"] == -1
    # set_description: through the gearman CLI, while it runs
    rc, out, err = gearman_cli(gm, "set_description:jenkins01",
                               json.dumps({"name": "slow", "number": b["number"], "html_description": "old one"}))
    assert rc == 0 and "was updated to old one" in out, (rc, out, err)
    assert [x for x in jk.builds() if x["number"] == b["number"]][0]["description"] == "old one"
    # stop: through Perl's Gearman::Client
    ev = perl_call(gm, "stop:jenkins01", json.dumps({"name": "slow", "number": b["number"]}))
    assert final_event(ev)["event"] == "complete", ev
    wait_for(lambda: [x for x in jk.builds() if x["number"] == b["number"]][0]["result"] == "ABORTED",
             what="build aborted")
    assert "stopped build slow #%d" % b["number"] in co.log()


def test_built_in_node_agent_on_a_master_older_than_2_307(system):
    """Issue 17 row 7: before 2.307 the controller is /computer/(master)/ and
    "(built-in)" names no computer (Jenkins.getComputer); the agent picks the
    URL by the X-Jenkins version and serves the controller's builds."""
    nodes = [{"name": "master", "labels": "", "executors": 1, "mode": "NORMAL"}]
    gm = system.gearmand()
    # The controller's mode is not readable (no config.xml): it is offered labelled jobs only.
    jk = system.jenkins(fixture([{"name": "unit", "label": "master", "params": [NODE, DUR],
                                  "concurrent": True}], version="2.303.3", nodes=nodes))
    system.coordinator(gm, jk)
    # Its name is its self label then, which the NodeLabel parameter takes.
    agent = system.node(gm, jk, "master")
    wait_for(lambda: "build:unit" in (gm.functions_of("master") or []), what="registered")
    ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "0.1"}))
    assert final_event(ev)["event"] == "complete", (ev, agent.log()[-3000:])
    assert [b["node"] for b in jk.builds()] == ["master"]
    paths = [r["path"] for r in jk.requests() if r["path"].startswith("/computer/(")]
    assert paths and all(p.startswith("/computer/(master)/") for p in paths), paths



def our_cli(gm, *args):
    import os
    import subprocess
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    cli = os.path.join(os.environ["JGA_BUILD"], "jenkins-gearman")
    p = subprocess.run([cli] + list(args) + ["-s", gm.server], capture_output=True, text=True,
                       timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


def test_job_name_with_spaces_is_offered_and_built(system):
    """Issue 17 row 8: Jenkins job names may hold spaces. The Gearman binary
    protocol carries them (the gearman CLI and Perl's Gearman::Client submit
    build:my job and get the result), gearmand's "status" is TAB-separated;
    only "workers" joins a worker's functions with spaces, which our CLI's
    status now reads by the names "status" gave. So they are offered; names
    with a TAB (or any control character) are still refused."""
    jobs = [{"name": "my job", "params": [NODE, DUR], "concurrent": True},
            {"name": "my", "params": [NODE, DUR], "concurrent": True},
            {"name": "tab\there", "params": [NODE, DUR], "concurrent": True}]
    gm = system.gearmand()
    jk = system.jenkins(fixture(jobs))
    system.coordinator(gm, jk)
    system.node(gm, jk, "n1")
    wait_for(lambda: gm.status().get("build:my job", (0, 0, 0))[2] == 1 and
             gm.status().get("build:my", (0, 0, 0))[2] == 1, what="build:my job registered")
    m = project_map(gm, "{}")
    assert [j["function"] for j in m["jobs"] if j["job"] == "my job"] == ["build:my job"], m
    bad = [u for u in m["undispatchable"] if u["job"] == "tab\there"]
    assert bad and "control character" in bad[0]["reason"], m["undispatchable"]
    assert "build:tab\there" not in gm.status()
    # Two independent clients submit it and get the build's result.
    rc, out, err = gearman_cli(gm, "build:my job", json.dumps({"DURATION": "0.1"}))
    # (the CLI prints WORK_DATA and the final answer back to back)
    assert rc == 0 and '"result":"SUCCESS"' in out.replace(" ", ""), (rc, out, err)
    ev = perl_call(gm, "build:my job", json.dumps({"DURATION": "0.1"}))
    assert final_event(ev)["event"] == "complete", ev
    assert json.loads(final_event(ev)["data"])["result"] == "SUCCESS"
    assert sorted(b["number"] for b in jk.builds() if b["job"] == "my job") == [1, 2]
    # What gearmand's admin protocol really does with such a name:
    # "workers" joins names with spaces (ambiguous: "build:my job" or "build:my" + "job")...
    line = [l for l in gm.admin("workers") if " : " in l and "build:my job" in l]
    assert line and "job" in line[0].partition(" : ")[2].split(" "), line
    # ... and a command naming the function takes only up to the space.
    assert gm.admin("drop function build:my job")[0].startswith("ERR INVALID_ARGUMENTS")
    # Our CLI's status reads "workers" by the names "status" gave: both served by n1.
    rc, out, err = our_cli(gm, "status")
    assert rc == 0, err
    rows = {l[2:40].strip(): l for l in out.splitlines()[1:] if l.startswith(("  build:", "!!build:"))}
    assert "n1(jenkins01)" in rows["build:my job"] and "n1(jenkins01)" in rows["build:my"], out
    assert "job" not in rows and not any(r.startswith("!!") for r in rows.values()), out
    # Our CLI's build command too.
    rc, out, err = our_cli(gm, "build", "my job", "DURATION=0.1", "--timeout", "30")
    assert rc == 0 and "SUCCESS" in out, (rc, out, err)
