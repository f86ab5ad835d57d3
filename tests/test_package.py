"""The Debian package (make deb): build it, lint it, verify its systemd units,
install it, run what it installed, remove it and purge it.

Needs root (it installs a package and creates a system user) and the tools
`make deps` installs; it fails, never skips, without them. The package is
purged, and its user, group and directories removed, however the test ends.
It refuses to run when the package or its user is already on the machine,
rather than purge someone's installation.
"""
import grp
import os
import pwd
import re
import socket
import shutil
import stat
import subprocess
import time

import pytest

from conftest import BUILD, free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = "jenkins-gearman-agent"
USER = GROUP = PKG
CONF_DIR = "/etc/jenkins-gearman-agent"
CONFS = ("node.ini", "coordinator.ini")
STATE_DIR = "/var/lib/jenkins-gearman-agent"
# unit: (role, the configuration it reads, without .ini). The template is verified through an instance.
UNITS = {"jenkins-gearman-agent.service": ("node", "node"),
         "jenkins-gearman-agent@.service": ("node", "%i"),
         "jenkins-gearman-coordinator.service": ("coordinator", "coordinator")}


def instance(unit, name="node1"):
    """The unit systemd-analyze verify is given: an instance of a template, else the unit."""
    return unit.replace("@.", "@%s." % name)

MAN_PAGES = {"jenkins-gearman": ("1", "man1/jenkins-gearman.1.gz"),
             "jenkins-gearman-agent": ("8", "man8/jenkins-gearman-agent.8.gz"),
             "jenkins-gearman-agent.ini": ("5", "man5/jenkins-gearman-agent.ini.5.gz")}
TOOLS = {"make": "make", "dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian",
         "systemd-analyze": "systemd", "systemctl": "systemd", "dpkg": "dpkg", "dpkg-deb": "dpkg",
         "runuser": "util-linux", "man": "man-db", "readelf": "binutils"}


def makefile_version():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


VERSION = makefile_version()


def run(cmd, timeout=60, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert p.returncode == 0, "%s exited %d:\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                            p.stdout[-4000:], p.stderr[-4000:])
    return p


def dpkg(*args, check=True):
    """dpkg, waiting for the lock when someone else's apt-get or dpkg holds it."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    deadline = time.monotonic() + 120
    while True:
        p = subprocess.run(["dpkg"] + list(args), capture_output=True, text=True, timeout=300, env=env)
        if p.returncode == 0 or "lock" not in p.stderr or time.monotonic() > deadline:
            break
        time.sleep(1)
    if check:
        assert p.returncode == 0, "dpkg %s exited %d:\n%s\n%s" % (" ".join(args), p.returncode,
                                                                 p.stdout, p.stderr)
    return p


def pkg_status():
    """dpkg's state of the package: 'not-installed', 'installed', 'config-files', ..."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", PKG], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "not-installed"


def user_exists():
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def group_exists():
    try:
        grp.getgrnam(GROUP)
        return True
    except KeyError:
        return False


# Keys systemd accumulates: each line adds to the list (SystemCallFilter: an
# allow-list line, then a deny-list line that takes from it).
LIST_KEYS = {"SystemCallFilter"}


def parse_unit(path):
    """{section: {key: value}} of a unit file (our units set every key once,
    but for LIST_KEYS, whose values are lists of their lines)."""
    units, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                sec = units.setdefault(line.strip("[]"), {})
                continue
            k, v = line.split("=", 1)
            if k in LIST_KEYS:
                sec.setdefault(k, []).append(v)
                continue
            assert k not in sec, "%s: %s set twice" % (path, k)
            sec[k] = v
    return units


def verify(*paths):
    """systemd-analyze verify without systemd as PID 1: (clean, output). Any
    message (even one systemd calls a warning and ignores) is not clean."""
    p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + list(paths),
                       capture_output=True, text=True, timeout=60)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and not out, out


