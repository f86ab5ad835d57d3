"""The client CLI, jenkins-gearman, against real gearmand, the Jenkins test
server, a coordinator and node agents."""
import json
import os
import select
import signal
import subprocess
import time

from conftest import CLI, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
RES = {"type": "string", "name": "RESULT", "default": "SUCCESS"}

FIXTURE = {
    "version": "2.462.3",
    "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
              {"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
    "jobs": [{"name": "unit", "label": "linux", "params": [NODE, DUR, RES], "concurrent": True},
             {"name": "plain"}],
}


def cli(gm, *args, timeout=60):
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run([CLI] + list(args) + ["-s", gm.server], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def ready(system):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1")
    wait_for(lambda: gm.functions_of("n1") == ["build:unit", "build:unit:linux"], what="n1 registered")
    return gm, jk, agent


def test_map(system):
    gm, jk, _ = ready(system)
    rc, out, err = cli(gm, "map", "--master", "jenkins01")
    assert rc == 0, err
    assert "unit" in out and "build:unit" in out and "n1" in out
    assert "not dispatchable" in out and "plain" in out and "no Node or Label parameter" in out
    rc, out, err = cli(gm, "map", "--master", "jenkins01", "--node", "n1")
    assert rc == 0 and "build:unit:linux" in out and "NODE" in out and "online" in out
    rc, out, err = cli(gm, "map", "--master", "jenkins01", "--json")
    assert rc == 0 and json.loads(out)["master"] == "jenkins01"
    rc, out, err = cli(gm, "map", "--master", "jenkins01", "--node", "ghost")
    assert rc == 4 and '"ghost" is not a node' in err
    rc, out, err = cli(gm, "map")
    assert rc == 5 and "usage" in err


def test_build_results_and_exit_codes(system):
    gm, jk, _ = ready(system)
    rc, out, err = cli(gm, "build", "unit", "DURATION=1")
    assert rc == 0, (out, err)
    assert "started unit #1 on n1 (master jenkins01): %sjob/unit/1/" % jk.url in out
    assert "unit #1 finished: SUCCESS" in out
    for result, code in (("UNSTABLE", 1), ("FAILURE", 2), ("ABORTED", 3), ("NOT_BUILT", 3)):
        rc, out, err = cli(gm, "build", "unit", "RESULT=" + result, "--label", "linux")
        assert rc == code, (result, out, err)
    # Refused by the worker: the warning is shown, exit 4.
    rc, out, err = cli(gm, "build", "unit", "NODE=elsewhere")
    assert rc == 4 and "may not be set by a client" in out
    # Nobody can run it: said at once, not after a timeout.
    t = time.monotonic()
    rc, out, err = cli(gm, "build", "nosuchjob")
    assert rc == 4 and "no worker can run build:nosuchjob" in err and time.monotonic() - t < 5
    rc, out, err = cli(gm, "build", "unit", "notaparam")
    assert rc == 5


def test_build_json_events(system):
    gm, jk, _ = ready(system)
    rc, out, err = cli(gm, "build", "unit", "DURATION=1.5", "--json", "--unique", "zuul-42")
    assert rc == 0, err
    events = [json.loads(l) for l in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "complete"
    assert "status" in kinds
    assert events[1]["node_name"] == "n1" and events[-1]["result"] == "SUCCESS"


def test_stop_describe_and_ctrl_c(system):
    gm, jk, _ = ready(system)
    # Ctrl-C on a running build stops it through stop:$manager.
    p = subprocess.Popen([CLI, "build", "unit", "DURATION=30", "-s", gm.server],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupt once the CLI has WORK_DATA (it prints "started ... on NODE").
    wait_for(lambda: select.select([p.stdout], [], [], 0.05)[0] and "started unit #1" in p.stdout.readline(),
             timeout=20, what="the CLI saw the build start")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 3, (out, err)
    assert jk.builds()[0]["result"] == "ABORTED"
    # stop on a finished build is refused; describe works.
    rc, out, err = cli(gm, "stop", "--master", "jenkins01", "unit", "1")
    assert rc == 4 and "already finished" in err
    rc, out, err = cli(gm, "describe", "--master", "jenkins01", "unit", "1", "<i>hello</i>")
    assert rc == 0 and "updated to <i>hello</i>" in out


def test_ctrl_c_while_queued_cancels(system):
    gm, jk, _ = ready(system)
    jk.start_native("unit", node="n1", params={"DURATION": "3"})
    wait_for(lambda: any(b["building"] for b in jk.builds()), what="node busy")
    p = subprocess.Popen([CLI, "build", "unit", "-s", gm.server],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: gm.status().get("build:unit", (0, 0, 0))[0] == 1, what="queued in gearmand")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 3 and "cancelled while queued" in out, (out, err)
    # gearmand marks a cancelled foreground job "ignore" and drops it when a worker next
    # looks: once the node is free again the job disappears without a build.
    wait_for(lambda: gm.status().get("build:unit", (0, 0, 0))[0] == 0, timeout=20, what="job dropped by gearmand")
    assert len(jk.builds()) == 1


def test_status(system):
    gm, jk, _ = ready(system)
    # A job queued for a function nobody serves stands out.
    subprocess.run(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-b", "-f", "build:orphan", "{}"],
                   check=True, capture_output=True)
    rc, out, err = cli(gm, "status")
    assert rc == 0, err
    line = [l for l in out.splitlines() if "build:unit " in l or l.strip().startswith("build:unit ")][0]
    assert "n1(jenkins01)" in line
    orphan = [l for l in out.splitlines() if "build:orphan" in l][0]
    assert orphan.startswith("!!") and "no worker can run it" in orphan
