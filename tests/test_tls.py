"""TLS with client certificates (issue 16, item 3).

gearmand (Debian's, built without TLS) listens on loopback; a real stunnel4
in server mode stands in front of it, requiring a client certificate from
the deployment CA, as the README's deployment section sets it up. Our
agents and CLI speak TLS to it ([gearman] tls_* keys, --tls-* options); a
plaintext client (Perl's Gearman::Client, Debian's `gearman`) goes through
its own stunnel in client mode. What each test checks is observable:
gearmand's own admin `status`/`workers`, read directly on its loopback
port, the Jenkins test server's builds, what clients got back, the logs.
"""
import json
import os
import socket
import ssl
import subprocess

import pytest

from conftest import (AGENT, BUILD, CLI, PerlClient, final_event, free_port, gearman_cli, json_docs,
                      wait_for)
from tlsfix import PKI, stunnel_client, stunnel_server

IT_GNET = os.path.join(BUILD, "tests", "it_gnet")

NODE = {"type": "node", "name": "NODE"}
DUR = {"type": "string", "name": "DURATION", "default": "0"}

FIXTURE = {"version": "2.462.3", "quiet_period": 5,
           "nodes": [{"name": "built-in", "labels": "", "executors": 0, "mode": "NORMAL"},
                     {"name": "n1", "labels": "linux", "executors": 1, "mode": "NORMAL"}],
           "jobs": [{"name": "unit", "params": [NODE, DUR], "concurrent": True}]}



@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


def front(system, pki, cert="server"):
    """A loopback gearmand and its stunnel front; returns (gearmand, front)."""
    gm = system.gearmand()
    return gm, stunnel_server(system, pki, gm, free_port(), cert=cert)


class Addr:
    """A server address for System.coordinator/node: servers = HOST:PORT."""

    def __init__(self, host, port):
        self.server = "%s:%d" % (host, port)
        self.port = port


def tls_ini(pki, client="client"):
    return {"gearman": pki.ini(client)}


def manager_registered(gm, master="jenkins01"):
    return gm.status().get("project_map:" + master, (0, 0, 0))[2] == 1


def cli(*args, env=None, timeout=60):
    e = dict(os.environ)
    for k in ("GEARMAN_SERVERS", "GEARMAN_SERVER", "JENKINS_GEARMAN_TLS_CA_FILE",
              "JENKINS_GEARMAN_TLS_CERT_FILE", "JENKINS_GEARMAN_TLS_KEY_FILE"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=timeout, env=e)


def it_gnet(pki, host, port, *args, client="client"):
    tls = [] if client is None else ["-T", ",".join([pki.path("ca"), pki.path(client),
                                                       pki.path(client, ".key")])]
    p = subprocess.run([IT_GNET] + tls + [host, str(port)] + list(args), capture_output=True,
                       text=True, timeout=60)
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- our agents over TLS ----

def test_coordinator_and_node_connect_through_stunnel(system, pki):
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(fr, jk, extra=tls_ini(pki))
    system.node(fr, jk, "n1", extra=tls_ini(pki))
    # gearmand itself, asked on its loopback port: the coordinator's functions and
    # the node's worker connection came in, through the TLS front.
    wait_for(lambda: manager_registered(gm), what="project_map:jenkins01 registered through TLS")
    wait_for(lambda: gm.functions_of("n1") is not None, what="n1's worker connection through TLS")
    assert gm.functions_of("jenkins01_manager") == [
        "project_map:jenkins01", "set_description:jenkins01", "stop:jenkins01"]
    # Each connection presented the client certificate the front verified.
    assert fr.log().count("Certificate accepted at depth=0: CN=jga-client") >= 2, fr.log()


def test_host_name_verified_by_dns_name(system, pki):
    """servers = localhost:PORT: the certificate's DNS name is checked (SSL_set1_host)."""
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(Addr("localhost", fr.port), jk, extra=tls_ini(pki))
    wait_for(lambda: manager_registered(gm), what="project_map:jenkins01 registered via localhost")


