"""Metrics (Prometheus textfile) and logs fit for journald (text or JSON, one
line per build lifecycle event with its fields)."""
import json
import os

from prometheus_client.parser import text_string_to_metric_families

from conftest import final_event, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
FX = {"version": "2.462.3",
      "nodes": [{"name": "n1", "labels": "", "executors": 1, "mode": "NORMAL"}],
      "jobs": [{"name": "unit", "params": [NODE, {"type": "string", "name": "RESULT", "default": "SUCCESS"}],
                "concurrent": True}]}


def samples(path):
    """{(name, labels-tuple): value}, parsed by prometheus_client's text-format parser."""
    with open(path) as f:
        text = f.read()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_textfile(system):
    gm = system.gearmand()
    jk = system.jenkins(FX)
    cpath = os.path.join(system.tmp, "coordinator.prom")
    npath = os.path.join(system.tmp, "node.prom")
    system.coordinator(gm, jk, extra={"metrics": {"textfile": cpath}})
    system.node(gm, jk, "n1", extra={"metrics": {"textfile": npath}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    assert final_event(perl_call(gm, "build:unit", "{}"))["event"] == "complete"
    assert final_event(perl_call(gm, "build:unit", '{"RESULT":"FAILURE"}'))["event"] == "complete"
    assert final_event(perl_call(gm, "build:unit", '{"NODE":"x"}'))["event"] == "fail"
    def settled():
        if not os.path.exists(npath):
            return None
        m = samples(npath)
        return m if m.get(("jga_builds_started_total", ())) == 2 and m.get(("jga_jobs_refused_total", ())) == 1 \
            else None
    m = wait_for(settled, timeout=15, what="node metrics written (written every 5 s)")
    assert m[("jga_builds_finished_total", (("result", "SUCCESS"),))] == 1
    assert m[("jga_builds_finished_total", (("result", "FAILURE"),))] == 1
    assert m[("jga_jobs_refused_total", ())] == 1
    assert m[("jga_dispatch_latency_seconds_count", ())] == 2
    assert m[("jga_registered_functions", ())] == 1
    assert ("jga_grabs_skipped_total", ()) in m and ("jga_map_version", ()) in m
    c = wait_for(lambda: os.path.exists(cpath) and samples(cpath), timeout=15, what="coordinator metrics")
    assert c[("jga_map_refreshes_total", ())] >= 1 and c[("jga_map_functions", ())] == 1


def test_json_logs_with_lifecycle_events(system):
    gm = system.gearmand()
    jk = system.jenkins(FX)
    system.coordinator(gm, jk)
    a = system.node(gm, jk, "n1", extra={"log": {"format": "json", "level": "info"}})
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="registered")
    assert final_event(perl_call(gm, "build:unit", "{}", unique="u-log"))["event"] == "complete"
    wait_for(lambda: '"event":"finished"' in a.log(), what="finished event")
    lines = [json.loads(l) for l in a.log().splitlines() if l.strip()]    # every line is JSON
    ev = {l["event"]: l for l in lines if "event" in l}
    assert ev["started"]["job"] == "unit" and ev["started"]["number"] == "1" and ev["started"]["unique"] == "u-log"
    assert ev["finished"]["result"] == "SUCCESS" and ev["finished"]["node"] == "n1"
    assert int(ev["finished"]["duration_ms"]) >= 0
    assert all({"time", "level", "prog", "pid", "msg"} <= set(l) for l in lines)