@pytest.fixture(scope="module")
def deb():
    """`make deb-check`: the package built, lintian without errors, both units
    verified. Returns the .deb's path and lintian's output."""
    missing = ["%s (package %s)" % (t, p) for t, p in TOOLS.items() if not shutil.which(t)]
    assert not missing, "test_package needs %s: run `make deps`" % ", ".join(missing)
    assert os.geteuid() == 0, ("test_package installs a .deb and creates a system user: "
                               "run it as root (make check does, in CI)")
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZE"):
        env.pop(k, None)
    p = run(["make", "-C", ROOT, "--no-print-directory", "deb-check", "BUILD=" + BUILD],
            timeout=600, check=False, env=env)
    assert p.returncode == 0, "make deb-check failed:\n%s\n%s" % (p.stdout[-6000:], p.stderr[-6000:])
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    path = os.path.join(BUILD, "deb", "%s_%s_%s.deb" % (PKG, VERSION, arch))
    assert os.path.isfile(path), "make deb-check made no %s:\n%s" % (path, p.stdout[-3000:])
    lint = [l for l in (p.stdout + p.stderr).splitlines() if re.match(r"^[EWIPX]: ", l)]
    return path, lint


def test_package_builds_and_lints(deb):
    path, lint = deb
    assert not [l for l in lint if l.startswith("E: ")], "lintian errors:\n" + "\n".join(lint)
    # Warnings are allowed, but say which (overrides: packaging/debian/*.lintian-overrides).
    for l in lint:
        print("lintian:", l)

    info = run(["dpkg-deb", "-f", path, "Package", "Version", "Depends"]).stdout
    assert "Package: %s\n" % PKG in info
    assert "Version: %s\n" % VERSION in info, info
    assert re.search(r"^Depends:.*\badduser\b", info, re.M), info
    assert re.search(r"^Depends:.*\blibcurl4\b.*\blibssl3\b", info, re.M), "no shlibs dependencies: " + info

    listing = run(["dpkg-deb", "-c", path]).stdout
    files = {}
    for line in listing.splitlines():
        mode, owner, _size, _day, _time, name = line.split(None, 5)
        files[name.split(" -> ")[0].lstrip(".")] = (mode, owner)
    for f in ("/usr/bin/jenkins-gearman-agent", "/usr/bin/jenkins-gearman"):
        assert files.get(f) == ("-rwxr-xr-x", "root/root"), (f, files.get(f))
    for c in CONFS:
        # 0640 in the package already: never world-readable, even before postinst.
        conf = "%s/%s" % (CONF_DIR, c)
        assert files.get(conf) == ("-rw-r-----", "root/root"), (conf, files.get(conf))
        assert "/usr/share/doc/%s/examples/%s" % (PKG, c) in files
    for u in UNITS:
        assert "/lib/systemd/system/" + u in files, "%s not packaged:\n%s" % (u, listing)
    for _name, (_sec, rel) in MAN_PAGES.items():
        assert "/usr/share/man/" + rel in files, rel
    for doc in ("copyright", "changelog.gz", "README.Debian"):
        # dh_compress compresses a document over 4 kB: README.Debian may be either.
        assert {"/usr/share/doc/%s/%s" % (PKG, d) for d in (doc, doc + ".gz")} & set(files), doc
    assert files.get(STATE_DIR + "/", ("",))[0].startswith("d"), "no %s in the package" % STATE_DIR

    conffiles = run(["dpkg-deb", "-I", path, "conffiles"]).stdout.split()
    assert sorted(conffiles) == sorted("%s/%s" % (CONF_DIR, c) for c in CONFS), conffiles


