"""make bench still works: bench/bench.py --quick, every scenario, checked.

The figures of a quick run are not the benchmark (that is `make bench`);
this asserts that every scenario ran to its end, measured what it claims
(numbers, not blanks), and that every build it submitted ran exactly once.
For the utilisation rows (issue 14) it checks their form, not whether the
agent meets their targets.
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

# issue 14: (figure, unit, target); the targets are the agent's, met or not
UTILISATION = [
    ("utilisation: executor-seconds idle while a Gearman job waited, share of all", "%", 2),
    ("utilisation: executor freed while a job waited -> next build on it, p50", "s", 1),
    ("utilisation: executor freed while a job waited -> next build on it, max", "s", 2),
    ("utilisation: master requests per node per minute, a job waiting and the node full of "
     "native builds", "req", 60),
    ("utilisation: master requests per node per minute, idle (nothing waiting, no build)", "req", 0),
]


def test_bench_quick(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run(["/usr/bin/python3", BENCH, "--quick", "--build", BUILD, "--out", str(out)],
                       capture_output=True, text=True, timeout=360, env=env)
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
    for what in ("latency", "throughput", "footprint", "utilisation"):
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

    # utilisation: the rows are there and well-formed (whether the agent meets
    # the targets is not this test's business)
    for f, unit, target in UTILISATION:
        assert f in rows, "figure %r missing from the table" % f
        r = rows[f]
        v = r["measured"]
        assert isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, "%s: %r" % (f, v)
        assert r["unit"] == unit and r["target"] == target and r["better"] == "low", r
        assert r["met"] == (v <= target), r
    ut = fig["utilisation"]
    assert rows[UTILISATION[0][0]]["measured"] <= 100
    assert rows[UTILISATION[1][0]]["measured"] <= rows[UTILISATION[2][0]]["measured"]
    assert ut["masters"] == 2 and ut["nodes"] == 4 and abs(ut["window_s"] - ut["run_s"]) < 1, ut
    # the workload really ran: jobs were kept waiting, native builds ran next
    # to them, executors were freed while a job waited
    assert ut["native_builds"] > 0 and ut["jobs_completed"] > 0 and ut["reuse_events"] > 0, ut
    assert ut["native_full_s"] > 0 and ut["idle_s"] > 0, ut
    for n, pn in ut["per_node"].items():
        assert pn["waiting_s"] > 0.9 * ut["run_s"], (n, pn)
    assert abs(ut["idle_share_pct"] - rows[UTILISATION[0][0]]["measured"]) < 0.01

    md = (out / "results.md").read_text()
    assert "| figure | measured | target | baseline | ratio | met |" in md
    assert "%d cores" % os.cpu_count() in md
    for f in FIGURES + [u[0] for u in UTILISATION]:
        assert "| %s |" % f in md