def test_reload_keeps_tls_and_says_a_change_needs_a_restart(system, pki, tmp_path):
    """SIGHUP re-reads the file; the TLS context built at start stays (a
    changed tls_* path is reported as needing a restart, like servers)."""
    import shutil
    import signal
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(fr, jk, extra=tls_ini(pki))
    wait_for(lambda: manager_registered(gm), what="project_map:jenkins01 registered")
    moved = os.path.join(str(tmp_path), "moved.pem")
    shutil.copy(pki.path("client"), moved)
    with open(co.path) as f:
        text = f.read()
    with open(co.path, "w") as f:
        f.write(text.replace(pki.path("client"), moved))
    co.signal(signal.SIGHUP)
    co.wait_log("other changes need a restart")
    assert co.alive() and manager_registered(gm)


def test_build_over_tls_from_perl_and_gearman_cli(system, pki):
    """The node's map call, its worker and admin connections all over TLS;
    clients through their own stunnel; the build reaches Jenkins and the
    result comes back."""
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(fr, jk, extra=tls_ini(pki))
    n1 = system.node(fr, jk, "n1", extra=tls_ini(pki))
    wait_for(lambda: "build:unit" in (gm.functions_of("n1") or []), timeout=20,
             what="n1 registers build:unit through TLS")
    local = stunnel_client(system, pki, fr, free_port())
    c = PerlClient(local.server, "build:unit", json.dumps({"DURATION": "0.2"}), timeout=60)
    end = final_event(c.wait(90))
    assert end["event"] == "complete", c.events
    assert json.loads(end["data"])["result"] == "SUCCESS"
    rc, out, err = gearman_cli(Addr("127.0.0.1", local.port), "build:unit", "{}")
    assert rc == 0, (out, err)
    assert json_docs(out)[-1]["result"] == "SUCCESS", out
    b = jk.builds()
    assert len(b) == 2 and all(x["node"] == "n1" for x in b), b
    # The executor asked gearmand's admin "show jobs" (re-queued?) on its kept
    # TLS admin connection: an answer, or it would have said it could not tell.
    assert "does not say whether job" not in n1.log() and "gearmand admin" not in n1.log(), n1.log()
    # jenkins-gearman status: the function, its node and the node's master, all over TLS.
    p = cli(*pki.cli_args(), "status", "-s", fr.server)
    assert p.returncode == 0, p.stderr
    assert "build:unit" in p.stdout and "n1(jenkins01)" in p.stdout, p.stdout


def test_perl_client_through_its_own_stunnel(system, pki):
    """Perl's Gearman::Client speaks plaintext to a local stunnel client, which
    presents the client certificate; our coordinator answers over TLS."""
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(fr, jk, extra=tls_ini(pki))
    wait_for(lambda: manager_registered(gm), what="project_map:jenkins01 registered")
    local = stunnel_client(system, pki, fr, free_port())
    c = PerlClient(local.server, "project_map:jenkins01", "{}", timeout=30)
    end = final_event(c.wait(60))
    assert end["event"] == "complete", c.events
    assert "build:unit" in end["data"] and "n1" in end["data"], end


# ---- gadmin and the CLI over TLS ----

def test_admin_connection_kept_over_tls(system, pki):
    """gadmin_conn (the node's kept "show jobs" connection) and an ECHO over TLS."""
    gm, fr = front(system, pki)
    # A background job nobody runs: it stays in "show jobs".
    subprocess.run(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-b", "-f", "build:queued", "x"],
                   check=True, timeout=10)
    r = it_gnet(pki, "127.0.0.1", fr.port, "admin", "show jobs", "3")
    assert r["ok"], r
    # The same list gearmand gives on its loopback port: one job, its handle.
    direct = gm.admin("show jobs")
    assert len(direct) == 1 and direct[0].startswith("H:"), direct
    assert r["reply"] == "\n".join(direct) + "\n.\n", (r, direct)
    r = it_gnet(pki, "127.0.0.1", fr.port, "echo", "20")
    assert r["ok"] and r["n"] == 20, r


