"""Node agent end to end: real gearmand, the Jenkins test server, our
coordinator and agents, and independent clients (Perl's Gearman::Client and
Debian's `gearman` CLI)."""
import json
import urllib.request

from conftest import PerlClient, final_event, gearman_cli, json_docs, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
RES = {"type": "string", "name": "RESULT", "default": "SUCCESS"}


def job(name, label=None, **kw):
    j = {"name": name, "params": [NODE, DUR, RES], "concurrent": True}
    if label:
        j["label"] = label
    j.update(kw)
    return j


def fixture(nodes, jobs):
    return {"version": "2.462.3", "quiet_period": 5,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] + nodes,
            "jobs": jobs}


def start(system, fx, nodes, master="jenkins01", gm=None):
    gm = gm or system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk, name=master)
    agents = {n: system.node(gm, jk, n, master=master) for n in nodes}
    return gm, jk, agents


def registered(gm, worker_id, fn):
    fns = gm.functions_of(worker_id)
    return fns is not None and fn in fns


def wait_registered(gm, node, executors, fn):
    """The node's one worker connection (id = node name) offers fn."""
    wait_for(lambda: registered(gm, node, fn), timeout=10, what="%s registers %s" % (node, fn))


def events_of(ev, kind):
    return [e for e in ev if e["event"] == kind]


