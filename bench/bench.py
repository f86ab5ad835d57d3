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
  utilisation   two masters x 2 nodes x 1 executor, a coordinator per master,
                3 Gearman jobs (1-3 s) always out per node, native builds
                (2-6 s) arriving at random (seeded) on each node, 60 s: the
                executor-seconds left idle while a job for them waited, the
                delay from a freed executor to its next build, the agents'
                requests while a job waits behind native builds and while
                all is idle (issue 14); from the test servers' records

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
import threading
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


def utilisation_fixture(master, nodes, executors):
    """Per node a job only it can run (label: the node's name; NODE_LABEL for
    the agent to pin its builds with), for Gearman; one job for the builds Jenkins starts by itself (native), pinned to a
    node when started. NATIVE_ID keeps two native builds of one node from
    folding into one queue item, as Jenkins folds identical requests."""
    jobs = [{"name": "util-%s" % n, "label": n, "concurrent": True,
             "params": [{"type": "label", "name": "NODE_LABEL"},
                        {"type": "string", "name": "GEARMAN_UNIQUE"},
                        {"type": "string", "name": "DURATION", "default": ""}]} for n in nodes]
    jobs.append({"name": "native-%s" % master, "label": "util", "concurrent": True,
                 "params": [{"type": "string", "name": "DURATION", "default": ""},
                            {"type": "string", "name": "NATIVE_ID", "default": ""}]})
    return {"version": "2.479.3", "quiet_period": 0,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] +
                     [{"name": n, "labels": "util", "executors": executors, "mode": "NORMAL"}
                      for n in nodes],
            "jobs": jobs}


# ---------------------------------------------------------------- intervals
# Lists of (start, end) in seconds since the epoch (time.time(): the test
# servers and this process share the clock).

