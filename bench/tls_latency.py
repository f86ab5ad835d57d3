#!/usr/bin/python3
"""What TLS through a stunnel4 front costs a Gearman round trip (issue 16).

A loopback gearmand, a stunnel4 in server mode in front of it (client
certificate required, as docs-tls.md sets it up), and build/tests/it_gnet
(our gwconn over gnet): N ECHO_REQ/ECHO_RES round trips on one connection,
plain to gearmand and TLS through the front, alternated over several runs;
the connect (TCP, and the TLS handshake) timed on each run. Medians of the
per-run medians are printed, and the whole as JSON with --json.

    bench/tls_latency.py [--build DIR] [--samples 500] [--runs 7] [--json FILE]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import System, free_port  # noqa: E402
from tlsfix import PKI, stunnel_server  # noqa: E402


def echo(driver, tls, port, n):
    p = subprocess.run([driver] + tls + ["127.0.0.1", str(port), "echo", str(n)],
                       capture_output=True, text=True, timeout=120)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if not r["ok"]:
        raise SystemExit("it_gnet: %s" % r["err"])
    return r


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json")
    a = ap.parse_args()
    driver = os.path.join(a.build, "tests", "it_gnet")
    with tempfile.TemporaryDirectory() as tmp:
        system = System(tmp)
        try:
            pki = PKI(os.path.join(tmp, "pki"))
            gm = system.gearmand()
            front = stunnel_server(system, pki, gm, free_port())
            tls = ["-T", ",".join([pki.path("ca"), pki.path("client"), pki.path("client", ".key")])]
            runs = {"plain": [], "tls": []}
            for _ in range(a.runs):
                runs["plain"].append(echo(driver, [], gm.port, a.samples))
                runs["tls"].append(echo(driver, tls, front.port, a.samples))
        finally:
            system.cleanup()
    out = {"samples_per_run": a.samples, "runs": a.runs, "cpu": cpu_model(), "cpus": os.cpu_count(),
           "kernel": platform.release(), "openssl": subprocess.run(["openssl", "version"],
                                                                     capture_output=True, text=True).stdout.strip()}
    for k, rs in runs.items():
        out[k] = {m: statistics.median(r[m] for r in rs) for m in ("median_us", "p90_us", "connect_us")}
    out["added_median_us"] = out["tls"]["median_us"] - out["plain"]["median_us"]
    print("ECHO round trip, %d x %d samples, %s (%d CPUs)" % (a.runs, a.samples, out["cpu"], out["cpus"]))
    print("%-28s %10s %10s %12s" % ("", "median", "p90", "connect"))
    for k, label in (("plain", "plain, gearmand direct"), ("tls", "TLS through stunnel4")):
        r = out[k]
        print("%-28s %8d us %8d us %9.1f ms" % (label, r["median_us"], r["p90_us"], r["connect_us"] / 1000))
    print("TLS adds %d us to the median round trip" % out["added_median_us"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