def test_build_reports_data_status_complete(system):
    gm, jk, _ = start(system, fixture([{"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
                                      [job("unit", "linux")]), ["n1"])
    wait_registered(gm, "n1", 1, "build:unit:linux")
    ev = perl_call(gm, "build:unit", json.dumps({"DURATION": "2.5", "ZUUL_UUID": "abc", "FLAG": True, "N": 3}),
                   unique="u-1")
    kinds = [e["event"] for e in ev if e["event"] in ("data", "status", "complete", "fail", "warning")]
    # WORK_DATA first, then WORK_STATUS (right after, then every status_interval), then WORK_COMPLETE.
    assert kinds[0] == "data" and kinds[1] == "status" and kinds[-1] == "complete", kinds
    assert kinds.count("status") >= 2 and "fail" not in kinds and "warning" not in kinds, kinds
    data = json.loads(events_of(ev, "data")[0]["data"])
    assert set(data) == {"name", "number", "manager", "worker", "url", "node_name", "node_labels"}
    assert data["name"] == "unit" and isinstance(data["number"], int) and data["number"] == 1
    assert data["manager"] == "jenkins01" and data["worker"] == "n1_exec-0" and data["node_name"] == "n1"
    assert data["url"] == jk.url + "job/unit/1/"
    assert data["node_labels"] == ["linux", "n1"]
    st = events_of(ev, "status")[0]
    assert int(st["num"]) >= 0 and int(st["den"]) == -1      # no estimate yet for a first build
    done = json.loads(events_of(ev, "complete")[0]["data"])
    assert done == dict(data, result="SUCCESS")
    b = jk.builds()
    assert len(b) == 1 and b[0]["node"] == "n1"
    # The pin and the client's parameters reached Jenkins (undeclared ones are dropped, as Jenkins does).
    assert b[0]["params"]["NODE"] == "n1" and b[0]["params"]["DURATION"] == "2.5"


def test_failed_and_aborted_builds_are_complete(system):
    gm, jk, _ = start(system, fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                                      [job("unit")]), ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    for result in ("FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT"):
        ev = perl_call(gm, "build:unit", json.dumps({"RESULT": result}))
        end = final_event(ev)
        assert end["event"] == "complete", ev
        assert json.loads(end["data"])["result"] == result


def test_gearman_cli_client(system):
    gm, jk, _ = start(system, fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                                      [job("unit")]), ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    rc, out, err = gearman_cli(gm, "build:unit", "{}")
    assert rc == 0, (out, err)
    # The CLI prints the WORK_DATA document, then the final one, and the status.
    docs = json_docs(out)
    assert len(docs) == 2 and "result" not in docs[0] and docs[1] == dict(docs[0], result="SUCCESS"), out
    assert "% Complete" in out, out


def test_executors_cap_and_spill_to_other_node(system):
    fx = fixture([{"name": "a1", "labels": "linux", "executors": 2, "mode": "NORMAL"},
                  {"name": "b1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
                 [job("unit", "linux")])
    gm, jk, agents = start(system, fx, ["a1"])
    wait_registered(gm, "a1", 2, "build:unit")
    clients = [PerlClient(gm, "build:unit", json.dumps({"DURATION": "3", "i": str(i)}), timeout=60)
               for i in range(4)]
    # Two run on a1; the other two stay queued in gearmand, not in Jenkins.
    wait_for(lambda: len([b for b in jk.builds() if b["building"]]) == 2, what="2 builds running on a1")
    # All four submitted (Perl starts slowly), two taken; one worker connection for a1.
    wait_for(lambda: gm.status().get("build:unit") == (4, 2, 1), what="4 queued or running, 2 running")
    assert len([b for b in jk.builds() if b["building"]]) == 2
    assert jk.queue() == []
    # Another node comes: it takes one at once.
    system.node(gm, jk, "b1")
    wait_for(lambda: len({b["node"] for b in jk.builds()}) == 2, what="a build on b1")
    for c in clients:
        assert final_event(c.wait(60))["event"] == "complete"
    conc = jk.concurrency()
    assert conc["a1"] == 2 and conc["b1"] == 1, conc
    assert len(jk.builds()) == 4


def test_native_builds_occupy_executors(system):
    fx = fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                 [job("unit"), job("native")])
    gm, jk, agents = start(system, fx, ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    jk.start_native("native", node="n1", params={"DURATION": "3"})
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="native build running")
    c = PerlClient(gm, "build:unit", "{}", timeout=30)
    wait_for(lambda: gm.status().get("build:unit", (0, 0, 0))[0] == 1, what="job queued")
    # While the native build runs, the agent looked at Jenkins and did not grab: the job stays in gearmand.
    agents["n1"].wait_log("not taking jobs: no idle executor")
    assert gm.status()["build:unit"][1] == 0 and len(jk.builds()) == 1
    end = final_event(c.wait(30))
    assert end["event"] == "complete"
    b = {x["job"]: x for x in jk.builds()}
    assert b["unit"]["start"] >= b["native"]["end"]
    assert jk.concurrency()["n1"] == 1


def test_two_masters_one_gearmand(system):
    """The seed's story: master A is busy, so the job runs on master B's idle node."""
    gm = system.gearmand()
    fa = fixture([{"name": "a1", "labels": "linux", "executors": 1, "mode": "NORMAL"}], [job("shared", "linux")])
    fb = fixture([{"name": "b1", "labels": "linux", "executors": 1, "mode": "NORMAL"}], [job("shared", "linux")])
    ja = system.jenkins(fa)
    jb = system.jenkins(fb)
    system.coordinator(gm, ja, name="masterA")
    system.coordinator(gm, jb, name="masterB")
    system.node(gm, ja, "a1", master="masterA")
    wait_registered(gm, "a1", 1, "build:shared")
    ja.start_native("shared", node="a1", params={"DURATION": "30"})
    wait_for(lambda: any(b["building"] for b in ja.builds()), what="master A busy")
    system.node(gm, jb, "b1", master="masterB")
    wait_registered(gm, "b1", 1, "build:shared")
    ev = perl_call(gm, "build:shared", json.dumps({"DURATION": "0.5"}))
    end = json.loads(final_event(ev)["data"])
    assert end["manager"] == "masterB" and end["node_name"] == "b1" and end["result"] == "SUCCESS"
    assert len(ja.builds()) == 1 and len(jb.builds()) == 1


def test_label_function_reaches_only_that_label(system):
    fx = fixture([{"name": "l1", "labels": "linux", "executors": 1, "mode": "NORMAL"},
                  {"name": "w1", "labels": "windows", "executors": 1, "mode": "NORMAL"}],
                 [job("multi", "linux || windows")])
    gm, jk, _ = start(system, fx, ["l1", "w1"])
    wait_registered(gm, "l1", 1, "build:multi:linux")
    wait_registered(gm, "w1", 1, "build:multi:windows")
    assert not registered(gm, "l1", "build:multi:windows")
    for _ in range(3):
        end = json.loads(final_event(perl_call(gm, "build:multi:windows", "{}"))["data"])
        assert end["node_name"] == "w1"
    assert {b["node"] for b in jk.builds()} == {"w1"}


def test_bad_arguments_then_a_valid_job(system):
    gm, jk, _ = start(system, fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                                      [job("unit")]), ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    cases = [("not json", "not valid JSON"),
             ("[1,2]", "must be a JSON object"),
             ('{"a":{"b":1}}', "must be a string, number or boolean"),
             ('{"a":[1]}', "not an array"),
             ('{"a":null}', "not null"),
             ('{"a":"1","a":"2"}', "duplicate"),
             (b'{"a":"\xff\xfe"}', "not valid JSON"),
             ('{"NODE":"elsewhere"}', "may not be set by a client"),
             ('{"delay":"0"}', "may not be set by a client"),
             ('{"bad name":"x"}', "is not allowed")]
    for arg, text in cases:
        ev = perl_call(gm, "build:unit", arg)
        assert final_event(ev)["event"] == "fail", (arg, ev)
        warns = events_of(ev, "warning")
        assert warns and text in warns[0]["data"], (arg, ev)
    assert jk.builds() == []
    # Empty argument counts as {}; the same worker still runs builds.
    end = final_event(perl_call(gm, "build:unit", ""))
    assert end["event"] == "complete" and json.loads(end["data"])["worker"] == "n1_exec-0"
    assert len(jk.builds()) == 1


def test_disabled_and_removed_jobs_are_withdrawn(system):
    gm, jk, agents = start(system, fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                                           [job("unit"), job("gone"), job("kept")]), ["n1"])
    wait_registered(gm, "n1", 1, "build:gone")
    jk.update_job("unit", disabled=True)
    jk.remove_job("gone")
    wait_for(lambda: gm.functions_of("n1") == ["build:kept"], what="unit and gone withdrawn (CANT_DO)")
    assert jk.builds() == []


def test_registration_follows_map(system):
    fx = fixture([{"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}], [job("unit", "linux")])
    gm = system.gearmand()
    jk = system.jenkins(fx)
    agent = system.node(gm, jk, "n1")
    # No coordinator yet: nothing registered, and the log says why.
    agent.wait_log("registering nothing until the coordinator answers")
    assert not any(fns for cid, fns in gm.workers() if cid == "n1")
    system.coordinator(gm, jk)
    wait_registered(gm, "n1", 1, "build:unit:linux")
    assert gm.functions_of("n1") == ["build:unit", "build:unit:linux"]
    # A new job and a new executor show within a refresh.
    jk.add_job(job("extra"))
    jk.update_node("n1", executors=2)
    wait_registered(gm, "n1", 2, "build:extra")
    assert gm.functions_of("n1") == ["build:extra", "build:unit", "build:unit:linux"]
    # A removed job is unregistered (CANT_DO), the rest stays.
    jk.remove_job("extra")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit", "build:unit:linux"], what="CANT_DO extra")


def test_offline_node_when_complete(system):
    fx = fixture([{"name": "n1", "labels": "", "executors": 2, "mode": "NORMAL"}], [job("unit")])
    gm, jk, _ = start(system, fx, ["n1"])
    wait_registered(gm, "n1", 2, "build:unit")
    single = PerlClient(gm, "build:unit", json.dumps({"DURATION": "2", "OFFLINE_NODE_WHEN_COMPLETE": "true"}))
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="single-use build running")
    other = PerlClient(gm, "build:unit", json.dumps({"DURATION": "0"}), timeout=8)
    end = final_event(single.wait(30))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    # The node is offline in Jenkins, with a message; no other build ran on it.
    node = json.loads(urllib.request.urlopen(jk.url + "computer/n1/api/json").read())
    assert node["temporarilyOffline"] is True and "Gearman" in node["offlineCauseReason"]
    assert len(jk.builds()) == 1
    # Its workers keep their connections but offer nothing.
    wait_for(lambda: gm.functions_of("n1") == [],
             what="functions withdrawn")
    assert final_event(other.wait(30))["event"] in ("timeout", "fail")
    assert len(jk.builds()) == 1


def jenkins_post(jk, path):
    """POST to the test server as an anonymous user would (crumb + session cookie)."""
    import http.cookiejar
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    crumb = json.loads(op.open(jk.url + "crumbIssuer/api/json").read())
    req = urllib.request.Request(jk.url + path, data=b"", method="POST",
                                 headers={crumb["crumbRequestField"]: crumb["crumb"]})
    try:
        return op.open(req).status
    except urllib.error.HTTPError as e:
        return e.code


def test_no_cant_do_while_a_build_runs(system):
    """A map change during a build must not re-queue the job (gearmand does on CANT_DO)."""
    fx = fixture([{"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}], [job("unit", "linux")])
    gm, jk, agents = start(system, fx, ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    c = PerlClient(gm, "build:unit", json.dumps({"DURATION": "3"}))
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="build running")
    jk.update_job("unit", label="windows")          # n1 no longer offers it
    agents["n1"].wait_log("map ", timeout=5)
    wait_for(lambda: agents["n1"].log().count("map ") >= 2, what="new map applied")
    end = final_event(c.wait(30))
    assert end["event"] == "complete" and json.loads(end["data"])["result"] == "SUCCESS"
    wait_for(lambda: gm.functions_of("n1") == [], what="function withdrawn after the build")
    assert len(jk.builds()) == 1, jk.builds()       # no second build from a re-queued job
    assert gm.status().get("build:unit", (0, 0, 0))[0] == 0


def test_fewer_executors_after_running_builds(system):
    fx = fixture([{"name": "n1", "labels": "", "executors": 2, "mode": "NORMAL"}], [job("unit")])
    gm, jk, _ = start(system, fx, ["n1"])
    wait_registered(gm, "n1", 2, "build:unit")
    cs = [PerlClient(gm, "build:unit", json.dumps({"DURATION": "3", "RESULT": r})) for r in ("SUCCESS", "UNSTABLE")]
    wait_for(lambda: len([b for b in jk.builds() if b["building"]]) == 2, what="2 builds running")
    jk.update_node("n1", executors=1)
    ends = [final_event(c.wait(30)) for c in cs]
    assert [e["event"] for e in ends] == ["complete", "complete"]
    assert sorted(json.loads(e["data"])["result"] for e in ends) == ["SUCCESS", "UNSTABLE"]
    assert gm.functions_of("n1") == ["build:unit"]
    # One executor now: two more builds run one after the other, not side by side.
    cs = [PerlClient(gm, "build:unit", json.dumps({"DURATION": "1"})) for _ in range(2)]
    assert [final_event(c.wait(30))["event"] for c in cs] == ["complete", "complete"]
    b1, b2 = sorted(jk.builds()[-2:], key=lambda b: b["start"])
    assert b2["start"] >= b1["end"], (b1, b2)


def test_master_unreachable_takes_no_job(system):
    fx = fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}], [job("unit")])
    gm, jk, agents = start(system, fx, ["n1"])
    wait_registered(gm, "n1", 1, "build:unit")
    jk.fail(503, 3)
    c = PerlClient(gm, "build:unit", "{}")
    # The agent's grab after registering may meet the failures first: wait for the job
    # itself, then for the agent to have looked at the master and declined.
    wait_for(lambda: gm.status().get("build:unit", (0,))[0] == 1, what="job queued")
    agents["n1"].wait_log("not taking jobs: ", timeout=5)
    # The job waits in gearmand (where another master could take it), not in this agent.
    assert gm.status()["build:unit"][:2] == (1, 0)
    end = final_event(c.wait(30))
    assert end["event"] == "complete"
    assert len(jk.builds()) == 1


def test_jenkins_refusals(system):
    """Jenkins refuses what the (stale) map still offers: WORK_WARNING naming why, then WORK_FAIL."""
    fx = fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"},
                  {"name": "n2", "labels": "", "executors": 1, "mode": "NORMAL"}],
                 [job("off"), job("gone"), job("unpinned"), job("serial", concurrent=False)])
    gm = system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk, refresh=3600)        # the map will not see the changes below
    system.node(gm, jk, "n1")
    wait_registered(gm, "n1", 1, "build:serial")
    jk.update_job("off", disabled=True)
    jk.remove_job("gone")
    jk.update_job("unpinned", params=[{"type": "string", "name": "NODE"}, DUR, RES])
    for fn, text in (("build:off", "job is disabled"), ("build:gone", "no longer exists"),
                     ("build:unpinned", "could not be pinned to n1")):
        ev = perl_call(gm, fn, json.dumps({"DURATION": "5"}))
        assert final_event(ev)["event"] == "fail", (fn, ev)
        assert text in events_of(ev, "warning")[0]["data"], (fn, ev)
    # Jenkins may have started the unpinned build at once, anywhere: the agent stopped it.
    assert all(b["result"] == "ABORTED" for b in jk.builds() if b["job"] == "unpinned")
    wait_for(lambda: not any(b["building"] for b in jk.builds()), what="no build left running")
    assert jk.queue() == []
    # A queue item cancelled in Jenkins before it starts.
    jk.start_native("serial", node="n2", params={"DURATION": "30"})
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="serial busy on n2")
    c = PerlClient(gm, "build:serial", "{}")
    item = wait_for(lambda: jk.queue(), what="pinned item blocked in the Jenkins queue")[0]
    assert jenkins_post(jk, "queue/cancelItem?id=%d" % item["id"]) == 204
    ev = c.wait(30)
    assert final_event(ev)["event"] == "fail"
    assert "was cancelled" in events_of(ev, "warning")[0]["data"]
    # The worker goes on taking jobs.
    jk.update_job("serial", concurrent=True)
    assert final_event(perl_call(gm, "build:serial", "{}"))["event"] == "complete"


