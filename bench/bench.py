#!/usr/bin/python3
"""make bench: measure the agent against the floor gearmand sets (issue 7).

Every scenario runs real processes on loopback: gearmand, the Jenkins test
server (tests/jenkins), our coordinator and node agents, and the C programs
that are the baseline: bench/bare_pool (libgearman workers that only answer
WORK_COMPLETE), bench/bench_client (a libgearman client that times every
job), bench/lib_floor (the agent's libraries in an empty program, for
memory) and bench/http_floor (libcurl against a do-nothing HTTP server: the
least CPU a request to a master costs). The bare pool runs on the same
gearmand in the same run, so each of our figures sits next to the floor it
is compared with.

  latency       1 node x 4 executors, sequential zero-length builds:
                SUBMIT_JOB -> trigger at the master, build start -> WORK_DATA
  throughput    20 agents x 4 executors, 10,000 zero-length builds at
                concurrency 100, CPU seconds of every process; the most
                any agent could reach here (bare job + HTTP floor)
  registration  10,000 jobs (label expressions of 1-3 atoms) x 50 nodes x 8
                executors: cold start, gearmand SIGKILL + restart, both
                again with the agents at nice 19, a SUBMIT_JOB_HIGH probe
                every 10 ms meanwhile; coordinator refresh CPU and
                requests, coordinator RSS
  footprint     one agent, 8 executors, 10,000 functions: RSS (next to
                lib_floor's), idle CPU, idle requests, requests for one 30 s build

  bench.py [--quick] [--only NAME[,NAME]] [--out DIR] [--build DIR]

--quick shrinks every scenario (make check runs it to prove the benchmarks
still work; its figures are not the benchmark). Writes DIR/results.md (the
table the README shows) and DIR/results.json; exit 0 when every scenario
ran and every build ran exactly once, whether or not targets were met.
"""
import argparse
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests"))
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# ---------------------------------------------------------------- measuring

# The coordinator's line for each refresh, changed or not.
MAP_LINE = re.compile(r"\bmap \S+( unchanged|: \d+ jobs)")


def maps_logged(co):
    """How many refreshes the coordinator has logged."""
    return len(MAP_LINE.findall(co.log()))


def cpu_s(pid):
    """User + system CPU seconds a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def mem_kb(pid):
    """{rss, pss, uss, hwm} in kB (uss: pages only this process maps)."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                out[k] = int(v.split()[0])
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1])
    return {"rss": out["Rss"], "pss": out["Pss"],
            "uss": out["Private_Clean"] + out["Private_Dirty"], "hwm": out["hwm"]}