def test_systemd_units(deb, tmp_path):
    """The units say what README.Debian promises, systemd-analyze verify finds
    nothing to say about them, and it does speak up about broken copies."""
    units_dir = os.path.join(BUILD, "deb", "units")   # written by make deb-check, ExecStart= rewritten
    root = os.path.join(BUILD, "deb", "root")          # the package, extracted by make deb-check
    for unit, (role, conf) in UNITS.items():
        u = parse_unit(os.path.join(root, "lib/systemd/system", unit))
        s = u["Service"]
        assert s["ExecStart"] == "/usr/bin/jenkins-gearman-agent %s -c %s/%s.ini" % (role, CONF_DIR, conf)
        assert (s["Type"], s["User"], s["Group"]) == ("simple", USER, GROUP)
        assert (s["Restart"], s["RestartSec"]) == ("on-failure", "5")
        assert (s["KillSignal"], s["KillMode"]) == ("SIGTERM", "mixed")
        assert s["TimeoutStopSec"] == ("1h" if role == "node" else "2min")
        assert set(s["UnsetEnvironment"].split()) == {"GEARMAN_SERVERS", "GEARMAN_SERVER"}
        for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                  "ProtectKernelModules", "ProtectControlGroups", "LockPersonality", "RestrictRealtime"):
            assert s[k] == "yes", (unit, k)
        assert s["ProtectSystem"] == "strict"
        assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
        assert s["SystemCallArchitectures"] == "native"
        # Issue 16: the rest of what the units can take (docs-systemd.md has the scores).
        assert s["SystemCallFilter"] == ["@system-service", "~@privileged @resources"], unit
        assert s["SystemCallErrorNumber"] == "EPERM"
        for k in ("RemoveIPC", "PrivateMounts"):
            assert s[k] == "yes", (unit, k)
        assert (s["ProtectProc"], s["ProcSubset"]) == ("invisible", "pid"), unit
        if role == "node":
            assert (s["StateDirectory"], s["StateDirectoryMode"]) == (PKG, "0750")
        assert u["Install"]["WantedBy"] == "multi-user.target"

    good = [os.path.join(units_dir, instance(u)) for u in UNITS]
    clean, out = verify(*good)
    assert clean, "systemd-analyze verify:\n" + out

    # The template is the plain unit but for the file it reads (and its comments).
    plain, tmpl = (parse_unit(os.path.join(root, "lib/systemd/system", u))
                   for u in ("jenkins-gearman-agent.service", "jenkins-gearman-agent@.service"))
    for u in (plain, tmpl):
        u["Service"].pop("ExecStart")
        u["Unit"].pop("Description")
    assert tmpl == plain

    src = open(good[0]).read()
    broken = {
        "typo.service": src.replace("KillMode=mixed", "KillMode=mixd"),
        "noexec.service": re.sub(r"^ExecStart=\S+", "ExecStart=/nonexistent/jenkins-gearman-agent", src, flags=re.M),
    }
    # An instance is verified with its template's text.
    broken["typo@.service"] = broken["typo.service"]
    for name, text in broken.items():
        assert text != src
        p = tmp_path / name
        p.write_text(text)
        clean, out = verify(str(tmp_path / instance(name)))
        assert not clean, "systemd-analyze verify found nothing wrong in %s" % instance(name)


# systemd-analyze security's overall exposure of each unit, times ten (its
# --threshold scale): 1.8 before issue 16, 1.2 after (docs-systemd.md).
EXPOSURE_MAX = 12