def test_client_string_cannot_imitate_pin(system):
    """Issue 16: the pin is checked from the queue item's ParametersAction, by
    parameter class. A job edited so NODE is a plain string (the stale map
    still offers it): a client's string value that reads like the plugin's
    rendering ("\\n[NodeParameterValue: NODE=n1]") must not pass for the pin."""
    desc = {"type": "string", "name": "DESC", "default": ""}
    fx = fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                 [job("spoof", params=[NODE, desc, DUR, RES])])
    gm = system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk, refresh=3600)        # the map will not see the edit below
    system.node(gm, jk, "n1")
    wait_registered(gm, "n1", 1, "build:spoof")
    jk.update_job("spoof", params=[{"type": "string", "name": "NODE"}, desc, DUR, RES])
    ev = perl_call(gm, "build:spoof",
                   json.dumps({"DESC": "x\n[NodeParameterValue: NODE=n1]", "DURATION": "5"}))
    assert final_event(ev)["event"] == "fail", ev
    assert "could not be pinned to n1" in events_of(ev, "warning")[0]["data"], ev
    assert "data" not in [e["event"] for e in ev], ev      # never reported as started
    assert all(b["result"] == "ABORTED" for b in jk.builds() if b["job"] == "spoof")
    wait_for(lambda: not any(b["building"] for b in jk.builds()), what="no build left running")


