"""TLS fixtures for the integration tests: a throw-away PKI made with the
`openssl` CLI, and real stunnel4 processes (Debian's stunnel4), in server
mode in front of a loopback gearmand (requiring and verifying client
certificates, as a deployment does) or in client mode in front of a
plaintext client (Perl's Gearman::Client). Every stunnel runs in the
foreground and is stopped by PID.
"""
import os
import subprocess

from conftest import stop_pid, wait_for

STUNNEL = "stunnel4"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class PKI:
    """Certificates in dir: ca (the deployment's CA), server (127.0.0.1 and
    localhost), client, wrongname (a server certificate for another name),
    and rogue_ca with a client certificate of its own (rogue_client).
    path(name, ext) gives a file: ".pem" certificate, ".key" key (0600)."""

    def __init__(self, dir):
        self.dir = str(dir)
        os.makedirs(self.dir, exist_ok=True)
        self._ca("ca", "Test Deployment CA")
        self._ca("rogue_ca", "Some Other CA")
        self._leaf("server", "ca", "gearmand", "serverAuth", "IP:127.0.0.1,DNS:localhost")
        self._leaf("wrongname", "ca", "elsewhere", "serverAuth", "DNS:wrong.example")
        self._leaf("client", "ca", "jga-client", "clientAuth", None)
        self._leaf("rogue_client", "rogue_ca", "jga-client", "clientAuth", None)

    def path(self, name, ext=".pem"):
        return os.path.join(self.dir, name + ext)

    def _key(self, name):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", name + ".key", cwd=self.dir)
        os.chmod(self.path(name, ".key"), 0o600)

    def _ca(self, name, cn):
        self._key(name)
        _openssl("req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem", "-days", "3",
                 "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def _leaf(self, name, ca, cn, usage, san):
        self._key(name)
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
            f.write("extendedKeyUsage=%s\n" % usage)
            if san:
                f.write("subjectAltName=%s\n" % san)
        _openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-days", "2", "-out", name + ".pem", "-extfile", ext, cwd=self.dir)

    def ini(self, client="client"):
        """[gearman] keys for an agent presenting client's certificate."""
        return {"tls_ca_file": self.path("ca"), "tls_cert_file": self.path(client),
                "tls_key_file": self.path(client, ".key")}

    def cli_args(self, client="client"):
        return ["--tls-ca-file", self.path("ca"), "--tls-cert-file", self.path(client),
                "--tls-key-file", self.path(client, ".key")]


def _listening(port):
    """Something listens on 127.0.0.1:port (read from /proc, without connecting)."""
    want = ":%04X" % port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if local.endswith(want) and state == "0A":
                        return True
        except FileNotFoundError:
            pass
    return False


class Stunnel:
    """One stunnel4 service in the foreground: stop() ends it by PID."""

    def __init__(self, tmp, name, port, lines):
        self.port = port
        self.name = name
        self.conf = os.path.join(str(tmp), "stunnel-%s.conf" % name)
        self.logpath = os.path.join(str(tmp), "stunnel-%s.log" % name)
        with open(self.conf, "w") as f:
            # pid = (empty): no pid file; the process is ours, by Popen.
            f.write("foreground = yes\npid =\ndebug = 5\noutput = %s\n" % self.logpath)
            f.write("[%s]\n" % name)
            for line in lines:
                f.write(line + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([STUNNEL, self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self._up(), timeout=10, what="stunnel %s on port %d" % (self.name, self.port))
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("stunnel %s exited %s:\n%s" % (self.name, self.proc.returncode, self.log()))
        return _listening(self.port)

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc:
            stop_pid(self.proc)
            self.proc = None


def stunnel_server(system, pki, gm, port, cert="server"):
    """gearmand's TLS front: TLS 1.2+, a client certificate required and
    verified against the deployment CA, then plaintext to the loopback gearmand."""
    s = Stunnel(system.tmp, "front-%d" % port, port, [
        "accept = 127.0.0.1:%d" % port,
        "connect = 127.0.0.1:%d" % gm.port,
        "cert = %s" % pki.path(cert),
        "key = %s" % pki.path(cert, ".key"),
        "CAfile = %s" % pki.path("ca"),
        "verifyChain = yes",
        "requireCert = yes",
        "sslVersionMin = TLSv1.2",
    ]).start()
    system.items.append(s)
    return s


def stunnel_client(system, pki, front, port, client="client"):
    """A plaintext client's side: 127.0.0.1:port in, TLS with client's
    certificate out to front, whose certificate must be for 127.0.0.1."""
    s = Stunnel(system.tmp, "client-%d" % port, port, [
        "client = yes",
        "accept = 127.0.0.1:%d" % port,
        "connect = 127.0.0.1:%d" % front.port,
        "cert = %s" % pki.path(client),
        "key = %s" % pki.path(client, ".key"),
        "CAfile = %s" % pki.path("ca"),
        "verifyChain = yes",
        "checkIP = 127.0.0.1",
        "sslVersionMin = TLSv1.2",
    ]).start()
    system.items.append(s)
    return s