def iv_merge(iv):
    out = []
    for a, b in sorted(x for x in iv if x[1] > x[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def iv_clip(iv, t0, t1):
    return iv_merge((max(a, t0), min(b, t1)) for a, b in iv)


def iv_len(iv):
    return sum(b - a for a, b in iv_merge(iv))


def iv_covers(iv, t):
    return any(a <= t < b for a, b in iv)


def iv_pieces(t0, t1, cuts):
    """[t0, t1] cut at every cut inside it: the pieces, in order, unmerged."""
    pts = sorted(set([t0, t1] + [c for c in cuts if t0 < c < t1]))
    return list(zip(pts, pts[1:]))


def iv_where(t0, t1, cuts, pred):
    """The parts of [t0, t1] where pred(t) holds, pred being constant between
    consecutive cuts (tested at each piece's middle)."""
    return iv_merge((a, b) for a, b in iv_pieces(t0, t1, cuts) if pred((a + b) / 2))


# ---------------------------------------------------------------- workload drivers

class Keeper:
    """Keeps `depth` Gearman jobs out (submitted and not ended) for every
    function, so that one is always waiting in gearmand: one connection and
    thread per function (tests/clients/gearproto.py); each job's DURATION
    drawn from the function's own seeded generator. .jobs: a record per job
    with its submit and end times. stop() drops the connections, and with
    them the jobs still queued (gearmand forgets a foreground job whose only
    client left before a worker took it); jobs being run run to their end."""

    def __init__(self, gm, funcs, depth, durations, seed):
        sys.path.insert(0, os.path.join(TOP, "tests", "clients"))
        import gearproto

        class StampClient(gearproto.Client):
            """Stamps each job's end into its record and wakes the keeper."""

            def __init__(self, *a):
                self.cv = threading.Condition()
                super().__init__(*a)

            def ended(self, job, status):
                job.rec["end"], job.rec["status"] = time.time(), status
                with self.cv:
                    self.cv.notify_all()
                return job

            def handleWorkComplete(self, pkt):
                return self.ended(super().handleWorkComplete(pkt), "complete")

            def handleWorkFail(self, pkt):
                return self.ended(super().handleWorkFail(pkt), "fail")

            def handleWorkException(self, pkt):
                return self.ended(super().handleWorkException(pkt), "exception")

        self.gp = gearproto
        self.jobs, self.errors = [], []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.clients = [StampClient("127.0.0.1", gm.port) for _ in funcs]
        self.threads = [threading.Thread(target=self.keep, daemon=True,
                                         args=(c, f, depth, durations, random.Random("%s:%s" % (seed, f))))
                        for c, f in zip(self.clients, funcs)]
        for t in self.threads:
            t.start()

    def keep(self, c, func, depth, durations, rnd):
        out, k = [], 0
        tag = func.split(":", 1)[-1]
        try:
            while not self.stopping.is_set():
                while len(out) < depth:
                    k += 1
                    d = "%.1f" % rnd.uniform(*durations)
                    job = self.gp.Job(func, json.dumps({"DURATION": d}), "%s-%d" % (tag, k))
                    job.rec = {"function": func, "unique": job.unique, "duration": float(d),
                               "submit": time.time(), "end": None, "status": None}
                    with self.lock:
                        self.jobs.append(job.rec)
                    c.submitJob(job)
                    out.append(job)
                with c.cv:
                    c.cv.wait_for(lambda: self.stopping.is_set() or any(j.done.is_set() for j in out),
                                  timeout=1)
                out = [j for j in out if not j.done.is_set()]
        except Exception as e:   # reported as a problem of the run
            self.errors.append("%s: %s: %s" % (func, type(e).__name__, e))

    def stop(self):
        self.stopping.set()
        for c in self.clients:
            with c.cv:
                c.cv.notify_all()
        for t in self.threads:
            t.join(30)
        self.stopped = time.time()
        for c in self.clients:
            c.shutdown()
            self.errors += ["%s" % e for e in c.poll_errors]


class NativeDriver(threading.Thread):
    """Starts the native builds of a schedule [(offset s, jk, job, node,
    duration, id)] at t0 + offset each, through the test server's
    POST /_test/build (as a user or a timer would in Jenkins)."""

    def __init__(self, schedule, t0):
        super().__init__(daemon=True)
        self.schedule, self.t0 = sorted(schedule, key=lambda x: x[0]), t0
        self.started, self.errors = [], []
        self.stopping = threading.Event()

    def run(self):
        for off, jk, job, node, dur, nid in self.schedule:
            if self.stopping.wait(max(0.0, self.t0 + off - time.time())):
                return
            try:
                asked = time.time()
                qid = jk.start_native(job, node=node, params={"DURATION": "%.1f" % dur, "NATIVE_ID": nid})
                self.started.append({"node": node, "id": nid, "asked": asked, "queue_id": qid})
            except Exception as e:
                self.errors.append("native build %s on %s: %s" % (nid, node, e))

    def stop(self):
        self.stopping.set()
        self.join(30)


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

    def check_once(self, jk, uniques, what, builds=None):
        """Every unique ran exactly once as a Jenkins build (of jk, or of
        builds when given): else the run is wrong."""
        seen = {}
        for b in jk.builds() if builds is None else builds:
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
            env = json.loads(out)    # {"ed25519": SIG, "signed": MAP TEXT}: the map is signed
            fns = [f["name"] for f in json.loads(env["signed"])["functions"]]
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

    # ------------------------------------------------------------ utilisation

    def utilisation(self):
        """Executors a Gearman job could use, left idle (issue 14): two masters,
        two single-executor nodes each, a job always waiting in gearmand for
        every node, native builds arriving at random next to them."""
        from conftest import wait_for
        run_s = 15 if self.quick else 60
        tail_s = 3 if self.quick else 16    # jobs keep waiting: a free late in the run shows its delay
        idle_s = 5 if self.quick else 20
        depth, execs, gap_s, seed = 3, 1, 10.0, 14
        masters = [("jenkins01", "1", ["a1", "a2"]), ("jenkins02", "2", ["b1", "b2"])]
        nodes = [n for _, _, ns in masters for n in ns]
        print("utilisation: %d masters x %d nodes x %d executor, %d Gearman jobs out per node, "
              "native builds of 2-6 s every %.0f s per node on average; %d s (+%d s), idle %d s"
              % (len(masters), len(nodes) // len(masters), execs, depth, gap_s, run_s, tail_s, idle_s),
              flush=True)
        s = self.system("utilisation")
        keeper = driver = None
        try:
            gm = s.gearmand()
            jks, master_of, tag_of = {}, {}, {}
            for m, tag, ns in masters:
                tag_of[m] = tag
                jks[m] = self.jenkins(s, utilisation_fixture(tag, ns, execs))
                # refresh 30 s: the coordinators' requests are not what is measured
                s.coordinator(gm, jks[m], name=m, refresh=30, extra={"log": {"level": "info"}})
                for n in ns:
                    master_of[n] = m
            for n in nodes:
                s.node(gm, jks[master_of[n]], n, master=master_of[n], refresh=30,
                       extra={"node": {"status_interval": 10}, "log": {"level": "info"}})
            funcs = {n: "build:util-%s" % n for n in nodes}
            wait_for(lambda: all(status_counts(gm).get(f) == 1 for f in funcs.values()), timeout=60,
                     what="every node registered its build:util-<node>")
            rnd = random.Random(seed)
            schedule = []
            for n in nodes:
                m = master_of[n]
                t = rnd.expovariate(1 / gap_s)
                while t < run_s:
                    schedule.append((t, jks[m], "native-%s" % tag_of[m], n,
                                     round(rnd.uniform(2, 6), 1), "%s-%d" % (n, len(schedule))))
                    t += rnd.expovariate(1 / gap_s)
            for jk in jks.values():
                jk.reset_requests()
            t0 = time.time()
            keeper = Keeper(gm, [funcs[n] for n in nodes], depth, (1, 3), seed)
            driver = NativeDriver(schedule, t0)
            driver.start()
            time.sleep(run_s + tail_s)     # the workload runs this long
            t1 = t0 + run_s
            driver.stop()
            keeper.stop()
            run_reqs = {m: jk.requests() for m, jk in jks.items()}

            # gearmand keeps the withdrawn jobs queued until a worker asks for
            # one, then drops them: a bare worker asks, so that no agent finds
            # them later (in the idle phase)
            td = time.time()
            bp = BarePool(self.bin, s.tmp, gm, 1, list(funcs.values()), ident="drain")
            s.items.append(_Stopper(bp))

            def queued():
                st = gm.status()
                return sum(st.get(f, (0, 0, 0))[0] - st.get(f, (0, 0, 0))[1] for f in funcs.values())
            wait_for(lambda: queued() == 0, timeout=30, interval=0.1, what="the withdrawn jobs dropped")
            bp.stop()

            def drained():
                st = gm.status()
                if any(st.get(f, (0, 0, 0))[0] for f in funcs.values()):
                    return False
                return all(not jk.queue() and not any(b["building"] for b in jk.builds())
                           for jk in jks.values())
            wait_for(drained, timeout=120, interval=0.2, what="the builds under way ended")
            drain_s = time.time() - td
            builds = {m: jk.builds() for m, jk in jks.items()}
            # Idle: nothing waits, nothing runs. A moment first for the last
            # build's follow-up; then every request an agent makes counts.
            time.sleep(2)
            for jk in jks.values():
                jk.reset_requests()
            ti = time.time()
            time.sleep(idle_s)             # the measurement is of doing nothing
            idle_wall = time.time() - ti
            idle_reqs = {m: jk.requests() for m, jk in jks.items()}
        finally:
            if driver is not None:
                driver.stop()
            if keeper is not None and not keeper.stopping.is_set():
                keeper.stop()
            s.cleanup()
        self.utilisation_figures(nodes, master_of, funcs, execs, keeper, driver, schedule, builds,
                                 run_reqs, idle_reqs, t0, t1, ti, idle_wall,
                                 {"run_s": run_s, "tail_s": tail_s, "depth": depth,
                                  "native_gap_s": gap_s, "seed": seed, "drain_s": round(drain_s, 1)})

    @staticmethod
    def request_node(r, job_node, qid_node):
        """The node an agent's request was about: /computer/<node>/...,
        /job/util-<node>/..., /queue/item/<id of one of its builds>/...; None
        for the rest (the coordinators' listings, the queue as a whole)."""
        p = [urllib.parse.unquote(x) for x in r["path"].split("?")[0].strip("/").split("/")]
        if len(p) > 2 and p[0] == "computer":
            return p[1]
        if len(p) > 1 and p[0] == "job":
            return job_node.get(p[1])
        if len(p) > 2 and p[0] == "queue" and p[1] == "item" and p[2].isdigit():
            return qid_node.get(int(p[2]))
        return None

    @staticmethod
    def request_kind(r):
        """A request's method and path with names and numbers left out:
        GET /computer/*/api/json, GET /job/*/#/api/json, ..."""
        p = r["path"].split("?")[0].strip("/").split("/")
        if len(p) > 2 and p[0] in ("computer", "job") and p[1] != "api":
            p[1] = "*"
        return r["method"] + " /" + "/".join("#" if x.isdigit() else x for x in p)

    def utilisation_figures(self, nodes, master_of, funcs, execs, keeper, driver, schedule, builds,
                            run_reqs, idle_reqs, t0, t1, t_idle, idle_wall, setup):
        """The figures, from the test servers' build and request records (what
        Jenkins saw) and the keeper's record of when each job was out."""
        allb = [b for m in builds for b in builds[m]]
        by_unique = {}
        for b in allb:
            u = b["params"].get("GEARMAN_UNIQUE")
            if u is not None:
                by_unique.setdefault(u, []).append(b)
        jobs = list(keeper.jobs)
        # once: every job the client saw end had one build; no job had two;
        # every Gearman build was one of ours
        ended = set(j["unique"] for j in jobs if j["end"] is not None)
        self.check_once(None, sorted(ended), "utilisation", builds=allb)
        dup = [u for u, v in by_unique.items() if len(v) > 1 and u not in ended]
        if dup:
            self.problems.append("utilisation: %d withdrawn jobs built twice (e.g. %s)" % (len(dup), dup[:3]))
        ours = set(j["unique"] for j in jobs)
        strange = [u for u in by_unique if u not in ours]
        if strange:
            self.problems.append("utilisation: builds for unknown jobs %s" % strange[:3])
        bad = [j for j in jobs if j["status"] not in (None, "complete")]
        if bad:
            self.problems.append("utilisation: %d jobs ended %s" % (len(bad), bad[0]["status"]))
        self.problems += ["utilisation: " + e for e in keeper.errors + driver.errors]
        native_ids = set(b["params"].get("NATIVE_ID") for b in allb if b["params"].get("NATIVE_ID"))
        missing = [x[5] for x in schedule if x[5] not in native_ids]
        if len(driver.started) != len(schedule) or missing:
            self.problems.append("utilisation: %d of %d native builds started, %d never ran"
                                 % (len(driver.started), len(schedule), len(missing)))

        span = t1 - t0
        idle_s, reuse, censored, per_node = 0.0, [], 0, {}
        job_node = {"util-%s" % n: n for n in nodes}
        qid_node, node_reqs = {}, {n: [] for n in nodes}
        for b in allb:
            qid_node[b["queue_id"]] = b["node"]
        other = {}
        for m, rs in run_reqs.items():
            for r in rs:
                n = self.request_node(r, job_node, qid_node)
                if n in node_reqs:
                    node_reqs[n].append(r)
                else:
                    k = self.request_kind(r)
                    other[k] = other.get(k, 0) + 1
        def end(b):
            return b["end"] if b["end"] is not None else keeper.stopped

        def kind(b):
            return "gearman" if "GEARMAN_UNIQUE" in b["params"] else "native"
        # when each build was asked for: the trigger's arrival at the master
        # (Gearman), the driver's request (native)
        asked = {("native", x["id"]): x["asked"] for x in driver.started}
        for m, rs in run_reqs.items():
            for r in rs:
                if r["method"] == "POST" and r["path"].split("?")[0].endswith("/buildWithParameters"):
                    q = urllib.parse.parse_qs(r.get("query") or "")
                    q.update(urllib.parse.parse_qs(r["body"]))
                    for u in q.get("GEARMAN_UNIQUE", []):
                        asked.setdefault(("gearman", u), r["time"])

        def asked_for(b):
            return asked.get(("gearman", b["params"]["GEARMAN_UNIQUE"]) if kind(b) == "gearman"
                             else ("native", b["params"].get("NATIVE_ID")))
        idle_after, reuse_after, handed = {}, {}, 0
        full_s = full_reqs = wait_s = wait_reqs = 0
        for n in nodes:
            mine = [b for b in allb if b["node"] == n]
            waiting = iv_merge((j["submit"], by_unique[j["unique"]][0]["start"] if j["unique"] in by_unique
                                else (j["end"] or keeper.stopped))
                               for j in jobs if j["function"] == funcs[n])
            cuts = [x for b in mine for x in (b["start"], end(b))] + [x for iv in waiting for x in iv]

            def busy(t, native_only=False):
                return sum(1 for b in mine if b["start"] <= t < end(b) and
                           (not native_only or "GEARMAN_UNIQUE" not in b["params"]))
            # executor-seconds idle while a job for the node waited, in [t0, t1];
            # by the kind of build that ended last before (none: the start)
            idle = 0.0
            for a, z in iv_pieces(t0, t1, cuts):
                mid = (a + z) / 2
                if iv_covers(waiting, mid) and busy(mid) < execs:
                    idle += (execs - busy(mid)) * (z - a)
                    last = max((b for b in mine if end(b) <= a), key=end, default=None)
                    k = "start" if last is None else kind(last)
                    idle_after[k] = idle_after.get(k, 0) + (execs - busy(mid)) * (z - a)
            idle_s += idle
            # each executor freed while a job waited: until the next build on
            # it. Not counted: an executor Jenkins gave at once to a build
            # already in its queue (it never showed idle).
            delays = []
            for b in mine:
                e = b["end"]
                if e is None or not (t0 <= e < t1) or not iv_covers(waiting, e):
                    continue
                nxt = min((c for c in mine if c is not b and c["executor"] == b["executor"]
                           and c["start"] >= e), key=lambda c: c["start"], default=None)
                queued = asked_for(nxt) if nxt is not None else None
                if queued is not None and queued < e:
                    handed += 1
                    continue
                if nxt is not None:
                    delays.append(nxt["start"] - e)
                else:          # none by the end: at least until the jobs were withdrawn
                    delays.append(keeper.stopped - e)
                    censored += 1
                reuse_after.setdefault(kind(b), []).append(delays[-1])
            reuse += delays
            # requests while a job waited and every executor ran a native build
            full = iv_where(t0, t1, cuts, lambda t: iv_covers(waiting, t) and
                            busy(t, native_only=True) >= execs)
            wait_iv = iv_clip(waiting, t0, t1)
            rq = [r["time"] for r in node_reqs[n]]
            nfull = sum(1 for t in rq if iv_covers(full, t))
            kinds = {}
            for r in node_reqs[n]:
                if iv_covers(full, r["time"]):
                    kinds[self.request_kind(r)] = kinds.get(self.request_kind(r), 0) + 1
            nwait = sum(1 for t in rq if iv_covers(wait_iv, t))
            full_s += iv_len(full)
            full_reqs += nfull
            wait_s += iv_len(wait_iv)
            wait_reqs += nwait
            per_node[n] = {"master": master_of[n], "idle_while_waiting_s": round(idle, 2),
                           "waiting_s": round(iv_len(wait_iv), 2), "native_full_s": round(iv_len(full), 2),
                           "requests_native_full": nfull, "requests_native_full_by_kind": kinds,
                           "requests_waiting": nwait,
                           "builds": len(mine),
                           "gearman_builds": sum(1 for b in mine if "GEARMAN_UNIQUE" in b["params"]),
                           "frees": len(delays), "reuse_s": [round(d, 3) for d in delays]}
        share = 100.0 * idle_s / (execs * len(nodes) * span)
        p50, mx = pct(reuse, 50), (max(reuse) if reuse else None)
        full_rate = 60.0 * full_reqs / full_s if full_s > 0 else None
        idle_node_reqs, idle_other, idle_kinds = 0, {}, {}
        for m, rs in idle_reqs.items():
            for r in rs:
                if self.request_node(r, job_node, qid_node) in nodes:
                    idle_node_reqs += 1
                    k = "%s at +%.1f s" % (self.request_kind(r), r["time"] - t_idle)
                    idle_kinds[k] = idle_kinds.get(k, 0) + 1
                else:
                    k = self.request_kind(r)
                    idle_other[k] = idle_other.get(k, 0) + 1
        idle_rate = 60.0 * idle_node_reqs / (len(nodes) * idle_wall)
        self.figures["utilisation"] = dict(setup, **{
            "masters": len(set(master_of.values())), "nodes": len(nodes), "executors": execs,
            "window_s": round(span, 2), "jobs_submitted": len(jobs),
            "jobs_completed": sum(1 for j in jobs if j["status"] == "complete"),
            "native_builds": len(schedule), "builds": len(allb),
            "idle_while_waiting_s": round(idle_s, 2), "idle_share_pct": round(share, 2),
            "reuse_events": len(reuse), "reuse_censored": censored, "reuse_handed_over": handed,
            "idle_while_waiting_after_s": {k: round(v, 2) for k, v in idle_after.items()},
            "reuse_after": {k: {"frees": len(v), "p50_s": round(pct(v, 50), 3), "max_s": round(max(v), 3)}
                            for k, v in reuse_after.items()},
            "reuse_p50_s": None if p50 is None else round(p50, 3),
            "reuse_max_s": None if mx is None else round(mx, 3),
            "native_full_s": round(full_s, 2), "requests_native_full": full_reqs,
            "waiting_s": round(wait_s, 2), "requests_waiting": wait_reqs,
            "requests_per_node_min_waiting_any": round(60.0 * wait_reqs / wait_s, 1) if wait_s else None,
            "requests_not_of_a_node": other,
            "idle_s": round(idle_wall, 2), "idle_requests_of_nodes": idle_node_reqs,
            "idle_requests_of_nodes_by_kind": idle_kinds,
            "idle_requests_not_of_a_node": idle_other, "per_node": per_node})
        what = "%d masters x %d nodes x %d executor, %.0f s" % (
            len(set(master_of.values())), len(nodes) // len(set(master_of.values())), execs, span)
        self.row("utilisation: executor-seconds idle while a Gearman job waited, share of all",
                 round(share, 2), "%", target=2,
                 note="%s, native builds of 2-6 s at random; %.1f of %.0f executor-s"
                      % (what, idle_s, execs * len(nodes) * span))
        self.row("utilisation: executor freed while a job waited -> next build on it, p50",
                 None if p50 is None else round(p50, 2), "s", target=1,
                 note="%d frees; %d more went at once to a build already queued in Jenkins%s"
                      % (len(reuse), handed, ", %d with no next build before the jobs were withdrawn"
                         % censored if censored else ""))
        self.row("utilisation: executor freed while a job waited -> next build on it, max",
                 None if mx is None else round(mx, 2), "s", target=2)
        self.row("utilisation: master requests per node per minute, a job waiting and the node "
                 "full of native builds", None if full_rate is None else round(full_rate, 1), "req",
                 target=60, note="%d requests in %.0f node-s" % (full_reqs, full_s))
        self.row("utilisation: master requests per node per minute, idle (nothing waiting, no build)",
                 round(idle_rate, 1), "req", target=0,
                 note="%d requests in %.0f node-s" % (idle_node_reqs, len(nodes) * idle_wall))

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


SCENARIOS = ["latency", "throughput", "registration", "footprint", "utilisation"]


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
