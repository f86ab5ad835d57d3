#!/usr/bin/python3
"""make demo: the whole system on one machine, on an embedded default.

Starts gearmand, two Jenkins masters (the project's Jenkins remote-API test
server), a coordinator per master and an agent per node; submits builds
through Debian's `gearman` CLI; shows them queue in gearmand, spread over
both masters' nodes and finish; prints where each ran and its result; serves
the status page (jenkins-gearman web) and prints its address; stops
everything it started.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "2"}
# Declared as README's Reliability asks: lost triggers are found again, and the
# status page lists the builds as Gearman's.
UNIQUE = {"type": "string", "name": "GEARMAN_UNIQUE", "default": ""}


def master(nodes, jobs):
    return {"version": "2.462.3", "quiet_period": 5,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"}] + nodes,
            "jobs": [dict(j, params=[NODE, DUR, UNIQUE], concurrent=True) for j in jobs]}


# Master A: two Linux nodes. Master B: one Linux node and an EXCLUSIVE GPU node.
MASTER_A = master(
    [{"name": "a-linux1", "labels": "linux x86", "executors": 2, "mode": "NORMAL"},
     {"name": "a-linux2", "labels": "linux x86", "executors": 1, "mode": "NORMAL"}],
    [{"name": "unit-tests", "label": "linux"}, {"name": "docs"}])
MASTER_B = master(
    [{"name": "b-linux1", "labels": "linux arm", "executors": 2, "mode": "NORMAL"},
     {"name": "b-gpu1", "labels": "linux gpu", "executors": 1, "mode": "EXCLUSIVE"}],
    [{"name": "unit-tests", "label": "linux"}, {"name": "cuda-tests", "label": "gpu"}])

SUBMISSIONS = ([("build:unit-tests", {"DURATION": "3"})] * 8 +
               [("build:cuda-tests:gpu", {"DURATION": "2"})] * 2 +
               [("build:docs", {"DURATION": "1"})] * 2)


def hold(seconds, url):
    """Leave the pool and its page up for a person to look at."""
    if seconds is None and sys.stdin.isatty():
        print("\n== the status page stays up at %s/ ; press Enter to stop everything" % url)
        try:
            sys.stdin.readline()
        except KeyboardInterrupt:
            pass
    elif seconds:
        print("\n== the status page stays up at %s/ for %g s" % (url, seconds))
        time.sleep(seconds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--hold", type=float, default=None, metavar="SECONDS",
                    help="keep the system and its status page up this long after the builds "
                         "(default: until Enter on a terminal, else not at all)")
    args = ap.parse_args()
    os.environ["JGA_BUILD"] = args.build

    from conftest import AGENT, System, free_port, gearman_cli, json_docs, wait_for

    tmp = tempfile.mkdtemp(prefix="jga-demo-")
    system = System(tmp)
    try:
        print("== starting gearmand, two Jenkins masters, two coordinators and four node agents")
        gm = system.gearmand()
        ja, jb = system.jenkins(MASTER_A), system.jenkins(MASTER_B)
        print("   gearmand %s   masterA %s   masterB %s   (logs in %s)" % (gm.server, ja.url, jb.url, tmp))
        # Each master's coordinator signs its maps; its agents hold only the public key.
        keys = {}
        for m in ("masterA", "masterB"):
            d = os.path.join(tmp, "keys-" + m)
            os.mkdir(d, 0o700)
            subprocess.run([AGENT, "keygen", "--out", d], check=True, stdout=subprocess.DEVNULL)
            keys[m] = (os.path.join(d, "map.key"), os.path.join(d, "map.pub"))
        print("   map signing keys made by `jenkins-gearman-agent keygen` in %s/keys-*" % tmp)
        system.coordinator(gm, ja, name="masterA", extra={"coordinator": {"map_key_file": keys["masterA"][0]}})
        system.coordinator(gm, jb, name="masterB", extra={"coordinator": {"map_key_file": keys["masterB"][0]}})
        for n in MASTER_A["nodes"][1:]:
            system.node(gm, ja, n["name"], master="masterA",
                        extra={"node": {"map_public_key_file": keys["masterA"][1]}})
        for n in MASTER_B["nodes"][1:]:
            system.node(gm, jb, n["name"], master="masterB",
                        extra={"node": {"map_public_key_file": keys["masterB"][1]}})
        wait_for(lambda: gm.status().get("build:unit-tests", (0, 0, 0))[2] >= 4, timeout=20,
                 what="all four node agents registered")
        # The status page: one for both masters, verifying each coordinator's signed answers.
        try:
            import socket
            with socket.socket() as sk:
                # As libmicrohttpd binds: a previous run's connections in TIME_WAIT do not hold the port.
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sk.bind(("127.0.0.1", 8731))
            port = 8731
        except OSError:
            port = free_port()
        web = system.web(gm, ["--map-public-key", keys["masterA"][1], "--map-public-key",
                              keys["masterB"][1]], port=port)
        print("\n== status page: %s/  (JSON: %s/api/status; up while the demo runs)" % (web.url, web.url))
        print("\n== registered functions (gearadmin status: function, queued+running, running, workers)")
        for fn, (total, running, workers) in sorted(gm.status().items()):
            if fn.startswith("build:"):
                print("   %-26s %2d %2d %2d" % (fn, total, running, workers))

        print("\n== submitting %d builds with the gearman CLI" % len(SUBMISSIONS))
        results = [None] * len(SUBMISSIONS)

        def submit(i, fn, params):
            rc, out, err = gearman_cli(gm, fn, json.dumps(params), timeout_ms=120000)
            docs = json_docs(out)
            results[i] = (fn, rc, docs[-1] if docs else None, err.strip())

        threads = [threading.Thread(target=submit, args=(i, fn, p)) for i, (fn, p) in enumerate(SUBMISSIONS)]
        for t in threads:
            t.start()
        seen = set()
        while any(t.is_alive() for t in threads):
            st = gm.status()
            line = "   queue: " + "  ".join("%s %d queued/%d running" % (fn[6:], t_ - r, r)
                                           for fn, (t_, r, w) in sorted(st.items())
                                           if fn.startswith("build:") and t_)
            if line not in seen:
                print(line)
                seen.add(line)
            time.sleep(0.5)
        for t in threads:
            t.join()

        print("\n== where each build ran")
        print("   %-24s %-8s %-9s %-10s %-8s %s" % ("FUNCTION", "MASTER", "NODE", "WORKER", "RESULT", "URL"))
        ok = True
        for fn, rc, doc, err in results:
            if not doc:
                ok = False
                print("   %-24s FAILED (%s)" % (fn, err))
                continue
            print("   %-24s %-8s %-9s %-10s %-8s %s" % (fn, doc["manager"], doc["node_name"],
                                                     doc["worker"].split("_")[-1], doc.get("result"), doc["url"]))
            ok = ok and rc == 0 and doc.get("result") == "SUCCESS"
        per_master = {"masterA": len(ja.builds()), "masterB": len(jb.builds())}
        conc = dict(ja.concurrency(), **jb.concurrency())
        print("\n   builds per master: %s" % per_master)
        print("   most builds at once per node (never above its executors): %s" % conc)
        hold(args.hold, web.url)
        print("\n== demo %s; stopping everything" % ("finished" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        system.cleanup()


if __name__ == "__main__":
    sys.exit(main())