def pct(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def ms(us):
    return None if us is None else round(us / 1000.0, 2)


class Bin:
    def __init__(self, build):
        self.pool = os.path.join(build, "bench", "bare_pool")
        self.client = os.path.join(build, "bench", "bench_client")
        self.floor = os.path.join(build, "bench", "lib_floor")
        self.http = os.path.join(build, "bench", "http_floor")
        for p in (self.pool, self.client, self.floor, self.http):
            if not os.access(p, os.X_OK):
                sys.exit("bench: %s missing: run make bench-build" % p)


def clean_env():
    e = dict(os.environ)
    e.pop("GEARMAN_SERVERS", None)
    e.pop("GEARMAN_SERVER", None)
    return e


def lib_floor_mem(b):
    """mem_kb of bench/lib_floor: the agent's libraries, initialised, and nothing else."""
    p = subprocess.Popen([b.floor], stdout=subprocess.PIPE, env=clean_env(), text=True)
    try:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("lib_floor did not get ready (%r)" % line)
        return mem_kb(p.pid)
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()


def http_floor(b, n):
    """bench/http_floor: CPU seconds per request, libcurl and a do-nothing server together."""
    p = subprocess.run([b.http, str(n)], capture_output=True, text=True, env=clean_env(), timeout=300)
    if p.returncode != 0:
        raise RuntimeError("http_floor failed: %s" % p.stderr.strip())
    r = json.loads(p.stdout)
    return r["cpu_s"] / r["requests"]


class BarePool:
    """bench/bare_pool: N bare workers; started() returns once all are ready."""

    def __init__(self, b, tmp, gm, n, funcs=(), func_file=None, ident="bare"):
        cmd = [b.pool, "-s", gm.server, "-n", str(n), "-i", ident]
        for f in funcs:
            cmd += ["-f", f]
        if func_file:
            cmd += ["-F", func_file]
        self.err = open(os.path.join(tmp, "bare_pool-%s.err" % ident), "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     env=clean_env(), text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.stop()
            raise RuntimeError("bare_pool did not get ready (%r)" % line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class Client:
    """bench/bench_client run to its end: .summary, .recs, .cpu (its own CPU seconds)."""

    def __init__(self, b, tmp, gm, funcs, n=None, c=1, workload=None, high=False,
                 interval_ms=None, duration_s=None, timeout_ms=60000, tag="client"):
        self.out = os.path.join(tmp, "%s.jsonl" % tag)
        cmd = [b.client, "-s", gm.server, "-c", str(c), "-t", str(timeout_ms), "-o", self.out]
        for f in funcs:
            cmd += ["-f", f]
        if n is not None:
            cmd += ["-n", str(n)]
        if workload is not None:
            cmd += ["-w", workload]
        if high:
            cmd.append("--high")
        if interval_ms is not None:
            cmd += ["--interval-ms", str(interval_ms)]
        if duration_s is not None:
            cmd += ["--duration-s", str(duration_s)]
        self.err = os.path.join(tmp, "%s.err" % tag)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         env=clean_env(), text=True)

    def wait(self):
        out = self.proc.stdout.read()
        _, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = ru.ru_utime + ru.ru_stime
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if not lines:
            with open(self.err) as f:
                raise RuntimeError("bench_client printed no summary: %s" % f.read()[-2000:])
        self.summary = json.loads(lines[-1])
        with open(self.out) as f:
            self.recs = [json.loads(l) for l in f if l.strip()]
        return self


def status_counts(gm):
    """{function: available workers} from gearmand's text protocol."""
    return {f: v[2] for f, v in gm.status().items()}


# ---------------------------------------------------------------- fixtures

def pool_fixture(nodes, executors):
    """One dispatchable job, every node can run it, builds start at once."""
    return {"version": "2.479.3", "quiet_period": 0,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] +
                     [{"name": n, "labels": "bench", "executors": executors, "mode": "NORMAL"}
                      for n in nodes],
            "jobs": [{"name": "bench", "label": "bench", "concurrent": True, "duration": 0,
                      "estimated_duration": 0,
                      "params": [{"type": "label", "name": "NODE_LABEL"},
                                 {"type": "string", "name": "GEARMAN_UNIQUE"},
                                 {"type": "string", "name": "DURATION", "default": ""}]}]}


def scale_fixture(njobs, nnodes, executors, seed=7):
    """A master like a big shop's: nodes with an OS, an arch, a zone and 0-2
    extras; jobs whose label expression has 1-3 atoms."""
    rnd = random.Random(seed)
    oses = ["linux"] * 70 + ["windows"] * 15 + ["mac"] * 15
    extras = ["docker", "gpu", "large"]
    nodes = [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}]
    for i in range(nnodes):
        labels = [rnd.choice(oses), rnd.choice(["x86", "arm"]), "z%d" % rnd.randint(1, 5)]
        labels += rnd.sample(extras, rnd.randint(0, 2))
        nodes.append({"name": "n%02d" % i, "labels": " ".join(labels),
                      "executors": executors, "mode": "NORMAL"})
    atoms = ["linux", "windows", "mac", "x86", "arm", "docker", "gpu", "large"] + \
            ["z%d" % i for i in range(1, 6)]
    jobs = []
    for j in range(njobs):
        k = rnd.randint(1, 3)
        picked = rnd.sample(atoms, k)
        expr = picked[0]
        for a in picked[1:]:
            expr += rnd.choice([" && ", " && ", " || ", " && !"]) + a
        jobs.append({"name": "job-%05d" % j, "label": expr, "concurrent": True,
                     "params": [{"type": "label", "name": "NODE_LABEL"}]})
    return {"version": "2.479.3", "quiet_period": 0, "nodes": nodes, "jobs": jobs}


