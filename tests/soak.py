#!/usr/bin/python3
"""make soak: many agents, many builds, faults injected at random.

One gearmand, one Jenkins master (the test server) with AGENTS nodes of
EXECUTORS executors, a coordinator and an agent per node. BUILDS foreground
jobs with distinct unique ids and random durations (0-2 s) are submitted
over a few raw-protocol client connections while, every few seconds, a fault
strikes (each kind once, in a random order, before any repeats): an agent
SIGKILLed and restarted, an agent stopped gracefully and restarted, Jenkins
answering 503, Jenkins slow, Jenkins losing the answer to a request it
processed, the coordinator restarted, Jenkins' start window (an item left
the queue, its build not yet made: Executor.run) widened for a while. Half
the builds go to a job whose name Util.rawEncode leaves partly bare ("soak
(odd)+x,y=z~'q'"), the other half to "soak"; every build passes through a
start window of --start-window s.

At the end it checks, and prints: every submission got exactly one final
answer (WORK_COMPLETE or WORK_FAIL); Jenkins ran exactly one build per
unique id; none was lost. Exit 0 only if duplicates = lost = 0.
--cpu-hogs N runs N busy loops beside it for the whole run, teardown
included (a shared CI machine).
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

REQ, RES = b"\0REQ", b"\0RES"
SUBMIT_JOB, JOB_CREATED, WORK_STATUS, WORK_COMPLETE, WORK_FAIL = 7, 8, 12, 13, 14
WORK_DATA, WORK_WARNING, ERROR = 28, 29, 19
# The second name: Util.rawEncode leaves ' ( ) + , = bare and encodes ~ and
# the space, so a client comparing its own encoding of task.url misses it.
JOBS = ["soak", "soak (odd)+x,y=z~'q'"]


class Client:
    """A minimal foreground Gearman client: submit many jobs, collect their events by handle."""

    def __init__(self, port, results, lock):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.results, self.lock = results, lock
        self.pending = []          # uniques waiting for JOB_CREATED, in submit order
        self.by_handle = {}
        self.plock = threading.Lock()
        threading.Thread(target=self.reader, daemon=True).start()

    def submit(self, fn, unique, arg):
        body = fn.encode() + b"\0" + unique.encode() + b"\0" + arg.encode()
        with self.plock:
            self.pending.append(unique)
            self.sock.sendall(REQ + struct.pack(">II", SUBMIT_JOB, len(body)) + body)

    def reader(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 12:
                magic, typ, n = buf[:4], *struct.unpack(">II", buf[4:12])
                if len(buf) < 12 + n:
                    break
                body, buf = buf[12:12 + n], buf[12 + n:]
                self.packet(typ, body)

    def packet(self, typ, body):
        if typ == JOB_CREATED:
            with self.plock:
                self.by_handle[body] = self.pending.pop(0)
            return
        handle, _, data = body.partition(b"\0")
        unique = self.by_handle.get(handle)
        if unique is None:
            return
        with self.lock:
            r = self.results[unique]
            if typ == WORK_DATA:
                r["data"] += 1
            elif typ == WORK_COMPLETE:
                r["final"].append(("complete", json.loads(data or b"{}")))
            elif typ == WORK_FAIL:
                r["final"].append(("fail", None))
            elif typ == WORK_WARNING:
                r["warnings"].append(data.decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--executors", type=int, default=4)
    ap.add_argument("--builds", type=int, default=2000)
    ap.add_argument("--max-duration", type=float, default=2.0)
    ap.add_argument("--fault-every", type=float, default=4.0, help="seconds between faults (0: none)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--start-window", type=float, default=0.3,
                    help="seconds between an item leaving Jenkins' queue and its build existing")
    ap.add_argument("--cpu-hogs", type=int, default=0,
                    help="run this many busy-looping processes beside the soak (a shared CI machine)")
    args = ap.parse_args()
    os.environ["JGA_BUILD"] = args.build
    from conftest import System, wait_for

    rnd = random.Random(args.seed)
    nodes = ["soak%02d" % i for i in range(args.agents)]
    fixture = {"version": "2.462.3", "quiet_period": 5,
               "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] +
                        [{"name": n, "labels": "linux", "executors": args.executors, "mode": "NORMAL"} for n in nodes],
               "start_window": args.start_window,
               "jobs": [{"name": name, "label": "linux", "concurrent": True,
                         "params": [{"type": "node", "name": "NODE"},
                                    {"type": "string", "name": "DURATION", "default": "0"},
                                    {"type": "string", "name": "GEARMAN_UNIQUE"}]} for name in JOBS]}
    tmp = tempfile.mkdtemp(prefix="jga-soak-")
    system = System(tmp)
    faults = {}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.cpu_hogs)]
    t0 = time.time()
    try:
        gm = system.gearmand()
        jk = system.jenkins(fixture)
        co = system.coordinator(gm, jk, refresh=2)
        agents = {n: system.node(gm, jk, n, refresh=2, extra={"jenkins": {"timeout": 30, "connect_timeout": 2}})
                  for n in nodes}
        wait_for(lambda: all(gm.status().get("build:" + j, (0, 0, 0))[2] == args.agents for j in JOBS),
                 timeout=60, what="all agents registered")
        print("soak: %d agents x %d executors, %d builds of 0-%.1fs, a fault every %.1fs (logs in %s)" %
              (args.agents, args.executors, args.builds, args.max_duration, args.fault_every, tmp))

        results, lock = {}, threading.Lock()
        clients = [Client(gm.port, results, lock) for _ in range(8)]
        for i in range(args.builds):
            u = "soak-%05d" % i
            results[u] = {"data": 0, "final": [], "warnings": []}
            clients[i % len(clients)].submit("build:" + JOBS[i % 2], u, json.dumps(
                {"DURATION": "%.2f" % rnd.uniform(0, args.max_duration)}))

        def done():
            with lock:
                return sum(1 for r in results.values() if r["final"])

        # Every kind strikes once, in a random order, before any strikes again:
        # a seed that never drew a kind would leave it untested.
        kinds = []

        def fault():
            if not kinds:
                kinds.extend(["kill", "term", "503", "slow", "lose", "coordinator", "window"])
                rnd.shuffle(kinds)
            kind = kinds.pop()
            faults[kind] = faults.get(kind, 0) + 1
            if kind in ("kill", "term"):
                a = agents[rnd.choice(nodes)]
                if not a.alive():
                    return
                if kind == "kill":
                    a.stop(signal.SIGKILL)
                else:
                    a.signal(signal.SIGTERM)
                    a.proc.wait(120)
                    a.logf.close()
                time.sleep(rnd.uniform(0.5, 2))
                a.restart()
            elif kind == "503":
                jk.fail(503, rnd.uniform(1, 3))
            elif kind == "slow":
                jk.latency(rnd.randint(100, 400))
                time.sleep(rnd.uniform(1, 3))
                jk.latency(0)
            elif kind == "lose":
                jk.drop(rnd.randint(1, 3), after=True, method=rnd.choice([None, "POST"]))
            elif kind == "window":
                jk.start_window(rnd.uniform(0.6, 1.2))
                jk.drop(rnd.randint(1, 3), after=True, method="POST")  # lost trigger answers in it
                time.sleep(rnd.uniform(1, 3))
                jk.start_window(args.start_window)
            else:
                co.stop()
                time.sleep(rnd.uniform(0.5, 2))
                co.restart()

        deadline = time.time() + args.timeout
        next_fault = time.time() + args.fault_every
        last = -1
        while done() < args.builds and time.time() < deadline:
            if args.fault_every and time.time() >= next_fault:
                fault()
                next_fault = time.time() + args.fault_every * rnd.uniform(0.5, 1.5)
            n = done()
            if n // 200 != last // 200:
                print("  %5d/%d answered after %.0fs" % (n, args.builds, time.time() - t0))
                last = n
            time.sleep(0.1)
        elapsed = time.time() - t0

        builds = jk.builds()
        per_unique = {}
        for b in builds:
            per_unique.setdefault(b["params"].get("GEARMAN_UNIQUE"), []).append(b)
        answers = [len(r["final"]) for r in results.values()]
        completes = sum(1 for r in results.values() if r["final"] and r["final"][0][0] == "complete")
        fails = sum(1 for r in results.values() if r["final"] and r["final"][0][0] == "fail")
        figures = {
            "submitted": args.builds,
            "answered_once": sum(1 for a in answers if a == 1),
            "answered_twice_or_more": sum(1 for a in answers if a > 1),
            "lost": sum(1 for a in answers if a == 0),
            "completed": completes,
            "refused": fails,
            "jenkins_builds": len(builds),
            "duplicates": sum(len(v) - 1 for v in per_unique.values() if len(v) > 1),
            "builds_without_unique": len(per_unique.get(None, [])),
            "faults": faults,
            "faults_total": sum(faults.values()),
            "seconds": round(elapsed, 1),
            "agents": args.agents, "executors": args.executors,
            "max_concurrency_per_node": max(jk.concurrency().values() or [0]),
            "cpus": os.cpu_count(), "cpu_hogs": args.cpu_hogs,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        # A complete must report the build Jenkins ran for that unique.
        mismatched = 0
        for u, r in results.items():
            if r["final"] and r["final"][0][0] == "complete":
                got = [b["number"] for b in per_unique.get(u, [])]
                if r["final"][0][1].get("number") not in got:
                    mismatched += 1
        figures["complete_for_another_build"] = mismatched
        dups = sorted(u for u, v in per_unique.items() if len(v) > 1)
        if dups:
            print("duplicated uniques (first 5):", dups[:5],
                  [(b["number"], b["node"], b["queue_id"]) for b in per_unique[dups[0]]])
        refused = [r["warnings"] for r in results.values() if r["final"] and r["final"][0][0] == "fail"]
        print(json.dumps(figures, indent=1, sort_keys=True))
        if refused:
            print("refusals (first 5):", refused[:5])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1, sort_keys=True)
        ok = (figures["lost"] == 0 and figures["duplicates"] == 0 and figures["answered_twice_or_more"] == 0
              and mismatched == 0 and figures["max_concurrency_per_node"] <= args.executors)
        print("soak %s" % ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        try:
            system.cleanup()       # under the same load: agents must stop in time
        finally:
            for h in hogs:
                h.kill()
                h.wait()


if __name__ == "__main__":
    sys.exit(main())
