"""make demo, as a new user runs it (tests/demo.py, the README's first command):
every build succeeds, on both masters, and the status page it prints shows
the demo's running builds while it runs.

The demo stops every process it started; this test kills the demo's
process group by PID if it does not end in time.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

from conftest import BUILD, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def test_demo_runs_and_its_page_shows_the_builds():
    env = dict(os.environ)
    env.pop("GEARMAN_SERVERS", None)
    env.pop("GEARMAN_SERVER", None)
    demo = subprocess.Popen([sys.executable, os.path.join(HERE, "demo.py"), "--build", BUILD, "--hold", "2"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    out, url, seen = [], [], {"builds": set(), "masters": set()}

    def read():
        for line in demo.stdout:
            out.append(line)
            m = re.search(r"status page: (http://127\.0\.0\.1:\d+)/", line)
            if m:
                url.append(m.group(1))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def page_shows_builds():
        if demo.poll() is not None:
            return True
        if not url:
            return False
        try:
            with urllib.request.urlopen(url[0] + "/api/status", timeout=2) as r:
                doc = json.load(r)
        except OSError:
            return False
        for b in doc.get("builds", []):
            seen["builds"].add((b.get("master"), b.get("job"), b.get("number")))
            seen["masters"].add(b.get("master"))
        return len(seen["masters"]) == 2

    try:
        wait_for(page_shows_builds, timeout=90, interval=0.2, what="the demo's page showing builds on both masters")
        demo.wait(timeout=90)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    reader.join(timeout=5)
    text = "".join(out)
    assert demo.returncode == 0, text
    assert "== demo finished" in text, text
    assert url and url[0].startswith("http://127.0.0.1:"), text
    assert seen["masters"] == {"masterA", "masterB"}, (seen, text)
    assert text.count(" SUCCESS ") == 12, text
