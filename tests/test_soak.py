"""A short soak inside make check: 3 agents x 2 executors, 120 builds, a fault
every ~2 s (agents killed or stopped and restarted, Jenkins 503/slow/losing
answers, the coordinator restarted, the start window widened), no kind
twice before all seven once. `make soak` runs the full-size one."""
import os
import subprocess
import sys

from conftest import BUILD, HERE


def test_short_soak(tmp_path):
    out = tmp_path / "figures.json"
    p = subprocess.run([sys.executable, os.path.join(HERE, "soak.py"), "--build", BUILD, "--agents", "3",
                        "--executors", "2", "--builds", "120", "--max-duration", "1", "--fault-every", "2",
                        "--seed", "11", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    import json
    f = json.loads(out.read_text())
    assert f["lost"] == 0 and f["duplicates"] == 0 and f["answered_once"] == 120 and f["jenkins_builds"] == 120
    assert f["faults_total"] >= 3
    # No kind strikes twice before every kind has struck once.
    assert len(f["faults"]) == min(7, f["faults_total"]), f["faults"]
