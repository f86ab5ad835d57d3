"""Coordinator end to end: real gearmand, the Jenkins test server, and two
independent clients (Debian's `gearman` CLI and Perl's Gearman::Client)."""
import json
import urllib.request

from conftest import final_event, gearman_cli, perl_call, unwrap_map, wait_for

NODE = {"type": "node", "name": "NODE"}

FIXTURE = {
    "version": "2.462.3",
    "quiet_period": 0,
    "nodes": [
        {"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
        {"name": "linux1", "labels": "linux x86", "executors": 2, "mode": "NORMAL"},
        {"name": "gpu1", "labels": "linux gpu", "executors": 1, "mode": "EXCLUSIVE"},
        {"name": "off1", "labels": "linux", "executors": 1, "mode": "NORMAL", "temporarily_offline": True},
    ],
    "jobs": [
        {"name": "unit", "params": [NODE], "concurrent": True},
        {"name": "cuda", "label": "gpu", "params": [NODE], "concurrent": True},
        {"name": "slow", "label": "linux", "params": [NODE, {"type": "string", "name": "DURATION", "default": "30"}],
         "concurrent": True},
        {"name": "plain", "label": "linux", "params": [{"type": "string", "name": "DURATION", "default": "30"}],
         "concurrent": True},
        {"name": "old", "params": [NODE], "disabled": True},
        {"name": "team", "type": "folder", "jobs": [
            {"name": "deploy", "label": "x86", "params": [dict(NODE, allowed=["gpu1"])], "concurrent": True},
            {"name": "lint", "label": "linux &&", "params": [NODE]},
        ]},
    ],
}


def project_map(gm, arg, master="jenkins01"):
    rc, out, err = gearman_cli(gm, "project_map:" + master, arg, timeout_ms=10000)
    assert rc == 0, "project_map failed: rc=%d out=%r err=%r" % (rc, out, err)
    return unwrap_map(out)


def functions(gm, node):
    return sorted(f["name"] for f in project_map(gm, json.dumps({"node": node}))["functions"])


def ready(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk)
    wait_for(lambda: gm.status().get("project_map:jenkins01", (0, 0, 0))[2] == 1,
             what="project_map:jenkins01 registered")
    co.wait_log("map ")
    return gm, jk, co


def build_info(jk, job, number):
    path = "job/" + "/job/".join(job.split("/")) + "/%d/api/json" % number
    with urllib.request.urlopen(jk.url + path, timeout=5) as r:
        return json.load(r)


def test_registration_and_worker_id(system):
    gm, jk, co = ready(system)
    assert gm.functions_of("jenkins01_manager") == [
        "project_map:jenkins01", "set_description:jenkins01", "stop:jenkins01"]


def test_whole_map(system):
    gm, jk, co = ready(system)
    m = project_map(gm, "{}")
    assert len(m["version"]) == 16 and m["master"] == "jenkins01"
    by_job = {j["job"]: j for j in m["jobs"]}
    assert sorted(by_job) == ["cuda", "slow", "team/deploy", "team/lint", "unit"]
    # Jenkins exports an unparseable label as one quoted atom: no node has it.
    assert by_job["team/lint"]["label"] == '"linux &&"' and by_job["team/lint"]["nodes"] == []
    assert by_job["team/deploy"]["nodes"] == []          # allowedSlaves names gpu1, which lacks x86
    assert by_job["cuda"]["nodes"] == ["gpu1"]           # labelled job on an EXCLUSIVE node
    assert by_job["unit"]["nodes"] == ["linux1"]         # unlabelled: NORMAL, online nodes only
    undisp = {u["job"]: u["reason"] for u in m["undispatchable"]}
    assert undisp["old"] == "disabled"
    assert "no Node or Label parameter" in undisp["plain"]
    # Same answer from Perl's client, an independent protocol implementation.
    ev = perl_call(gm, "project_map:jenkins01", "{}")
    end = final_event(ev)
    assert end["event"] == "complete" and unwrap_map(end["data"])["version"] == m["version"]
    # Every answer names its master's URL and when it was made (signed with them: test_maps.py).
    assert m["url"] == jk.url.rstrip("/") and m["issued_ms"] > 0


def test_node_slices(system):
    gm, jk, co = ready(system)
    assert functions(gm, "linux1") == ["build:slow", "build:slow:linux", "build:unit"]
    assert functions(gm, "gpu1") == ["build:cuda", "build:cuda:gpu", "build:slow", "build:slow:linux"]
    s = project_map(gm, json.dumps({"node": "off1"}))
    assert s["functions"] == [] and s["node"]["online"] is False
    s = project_map(gm, json.dumps({"node": "linux1"}))
    assert s["node"] == {"name": "linux1", "executors": 2, "labels": ["linux", "linux1", "x86"],
                         "mode": "NORMAL", "online": True}
    assert {"name": "build:unit", "job": "unit", "pin": "NODE"} in s["functions"]
    same = project_map(gm, json.dumps({"node": "linux1", "version": s["version"], "nonce": "n0"}))
    assert same == {"version": s["version"], "unchanged": True, "nonce": "n0", "url": s["url"],
                    "issued_ms": same["issued_ms"]}
    assert same["issued_ms"] >= s["issued_ms"]


def test_project_map_errors(system):
    gm, jk, co = ready(system)
    for arg, text in (('{"node":"ghost"}', '"ghost" is not a node'),
                      ("not json", "not valid JSON"),
                      ('["linux1"]', "JSON object")):
        end = perl_call(gm, "project_map:jenkins01", arg)
        kinds = [e["event"] for e in end]
        assert "warning" in kinds and final_event(end)["event"] == "fail", end
        assert text in [e for e in end if e["event"] == "warning"][0]["data"]


def test_runtime_changes_within_one_refresh(system):
    gm, jk, co = ready(system)
    jk.add_job({"name": "fresh", "label": "x86", "params": [NODE]})
    wait_for(lambda: "build:fresh:x86" in functions(gm, "linux1"), timeout=5, what="new job in map")
    jk.update_job("fresh", label="gpu")
    wait_for(lambda: "build:fresh:gpu" in functions(gm, "gpu1") and "build:fresh" not in functions(gm, "linux1"),
             timeout=5, what="relabelled job in map")
    jk.update_job("unit", disabled=True)
    wait_for(lambda: "build:unit" not in functions(gm, "linux1"), timeout=5, what="disabled job gone")
    jk.update_node("off1", temporarily_offline=False)
    wait_for(lambda: functions(gm, "off1") == ["build:slow", "build:slow:linux"],
             timeout=5, what="node back online")


def test_master_down_keeps_map(system):
    gm, jk, co = ready(system)
    before = project_map(gm, "{}")
    jk.fail(503, 4)
    co.wait_log("keeping the map", timeout=5)
    assert project_map(gm, "{}")["version"] == before["version"]
    assert functions(gm, "linux1") == ["build:slow", "build:slow:linux", "build:unit"]
    co.wait_log("answers again", timeout=10)


def test_stop(system):
    gm, jk, co = ready(system)
    jk.start_native("slow", node="linux1")
    b = wait_for(lambda: [x for x in jk.builds() if x["job"] == "slow" and x["building"]], what="build running")[0]
    # Running build, number as a string, name in another case: stopped.
    ev = perl_call(gm, "stop:jenkins01", json.dumps({"name": "SLOW", "number": str(b["number"])}))
    assert final_event(ev)["event"] == "complete", ev
    wait_for(lambda: [x for x in jk.builds() if x["number"] == b["number"] and x["job"] == "slow"][0]["result"]
             == "ABORTED", what="build aborted")
    # Already finished: WORK_FAIL.
    ev = perl_call(gm, "stop:jenkins01", json.dumps({"name": "slow", "number": b["number"]}))
    assert final_event(ev)["event"] == "fail"
    assert "already finished" in [e for e in ev if e["event"] == "warning"][0]["data"]
    # Unknown build, unknown job, bad arguments: WORK_WARNING then WORK_FAIL, never an exception.
    for arg, text in ((json.dumps({"name": "slow", "number": 999}), "cannot find build"),
                      (json.dumps({"name": "nosuchjob", "number": 1}), "no job named \"nosuchjob\""),
                      (json.dumps({"name": "slow"}), "\"number\""),
                      (json.dumps({"name": "slow", "number": "12abc"}), "positive build number"),
                      ("garbage", "not valid JSON")):
        ev = perl_call(gm, "stop:jenkins01", arg)
        assert final_event(ev)["event"] == "fail", (arg, ev)
        warn = [e for e in ev if e["event"] == "warning"]
        assert warn and text in warn[0]["data"], (arg, ev)
    # The gearman CLI sees the failure too (exit status 1), without hanging.
    rc, out, err = gearman_cli(gm, "stop:jenkins01", json.dumps({"name": "slow", "number": 999}), timeout_ms=10000)
    assert rc != 0


def test_set_description(system):
    gm, jk, co = ready(system)
    jk.start_native("unit", node="linux1")
    b = wait_for(lambda: [x for x in jk.builds() if x["job"] == "unit" and not x["building"]], what="build done")[0]
    rc, out, err = gearman_cli(gm, "set_description:jenkins01",
                               json.dumps({"name": "unit", "number": b["number"],
                                           "html_description": "<b>zuul</b> change 42"}))
    assert rc == 0 and "was updated to <b>zuul</b> change 42" in out, (rc, out, err)
    assert build_info(jk, "unit", b["number"])["description"] == "<b>zuul</b> change 42"
    ev = perl_call(gm, "set_description:jenkins01", json.dumps({"name": "unit", "number": 77, "html_description": "x"}))
    assert final_event(ev)["event"] == "fail"


def stop_or_describe_refused(gm, jk, function, arg, text):
    """function(arg) through both clients: WORK_WARNING naming text, then WORK_FAIL, no exception."""
    ev = perl_call(gm, function, json.dumps(arg))
    kinds = [e["event"] for e in ev]
    assert "exception" not in kinds and final_event(ev)["event"] == "fail", ev
    warn = [e for e in ev if e["event"] == "warning"]
    assert warn and text in warn[0]["data"], ev
    rc, out, err = gearman_cli(gm, function, json.dumps(arg), timeout_ms=10000)
    assert rc != 0, (rc, out, err)


def test_stop_and_describe_only_jobs_of_the_map(system):
    """Issue 16: anyone reaching gearmand could stop or re-describe any build of the
    master, dispatchable or not. A build of a job the map does not offer ("plain":
    no Node parameter; "old": disabled) is refused, and the master sees no stop and
    no description change."""
    gm, jk, co = ready(system)
    jk.start_native("plain", node="linux1")
    b = wait_for(lambda: [x for x in jk.builds() if x["job"] == "plain" and x["building"]], what="plain build")[0]
    jk.reset_requests()
    why = "is not dispatchable through Gearman"
    stop_or_describe_refused(gm, jk, "stop:jenkins01", {"name": "plain", "number": b["number"]}, why)
    stop_or_describe_refused(gm, jk, "set_description:jenkins01",
                             {"name": "plain", "number": b["number"], "html_description": "owned"}, why)
    stop_or_describe_refused(gm, jk, "stop:jenkins01", {"name": "old", "number": 1}, why)
    posts = [r for r in jk.requests() if r["method"] == "POST" and not r["path"].startswith("/_test")]
    assert posts == [], posts
    info = build_info(jk, "plain", b["number"])
    assert not info.get("description") and info["building"], info


def test_refresh_requests_do_not_grow_with_jobs(system):
    """A refresh costs two requests (jobs, nodes) plus a bounded number of config.xml reads."""
    gm = system.gearmand()
    jobs = [{"name": "j%03d" % i, "label": "linux", "params": [NODE]} for i in range(60)]
    jk = system.jenkins({"version": "2.462.3", "nodes": [
        {"name": "n%d" % i, "labels": "linux", "executors": 1, "mode": "NORMAL"} for i in range(5)], "jobs": jobs})
    co = system.coordinator(gm, jk, refresh=1)
    wait_for(lambda: co.log().count("map ") >= 1, what="first map")
    wait_for(lambda: co.log().count("unchanged") >= 1, what="a steady refresh")
    jk.reset_requests()
    wait_for(lambda: co.log().count("unchanged") >= 4, timeout=15, what="three more refreshes")
    reqs = [r for r in jk.requests() if not r["path"].startswith("/_test")]
    per_refresh = len(reqs) / 3.0
    lists = [r for r in reqs if r["path"] in ("/api/json", "/computer/api/json")]
    assert len(lists) >= 6
    # 2 list requests + at most 10 allowedSlaves re-reads, whatever the number of jobs (60 here).
    assert per_refresh <= 2 + 10 + 1, (per_refresh, sorted({r["path"] for r in reqs}))
