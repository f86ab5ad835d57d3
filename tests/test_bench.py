"""make bench still works: bench/bench.py --quick, every scenario, checked.

The figures of a quick run are not the benchmark (that is `make bench`);
this asserts that every scenario ran to its end, measured what it claims
(numbers, not blanks), and that every build it submitted ran exactly once.
"""
import json
import math
import os
import subprocess

from conftest import BUILD, HERE

BENCH = os.path.join(os.path.dirname(HERE), "bench", "bench.py")

FIGURES = [
    "bare worker round trip p50 (SUBMIT_JOB -> WORK_COMPLETE)",
    "SUBMIT_JOB -> trigger at the master, p50",
    "build start -> WORK_DATA at the client, p50",
    "bare pool (80 workers): jobs completed per second",
    "agents: builds dispatched and completed per second",
    "CPU during the run: jenkins test server",
    "agent CPU per build",
    "bare pool CPU per job (gearmand + workers + client)",
    "all registered after a cold start of every agent",
    "all registered after gearmand SIGKILL + restart",
    "all registered after gearmand SIGKILL + restart, agents at nice 19",
    "unrelated SUBMIT_JOB_HIGH during the cold start storm, p99",
    "unrelated SUBMIT_JOB_HIGH during the gearmand restart storm, p99",
    "coordinator refresh, job list unchanged, CPU",
    "coordinator refresh, job list changed, CPU",
    "agent RSS (8 executors, 10000 functions)",
    "master requests per idle agent per minute",
]


def test_bench_quick(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run(["/usr/bin/python3", BENCH, "--quick", "--build", BUILD, "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, "bench.py --quick exited %d:\n%s\n%s" % (
        p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    res = json.loads((out / "results.json").read_text())
    assert res["problems"] == []
    assert res["machine"]["cores"] == os.cpu_count() and res["machine"]["date"]

    rows = {r["figure"]: r for r in res["rows"]}
    for f in FIGURES:
        assert f in rows, "figure %r missing from the table" % f
        v = rows[f]["measured"]
        assert isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, "%s: %r" % (f, v)
    # Numbers that cannot be zero if the scenario really ran.
    for f in ("SUBMIT_JOB -> trigger at the master, p50", "agents: builds dispatched and completed per second",
              "agent RSS (8 executors, 10000 functions)", "all registered after a cold start of every agent"):
        assert rows[f]["measured"] > 0, f
    rss = [r for r in res["rows"] if r["figure"].startswith("coordinator RSS (")]
    assert rss and rss[0]["measured"] > 0 and rss[0]["target"] == 64

    fig = res["figures"]
    # Every build a scenario submitted ran once in the test server, none twice.
    for what in ("latency", "throughput", "footprint"):
        once = fig["once"][what]
        assert once["builds"] > 0 and once["lost"] == 0 and once["duplicated"] == 0, (what, once)
    tp = fig["throughput"]
    assert tp["agent"]["complete"] == tp["builds"] and tp["jenkins_builds"] == tp["builds"]
    assert 0 < tp["http_floor_s"] < 0.01, tp["http_floor_s"]
    bound = [r for r in res["rows"] if r["figure"].startswith("throughput bound:")]
    assert bound and bound[0]["measured"] > 0 and bound[0]["baseline"] == rows[
        "bare pool (80 workers): jobs completed per second"]["measured"]
    assert fig["latency"]["agent"]["complete"] == fig["latency"]["builds"]
    reg = fig["registration"]
    assert reg["functions_total"] > 0 and reg["functions_per_node"]["min"] > 0
    for what, pr in reg["probes"].items():
        assert pr["not_completed"] == 0 and pr["during_storm"] > 0, (what, pr)
    assert reg["refresh_unchanged"]["requests"] == reg["refresh_changed"]["requests"]

    md = (out / "results.md").read_text()
    assert "| figure | measured | target | baseline | ratio | met |" in md
    assert "%d cores" % os.cpu_count() in md
    for f in FIGURES:
        assert "| %s |" % f in md
