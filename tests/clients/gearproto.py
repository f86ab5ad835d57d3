"""A small Gearman client on stdlib sockets, written from the protocol
description (gearman-and-anchors.md §1.1, §1.2, §1.6), shaped like the `gear`
library Zuul v2 and nodepool use: one connection, a poll thread that reads
packets and calls handle* methods, Job objects that collect what the worker
sends, and text admin requests sent on the same connection.

Only what those clients need: SUBMIT_JOB / SUBMIT_JOB_HIGH / SUBMIT_JOB_LOW,
JOB_CREATED, WORK_DATA, WORK_STATUS, WORK_WARNING, WORK_COMPLETE, WORK_FAIL
(WORK_EXCEPTION and ERROR are recognised so nothing hangs), and the admin
commands `status`, `workers` and `cancel job`.

As in gear, WORK_DATA, WORK_WARNING and a non-empty WORK_COMPLETE payload are
appended to job.data, in arrival order.
"""
import re
import socket
import struct
import threading
import time

REQ = b"\0REQ"
RES = b"\0RES"

SUBMIT_JOB = 7
JOB_CREATED = 8
WORK_STATUS = 12
WORK_COMPLETE = 13
WORK_FAIL = 14
ERROR = 19
SUBMIT_JOB_HIGH = 21
WORK_EXCEPTION = 25
WORK_DATA = 28
WORK_WARNING = 29
SUBMIT_JOB_LOW = 33

PRECEDENCE_NORMAL = 0
PRECEDENCE_LOW = 1
PRECEDENCE_HIGH = 2
SUBMIT_TYPE = {PRECEDENCE_NORMAL: SUBMIT_JOB, PRECEDENCE_LOW: SUBMIT_JOB_LOW,
               PRECEDENCE_HIGH: SUBMIT_JOB_HIGH}


def to_bytes(v):
    return v if isinstance(v, bytes) else str(v).encode("utf-8")


def pack(ptype, *args):
    """A request packet: 12-byte header, arguments separated by NUL."""
    body = b"\0".join(to_bytes(a) for a in args)
    return REQ + struct.pack("!II", ptype, len(body)) + body


class Packet:
    def __init__(self, ptype, body, connection):
        self.ptype, self.body, self.connection = ptype, body, connection

    def args(self, n):
        """Split into n arguments; the last one keeps any NULs (opaque data)."""
        return self.body.split(b"\0", n - 1)


class Job:
    """A submitted job and everything its worker sent back (like gear.Job)."""

    def __init__(self, name, arguments, unique=b""):
        self.name = name
        self.arguments = to_bytes(arguments)
        self.unique = unique
        self.handle = None
        self.connection = None
        self.data = []
        self.numerator = None
        self.denominator = None
        self.fraction_complete = None
        self.warning = False
        self.exception = None
        self.complete = False
        self.failure = False
        self.created = threading.Event()
        self.done = threading.Event()
        self.events = []          # (kind, payload) in arrival order, for tests

    def __repr__(self):
        return "<Job %s unique=%s handle=%s>" % (self.name, self.unique, self.handle)


class AdminRequest:
    def __init__(self, command, finished_re):
        self.command = command
        self.finished = re.compile(finished_re, re.M)
        self.response = None
        self.event = threading.Event()

    def end_of(self, text):
        m = self.finished.search(text)
        return m.end() if m else None


def StatusAdminRequest():
    return AdminRequest("status", r"^\.\r?\n")


def WorkersAdminRequest():
    return AdminRequest("workers", r"^\.\r?\n")


def CancelJobAdminRequest(handle):
    return AdminRequest("cancel job %s" % (handle.decode() if isinstance(handle, bytes) else handle),
                        r"^(OK|ERR .*)\r?\n")


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self.connect_time = time.time()
        self.send_lock = threading.Lock()
        self.pending_jobs = []      # submitted, waiting for JOB_CREATED (FIFO)
        self.related_jobs = {}      # handle -> Job
        self.admin_requests = []    # waiting for their text answer (FIFO)

    def send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def sendAdminRequest(self, req, timeout=30):
        with self.send_lock:
            self.admin_requests.append(req)
            self.sock.sendall(req.command.encode() + b"\n")
        if not req.event.wait(timeout):
            raise TimeoutError("no answer to admin %r" % req.command)
        return req


