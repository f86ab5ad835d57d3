"""Undeclared parameters (issue 17, row 9): Jenkins' buildWithParameters
keeps only the parameters a job declares (ParametersDefinitionProperty.
buildWithParameters), so a client's ZUUL_* that the job does not declare
never reach the build. The map lists what each job declares, the agent logs
and counts what Jenkins dropped, and the CLI warns before it sends them.

Real gearmand, the Jenkins test server, our coordinator and agent."""
import json
import os
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from conftest import CLI, final_event, perl_call, wait_for

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}
UUID = {"type": "string", "name": "ZUUL_UUID", "default": ""}

FIXTURE = {
    "version": "2.462.3",
    "quiet_period": 0,
    "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
              {"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
    "jobs": [{"name": "unit", "params": [NODE, DUR, UUID], "concurrent": True},
             {"name": "plain"}],
}


def cli(gm, *args, timeout=60, merged=False):
    """(rc, stdout, stderr); merged: stderr into stdout, in the order written."""
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    p = subprocess.run([CLI] + list(args) + ["-s", gm.server], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT if merged else subprocess.PIPE, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def metrics(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read()
    return {s.name: s.value for fam in text_string_to_metric_families(text) for s in fam.samples}


def ready(system, node_extra=None):
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    system.coordinator(gm, jk)
    agent = system.node(gm, jk, "n1", extra=node_extra)
    wait_for(lambda: gm.functions_of("n1") == ["build:unit"], what="n1 registered")
    return gm, jk, agent


def undeclared_events(agent):
    out = []
    for line in agent.log().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("event") == "undeclared_parameters":
            out.append(doc)
    return out


def test_map_json_lists_declared_parameters(system):
    gm, jk, _ = ready(system)
    rc, out, err = cli(gm, "map", "--master", "jenkins01", "--json")
    assert rc == 0, err
    jobs = {j["job"]: j for j in json.loads(out)["jobs"]}
    assert jobs["unit"]["parameters"] == [
        {"name": "NODE", "type": "NodeParameterDefinition"},
        {"name": "DURATION", "type": "StringParameterDefinition"},
        {"name": "ZUUL_UUID", "type": "StringParameterDefinition"}]


def test_agent_logs_and_counts_undeclared_parameters(system):
    prom = os.path.join(system.tmp, "node.prom")
    gm, jk, agent = ready(system, {"log": {"format": "json", "level": "info"},
                                   "metrics": {"textfile": prom}})
    arg = {"DURATION": "0", "ZUUL_UUID": "u1", "ZUUL_PIPELINE": "gate-secret-value"}
    assert final_event(perl_call(gm, "build:unit", json.dumps(arg), unique="u-1"))["event"] == "complete"
    # Jenkins (the test server, as ParametersDefinitionProperty.buildWithParameters) dropped it.
    b = jk.builds()
    assert len(b) == 1 and "ZUUL_PIPELINE" not in b[0]["params"]
    assert b[0]["params"]["ZUUL_UUID"] == "u1" and b[0]["params"]["NODE"] == "n1"
    ev = wait_for(lambda: undeclared_events(agent), what="undeclared_parameters event")
    assert len(ev) == 1
    assert ev[0]["job"] == "unit" and ev[0]["parameters"] == "ZUUL_PIPELINE"
    assert ev[0]["unique"] == "u-1" and ev[0]["level"] == "warn"
    assert "ZUUL_PIPELINE" in ev[0]["msg"] and "gate-secret-value" not in agent.log()
    # Declared parameters only: nothing said, nothing counted.
    assert final_event(perl_call(gm, "build:unit", '{"ZUUL_UUID":"u2"}', unique="u-2"))["event"] == "complete"
    m = wait_for(lambda: (lambda m: m if m and m.get("jga_builds_started_total") == 2 else None)(metrics(prom)),
                 timeout=15, what="node metrics after two builds")
    assert m["jga_undeclared_parameters_total"] == 1
    assert len(undeclared_events(agent)) == 1


def test_cli_warns_before_sending_undeclared_parameters(system):
    gm, jk, agent = ready(system, {"log": {"format": "json", "level": "info"}})
    rc, out, _ = cli(gm, "build", "unit", "DURATION=0", "ZUUL_PIPELINE=gate", "ZUUL_PROJECT=p",
                     merged=True)
    assert rc == 0, out
    lines = out.splitlines()
    # Said before it sent them: the warning is the first line, before "queued build:unit".
    assert lines[0] == ("jenkins-gearman: warning: job unit on master jenkins01 does not declare "
                        "ZUUL_PIPELINE, ZUUL_PROJECT; Jenkins will drop them (sending them anyway)"), out
    assert lines[1].split(" ", 1)[1].startswith("queued build:unit"), out
    # Sent all the same: the agent received them (and says Jenkins dropped them).
    ev = wait_for(lambda: undeclared_events(agent), what="the agent's undeclared_parameters event")
    assert ev[0]["parameters"] == "ZUUL_PIPELINE,ZUUL_PROJECT"
    # Declared parameters only: no warning.
    rc, out, err = cli(gm, "build", "unit", "DURATION=0", "ZUUL_UUID=x")
    assert rc == 0 and "warning" not in err, (out, err)