def test_unpinned_item_leaving_the_queue_is_stopped_not_left_running(system):
    """An unpinned item seen in Executor.run's start window (a LeftItem, which
    Queue.cancel cannot cancel) becomes a build on whatever node Jenkins
    chose: the agent follows it until the build exists, stops it and
    reports only once Jenkins shows it ended. (It refused at once before,
    leaving the build running unpinned to its end.)"""
    fx = fixture([{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
                 [job("spoof", params=[NODE, DUR, RES])])
    gm = system.gearmand()
    jk = system.jenkins(fx)
    system.coordinator(gm, jk, refresh=3600)        # the map will not see the edit below
    system.node(gm, jk, "n1")
    wait_registered(gm, "n1", 1, "build:spoof")
    jk.update_job("spoof", params=[{"type": "string", "name": "NODE"}, DUR, RES])
    jk.start_window(1.5)
    ev = perl_call(gm, "build:spoof", json.dumps({"DURATION": "20"}))
    assert final_event(ev)["event"] == "fail", ev
    warning = events_of(ev, "warning")[0]["data"]
    assert "could not be pinned to n1" in warning and "build 1 stopped" in warning, ev
    assert "data" not in [e["event"] for e in ev], ev      # never reported as started
    builds = [b for b in jk.builds() if b["job"] == "spoof"]
    assert [(b["building"], b["result"]) for b in builds] == [(False, "ABORTED")], builds