def test_cli_status_over_tls(system, pki):
    gm, fr = front(system, pki)
    subprocess.run(["gearman", "-h", "127.0.0.1", "-p", str(gm.port), "-b", "-f", "build:lonely", "x"],
                   check=True, timeout=10)
    p = cli(*pki.cli_args(), "status", "-s", fr.server)
    assert p.returncode == 0, p.stderr
    assert "build:lonely" in p.stdout and "no worker can run it" in p.stdout, p.stdout
    # The same from the environment.
    p = cli("status", "-s", fr.server, env={"JENKINS_GEARMAN_TLS_CA_FILE": pki.path("ca"),
                                            "JENKINS_GEARMAN_TLS_CERT_FILE": pki.path("client"),
                                            "JENKINS_GEARMAN_TLS_KEY_FILE": pki.path("client", ".key")})
    assert p.returncode == 0 and "build:lonely" in p.stdout, (p.stdout, p.stderr)
    # Without TLS the front lets nothing through.
    p = cli("status", "-s", fr.server, timeout=30)
    assert p.returncode == 5 and "build:lonely" not in p.stdout, (p.stdout, p.stderr)
    # Half a TLS setup is an error, not plaintext.
    p = cli("--tls-ca-file", pki.path("ca"), "status", "-s", gm.server)
    assert p.returncode == 5 and "all three" in p.stderr, (p.stdout, p.stderr)


