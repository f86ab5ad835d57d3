"""Several node agents on one host with the default configuration: the host
is a node of master A and of master B, under its host name on both (the
default [node] name), and neither file sets [node] state_dir.

The default state_dir is ROOT/MASTER/NODE (agent/daemon/defaults.c); the tests move
ROOT from /var/lib/jenkins-gearman-agent to a temporary directory with
$JGA_STATE_ROOT, so that they touch nothing under /var/lib (tests/test_package.py
runs the packaged agent on the real root).
"""
import json
import os
import socket

from conftest import Daemon, perl_call, final_event, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
HOST = socket.gethostname().split(".")[0]


def fixture(job):
    return {"version": "2.462.3", "quiet_period": 5,
            "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                      {"name": HOST, "labels": "linux", "executors": 1, "mode": "NORMAL"}],
            "jobs": [{"name": job, "params": [NODE, DUR], "concurrent": True, "label": "linux"}]}


def default_agent(system, gm, jk, master, root):
    """A node agent whose file sets neither [node] name nor state_dir."""
    d = Daemon(system.tmp, "node", master, {
        "gearman": {"servers": gm.server},
        "jenkins": {"url": jk.url},
        "node": {"status_interval": 1},
        "coordinator": {"name": master, "refresh": 1},
        "log": {"level": "debug"}})
    with open(d.path) as f:
        text = f.read()
    assert "state_dir" not in text and "\nname = %s" % HOST not in text, text
    system.items.append(d)
    return d.start(env={"JGA_STATE_ROOT": root})


def offered(gm, fn):
    """Workers gearmand has for fn (the agents share a worker id, the host name)."""
    st = gm.status().get(fn)
    return st is not None and st[2] >= 1


def journal(state_dir):
    with open(os.path.join(state_dir, "builds.jsonl")) as f:
        return f.read()


def test_two_masters_one_host_default_state_dirs(system):
    root = os.path.join(system.tmp, "state-root")     # its parent exists; the agent creates it
    gm = system.gearmand()
    masters = {"masterA": ("a-job", system.jenkins(fixture("a-job"))),
               "masterB": ("b-job", system.jenkins(fixture("b-job")))}
    for m, (_job, jk) in masters.items():
        system.coordinator(gm, jk, name=m)
    agents = {m: default_agent(system, gm, jk, m, root) for m, (_job, jk) in masters.items()}
    for m, (job, _jk) in masters.items():
        wait_for(lambda: offered(gm, "build:" + job) or not agents[m].alive(), timeout=15,
                 what="the agent of %s offers build:%s" % (m, job))
        assert agents[m].alive(), "the agent of %s exited:\n%s" % (m, agents[m].log()[-3000:])

    # Both agents take and complete a build, each on its own master.
    for m, (job, jk) in masters.items():
        end = final_event(perl_call(gm, "build:" + job, json.dumps({"DURATION": "0.2"}), unique="u-" + m))
        assert end["event"] == "complete", end
        data = json.loads(end["data"])
        assert (data["manager"], data["node_name"], data["result"]) == (m, HOST, "SUCCESS"), data
        builds = jk.builds()
        assert len(builds) == 1 and builds[0]["node"] == HOST, builds

    # Each recorded its build in its own directory, ROOT/MASTER/NODE.
    dirs = {m: os.path.join(root, m, HOST) for m in masters}
    assert dirs["masterA"] != dirs["masterB"]
    for m, d in dirs.items():
        other = "masterB" if m == "masterA" else "masterA"
        assert os.path.isdir(d) and not os.path.islink(d), d
        assert "state_dir %s" % d in agents[m].log()
        text = journal(d)
        assert '"u-%s"' % m in text and '"u-%s"' % other not in text, (d, text)
    for d in (root, os.path.join(root, "masterA"), dirs["masterA"]):
        assert os.stat(d).st_mode & 0o027 == 0, "%s is mode %o" % (d, os.stat(d).st_mode)
    for a in agents.values():
        assert a.stop() == 0


def test_default_state_dir_link_is_refused(system):
    """A symbolic link planted where the default state_dir goes is not followed."""
    root = os.path.join(system.tmp, "state-root")
    elsewhere = os.path.join(system.tmp, "elsewhere")
    os.makedirs(os.path.join(root, "masterA"))
    os.mkdir(elsewhere)
    os.symlink(elsewhere, os.path.join(root, "masterA", HOST))
    gm = system.gearmand()
    jk = system.jenkins(fixture("a-job"))
    a = default_agent(system, gm, jk, "masterA", root)
    wait_for(lambda: not a.alive(), timeout=10, what="the agent to refuse the link")
    assert a.stop(check=False) == 1
    assert "%s: it is a symbolic link" % os.path.join(root, "masterA", HOST) in a.log(), a.log()
    assert os.listdir(elsewhere) == []