class Client:
    """One server, one connection, one poll thread (gear.Client, reduced)."""

    def __init__(self, host, port):
        self.connection = Connection(host, port)
        self.active_connections = [self.connection]
        self.poll_errors = []       # exceptions raised by handlers (gear logs and goes on)
        self.running = True
        self.thread = threading.Thread(target=self._poll, name="gearproto poll", daemon=True)
        self.thread.start()

    # ---- submitting ----

    def submitJob(self, job, precedence=PRECEDENCE_NORMAL, timeout=30):
        conn = self.connection
        job.connection = conn
        pkt = pack(SUBMIT_TYPE[precedence], job.name, job.unique or b"", job.arguments)
        with conn.send_lock:
            conn.pending_jobs.append(job)
            conn.sock.sendall(pkt)
        if not job.created.wait(timeout):
            raise TimeoutError("no JOB_CREATED for %r" % job)
        return job

    # ---- reading ----

    def _poll(self):
        conn = self.connection
        buf = b""
        while self.running:
            try:
                chunk = conn.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._lost(conn)
                return
            buf += chunk
            while buf:
                if buf[0] == 0:
                    if len(buf) < 12:
                        break
                    magic, ptype, size = struct.unpack("!4sII", buf[:12])
                    if magic != RES:
                        self.poll_errors.append(ValueError("bad magic %r" % magic))
                        self._lost(conn)
                        return
                    if len(buf) < 12 + size:
                        break
                    pkt = Packet(ptype, buf[12:12 + size], conn)
                    buf = buf[12 + size:]
                    self._dispatch(pkt)
                else:
                    if not conn.admin_requests:
                        self.poll_errors.append(ValueError("unexpected text %r" % buf[:80]))
                        self._lost(conn)
                        return
                    req = conn.admin_requests[0]
                    end = req.end_of(buf.decode("utf-8", "replace"))
                    if end is None:
                        break
                    req.response = buf[:end].decode("utf-8", "replace")
                    buf = buf[end:]
                    conn.admin_requests.pop(0)
                    req.event.set()

    def _dispatch(self, pkt):
        handler = {JOB_CREATED: self.handleJobCreated, WORK_DATA: self.handleWorkData,
                   WORK_STATUS: self.handleWorkStatus, WORK_WARNING: self.handleWorkWarning,
                   WORK_COMPLETE: self.handleWorkComplete, WORK_FAIL: self.handleWorkFail,
                   WORK_EXCEPTION: self.handleWorkException, ERROR: self.handleError}.get(pkt.ptype)
        try:
            if handler is None:
                raise ValueError("unexpected packet type %d" % pkt.ptype)
            handler(pkt)
        except Exception as e:      # gear: "Exception in poll loop", then polls on
            self.poll_errors.append(e)

    def _lost(self, conn):
        self.running = False
        for job in list(conn.related_jobs.values()):
            job.done.set()
        for req in conn.admin_requests:
            req.event.set()

    def getJob(self, pkt):
        handle = pkt.body.split(b"\0", 1)[0]
        job = pkt.connection.related_jobs.get(handle)
        if job is None:
            raise KeyError("unknown job handle %r" % handle)
        return job

    # ---- handlers (subclasses call these first, as Zuul does with gear) ----

    def handleJobCreated(self, pkt):
        job = pkt.connection.pending_jobs.pop(0)
        job.handle = pkt.body
        pkt.connection.related_jobs[job.handle] = job
        job.events.append(("created", job.handle))
        job.created.set()
        return job

    def handleWorkData(self, pkt):
        job = self.getJob(pkt)
        data = pkt.args(2)[1]
        if data:
            job.data.append(data)
        job.events.append(("data", data))
        return job

    def handleWorkWarning(self, pkt):
        job = self.getJob(pkt)
        data = pkt.args(2)[1]
        if data:
            job.data.append(data)
        job.warning = True
        job.events.append(("warning", data))
        return job

    def handleWorkStatus(self, pkt):
        job = self.getJob(pkt)
        _, num, den = pkt.args(3)
        job.numerator, job.denominator = num, den
        try:
            job.fraction_complete = float(num) / float(den)
        except (ValueError, ZeroDivisionError):
            job.fraction_complete = None
        job.events.append(("status", (num, den)))
        return job

    def handleWorkComplete(self, pkt):
        job = self.getJob(pkt)
        data = pkt.args(2)[1] if b"\0" in pkt.body else b""
        if data:
            job.data.append(data)
        job.complete, job.failure = True, False
        del pkt.connection.related_jobs[job.handle]
        job.events.append(("complete", data))
        job.done.set()
        return job

    def handleWorkFail(self, pkt):
        job = self.getJob(pkt)
        job.complete, job.failure = True, True
        del pkt.connection.related_jobs[job.handle]
        job.events.append(("fail", None))
        job.done.set()
        return job

    def handleWorkException(self, pkt):
        job = self.getJob(pkt)
        job.exception = pkt.args(2)[1] if b"\0" in pkt.body else b""
        job.complete, job.failure = True, True
        del pkt.connection.related_jobs[job.handle]
        job.events.append(("exception", job.exception))
        job.done.set()
        return job

    def handleError(self, pkt):
        """An ERROR answers the oldest submission still waiting for its handle."""
        if pkt.connection.pending_jobs:
            job = pkt.connection.pending_jobs.pop(0)
            job.events.append(("error", pkt.body))
            job.created.set()
            job.done.set()
        raise RuntimeError("ERROR packet %r" % pkt.body)

    # ---- admin ----

    def status_lines(self):
        """The raw `status` answer, as gear's StatusAdminRequest returns it."""
        return self.connection.sendAdminRequest(StatusAdminRequest()).response

    def shutdown(self):
        self.running = False
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.sock.close()
        self.thread.join(5)