def test_cli_build_over_tls(system, pki):
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(fr, jk, extra=tls_ini(pki))
    system.node(fr, jk, "n1", extra=tls_ini(pki))
    wait_for(lambda: "build:unit" in (gm.functions_of("n1") or []), timeout=20,
             what="n1 registers build:unit through TLS")
    p = cli(*pki.cli_args(), "build", "-s", fr.server, "unit", timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert len(jk.builds()) == 1 and jk.builds()[0]["node"] == "n1"


def test_cli_map_over_tls(system, pki):
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    system.coordinator(fr, jk, extra=tls_ini(pki))
    wait_for(lambda: manager_registered(gm), what="project_map:jenkins01 registered")
    p = cli(*pki.cli_args(), "map", "--master", "jenkins01", "-s", fr.server)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "unit" in p.stdout and "n1" in p.stdout, p.stdout


# ---- who is refused ----

def test_client_without_certificate_is_rejected(system, pki):
    """A TLS client that trusts the front but has no certificate gets no
    admin answer: the front refuses it before gearmand sees a byte."""
    gm, fr = front(system, pki)
    ctx = ssl.create_default_context(cafile=pki.path("ca"))
    got = b""
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection(("127.0.0.1", fr.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"status\n")
                while True:
                    chunk = s.recv(4096)   # the alert (TLS 1.3: after the handshake)
                    if not chunk:
                        raise ConnectionError("closed without an answer")
                    got += chunk
    assert got == b""
    wait_for(lambda: "peer did not return a certificate" in fr.log() or
             "certificate required" in fr.log(), what="the front's refusal in its log:\n" + fr.log())


def test_agent_with_certificate_of_another_ca_is_rejected(system, pki):
    gm, fr = front(system, pki)
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(fr, jk, extra=tls_ini(pki, "rogue_client"))
    n1 = system.node(fr, jk, "n1", extra=tls_ini(pki, "rogue_client"))
    co.wait_log("the server refused our client certificate")
    n1.wait_log("the server refused our client certificate")
    # And again after a retry: never registered, never connected as a worker.
    wait_for(lambda: co.log().count("the server refused our client certificate") +
             co.log().count("connection closed by gearmand") >= 2, timeout=20, what="a second refusal")
    assert not manager_registered(gm)
    assert gm.functions_of("jenkins01_manager") is None and gm.functions_of("n1") is None
    assert "CN=jga-client" in fr.log() and "Certificate accepted" not in fr.log(), fr.log()
    # The CLI with that certificate: refused too.
    p = cli(*pki.cli_args("rogue_client"), "status", "-s", fr.server)
    assert p.returncode == 5 and "refused our client certificate" in p.stderr, (p.stdout, p.stderr)


def test_tls_agent_refuses_a_plaintext_gearmand(system, pki):
    """TLS configured, pointed at gearmand itself: no plaintext fallback."""
    gm = system.gearmand()
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(gm, jk, extra=tls_ini(pki))
    co.wait_log("TLS handshake")
    line = [l for l in co.log().splitlines() if "TLS handshake" in l][0]
    assert "no plaintext is tried" in line and gm.server in line, line
    assert not manager_registered(gm) and gm.functions_of("jenkins01_manager") is None
    p = cli(*pki.cli_args(), "status", "-s", gm.server)
    assert p.returncode == 5 and "TLS handshake" in p.stderr, (p.stdout, p.stderr)


def test_server_certificate_for_another_name_is_refused(system, pki):
    gm, fr = front(system, pki, cert="wrongname")
    jk = system.jenkins(FIXTURE)
    co = system.coordinator(fr, jk, extra=tls_ini(pki))
    co.wait_log("does not verify: IP address mismatch")
    co2 = system.coordinator(Addr("localhost", fr.port), jk, name="jenkins02", extra=tls_ini(pki))
    co2.wait_log("does not verify: hostname mismatch")
    assert not manager_registered(gm) and not manager_registered(gm, "jenkins02")
    r = it_gnet(pki, "127.0.0.1", fr.port, "admin", "status", "1")
    assert not r["ok"] and "IP address mismatch" in r["err"], r


def test_server_certificate_from_another_ca_is_refused(system, pki):
    """The front shows a certificate our CA did not sign (the rogue client's)."""
    gm, fr = front(system, pki, cert="rogue_client")
    r = it_gnet(pki, "127.0.0.1", fr.port, "echo", "1")
    assert not r["ok"] and "does not verify" in r["err"], r


# ---- configuration ----

def write_ini(tmp, gearman):
    path = os.path.join(str(tmp), "tls.ini")
    with open(path, "w") as f:
        f.write("[gearman]\nservers = 127.0.0.1:1\n")
        for k, v in gearman.items():
            f.write("%s = %s\n" % (k, v))
        f.write("[jenkins]\nurl = http://127.0.0.1:1/\n[node]\nname = n1\nstate_dir = %s\n"
                % os.path.join(str(tmp), "state"))
    return path


def check_ini(path):
    return subprocess.run([AGENT, "node", "-t", "-c", path], capture_output=True, text=True, timeout=30)


def test_tls_keys_all_three_or_none(tmp_path, pki):
    p = check_ini(write_ini(tmp_path, {"tls_ca_file": pki.path("ca")}))
    assert p.returncode == 1 and "[gearman] tls_cert_file: required with the other tls_ keys" in p.stderr, p.stderr
    p = check_ini(write_ini(tmp_path, {"tls_ca_file": pki.path("ca"), "tls_cert_file": pki.path("client")}))
    assert p.returncode == 1 and "[gearman] tls_key_file" in p.stderr, p.stderr
    p = check_ini(write_ini(tmp_path, pki.ini()))
    assert p.returncode == 0, p.stderr


def test_tls_key_file_is_a_secret(tmp_path, pki):
    key = os.path.join(str(tmp_path), "open.key")
    with open(pki.path("client", ".key")) as src, open(key, "w") as dst:
        dst.write(src.read())
    os.chmod(key, 0o644)
    ini = dict(pki.ini(), tls_key_file=key)
    p = check_ini(write_ini(tmp_path, ini))
    assert p.returncode == 1 and "chmod 600" in p.stderr and key in p.stderr, p.stderr
    # A key that is not the certificate's.
    ini = dict(pki.ini(), tls_key_file=pki.path("rogue_client", ".key"))
    p = check_ini(write_ini(tmp_path, ini))
    assert p.returncode == 1 and "does not belong to the certificate" in p.stderr, p.stderr