def footprint_fixture(nfunctions, executors):
    """One node; nfunctions/2 jobs on its one label: build:$job + build:$job:fp."""
    jobs = [{"name": "job-%05d" % j, "label": "fp", "concurrent": True,
             "params": [{"type": "label", "name": "NODE_LABEL"}]} for j in range(nfunctions // 2)]
    jobs[0]["params"] += [{"type": "string", "name": "DURATION", "default": ""},
                          {"type": "string", "name": "GEARMAN_UNIQUE"}]
    return {"version": "2.479.3", "quiet_period": 0,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                      {"name": "fp1", "labels": "fp", "executors": executors, "mode": "NORMAL"}],
            "jobs": jobs}


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.bin = Bin(args.build)
        self.rows = []       # the table
        self.figures = {}    # everything measured, for results.json
        self.problems = []   # lost or duplicated builds: the run is wrong

    def row(self, figure, measured, unit, target=None, better="low", baseline=None,
            ratio=None, note=""):
        met = None
        if target is not None and measured is not None:
            met = measured <= target if better == "low" else measured >= target
        self.rows.append({"figure": figure, "measured": measured, "unit": unit, "target": target,
                          "better": better, "baseline": baseline, "ratio": ratio, "met": met,
                          "note": note})
        print("  %-58s %10s %-6s target %s%s" % (
            figure, measured, unit, "-" if target is None else
            ("<= " if better == "low" else ">= ") + str(target),
            "" if met is None else ("  met" if met else "  MISSED")), flush=True)

    def system(self, name):
        from conftest import System
        tmp = tempfile.mkdtemp(prefix="jga-bench-%s-" % name)
        return System(tmp)

    def jenkins(self, system, fixture):
        from jkctl import JenkinsServer
        j = JenkinsServer(fixture, quiet=True)
        j.START_TIMEOUT = 120
        j.start()
        system.items.append(j)
        return j

    def node(self, system, gm, jk, name, status_interval=10, refresh=30, nice=0):
        return system.node(gm, jk, name, refresh=refresh, nice=nice,
                           extra={"node": {"status_interval": status_interval},
                                  "log": {"level": "info"}})

    def check_once(self, jk, uniques, what):
        """Every unique ran exactly once as a Jenkins build: else the run is wrong."""
        seen = {}
        for b in jk.builds():
            u = b["params"].get("GEARMAN_UNIQUE")
            if u is not None:
                seen[u] = seen.get(u, 0) + 1
        lost = [u for u in uniques if seen.get(u, 0) == 0]
        dup = [u for u in uniques if seen.get(u, 0) > 1]
        self.figures.setdefault("once", {})[what] = {"builds": len(uniques), "lost": len(lost),
                                                     "duplicated": len(dup)}
        if lost or dup:
            self.problems.append("%s: %d builds lost, %d duplicated (e.g. %s)" %
                                 (what, len(lost), len(dup), (lost + dup)[:3]))

    # ------------------------------------------------------------ latency

    def latency(self):
        n = 200 if self.quick else 1000
        print("latency: %d sequential zero-length builds, 1 node x 4 executors" % n, flush=True)
        s = self.system("latency")
        try:
            gm = s.gearmand()
            bp = BarePool(self.bin, s.tmp, gm, 4, ["bare:bench"])
            Client(self.bin, s.tmp, gm, ["bare:bench"], n=50, tag="bare-warm").wait()
            bare = Client(self.bin, s.tmp, gm, ["bare:bench"], n=n, tag="bare").wait()
            bp.stop()
            jk = self.jenkins(s, pool_fixture(["lat1"], 4))
            s.coordinator(gm, jk, extra={"log": {"level": "info"}})
            self.node(s, gm, jk, "lat1")
            from conftest import wait_for
            wait_for(lambda: status_counts(gm).get("build:bench") == 1, timeout=30,
                     what="lat1 registered build:bench")
            Client(self.bin, s.tmp, gm, ["build:bench"], n=20, tag="warm").wait()
            jk.reset_requests()
            c = Client(self.bin, s.tmp, gm, ["build:bench"], n=n, timeout_ms=30000, tag="agent").wait()
            reqs = jk.requests()
            builds = {b["params"].get("GEARMAN_UNIQUE"): b for b in jk.builds()}
            self.check_once(jk, [r["unique"] for r in c.recs], "latency")
        finally:
            s.cleanup()
        trig = {}
        for r in reqs:
            if r["method"] == "POST" and "buildWithParameters" in r["path"]:
                u = urllib.parse.parse_qs(r["body"]).get("GEARMAN_UNIQUE", [None])[0]
                if u is not None:
                    trig.setdefault(u, r["time"])
        to_trigger, start_to_data = [], []
        for rec in c.recs:
            u = rec["unique"]
            if u in trig:
                to_trigger.append(trig[u] * 1e6 - rec["submit"])
            b = builds.get(u)
            if b and rec["data"]:
                start_to_data.append(rec["data"] - b["start"] * 1e6)
        bare_p50 = bare.summary["rtt_p50_ms"]
        t50, t99 = ms(pct(to_trigger, 50)), ms(pct(to_trigger, 99))
        d50, d99 = ms(pct(start_to_data, 50)), ms(pct(start_to_data, 99))
        self.figures["latency"] = {"builds": n, "bare": bare.summary, "agent": c.summary,
                                   "submit_to_trigger_ms": [t50, t99],
                                   "start_to_work_data_ms": [d50, d99],
                                   "requests_per_build": round(len(reqs) / n, 2)}
        self.row("bare worker round trip p50 (SUBMIT_JOB -> WORK_COMPLETE)", bare_p50, "ms")
        self.row("bare worker round trip p99", bare.summary["rtt_p99_ms"], "ms")
        self.row("SUBMIT_JOB -> trigger at the master, p50", t50, "ms",
                 target=round(bare_p50 + 2, 2), baseline=bare_p50,
                 ratio=round(t50 / bare_p50, 1) if bare_p50 else None,
                 note="target: bare round trip + 2 ms")
        self.row("SUBMIT_JOB -> trigger at the master, p99", t99, "ms", baseline=bare.summary["rtt_p99_ms"])
        self.row("build start -> WORK_DATA at the client, p50", d50, "ms", target=100)
        self.row("build start -> WORK_DATA at the client, p99", d99, "ms")
        self.row("SUBMIT_JOB -> WORK_DATA at the client, p50", c.summary["data_p50_ms"], "ms")
        self.row("master requests per zero-length build", round(len(reqs) / n, 2), "req")

    # ------------------------------------------------------------ throughput

    def throughput(self):
        agents, execs = (20, 4)
        n = 600 if self.quick else 10000
        conc = 100
        print("throughput: %d agents x %d executors, %d zero-length builds, %d clients"
              % (agents, execs, n, conc), flush=True)
        s = self.system("throughput")
        try:
            gm = s.gearmand()
            bp = BarePool(self.bin, s.tmp, gm, agents * execs, ["bare:bench"])
            g0, b0 = cpu_s(gm.proc.pid), cpu_s(bp.proc.pid)
            bare = Client(self.bin, s.tmp, gm, ["bare:bench"], n=n, c=conc, tag="bare").wait()
            bare_cpu = {"gearmand": cpu_s(gm.proc.pid) - g0, "bare_pool": cpu_s(bp.proc.pid) - b0,
                        "bench_client": bare.cpu}
            bp.stop()
            http_s = http_floor(self.bin, 2000 if self.quick else 20000)
            names = ["tp%02d" % i for i in range(agents)]
            jk = self.jenkins(s, pool_fixture(names, execs))
            co = s.coordinator(gm, jk, extra={"log": {"level": "info"}})
            nodes = [self.node(s, gm, jk, nm) for nm in names]
            from conftest import wait_for
            wait_for(lambda: status_counts(gm).get("build:bench") == agents, timeout=60,
                     what="%d agents registered build:bench" % agents)
            jk.reset_requests()
            pids = {"gearmand": [gm.proc.pid], "jenkins test server": [jk.pid],
                    "coordinator": [co.proc.pid], "agents (all %d)" % agents: [a.proc.pid for a in nodes]}
            before = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
            c = Client(self.bin, s.tmp, gm, ["build:bench"], n=n, c=conc, timeout_ms=600000,
                       tag="agent").wait()
            after = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
            nreq = len(jk.requests())
            builds = jk.builds()
            self.check_once(jk, [r["unique"] for r in c.recs], "throughput")
        finally:
            s.cleanup()
        elapsed = c.summary["elapsed_s"]
        cpu = {k: round(after[k] - before[k], 2) for k in before}
        cpu["bench_client"] = round(c.cpu, 2)
        rate, bare_rate = c.summary["rate"], bare.summary["rate"]
        agent_cpu = cpu["agents (all %d)" % agents]
        per_build_ms = agent_cpu / max(1, c.summary["complete"]) * 1000
        self.figures["throughput"] = {
            "builds": n, "concurrency": conc, "agent": c.summary, "bare": bare.summary,
            "cpu_s": cpu, "bare_cpu_s": bare_cpu, "elapsed_s": elapsed,
            "master_requests": nreq, "jenkins_builds": len(builds), "http_floor_s": http_s,
            "agent_cpu_ms_per_build": round(per_build_ms, 3)}
        self.row("bare pool (80 workers): jobs completed per second", bare_rate, "jobs/s")
        self.row("agents: builds dispatched and completed per second", rate, "builds/s",
                 target=round(0.5 * bare_rate, 1), better="high", baseline=bare_rate,
                 ratio=round(rate / bare_rate, 3) if bare_rate else None,
                 note="target: 0.5 x bare pool")
        for k, v in cpu.items():
            self.row("CPU during the run: %s" % k, round(100.0 * v / elapsed, 1), "% core")
        self.row("agent CPU per build", round(per_build_ms, 3), "ms")
        self.row("agent-bound capacity (all cores / agent CPU per build)",
                 round(os.cpu_count() * 1000.0 / per_build_ms), "builds/s",
                 baseline=bare_rate, ratio=round(os.cpu_count() * 1000.0 / per_build_ms / bare_rate, 3))
        self.row("master requests per build", round(nreq / n, 2), "req")
        # The most any agent could reach here: each build costs at least a
        # bare job (gearmand, worker and client) plus its requests, each at
        # least what libcurl and a master that does nothing cost together.
        bare_job_ms = 1000.0 * sum(bare_cpu.values()) / max(1, bare.summary["complete"])
        self.row("bare pool CPU per job (gearmand + workers + client)", round(bare_job_ms, 3), "ms")
        self.row("HTTP request floor (bench/http_floor: libcurl, kept connection, "
                 "do-nothing server; CPU of both)", round(1000.0 * http_s, 4), "ms")
        bound = os.cpu_count() * 1000.0 / (bare_job_ms + nreq / n * 1000.0 * http_s)
        self.row("throughput bound: all cores / (bare CPU per job + master requests per build "
                 "x HTTP floor)", round(bound), "builds/s", baseline=bare_rate,
                 ratio=round(bound / bare_rate, 3) if bare_rate else None,
                 note="the most an agent that costs no more than a bare worker could reach "
                      "with a master that does nothing")

    # ------------------------------------------------------------ registration

    def registration(self):
        njobs, nnodes, execs = (1000, 10, 8) if self.quick else (10000, 50, 8)
        print("registration: %d jobs x %d nodes x %d executors" % (njobs, nnodes, execs), flush=True)
        from conftest import wait_for, Gearmand
        s = self.system("registration")
        probes = []
        try:
            gm = s.gearmand()
            fixture = scale_fixture(njobs, nnodes, execs)
            t = time.monotonic()
            jk = self.jenkins(s, fixture)
            print("  test server up with %d jobs in %.1f s" % (njobs, time.monotonic() - t), flush=True)
            # the default refresh (30 s) through the storms: a refresh makes the test
            # server write 4.5 MB of JSON in Python, on the cores the storm shares
            co = s.coordinator(gm, jk, refresh=30, extra={"log": {"level": "debug"}})
            wait_for(lambda: "map " in co.log() and " functions" in co.log(), timeout=120,
                     what="coordinator's first map")
            first_map_cpu = cpu_s(co.proc.pid)
            comem_first = mem_kb(co.proc.pid)
            expected = self.expected_counts(gm, fixture)
            total = sum(expected.values())
            per_node = self.per_node
            times, cpu, gm_cur, nodes = {}, {}, gm, []
            # Four storms: every agent started at once (cold start), then gearmand
            # SIGKILLed and restarted on the same port; both again with the agents
            # at nice 19. Here 50 agents share 2 cores with gearmand; on real nodes
            # their CPU is not gearmand's.
            for what, nice in (("cold start", 0), ("gearmand restart", 0),
                               ("cold start, agents at nice 19", 19),
                               ("gearmand restart, agents at nice 19", 19)):
                restart = what.startswith("gearmand restart")
                if not restart and nodes:
                    for a in nodes:
                        a.signal(signal.SIGTERM)
                    for a in nodes:
                        a.stop()
                    def gone():
                        st = status_counts(gm_cur)
                        return not any(st.get(f) for f in expected)
                    wait_for(gone, timeout=30, interval=0.2, what="the stopped agents' functions gone")
                if restart:
                    # the agents reconnect as soon as gearmand listens: the storm
                    # starts there, and the probes with it
                    gm_cur.kill()
                    gm_cur = Gearmand(s.tmp, port=gm.port).start()
                    s.items.append(gm_cur)
                    g0, t0 = cpu_s(gm_cur.proc.pid), time.time()
                    a0 = sum(cpu_s(a.proc.pid) for a in nodes)
                # a fresh probe worker each time: after a restart, bare_pool's own
                # reconnect pause would count as latency
                probe = BarePool(self.bin, s.tmp, gm_cur, 1, ["bench:probe"], ident="probe-%d" % len(probes))
                s.items.append(_Stopper(probe))
                pc = Client(self.bin, s.tmp, gm_cur, ["bench:probe"], high=True, interval_ms=10,
                            duration_s=3600, timeout_ms=20000, tag="probe-%d" % len(probes))
                if not restart:
                    time.sleep(0.5)   # a baseline of quiet probes before the storm
                    g0, t0, a0 = cpu_s(gm_cur.proc.pid), time.time(), 0
                    nodes = [self.node(s, gm, jk, "n%02d" % i, nice=nice) for i in range(nnodes)]
                times[what] = self.wait_registered(gm_cur, expected, nodes, t0, what)
                cpu[what] = {"gearmand_s": round(cpu_s(gm_cur.proc.pid) - g0, 2),
                             "agents_s": round(sum(cpu_s(a.proc.pid) for a in nodes) - a0, 2)}
                time.sleep(0.5)
                pc.proc.send_signal(signal.SIGINT)
                pc.wait()
                probe.stop()
                probes.append((what, pc, t0, t0 + times[what]))

            comem_storms = mem_kb(co.proc.pid)
            agmem = max((mem_kb(a.proc.pid) for a in nodes), key=lambda m: m["rss"])
            # coordinator refreshes, job list unchanged, then changed every time; the
            # agents are stopped first, so that every request and every CPU second
            # counted is the coordinator's
            for a in nodes:
                a.signal(signal.SIGTERM)
            for a in nodes:
                a.stop()
            self.set_refresh(co, 2)
            refresh = self.refreshes(co, jk, changed=False)
            refresh_changed = self.refreshes(co, jk, changed=True)
            comem = mem_kb(co.proc.pid)
        finally:
            s.cleanup()
        self.figures["registration"] = {
            "jobs": njobs, "nodes": nnodes, "executors": execs, "functions_total": total,
            "functions_per_node": {"min": min(per_node), "avg": round(sum(per_node) / len(per_node)),
                                   "max": max(per_node)},
            "registered_s": times, "storm_cpu": cpu,
            "coordinator_first_map_cpu_s": round(first_map_cpu, 3),
            "refresh_unchanged": refresh, "refresh_changed": refresh_changed,
            "coordinator_mem_kb": comem, "coordinator_mem_kb_first_map": comem_first,
            "coordinator_mem_kb_after_storms": comem_storms,
            "largest_agent_mem_kb": agmem, "probes": {}}
        self.row("functions registered (%d nodes; per node min/avg/max %d/%d/%d)" %
                 (nnodes, min(per_node), sum(per_node) // len(per_node), max(per_node)), total, "")
        for what, t in times.items():
            self.row("all registered after %s" % what.replace("gearmand restart", "gearmand SIGKILL + restart")
                     .replace("cold start", "a cold start of every agent"), t, "s", target=5)
        for what, c in cpu.items():
            self.row("CPU in the %s storm: gearmand / all agents" % what,
                     "%s / %s" % (c["gearmand_s"], c["agents_s"]), "s")
        for what, pc, a, b in probes:
            lat = [r["complete"] - r["submit"] for r in pc.recs if r["complete"]]
            bad = sum(1 for r in pc.recs if r["status"] != "complete")
            inside = [r["complete"] - r["submit"] for r in pc.recs
                      if r["complete"] and a * 1e6 <= r["submit"] <= b * 1e6]
            p50, p99 = ms(pct(inside, 50)), ms(pct(inside, 99))
            quiet = [r["complete"] - r["submit"] for r in pc.recs if r["complete"] and r["submit"] < a * 1e6]
            self.figures["registration"]["probes"][what] = {
                "probes": len(pc.recs), "during_storm": len(inside), "not_completed": bad,
                "p50_ms": p50, "p99_ms": p99, "max_ms": ms(max(inside) if inside else None),
                "all_p99_ms": ms(pct(lat, 99)), "before_storm_p50_ms": ms(pct(quiet, 50))}
            self.row("unrelated SUBMIT_JOB_HIGH during the %s storm, p50 (%d probes)"
                     % (what, len(inside)), p50, "ms", baseline=ms(pct(quiet, 50)) if quiet else None)
            self.row("unrelated SUBMIT_JOB_HIGH during the %s storm, p99" % what, p99, "ms", target=50)
            if bad:
                self.problems.append("%s: %d probe jobs did not complete" % (what, bad))
        self.row("coordinator first map (cold), CPU", round(first_map_cpu * 1000), "ms")
        self.row("coordinator refresh, job list unchanged, CPU", refresh["cpu_ms"], "ms", target=200)
        self.row("coordinator refresh, job list changed, CPU", refresh_changed["cpu_ms"], "ms", target=200)
        self.row("master requests per refresh (unchanged / changed)",
                 "%s / %s" % (refresh["requests"], refresh_changed["requests"]), "req",
                 note="constant: independent of jobs and nodes")
        self.row("coordinator RSS after its first map", round(comem_first["rss"] / 1024, 1), "MB")
        self.row("coordinator RSS after serving %d agents through the storms" % nnodes,
                 round(comem_storms["rss"] / 1024, 1), "MB")
        self.row("coordinator RSS (%d jobs x %d nodes), after the refreshes" % (njobs, nnodes),
                 round(comem["rss"] / 1024, 1), "MB", target=64)
        self.row("coordinator peak RSS (VmHWM)", round(comem["hwm"] / 1024, 1), "MB", target=64)

    def expected_counts(self, gm, fixture):
        """{function: nodes that must register it}, from the coordinator's per-node slices."""
        from conftest import gearman_cli
        counts, self.per_node = {}, []
        for n in fixture["nodes"][1:]:
            rc, out, err = gearman_cli(gm, "project_map:jenkins01", json.dumps({"node": n["name"]}),
                                       timeout_ms=30000)
            if rc != 0:
                raise RuntimeError("project_map for %s: rc %d %s" % (n["name"], rc, err))
            fns = [f["name"] for f in json.loads(out)["functions"]]
            self.per_node.append(len(fns))
            for f in fns:
                counts[f] = counts.get(f, 0) + 1
        return counts

    def wait_registered(self, gm, expected, nodes, t0, what):
        """Seconds from t0 until every function is registered with all its nodes.

        Polling gearmand's `status` (tens of thousands of lines) during the
        storm would slow the very probes we measure, so: wait until every
        agent has logged "N functions registered" after t0 (it logs once its
        CAN_DOs are written), then ask gearmand once; it must agree. The
        figure is the later of the last agent's line and gearmand's answer
        when that answer came back complete at once, else the time gearmand
        first agreed."""
        line = re.compile(r"^(\S+) jga-node\[\d+\] info: \S+: (\d+) functions registered on gearmand",
                          re.M)
        deadline = time.time() + 120

        def last_line_time(d):
            ts = [datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
                  .replace(tzinfo=datetime.timezone.utc).timestamp() for m in line.finditer(d.log())]
            ts = [t for t in ts if t >= t0 - 0.002]
            return ts[-1] if ts else None
        while time.time() < deadline:
            times = [last_line_time(d) for d in nodes]
            if all(times):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("%s: %d agents did not log their registration within 120 s"
                                 % (what, sum(1 for t in times if not t)))
        logged = max(times)
        polls = 0
        while time.time() < deadline:
            st = status_counts(gm)
            polls += 1
            if all(st.get(f, 0) >= k for f, k in expected.items()):
                done = max(logged, time.time()) if polls > 1 else logged
                return round(done - t0, 2)
            time.sleep(0.05)
        missing = sum(1 for f, k in expected.items() if st.get(f, 0) < k)
        raise AssertionError("%s: %d functions still not registered after 120 s" % (what, missing))

    def set_refresh(self, co, seconds):
        """Rewrite the coordinator's refresh, SIGHUP it, and wait for the refresh
        that ends the sleep under the old interval."""
        from conftest import wait_for
        with open(co.path) as f:
            ini = f.read()
        with open(co.path, "w") as f:
            f.write(re.sub(r"(?m)^refresh = \d+$", "refresh = %d" % seconds, ini))
        n0 = maps_logged(co)
        co.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload: " in co.log(), timeout=10, what="the coordinator's reload")
        wait_for(lambda: maps_logged(co) > n0, timeout=40, what="a coordinator refresh")

    def refreshes(self, co, jk, changed):
        """Coordinator CPU and master requests per refresh, over a few refreshes;
        with changed, a job is added to the master before each of them."""
        count = 3 if self.quick else 5
        from conftest import wait_for
        n0 = maps_logged(co)
        wait_for(lambda: maps_logged(co) > n0, timeout=30, what="a coordinator refresh")
        jk.reset_requests()
        c0, n0 = cpu_s(co.proc.pid), maps_logged(co)
        for i in range(count):
            if changed:
                jk.add_job({"name": "added-%d-%d" % (i, time.time_ns()), "label": "linux",
                            "concurrent": True, "params": [{"type": "label", "name": "NODE_LABEL"}]})
            wait_for(lambda: maps_logged(co) >= n0 + i + 1, timeout=30, what="refresh %d" % (i + 1))
        time.sleep(0.5)    # the refresh logs its map, then frees the old one
        done = maps_logged(co) - n0
        cpu = cpu_s(co.proc.pid) - c0
        reqs = len(jk.requests())
        return {"refreshes": done, "cpu_ms": round(cpu * 1000 / done), "requests": round(reqs / done, 1)}

    # ------------------------------------------------------------ footprint

    def footprint(self):
        nfun, execs = 10000, 8
        idle_s = 5 if self.quick else 60
        build_s = 3 if self.quick else 30
        print("footprint: one agent, %d executors, %d functions; idle %d s; one %d s build"
              % (execs, nfun, idle_s, build_s), flush=True)
        from conftest import wait_for
        s = self.system("footprint")
        try:
            gm = s.gearmand()
            jk = self.jenkins(s, footprint_fixture(nfun, execs))
            s.coordinator(gm, jk, refresh=3600, extra={"log": {"level": "info"}})
            bp = BarePool(self.bin, s.tmp, gm, execs, [], func_file=self.function_file(s.tmp, nfun),
                          ident="fp-bare")
            bare_mem = mem_kb(bp.proc.pid)
            bp.stop()      # it would take the agent's jobs
            floor_mem = lib_floor_mem(self.bin)
            ag = self.node(s, gm, jk, "fp1", refresh=30)
            wait_for(lambda: len(gm.functions_of("fp1") or []) == nfun, timeout=60,
                     what="fp1 registered %d functions" % nfun)
            # one build of the same length first: Jenkins then has an estimate, as for any
            # job that ran before
            Client(self.bin, s.tmp, gm, ["build:job-00000"], n=1,
                   workload=json.dumps({"DURATION": str(build_s)}), timeout_ms=(build_s + 60) * 1000,
                   tag="first").wait()
            wait_for(lambda: all(not b["building"] for b in jk.builds()), what="first build ended")
            time.sleep(1)
            jk.reset_requests()
            c0, t0 = cpu_s(ag.proc.pid), time.monotonic()
            time.sleep(idle_s)        # the measurement is of doing nothing
            idle_cpu = cpu_s(ag.proc.pid) - c0
            idle_wall = time.monotonic() - t0
            idle_reqs = len(jk.requests())
            m = mem_kb(ag.proc.pid)
            jk.reset_requests()
            c = Client(self.bin, s.tmp, gm, ["build:job-00000"], n=1,
                       workload=json.dumps({"DURATION": str(build_s)}), timeout_ms=(build_s + 60) * 1000,
                       tag="long").wait()
            build_reqs = jk.requests()
            if c.summary["complete"] != 1:
                self.problems.append("footprint: the %d s build did not complete: %s %s"
                                     % (build_s, c.summary, c.recs))
            self.check_once(jk, [r["unique"] for r in c.recs], "footprint")
            m_after = mem_kb(ag.proc.pid)
        finally:
            s.cleanup()
        self.figures["footprint"] = {
            "functions": nfun, "executors": execs, "mem_kb": m, "mem_kb_after_build": m_after,
            "bare_pool_mem_kb": bare_mem, "lib_floor_mem_kb": floor_mem,
            "idle_s": round(idle_wall, 1), "idle_cpu_s": idle_cpu,
            "idle_requests": idle_reqs, "build_s": build_s, "build_requests": len(build_reqs),
            "build_request_paths": sorted(set(r["method"] + " " + r["path"].split("?")[0]
                                              for r in build_reqs))}
        self.row("agent RSS (8 executors, %d functions)" % nfun, round(m["rss"] / 1024, 1), "MB",
                 target=8, baseline=round(bare_mem["rss"] / 1024, 1),
                 ratio=round(m["rss"] / bare_mem["rss"], 2),
                 note="baseline: bare pool, 8 workers x %d functions" % nfun)
        self.row("the agent's libraries alone, initialised (bench/lib_floor)",
                 round(floor_mem["rss"] / 1024, 1), "MB",
                 note="the least RSS of any program on Debian's libcurl, libgearman, jansson, inih; "
                      "the agent's own share is %.1f MB" % ((m["rss"] - floor_mem["rss"]) / 1024))
        self.row("agent private memory (USS) / PSS", "%.1f / %.1f" % (m["uss"] / 1024, m["pss"] / 1024),
                 "MB", baseline="%.1f / %.1f" % (bare_mem["uss"] / 1024, bare_mem["pss"] / 1024))
        self.row("agent peak RSS (VmHWM)", round(m_after["hwm"] / 1024, 1), "MB")
        self.row("agent idle CPU over %.0f s" % idle_wall, round(100 * idle_cpu / idle_wall, 3), "%",
                 target=0.1)
        self.row("master requests per idle agent per minute", round(idle_reqs * 60 / idle_wall, 1),
                 "req", target=6)
        self.row("master requests for one %d s build" % build_s, len(build_reqs), "req", target=10)

    def function_file(self, tmp, nfun):
        path = os.path.join(tmp, "functions.txt")
        with open(path, "w") as f:
            for j in range(nfun // 2):
                f.write("build:job-%05d\nbuild:job-%05d:fp\n" % (j, j))
        return path

    # ------------------------------------------------------------ report

    def machine(self):
        model = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        gv = subprocess.run(["gearmand", "--version"], capture_output=True, text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", TOP, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "cores": os.cpu_count(), "cpu": model, "gearmand": gv,
                "commit": commit + ("+changes" if dirty else ""), "quick": self.quick}

    def write(self, out):
        os.makedirs(out, exist_ok=True)
        m = self.machine()
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"machine": m, "rows": self.rows, "figures": self.figures,
                       "problems": self.problems}, f, indent=1, sort_keys=True)
        lines = ["# Benchmark results%s" % (" (--quick: a smoke run, not the benchmark)" if self.quick else ""),
                 "",
                 "%s, %d cores (%s), %s, commit %s. Written by `make bench` (bench/bench.py)."
                 % (m["date"], m["cores"], m["cpu"], m["gearmand"], m["commit"]),
                 "Baseline: bench/bare_pool and bench/bench_client (bare libgearman) on the same gearmand "
                 "in the same run; ratio = measured / baseline. Memory also next to bench/lib_floor, "
                 "the agent's libraries initialised in an otherwise empty program.", "",
                 "| figure | measured | target | baseline | ratio | met |",
                 "|---|---|---|---|---|---|"]

        def cell(v, unit=""):
            if v is None:
                return ""
            return ("%s %s" % (v, unit)).strip()
        for r in self.rows:
            tgt = "" if r["target"] is None else ("≤ " if r["better"] == "low" else "≥ ") + cell(r["target"], r["unit"])
            if r["note"]:
                tgt = (tgt + " (" + r["note"] + ")") if tgt else r["note"]
            met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                r["figure"], cell(r["measured"], r["unit"]), tgt,
                cell(r["baseline"], r["unit"] if r["baseline"] is not None else ""),
                cell(r["ratio"]), met))
        if self.problems:
            lines += ["", "Problems (the run is wrong, not slow):", ""] + ["- " + p for p in self.problems]
        text = "\n".join(lines) + "\n"
        with open(os.path.join(out, "results.md"), "w") as f:
            f.write(text)
        print()
        print(text)


class _Stopper:
    """Lets System.cleanup() stop a BarePool."""

    def __init__(self, pool):
        self.pool = pool

    def stop(self):
        self.pool.stop()


SCENARIOS = ["latency", "throughput", "registration", "footprint"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs: prove the benchmarks work")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    ap.add_argument("--out", default=HERE, help="directory for results.md and results.json")
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    os.environ["JGA_BUILD"] = args.build
    if not os.path.exists("/usr/sbin/gearmand") and "/usr/sbin" not in os.environ.get("PATH", ""):
        os.environ["PATH"] += ":/usr/sbin"
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    for s in only:
        if s not in SCENARIOS:
            ap.error("unknown scenario %r (have %s)" % (s, ", ".join(SCENARIOS)))
    b = Bench(args)
    for s in only:
        getattr(b, s)()
    b.write(args.out)
    if b.problems:
        print("bench: the run is wrong:\n  " + "\n  ".join(b.problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