def test_systemd_security_exposure():
    """Issue 16: every unit keeps the exposure docs-systemd.md gives; a unit
    that loses a hardening key goes over the threshold."""
    src = os.path.join(ROOT, "packaging", "systemd")
    for unit in UNITS:
        cmd = ["systemd-analyze", "security", "--offline=true", "--threshold=%d" % EXPOSURE_MAX,
               os.path.join(src, unit)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, "%s: exposure over %.1f:\n%s" % (unit, EXPOSURE_MAX / 10,
                                                                    p.stdout[-3000:])
        assert "Overall exposure level for %s: 1.2 " % instance(unit, "i") in p.stdout, p.stdout[-500:]


@pytest.fixture
def installed(deb):
    """Install the package; purge it (and whatever it left) at the end, whatever happens."""
    assert pkg_status() == "not-installed", (
        "%s is already on this machine (%s); the test installs and purges it: "
        "`dpkg -P %s` first" % (PKG, pkg_status(), PKG))
    assert not user_exists() and not group_exists(), (
        "user or group %s already exists; the test creates and deletes it: "
        "`deluser --system %s` first" % (USER, USER))
    for d in (CONF_DIR, STATE_DIR):
        assert not os.path.exists(d), "%s exists before the test: remove it first" % d
    try:
        dpkg("-i", deb[0])
        yield deb[0]
    finally:
        errors = []
        if pkg_status() != "not-installed":
            p = dpkg("--purge", PKG, check=False)
            if p.returncode != 0:
                errors.append("dpkg --purge: %s%s" % (p.stdout, p.stderr))
                dpkg("--purge", "--force-all", PKG, check=False)
        # Whatever a broken postrm left: the user, the group, the directories.
        if user_exists():
            errors.append("user %s left after purge" % USER)
            subprocess.run(["userdel", USER])
        if group_exists():
            errors.append("group %s left after purge" % GROUP)
            subprocess.run(["groupdel", GROUP])
        for d in (CONF_DIR, STATE_DIR):
            if os.path.exists(d):
                errors.append("%s left after purge" % d)
                shutil.rmtree(d, ignore_errors=True)
        assert not errors, "purging the package left things behind:\n" + "\n".join(errors)


def two_agents_default_state_dirs():
    """A host that is a node of two masters, under its host name on both: two
    agents as the service user, configurations without state_dir, each gets
    STATE_DIR/MASTER/NODE (created, its own) and neither is refused."""
    node = socket.gethostname().split(".")[0]
    agents, confs = [], []
    try:
        for master in ("pkgtest-masterA", "pkgtest-masterB"):
            conf = "%s/%s.ini" % (CONF_DIR, master)
            with open(conf, "w") as f:
                # Nothing listens there: the agent opens its state_dir first, then retries.
                f.write("[gearman]\nservers = 127.0.0.1:%d\n[jenkins]\nurl = http://127.0.0.1:%d/\n"
                        "[coordinator]\nname = %s\n" % (free_port(), free_port(), master))
            confs.append(conf)
            os.chown(conf, 0, grp.getgrnam(GROUP).gr_gid)
            os.chmod(conf, 0o640)
            agents.append(subprocess.Popen(["/usr/bin/jenkins-gearman-agent", "node", "-c", conf],
                                           user=USER, group=GROUP, extra_groups=[], stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True, env={"PATH": "/usr/bin:/bin"}))
        dirs = ["%s/%s/%s" % (STATE_DIR, m, node) for m in ("pkgtest-masterA", "pkgtest-masterB")]
        for d, a in zip(dirs, agents):
            wait_for(lambda: os.path.exists(d + "/builds.jsonl") or a.poll() is not None, timeout=20,
                     what="the agent's journal in " + d)
            assert a.poll() is None, "agent exited %s:\n%s" % (a.returncode, a.communicate()[0])
            assert owner(d) == (USER, GROUP, 0o750), (d, owner(d))
            assert owner(os.path.dirname(d)) == (USER, GROUP, 0o750), owner(os.path.dirname(d))
        for a in agents:
            a.terminate()
            assert a.wait(15) == 0, a.communicate()[0]
    finally:
        for a in agents:
            if a.poll() is None:
                a.kill()
                a.wait(5)
        for c in confs:
            os.unlink(c)


def owner(path):
    st = os.stat(path)
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def test_install_run_remove_purge(installed):
    # The system user and its group.
    pw = pwd.getpwnam(USER)
    assert 0 < pw.pw_uid < 1000, pw
    assert grp.getgrgid(pw.pw_gid).gr_name == GROUP
    assert pw.pw_dir == STATE_DIR
    assert pw.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"), pw.pw_shell

    # The state directory and the configuration.
    assert os.path.isdir(STATE_DIR)
    assert owner(STATE_DIR) == (USER, GROUP, 0o750)
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}\n", PKG]).stdout
    for c in CONFS:
        path = "%s/%s" % (CONF_DIR, c)
        assert owner(path) == ("root", GROUP, 0o640), (path, owner(path))
        assert path in conffiles, conffiles
        with open(path) as f, open(os.path.join(ROOT, "conf", c)) as orig:
            assert f.read() == orig.read()

    # The map signing pair postinst made with keygen: the private key the coordinator's (service user).
    assert owner(CONF_DIR + "/map.key") == (USER, GROUP, 0o600)
    assert owner(CONF_DIR + "/map.pub") == ("root", "root", 0o644)

    # The programs: the version of the Makefile, never sanitizer builds.
    p = run(["/usr/bin/jenkins-gearman-agent", "--version"])
    assert p.stdout.strip() == "jenkins-gearman-agent %s" % VERSION
    p = run(["/usr/bin/jenkins-gearman", "--help"])
    assert "usage: jenkins-gearman [TLS OPTIONS] COMMAND" in p.stdout
    for b in ("/usr/bin/jenkins-gearman-agent", "/usr/bin/jenkins-gearman"):
        needed = run(["readelf", "-d", b]).stdout
        assert "libssl" in needed and not re.search(r"lib(a|ub|t)san", needed), needed

    # The service user can read its configuration (root:group 0640); others cannot.
    for role in ("node", "coordinator"):
        conf = "%s/%s.ini" % (CONF_DIR, role)
        p = run(["runuser", "-u", USER, "--", "/usr/bin/jenkins-gearman-agent", role, "-c", conf, "-t"])
        assert "configuration OK" in p.stdout, p.stdout + p.stderr
        p = run(["runuser", "-u", "nobody", "--", "/usr/bin/jenkins-gearman-agent", role, "-c", conf, "-t"],
                check=False)
        assert p.returncode == 1, "nobody could read %s: %s%s" % (conf, p.stdout, p.stderr)

    # The units: installed, verified where they are, neither enabled nor started.
    for unit in UNITS:
        path = "/lib/systemd/system/" + instance(unit)
        clean, out = verify(path)
        assert clean, "systemd-analyze verify %s:\n%s" % (path, out)
        wants_dir = "/etc/systemd/system/multi-user.target.wants"
        enabled = os.listdir(wants_dir) if os.path.isdir(wants_dir) else []
        assert not [l for l in enabled if l == unit or (
            unit.endswith("@.service") and l.startswith(unit.replace("@.service", "@")))], (unit, enabled)
        p = run(["systemctl", "is-enabled", instance(unit)], check=False)
        assert p.stdout.strip() == "disabled", (unit, p.stdout, p.stderr)

    two_agents_default_state_dirs()
    # An instance the administrator enables; purging removes its link.
    wants = "/etc/systemd/system/multi-user.target.wants/jenkins-gearman-agent@pkgtest.service"
    run(["systemctl", "enable", "jenkins-gearman-agent@pkgtest.service"])
    assert os.path.islink(wants)

    # man finds the three pages, and they render without a groff warning.
    for name, (sec, rel) in MAN_PAGES.items():
        p = run(["man", "-w", sec, name], check=False)
        assert p.stdout.strip() == "/usr/share/man/" + rel, (
            "man -w %s %s: %r %s (is /usr/share/man excluded in /etc/dpkg/dpkg.cfg.d?)"
            % (sec, name, p.stdout, p.stderr))
        p = run(["man", "--warnings", "-E", "UTF-8", "-l", "/usr/share/man/" + rel],
                env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8"))
        assert "NAME" in p.stdout and name in p.stdout
        assert not p.stderr.strip(), "man %s: %s" % (rel, p.stderr)

    # Installing again changes nothing (postinst is idempotent).
    dpkg("-i", installed)
    assert pwd.getpwnam(USER).pw_uid == pw.pw_uid
    assert owner(STATE_DIR) == (USER, GROUP, 0o750)

    # Remove: the programs and units go, the (edited) configuration and the user stay.
    with open("%s/node.ini" % CONF_DIR, "a") as f:
        f.write("; edited by test_package\n")
    with open(os.path.join(STATE_DIR, "record.json"), "w") as f:
        f.write("{}\n")
    dpkg("-r", PKG)
    assert pkg_status() == "config-files"
    for gone in ("/usr/bin/jenkins-gearman-agent", "/usr/bin/jenkins-gearman",
                 "/lib/systemd/system/jenkins-gearman-agent.service",
                 "/lib/systemd/system/jenkins-gearman-coordinator.service"):
        assert not os.path.exists(gone), gone
    for c in CONFS:
        assert os.path.isfile("%s/%s" % (CONF_DIR, c)), c
    with open("%s/node.ini" % CONF_DIR) as f:
        assert f.read().endswith("; edited by test_package\n")
    assert user_exists()

    # Purge: configuration, state (even with a record in it), user and group go.
    dpkg("-P", PKG)
    assert pkg_status() == "not-installed"
    assert not os.path.lexists(wants)
    assert not os.path.exists(CONF_DIR)
    assert not os.path.exists(STATE_DIR)
    assert not user_exists() and not group_exists()
