#!/usr/bin/python3
"""A faithful fake of the Jenkins remote API, for tests (Python 3 stdlib only).

Real Jenkins cannot be installed where this project is tested, so this server
answers the part of the remote API that the node agent, the coordinator and the
client libraries use, the way Jenkins itself does (status codes, headers, JSON
shapes, redirects, queue semantics, CSRF crumbs).  The behaviour follows
shared/reference/jenkins-rest.md; section numbers (§x.y) below refer to it.

Layout, one class per concern:

  Fmt                 number / time-span formatting as Jenkins' Messages do it
  Label*              label expressions: lexer, parser, evaluation (§5.4)
  Bean, export()      Stapler's export model: visibility, depth=, tree= (§5.6)
  ParamDef/ParamValue job parameters incl. the NodeLabel Parameter plugin (§1.5)
  Folder, Job, Node, Build, QueueItem   the model
  Jenkins             the model root (items, nodes, builds)
  Queue               queue items and the scheduling pass (Queue.maintain)
  Scheduler           background thread driving Queue.maintain promptly
  Security            users, Basic auth, sessions, crumbs (§6)
  Views               builds Beans for the JSON API from the model
  JenkinsHttp         routes Jenkins URLs to answers
  ControlApi          /_test/... for tests (never delayed, failed or dropped)
  Faults              latency / fail / drop injection
  RequestHandler      http.server glue (HTTP/1.1 keep-alive, 204 without length)

Usage:
  jenkins_server.py --fixture FILE.json [--port 0] [--port-file PATH]
                    [--host 127.0.0.1] [--quiet]

Fixture keys (JSON object; see tests/fixtures/basic.json):
  version          X-Jenkins (default 2.479.3); gates 2.307 (Built-In Node),
                   2.308 (303 for duplicates), 2.469 (/queue/item/N/ text page)
  quiet_period     seconds, default 5 (Jenkins' default)
  users            {"name": {"token": T, "password": P}}; none = security off
  anonymous_read   with users: may anonymous read (never build)? default false
  left_item_ttl    seconds a LeftItem stays readable, default 300
  start_window     seconds between an item leaving the queue and its build
                   existing (Executor.run), default 0.02; POST /_test/start_window
  keepalive_timeout  idle keep-alive connections are closed after it, default 5
  nodes            [{"name", "labels", "executors", "mode": NORMAL|EXCLUSIVE,
                     "offline", "temporarily_offline", "offline_reason",
                     "description"}]; "built-in"/"master" is the controller
                   (added with 0 executors when absent)
  jobs             [{"name", "type": freestyle|pipeline|folder, "jobs" (folder),
                     "label", "can_roam", "disabled", "concurrent", "duration",
                     "result", "estimated_duration", "description", "script",
                     "params": [{"type": node|label|string|boolean|text|choice,
                                 "name", "default", "allowed", "choices",
                                 "description", "trigger_if_result" (node:
                                 NodeParameterDefinition.triggerIfResult)}]}]
  A job parameter named DURATION / RESULT, when non-empty, sets a build's
  duration (seconds) / result, like a build script reading its environment.

Control API (JSON in and out, never delayed, failed, dropped or logged):
  POST /_test/latency {"ms"}        POST /_test/fail {"status", "seconds"}
  POST /_test/drop {"count", "after", "method"}   POST /_test/restart
  POST /_test/start_window {"seconds"}  (the start window, see Starting)
                                    (after: process the request, then close without answering;
                                     method: only requests with that method)
  POST /_test/build {"job", "node"?, "params"?, "delay"?, "old"?} -> {"queue_id"}
                                    (old: the build's queueId is -1, an old record's)
  POST /_test/quietdown {"on", "reason"?}  (Jenkins.doQuietDown / doCancelQuietDown)
  POST /_test/jobs {spec, "folder"?}; PATCH|DELETE /_test/jobs/<full name>
  POST /_test/nodes {spec};           PATCH|DELETE /_test/nodes/<name>
  GET /_test/builds | concurrency | queue | requests | state
  POST /_test/requests/reset

Known simplifications (not bent for any client, just not modelled):
  no Groovy /scriptText, no job auth tokens, no views beyond "all", no
  POST config.xml.

Pipeline jobs ("type": "pipeline", "script": text): the run is a flyweight
task (Queue.makeFlyWeightTaskBuildable: on the built-in node's, or the Node
parameter's node's, one-off executor, no free executor needed); its script
takes a regular executor only inside node(label) { }, through a
PlaceholderTask queue item.  The script is a tiny subset (PipelineScript):
node(params.X|'label') { }, sleep N, echo, error, currentBuild.result = 'R'.
Without a script: node(params.<Node/Label param>) { sleep DURATION } with
the RESULT hook, as a Jenkinsfile doing node(params.NODE) would.  A restart
resumes a running Pipeline (AfterRestartTask, the node() placeholder queued
again for its node) where it ends a freestyle build.
"""

import argparse
import base64
import email.parser
import email.policy
import hashlib
import html
import itertools
import http.cookies
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urljoin, urlsplit

CONTROLLER_DESCRIPTION = "the Jenkins controller's built-in node"
JETTY = "Jetty(10.0.20)"

# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------


def version_tuple(version):
    """'2.479.3' -> (2, 479, 3); non-numeric parts count as 0."""
    out = []
    for part in str(version).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


# hudson.Util's uriMap (its static initializer): of '!'..'z' the characters
# written here stay as they are; controls, space, the rest and every code
# point above 'z' are %XX (upper case) of their UTF-8 bytes.
_RAW_ENCODE_KEEP = frozenset(
    "!$&'()*+,-.0123456789=@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")


def raw_encode(text):
    """hudson.Util.rawEncode: one path segment as Jenkins writes it in job
    URLs (AbstractItem.getShortUrl): "'()+,=" bare, '~' as %7E (issue 17)."""
    return "".join(ch if ch in _RAW_ENCODE_KEEP
                   else "".join("%%%02X" % b for b in ch.encode("utf-8"))
                   for ch in text)


class Fmt:
    """Formatting the way Jenkins' message bundles (java.text.MessageFormat) do."""

    @staticmethod
    def number(value):
        """MessageFormat '{0}' of a number: grouping, at most 3 decimals."""
        if isinstance(value, float) and not value.is_integer():
            text = ("%.3f" % value).rstrip("0").rstrip(".")
            whole, _, frac = text.partition(".")
            return "{:,}".format(int(whole)) + ("." + frac if frac else "")
        return "{:,}".format(int(value))

    @staticmethod
    def _plural(n, one, many):
        return "%s %s" % (Fmt.number(n), one if n == 1 else many)

    @staticmethod
    def time_span(ms):
        """hudson.Util.getTimeSpanString: '4.9 sec', '12 sec', '1 min 5 sec'."""
        ms = int(ms)
        day, hour, minute, sec = 86400000, 3600000, 60000, 1000
        days, ms = divmod(ms, day)
        hours, ms = divmod(ms, hour)
        minutes, ms = divmod(ms, minute)
        seconds, millis = divmod(ms, sec)

        def two(big, big_text, small_text):
            # makeTimeSpanString: the smaller unit only when the big one is < 10
            return big_text + (" " + small_text if big < 10 else "")

        if days > 0:
            return two(days, Fmt._plural(days, "day", "days"),
                       Fmt._plural(hours, "hr", "hr"))
        if hours > 0:
            return two(hours, "%s hr" % hours, "%s min" % minutes)
        if minutes > 0:
            return two(minutes, "%s min" % minutes, "%s sec" % seconds)
        if seconds >= 10:
            return "%s sec" % seconds
        if seconds >= 1:
            return "%s sec" % Fmt.number(seconds + (millis // 100) / 10)
        if millis >= 100:
            return "%s sec" % Fmt.number((millis // 10) / 100)
        return "%s ms" % millis


def ms(epoch_seconds):
    """Epoch seconds (float) -> Java milliseconds (int)."""
    return int(round(epoch_seconds * 1000))


# ---------------------------------------------------------------------------
# Label expressions (§5.4)
# ---------------------------------------------------------------------------


class LabelSyntaxError(ValueError):
    """The text does not follow Jenkins' label-expression grammar."""


# LabelOperatorPrecedence, tightest binding first; used to re-print expressions
# the way Jenkins names them ("linux&&x86", "(a||b)&&c").
_PRECEDENCE = {"ATOM": 0, "NOT": 1, "AND": 2, "OR": 3, "IMPLIES": 4, "IFF": 5}
_OP_TEXT = {"AND": "&&", "OR": "||", "IMPLIES": "->", "IFF": "<->"}
_OP_CLASS = {"AND": "And", "OR": "Or", "IMPLIES": "Implies", "IFF": "Iff"}
# Characters that end an unquoted ATOM (the lexer's IDENTIFIER_PART complement).
_ATOM_STOP = set("&|!<>() \t\"'")
_STRING_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r",
                   '"': '"', "'": "'", "\\": "\\"}


def unquote_jenkins(text):
    """hudson.util.QuotedStringTokenizer.unquote: strip one matching pair of
    quotes (" or ') around the whole string and resolve backslash escapes."""
    if text is None or len(text) < 2:
        return text
    first, last = text[0], text[-1]
    if first != last or first not in "\"'":
        return text
    out, escape = [], False
    for ch in text[1:-1]:
        if escape:
            escape = False
            out.append({"n": "\n", "r": "\r", "t": "\t", "f": "\f",
                        "b": "\b"}.get(ch, ch))
        elif ch == "\\":
            escape = True
        else:
            out.append(ch)
    return "".join(out)


def escape_atom(name):
    """LabelAtom.escape: quote an atom only when it could not be re-read bare."""
    if name and not any(ch in _ATOM_STOP for ch in name) and "->" not in name:
        return name
    body = name.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + body + '"'


class Label:
    """A parsed label (atom or expression).  `name` is the normalised text
    Jenkins shows (Label.getName / getExpression), `jclass` its Java class."""

    precedence = "ATOM"

    def matches(self, atoms):
        raise NotImplementedError

    @property
    def name(self):
        raise NotImplementedError

    def _paren(self, op, child):
        # Label.paren: wrap a child that binds more loosely than `op`.
        if _PRECEDENCE[op] < _PRECEDENCE[child.precedence]:
            return "(" + child.name + ")"
        return child.name

    def __eq__(self, other):  # Label.equals compares names
        return isinstance(other, Label) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.name)


class LabelAtom(Label):
    jclass = "hudson.model.labels.LabelAtom"

    def __init__(self, atom):
        self.atom = atom

    def matches(self, atoms):
        return self.atom in atoms

    @property
    def name(self):
        return escape_atom(self.atom)


class LabelNot(Label):
    jclass = "hudson.model.labels.LabelExpression$Not"
    precedence = "NOT"

    def __init__(self, base):
        self.base = base

    def matches(self, atoms):
        return not self.base.matches(atoms)

    @property
    def name(self):
        return "!" + self._paren("NOT", self.base)


class LabelParen(Label):
    jclass = "hudson.model.labels.LabelExpression$Paren"

    def __init__(self, base):
        self.base = base

    def matches(self, atoms):
        return self.base.matches(atoms)

    @property
    def name(self):
        return "(" + self.base.name + ")"


class LabelBinary(Label):
    def __init__(self, op, lhs, rhs):
        self.op, self.lhs, self.rhs = op, lhs, rhs
        self.precedence = op
        self.jclass = "hudson.model.labels.LabelExpression$" + _OP_CLASS[op]

    def matches(self, atoms):
        a = self.lhs.matches(atoms)
        if self.op == "AND":
            return a and self.rhs.matches(atoms)
        if self.op == "OR":
            return a or self.rhs.matches(atoms)
        if self.op == "IMPLIES":
            return (not a) or self.rhs.matches(atoms)
        return a == self.rhs.matches(atoms)  # IFF

    @property
    def name(self):
        return (self._paren(self.op, self.lhs) + _OP_TEXT[self.op]
                + self._paren(self.op, self.rhs))


def label_tokens(text):
    """LabelExpressionLexer.g4 as a hand-written scanner."""
    tokens, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            i += 1
        elif text.startswith("&&", i):
            tokens.append(("AND", "&&"))
            i += 2
        elif text.startswith("||", i):
            tokens.append(("OR", "||"))
            i += 2
        elif ch == "!":
            tokens.append(("NOT", "!"))
            i += 1
        elif text.startswith("<->", i):
            tokens.append(("IFF", "<->"))
            i += 3
        elif text.startswith("->", i):
            tokens.append(("IMPLIES", "->"))
            i += 2
        elif ch in "()":
            tokens.append(("LPAREN" if ch == "(" else "RPAREN", ch))
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    if j + 1 >= n or text[j + 1] not in _STRING_ESCAPES:
                        raise LabelSyntaxError("bad escape at %d" % j)
                    j += 2
                elif text[j] in "\r\n":
                    raise LabelSyntaxError("newline in string at %d" % j)
                else:
                    j += 1
            if j >= n:
                raise LabelSyntaxError("unterminated string at %d" % i)
            tokens.append(("STRING", unquote_jenkins(text[i:j + 1])))
            i = j + 1
        else:
            j = i
            while j < n:
                c = text[j]
                # '-' belongs to an atom unless it starts '->'
                if c == "-" and j + 1 < n and text[j + 1] == ">":
                    break
                if c in _ATOM_STOP:
                    break
                j += 1
            if j == i:
                raise LabelSyntaxError("token recognition error at %d: %r" % (i, ch))
            tokens.append(("ATOM", text[i:j]))
            i = j
    tokens.append(("EOF", None))
    return tokens


class LabelParser:
    """Recursive descent over LabelExpressionParser.g4:
       expr := iff EOF; iff := impl ('<->' impl)*; impl := or ('->' or)?;
       or := and ('||' and)*; and := unary ('&&' unary)*;
       unary := primary | '!' primary; primary := '(' iff ')' | ATOM | STRING"""

    def __init__(self, text):
        self.tokens = label_tokens(text)
        self.pos = 0

    def _peek(self):
        return self.tokens[self.pos][0]

    def _take(self, kind):
        tok = self.tokens[self.pos]
        if tok[0] != kind:
            raise LabelSyntaxError("expected %s, found %s" % (kind, tok[0]))
        self.pos += 1
        return tok[1]

    def parse(self):
        label = self._iff()
        self._take("EOF")
        return label

    def _iff(self):
        label = self._impl()
        while self._peek() == "IFF":
            self.pos += 1
            label = LabelBinary("IFF", label, self._impl())
        return label

    def _impl(self):
        label = self._or()
        if self._peek() == "IMPLIES":  # at most one: a->b->c is an error
            self.pos += 1
            label = LabelBinary("IMPLIES", label, self._or())
        return label

    def _or(self):
        label = self._and()
        while self._peek() == "OR":
            self.pos += 1
            label = LabelBinary("OR", label, self._and())
        return label

    def _and(self):
        label = self._unary()
        while self._peek() == "AND":
            self.pos += 1
            label = LabelBinary("AND", label, self._unary())
        return label

    def _unary(self):
        if self._peek() == "NOT":
            self.pos += 1
            return LabelNot(self._primary())
        return self._primary()

    def _primary(self):
        kind = self._peek()
        if kind == "LPAREN":
            self.pos += 1
            inner = self._iff()
            self._take("RPAREN")
            return LabelParen(inner)
        if kind in ("ATOM", "STRING"):
            self.pos += 1
            return LabelAtom(self.tokens[self.pos - 1][1])
        raise LabelSyntaxError("unexpected %s" % kind)


def parse_label_expression(text):
    """Label.parseExpression: raises LabelSyntaxError."""
    return LabelParser(text).parse()


def get_label(expr):
    """Jenkins.getLabel: unquote, parse; an unparseable string is taken as a
    single atom (backward compatibility), so this never fails for a string."""
    if expr is None:
        return None
    expr = unquote_jenkins(expr)
    try:
        return parse_label_expression(expr)
    except LabelSyntaxError:
        return LabelAtom(expr)


def parse_label_string(text):
    """Label.parse(String): a node's label string -> atoms.  Whitespace
    separated, "..." or '...' group (QuotedStringTokenizer)."""
    atoms, cur, quote_ch, escape, have = [], [], None, False, False
    for ch in text or "":
        if quote_ch:
            if escape:
                cur.append(ch)
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote_ch:
                quote_ch = None
            else:
                cur.append(ch)
        elif ch in " \t\r\n\f":
            if have:
                atoms.append("".join(cur))
            cur, have = [], False
        elif ch in "\"'":
            quote_ch, have = ch, True
        else:
            cur.append(ch)
            have = True
    if have:
        atoms.append("".join(cur))
    return atoms


# ---------------------------------------------------------------------------
# Stapler export model (§5.6)
# ---------------------------------------------------------------------------


class Prop:
    __slots__ = ("name", "value", "vis", "inline")

    def __init__(self, name, value, vis, inline):
        self.name, self.value, self.vis, self.inline = name, value, vis, inline


class Bean:
    """An @ExportedBean instance: a Java class name (None = do not write
    `_class`, because the runtime class equals the declared type) and its
    exported properties in order.  A property value may be a zero-argument
    callable, evaluated only if the pruner writes the property (keeps
    /api/json cheap: nested builds are never computed when pruned)."""

    __slots__ = ("jclass", "props")

    def __init__(self, jclass=None):
        self.jclass = jclass
        self.props = []

    def add(self, name, value, vis=1, inline=False):
        self.props.append(Prop(name, value, vis, inline))
        return self


class TreeSyntaxError(ValueError):
    """Malformed tree= expression."""


class TreeNode:
    __slots__ = ("children", "lo", "hi")

    def __init__(self):
        self.children = {}
        self.lo, self.hi = 0, None  # Range.ALL


def parse_tree(spec):
    """NamedPathPruner.parse: list := node (',' list)?;
    node := NAME ('[' list ']')? ('{' range '}')?; NAME is any run of
    characters other than , [ ] { }."""
    pos = 0
    n = len(spec)

    def peek():
        if pos >= n:
            return "EOF"
        ch = spec[pos]
        if ch in ",[]{}":
            return ch
        end = min([spec.find(c, pos) for c in ",[]{}" if spec.find(c, pos) != -1]
                  or [n])
        return ("NAME", spec[pos:end])

    def advance(tok):
        nonlocal pos
        pos += len(tok[1]) if isinstance(tok, tuple) else (0 if tok == "EOF" else 1)

    def expect(kind):
        tok = peek()
        if tok != kind:
            raise TreeSyntaxError("expected %s at %d" % (kind, pos))
        advance(tok)

    def number():
        tok = peek()
        if not (isinstance(tok, tuple) and tok[1].isdigit()):
            raise TreeSyntaxError("expected number at %d" % pos)
        advance(tok)
        return int(tok[1])

    def parse_list(node):
        parse_node(node)
        if peek() == ",":
            advance(",")
            parse_list(node)

    def parse_node(node):
        tok = peek()
        if not isinstance(tok, tuple):
            raise TreeSyntaxError("expected name at %d" % pos)
        advance(tok)
        sub = TreeNode()
        node.children[tok[1]] = sub
        if peek() == "[":
            advance("[")
            parse_list(sub)
            expect("]")
        if peek() == "{":
            advance("{")
            if peek() == ",":  # {,M}
                advance(",")
                sub.lo, sub.hi = 0, number()
            else:
                lo = number()
                if peek() == "}":  # {N}
                    sub.lo, sub.hi = lo, lo + 1
                else:
                    expect(",")
                    if peek() == "}":  # {N,}
                        sub.lo, sub.hi = lo, None
                    else:  # {N,M}
                        sub.lo, sub.hi = lo, number()
            expect("}")

    root = TreeNode()
    parse_list(root)
    expect("EOF")
    return root


class DepthPruner:
    """TreePruner.ByDepth: write a property when its visibility >= n; nested
    objects get n+1 unless the property is inline."""

    lo, hi = 0, None

    def __init__(self, n):
        self.n = n
        self._next = None

    def accept(self, prop):
        if prop.vis < self.n:
            return None
        if prop.inline:
            return self
        if self._next is None:
            self._next = DepthPruner(self.n + 1)
        return self._next


class NamedPruner:
    """NamedPathPruner: only the named properties ('*' = any), ranges on arrays."""

    def __init__(self, node):
        self.node = node
        self.lo, self.hi = node.lo, node.hi

    def accept(self, prop):
        sub = self.node.children.get(prop.name) or self.node.children.get("*")
        return NamedPruner(sub) if sub is not None else None


class RunList:
    """A job's builds, newest first, as Stapler exports a RunList: lazily. A
    range {from,to} skips and limits while walking (Range.apply on an
    Iterable), so only the builds in it become beans; the rest are never
    looked at beyond being skipped. limit: Job.getNewBuilds' cap of 100."""

    def __init__(self, job, make, limit=None):
        self.job, self.make, self.limit = job, make, limit

    def __getitem__(self, sl):
        if self.limit is None:
            # allBuilds: RunList is a List, so Range takes a subList, and
            # RunList.size() walks (on Jenkins: loads from disk) every build.
            sum(1 for _ in self.job.runs())
        lo = sl.start or 0
        hi = self.limit if sl.stop is None else (
            sl.stop if self.limit is None else min(sl.stop, self.limit))
        return [self.make(b) for b in itertools.islice(self.job.runs(), lo, hi)]


def _export_value(value, pruner):
    if callable(value):
        value = value()
    if value is None:
        return None
    if isinstance(value, Bean):
        return _export_bean(value, pruner)
    if isinstance(value, (list, tuple, RunList)):
        items = value[pruner.lo:pruner.hi]
        return [_export_value(v, pruner) for v in items]
    return value


def _export_bean(bean, pruner):
    out = {}
    if bean.jclass:
        out["_class"] = bean.jclass
    for prop in bean.props:
        child = pruner.accept(prop)
        if child is not None:
            out[prop.name] = _export_value(prop.value, child)
    return out


def export(bean, depth=0, tree=None):
    """Serve an exposed bean like Stapler's ResponseImpl.serveExposedBean."""
    pruner = NamedPruner(parse_tree(tree)) if tree is not None else DepthPruner(1 - depth)
    return _export_bean(bean, pruner)


def empty_action():
    """A non-exportable action: Stapler writes it as {} (no _class)."""
    return Bean(None)


# ---------------------------------------------------------------------------
# Parameters (§1.5)
# ---------------------------------------------------------------------------

NLP = "org.jvnet.jenkins.plugins.nodelabelparameter."
# kind -> (definition class, value class)
PARAM_CLASSES = {
    "node": (NLP + "NodeParameterDefinition", NLP + "NodeParameterValue"),
    "label": (NLP + "LabelParameterDefinition", NLP + "LabelParameterValue"),
    "string": ("hudson.model.StringParameterDefinition", "hudson.model.StringParameterValue"),
    "text": ("hudson.model.TextParameterDefinition", "hudson.model.TextParameterValue"),
    "boolean": ("hudson.model.BooleanParameterDefinition", "hudson.model.BooleanParameterValue"),
    "choice": ("hudson.model.ChoiceParameterDefinition", "hudson.model.StringParameterValue"),
}


class ParamValue:
    """A ParameterValue.  For node/label values `value` is the label text."""

    def __init__(self, kind, name, value):
        self.kind, self.name, self.value = kind, name, value
        self.jclass = PARAM_CLASSES[kind][1]

    def key(self):  # ParameterValue.equals: class, name, value
        return (self.jclass, self.name, self.value)

    def label_expr(self):
        """LabelParameterValue.getAssignedLabel: a non-blank label pins."""
        if self.kind in ("node", "label") and self.value and str(self.value).strip():
            return self.value
        return None

    def short_description(self):
        if self.kind == "node":
            return "[NodeParameterValue: %s=%s]" % (self.name, self.value)
        if self.kind == "label":
            return "[LabelParameterValue: %s=%s]" % (self.name, self.value)
        value = self.value
        if isinstance(value, bool):
            value = "true" if value else "false"
        return "%s=%s" % (self.name, value)

    def as_text(self):
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return "" if self.value is None else str(self.value)


class ParamDef:
    """A ParameterDefinition from the fixture's "params" list."""

    def __init__(self, spec):
        self.kind = spec.get("type", "string")
        if self.kind not in PARAM_CLASSES:
            raise ValueError("unknown parameter type %r" % self.kind)
        self.name = spec["name"]
        self.description = spec.get("description", "")
        self.choices = list(spec.get("choices", []))
        default = spec.get("default")
        if self.kind == "node":
            self.allowed = list(spec.get("allowed", []))
            if isinstance(default, str):
                default = [default]
            self.default = list(default or [])
            # NodeParameterDefinition(name, ..., triggerIfResult, ...): the
            # constructor derives allowMultiNodeSelection and
            # triggerConcurrentBuilds from triggerIfResult (Constants).
            self.trigger_if_result = spec.get("trigger_if_result", "multiSelectionDisallowed")
            self.multi_node = self.trigger_if_result != "multiSelectionDisallowed"
            self.trigger_concurrent = (self.trigger_if_result
                                       == "allowMultiSelectionForConcurrentBuilds")
        elif self.kind == "boolean":
            self.default = bool(default)
        elif self.kind == "choice":
            self.default = self.choices[0] if self.choices else ""
        else:
            self.default = "" if default is None else str(default)

    @property
    def jclass(self):
        return PARAM_CLASSES[self.kind][0]

    @property
    def type_name(self):
        return self.jclass.rsplit(".", 1)[1]

    def default_value(self):
        if self.kind == "node":
            return ParamValue("node", self.name, self.default[0] if self.default else None)
        return ParamValue(self.kind, self.name, self.default)

    def create_value(self, text):
        """SimpleParameterDefinition.createValue(String)."""
        if self.kind == "boolean":
            return ParamValue("boolean", self.name, str(text).lower() == "true")
        if self.kind == "choice" and self.choices and text not in self.choices:
            raise ValueError("Illegal choice for parameter %s: %s" % (self.name, text))
        return ParamValue(self.kind, self.name, str(text))

    def create_value_json(self, jo):
        """createValue(StaplerRequest, JSONObject) for POST /build json=."""
        if self.kind == "node":
            value = jo.get("value", jo.get("labels", jo.get("label")))
            if isinstance(value, list):  # multi-node selection: first node
                value = value[0] if value else None
            return ParamValue("node", self.name, None if value is None else str(value))
        if self.kind == "label":
            value = jo.get("label", jo.get("value"))
            return ParamValue("label", self.name, None if value is None else str(value))
        if self.kind == "boolean":
            value = jo.get("value", False)
            return ParamValue("boolean", self.name,
                              value if isinstance(value, bool) else str(value).lower() == "true")
        return ParamValue(self.kind, self.name, str(jo.get("value", "")))


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

RESULTS = ("SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED")
RESULT_COLOR = {"SUCCESS": "blue", "UNSTABLE": "yellow", "FAILURE": "red",
                "NOT_BUILT": "notbuilt", "ABORTED": "aborted"}
RESULT_ORDINAL = {r: i for i, r in enumerate(RESULTS)}


class Cause:
    """A build cause (UserIdCause; the only kind the API path produces here)."""

    def __init__(self, user):
        self.user = user  # None = anonymous

    def short_description(self):
        return "Started by user %s" % (self.user or "anonymous")


class OfflineCause:
    """OfflineCause$UserCause: who took the node offline and why."""

    jclass = "hudson.slaves.OfflineCause$UserCause"

    def __init__(self, user, message):
        self.user = user or "anonymous"
        self.message = message or None
        self.timestamp = time.time()

    @property
    def reason(self):  # IOfflineCause.getReason strips "Disconnected by X : "
        return self.message or ""

    @property
    def description(self):
        return "Disconnected by %s%s" % (self.user, " : " + self.message if self.message else "")


class Item:
    """Common to folders and jobs (AbstractItem)."""

    def __init__(self, name, parent):
        self.name = name
        self.parent = parent

    @property
    def full_name(self):
        if self.parent is None or self.parent.parent is None:
            return self.name
        return self.parent.full_name + "/" + self.name

    @property
    def full_display_name(self):
        if self.parent is None or self.parent.parent is None:
            return self.name
        return self.parent.full_display_name + " \u00bb " + self.name

    @property
    def url_path(self):
        """'job/a/job/b/': AbstractItem.getShortUrl, getParent().getUrlChildPrefix()
        ("job") + '/' + Util.rawEncode(getName()), under the parent's URL."""
        prefix = self.parent.url_path if self.parent and self.parent.parent else ""
        return prefix + "job/" + raw_encode(self.name) + "/"


class Folder(Item):
    jclass = "com.cloudbees.hudson.plugins.folder.Folder"

    def __init__(self, name, parent, description=""):
        super().__init__(name, parent)
        self.children = {}
        self.description = description

    def sorted_children(self):  # item maps are case-insensitively sorted
        return [self.children[k] for k in sorted(self.children, key=lambda s: (s.lower(), s))]


class Job(Item):
    """A freestyle project or a Pipeline (WorkflowJob)."""

    def __init__(self, spec, parent):
        super().__init__(spec["name"], parent)
        self.kind = spec.get("type", "freestyle")
        if self.kind not in ("freestyle", "pipeline"):
            raise ValueError("unknown job type %r" % self.kind)
        self.label = None
        self.can_roam = True
        self.disabled = False
        # Freestyle projects default to non-concurrent, Pipelines to concurrent.
        self.concurrent = self.kind == "pipeline"
        self.duration = 0.0
        self.result = "SUCCESS"
        self.estimated_override = None
        self.params = []
        self.description = ""
        self.builds = {}
        self.active = set()  # its running builds (Jenkins.start_build/finish_build keep it)
        self.next_build_number = 1
        self.script = None  # PipelineScript (CpsFlowDefinition); None: the default one
        self.apply(spec)

    def apply(self, spec):
        """Apply fixture / PATCH fields."""
        if "label" in spec:
            label = spec["label"]
            self.label = label if label not in ("", None) else None
            self.can_roam = self.label is None
        if "can_roam" in spec:
            self.can_roam = bool(spec["can_roam"]) and self.label is None
        if "disabled" in spec:
            self.disabled = bool(spec["disabled"])
        if "concurrent" in spec:
            self.concurrent = bool(spec["concurrent"])
        if "duration" in spec:
            self.duration = float(spec["duration"] or 0)
        if "result" in spec:
            result = spec["result"] or "SUCCESS"
            if result not in RESULTS:
                raise ValueError("unknown result %r" % result)
            self.result = result
        if "estimated_duration" in spec:
            self.estimated_override = spec["estimated_duration"]
        if "params" in spec:
            self.params = [ParamDef(p) for p in spec["params"] or []]
            names = [p.name for p in self.params]
            if len(names) != len(set(names)):
                raise ValueError("duplicate parameter names in %s" % self.name)
        if "description" in spec:
            self.description = spec["description"] or ""
        if "script" in spec:
            if not self.is_pipeline:
                raise ValueError("a script belongs to a pipeline job")
            self.script = PipelineScript(spec["script"]) if spec["script"] else None

    @property
    def is_pipeline(self):
        return self.kind == "pipeline"

    @property
    def jclass(self):
        return ("org.jenkinsci.plugins.workflow.job.WorkflowJob" if self.is_pipeline
                else "hudson.model.FreeStyleProject")

    @property
    def build_class(self):
        return ("org.jenkinsci.plugins.workflow.job.WorkflowRun" if self.is_pipeline
                else "hudson.model.FreeStyleBuild")

    @property
    def buildable(self):
        return not self.disabled

    def param(self, name):
        for d in self.params:
            if d.name == name:
                return d
        return None

    def label_expression(self):
        """AbstractProject.getAssignedLabelString (JSON labelExpression)."""
        if self.is_pipeline or self.can_roam or self.label is None:
            return None
        try:
            parse_label_expression(self.label)
            return self.label
        except LabelSyntaxError:
            return escape_atom(self.label)

    def assigned_label(self, controller):
        """AbstractProject.getAssignedLabel."""
        if self.is_pipeline or self.can_roam:
            return None
        if self.label is None:  # canRoam=false without a label: controller only
            return LabelAtom(controller.self_label)
        return get_label(self.label)

    def runs(self):
        """The builds newest first, lazily (Jenkins' RunMap is ordered by number
        and loads records on demand): a caller that stops early pays only for
        what it looked at. Numbers only grow, so insertion order is number order."""
        return reversed(self.builds.values())

    def builds_desc(self):
        return list(self.runs())

    def last_build(self):
        return next(self.runs(), None)

    def is_building(self):
        # Only running builds can be building: the short active set, not every build.
        return bool(self.active)

    PERMALINKS = {
        "lastBuild": lambda b: True,
        "lastCompletedBuild": lambda b: not b.building,
        "lastSuccessfulBuild": lambda b: not b.building and b.result in ("SUCCESS", "UNSTABLE"),
        "lastStableBuild": lambda b: not b.building and b.result == "SUCCESS",
        "lastFailedBuild": lambda b: not b.building and b.result == "FAILURE",
        "lastUnstableBuild": lambda b: not b.building and b.result == "UNSTABLE",
        "lastUnsuccessfulBuild": lambda b: not b.building and b.result != "SUCCESS",
    }

    def permalink(self, name):
        """Job permalinks (lastBuild, lastSuccessfulBuild, ...): the newest
        build that fits, found walking back from the newest (Jenkins'
        PeepholePermalink caches the answer; the walk stops at the first fit)."""
        if name == "firstBuild":
            return next(iter(self.builds.values()), None)
        fits = self.PERMALINKS[name]
        return next((b for b in self.runs() if fits(b)), None)

    def estimated_duration_ms(self):
        """Job.getEstimatedDuration over getEstimatedDurationCandidates."""
        if self.estimated_override is not None:
            return int(self.estimated_override)
        candidates = []
        last_ok = self.permalink("lastSuccessfulBuild")
        if last_ok is not None:
            candidates.append(last_ok)
        fallback = []
        for i, b in enumerate(self.runs()):
            if len(candidates) >= 3 or i >= 6:
                break
            if b.building or b is last_ok:
                continue
            if RESULT_ORDINAL[b.result] <= RESULT_ORDINAL["UNSTABLE"]:
                candidates.append(b)
            elif b.result == "FAILURE":  # Result.isCompleteBuild
                fallback.append(b)
        while len(candidates) < 3 and fallback:
            candidates.append(fallback.pop(0))
        if not candidates:
            return -1
        total = sum(b.duration_ms for b in candidates)
        if total == 0:
            return -1
        return int(round(total / len(candidates)))

    def color(self):
        """Job.getIconColor / AbstractProject: disabled, or the last started
        build's colour, '_anime' while it runs."""
        building = self.is_building()
        if self.disabled:
            return "disabled_anime" if building else "disabled"
        last = self.last_build()
        return last.icon_color() if last else "notbuilt"


class Node:
    """A node (the controller or an agent) together with its Computer."""

    def __init__(self, spec, controller=False, version=(2, 479)):
        self.name = spec["name"]
        self.is_controller = controller
        self.version = version
        self.description = spec.get("description", CONTROLLER_DESCRIPTION if controller else "")
        self.labels = ""
        self.num_executors = 0 if controller else 1
        self.mode = "NORMAL"
        self.connected = True
        self.temporarily_offline = False
        self.offline_cause = None
        self.running = {}  # executor number -> Build, or PlaceholderExec (Pipeline node())
        self.oneoff = []  # Computer's OneOffExecutors: flyweight WorkflowRuns running here
        self.apply(spec)

    def apply(self, spec, user="admin"):
        if "labels" in spec:
            self.labels = spec["labels"] or ""
        if "executors" in spec:
            self.num_executors = max(0, int(spec["executors"]))
        if "mode" in spec:
            mode = str(spec["mode"]).upper()
            if mode not in ("NORMAL", "EXCLUSIVE"):
                raise ValueError("unknown mode %r" % spec["mode"])
            self.mode = mode
        if "description" in spec:
            self.description = spec["description"] or ""
        reason = spec.get("offline_reason")
        if "temporarily_offline" in spec:
            self.temporarily_offline = bool(spec["temporarily_offline"])
            self.offline_cause = OfflineCause(user, reason) if self.temporarily_offline else None
        if "offline" in spec and not self.is_controller:
            self.connected = not bool(spec["offline"])
            if not self.connected and self.offline_cause is None and reason:
                self.offline_cause = OfflineCause(user, reason)
        elif reason is not None and self.offline_cause is not None:
            self.offline_cause.message = reason or None

    @property
    def self_label(self):
        return self.name  # 'built-in' (or 'master') for the controller

    @property
    def node_name(self):
        return "" if self.is_controller else self.name  # Node.getNodeName

    @property
    def display_name(self):
        if self.is_controller:
            return "Built-In Node" if self.version >= (2, 307) else "master"
        return self.name

    @property
    def url_name(self):
        if self.is_controller:
            return "(built-in)" if self.version >= (2, 307) else "(master)"
        return quote(self.name, safe="")

    @property
    def has_computer(self):
        # AbstractCIBase.updateComputer: agents with 0 executors get no Computer
        return self.is_controller or self.num_executors > 0

    @property
    def offline(self):
        """Computer.isOffline: temporarily offline or no channel."""
        return self.temporarily_offline or not self.connected or not self.has_computer

    def atoms(self):
        return set(parse_label_string(self.labels)) | {self.self_label}

    def sorted_atoms(self):
        return sorted(self.atoms())

    def free_executor(self):
        if len(self.running) >= self.num_executors:
            return None
        for n in range(self.num_executors):
            if n not in self.running:
                return n
        return None


class Starting:
    """An executor between Queue.onStartExecuting and WorkUnit.setExecutable.

    hudson.model.Executor.run, under the queue lock: workUnit.setExecutor,
    then queue.onStartExecuting (the item leaves `pendings` and becomes a
    Queue.LeftItem whose getExecutable() is still null, cancelled false),
    then task.createExecutable() (AbstractProject.createExecutable ->
    newBuild: only now does the build exist in the job's builds), then
    workUnit.setExecutable (WorkUnit.setExecutable -> Run.setQueueId: only
    now does the build carry its queueId and the LeftItem its executable).
    Queue.getItem and the job's builds are read without that lock, so a
    client sees this window: the item gone from the queue, no build yet.
    Meanwhile the executor is busy (Executor.isIdle: workUnit != null) with
    no currentExecutable.  It lasts Jenkins.start_window seconds here."""

    def __init__(self, item, node, executor, due):
        self.item = item
        self.node = node
        self.executor = executor
        self.due = due


class Build:
    """A Run (FreeStyleBuild or WorkflowRun)."""

    def __init__(self, job, number, item, node, executor, params, now):
        self.job = job
        self.number = number
        # Run.getQueueId: Run.QUEUE_ID_UNKNOWN (-1) for a record of a build
        # made before Jenkins saved queueId (its field's default, kept on
        # load); WorkUnit.setExecutable sets it otherwise. "old" in
        # /_test/build stands for such a record (issue 17).
        self.queue_id = -1 if getattr(item, "old_record", False) else item.id
        self.node = node
        self.executor = executor
        self.params = params
        # Executor.run copies the queue item's actions onto the run: a
        # ParametersAction whenever the item had one, whether or not the job
        # declares parameters (ParametersAction.getParameters filters them);
        # a parameterized job's item has one (ParameterizedJobMixIn.
        # scheduleBuild2 adds the defaults).
        self.has_params_action = item.params is not None or bool(job.params)
        self.fatal = False  # failed before any build step (Run.handleFatalBuildProblem)
        self.causes = list(item.causes)
        self.timestamp = now
        self.end = None
        self.result = None
        self.description = None
        self.abort_user = None
        self.abort_requested = False
        self.log = []
        self.flow = None  # PipelineFlow of a WorkflowRun
        self.node_blocks = []  # a WorkflowRun's node() bodies: [node, executor, start, end]
        self.planned_duration = job.duration
        self.planned_result = job.result
        # Test hook: DURATION / RESULT parameters, like a build script reading its env.
        for p in params:
            text = p.as_text().strip()
            if p.name == "DURATION" and text:
                try:
                    self.planned_duration = max(0.0, float(text))
                except ValueError:
                    pass
            elif p.name == "RESULT" and text.upper() in RESULTS:
                self.planned_result = text.upper()

    @property
    def building(self):
        return self.result is None

    @property
    def due(self):
        if self.flow is not None:  # a Pipeline moves on at its sleep's end, or when kicked
            return self.flow.wake if self.flow.wake is not None else float("inf")
        return self.timestamp + self.planned_duration

    @property
    def duration_ms(self):
        return 0 if self.end is None else ms(self.end - self.timestamp)

    @property
    def url_path(self):
        return self.job.url_path + "%d/" % self.number

    def icon_color(self):
        if not self.building:
            return RESULT_COLOR[self.result]
        prev = next((b for b in self.job.runs() if b.number < self.number), None)
        base = prev.icon_color() if prev else "notbuilt"
        return base if base.endswith("_anime") else base + "_anime"

    def log_bytes(self):
        return "".join(line + "\n" for line in self.log).encode("utf-8")


class QueueItem:
    """A queue item through its life: waiting -> blocked/buildable -> left."""

    JCLASS = {"waiting": "hudson.model.Queue$WaitingItem",
              "blocked": "hudson.model.Queue$BlockedItem",
              "buildable": "hudson.model.Queue$BuildableItem",
              "left": "hudson.model.Queue$LeftItem"}

    def __init__(self, item_id, job, params, causes, pin, now, due):
        self.id = item_id
        self.job = job
        self.params = params  # None = no ParametersAction
        self.causes = list(causes)
        self.pin = pin  # node name pinned by a label-assignment action (native builds)
        self.in_queue_since = now
        self.timestamp = due
        self.state = "waiting"
        self.buildable_start = None
        self.blocked_why = None
        self.cancelled = False
        self.executable = None
        self.left_at = None

    @property
    def url(self):
        return "queue/item/%d/" % self.id

    def assigned_label(self, controller):
        """Queue.Item.getAssignedLabel: label-assignment actions first (the
        ParametersAction: its first node/label value; then a pin), then the
        job's own label."""
        for p in self.params or []:
            expr = p.label_expr()
            if expr:
                return get_label(expr)
        if self.pin is not None:
            return LabelAtom(self.pin)
        return self.job.assigned_label(controller)

    def params_text(self):
        return "".join("\n" + p.short_description() for p in self.params or [])


# ---------------------------------------------------------------------------
# Pipeline (workflow-job, workflow-cps, workflow-durable-task-step)
# ---------------------------------------------------------------------------

PLACEHOLDER_TASK = "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask"
PLACEHOLDER_EXECUTABLE = PLACEHOLDER_TASK + "$PlaceholderExecutable"


class PipelineSyntaxError(ValueError):
    pass


class PipelineScript:
    """A tiny interpreter for the scripts the tests need, not Groovy: a list
    of steps, run one at a time by PipelineFlow.  Understood:
      node(EXPR) { ... }  node { ... }   EXPR: params.NAME, 'label', "label"
      sleep N  sleep(N)  sleep time: N   echo 'text'   error 'text'
      currentBuild.result = 'UNSTABLE'   (and ; or newlines between steps)
    Compiled to ("node", expr) ... ("endnode",), ("sleep", s), ("echo", t),
    ("error", t), ("result", r)."""

    TOKEN = re.compile(r"""\s*(?:(?P<str>'[^']*'|"[^"]*")|(?P<num>\d+(?:\.\d+)?)|"""
                       r"""(?P<word>[A-Za-z_][A-Za-z_0-9.]*)|(?P<op>[(){}=;:,]))""")

    def __init__(self, text):
        self.text = text
        self.toks = self._tokens(text)
        self.i = 0
        self.ops = self._block(top=True)

    @classmethod
    def _tokens(cls, text):
        toks, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = cls.TOKEN.match(text, pos)
            if not m:
                if text[pos:].strip() == "":
                    break
                raise PipelineSyntaxError("cannot parse the script at %r" % text[pos:pos + 20])
            kind = m.lastgroup
            val = m.group(kind)
            if kind == "str":
                val = val[1:-1]
            elif kind == "num":
                val = float(val)
            toks.append((kind, val))
            pos = m.end()
        return toks

    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def _take(self, kind=None, val=None):
        t = self._peek()
        if t[0] is None or (kind and t[0] != kind) or (val is not None and t[1] != val):
            raise PipelineSyntaxError("expected %s, got %r" % (val or kind, t[1]))
        self.i += 1
        return t[1]

    def _arg(self, kinds):
        """A step argument, with or without parentheses, `time:` allowed."""
        paren = self._peek() == ("op", "(")
        if paren:
            self._take("op", "(")
        if self._peek()[0] == "word" and self.i + 1 < len(self.toks) and \
                self.toks[self.i + 1] == ("op", ":"):
            self.i += 2  # named argument (sleep time: N, error message: 'x')
        kind, val = self._peek()
        if kind not in kinds:
            raise PipelineSyntaxError("bad argument %r" % (val,))
        self.i += 1
        if paren:
            self._take("op", ")")
        return kind, val

    def _block(self, top=False):
        ops = []
        while True:
            kind, val = self._peek()
            if kind is None:
                if not top:
                    raise PipelineSyntaxError("missing }")
                return ops
            if (kind, val) == ("op", "}"):
                if top:
                    raise PipelineSyntaxError("unexpected }")
                return ops
            if (kind, val) == ("op", ";"):
                self.i += 1
                continue
            self.i += 1
            if val == "node":
                expr = None
                if self._peek() == ("op", "("):
                    self._take("op", "(")
                    if self._peek() != ("op", ")"):
                        k, expr = self._peek()
                        if k not in ("str", "word"):
                            raise PipelineSyntaxError("bad node label %r" % (expr,))
                        self.i += 1
                        expr = (k, expr)
                    self._take("op", ")")
                self._take("op", "{")
                body = self._block()
                self._take("op", "}")
                ops += [("node", expr)] + body + [("endnode",)]
            elif val == "sleep":
                ops.append(("sleep", float(self._arg(("num",))[1])))
            elif val in ("echo", "error"):
                ops.append((val, self._arg(("str",))[1]))
            elif val == "currentBuild.result":
                self._take("op", "=")
                result = self._take("str")
                if result not in RESULTS:
                    raise PipelineSyntaxError("unknown result %r" % result)
                ops.append(("result", result))
            else:
                raise PipelineSyntaxError("unknown step %r" % val)


class RunTaskItem(QueueItem):
    """An item whose task belongs to a run, not the job: never folded with
    the job's own items, never cancelled or found as the job's item."""

    def __init__(self, item_id, run, now):
        super().__init__(item_id, run.job, None, [], None, now, now)
        self.run = run


class AfterRestartItem(RunTaskItem):
    """workflow-job's AfterRestartTask: WorkflowRun.onLoad of a run that was
    running at the restart prints "Resuming build at ... after Jenkins
    restart" and schedules it (Queue.schedule(task, 0), no actions).  It is
    a FlyweightTask whose createExecutable returns the run itself, so the
    resumed run shows on a OneOffExecutor again (JENKINS-31614).  It is an
    @ExportedBean with no @Exported property: its JSON is its _class."""

    JTASK = "org.jenkinsci.plugins.workflow.job.AfterRestartTask"

    def assigned_label(self, controller):
        """AfterRestartTask.getAssignedLabel: the job's."""
        return self.job.assigned_label(controller)


class PlaceholderItem(RunTaskItem):
    """The queue item of ExecutorStepExecution.PlaceholderTask: what node()
    schedules (Queue.schedule2(task, 0), no actions) for its label; it takes
    a regular executor like any task, so the node's executors count it."""

    def __init__(self, item_id, run, label, now):
        super().__init__(item_id, run, now)
        self.label = label  # PlaceholderTask.label: None = any node

    def assigned_label(self, controller):
        """PlaceholderTask.getAssignedLabel: null label = anywhere."""
        return get_label(self.label) if self.label else None

    @property
    def display_name(self):
        """PlaceholderTask.getDisplayName (no enclosing stage label here)."""
        return "part of %s #%d" % (self.run.job.full_display_name, self.run.number)


class PlaceholderExec:
    """PlaceholderTask.PlaceholderExecutable: occupies a node's executor
    while the run is inside node() { }."""

    def __init__(self, item, node, executor):
        self.item = item
        self.run = item.run
        self.node = node
        self.executor = executor


class PipelineFlow:
    """The CPS execution of one WorkflowRun, a step at a time, driven by
    Queue.maintain passes (Jenkins.step_pipeline)."""

    def __init__(self, build, script):
        self.build = build
        self.ops = script.ops
        self.pc = 0
        self.wake = None  # a sleep step's end
        self.item = None  # the placeholder queue item while node() waits
        self.held = None  # the PlaceholderExec while inside node() { }
        self.resuming = False  # inside node() { }, its placeholder queued again after a restart
        self.after_restart = None  # the AfterRestartItem until a OneOffExecutor took it
        self.result = "SUCCESS"

    def label_of(self, expr):
        """ExecutorStep's label argument: a literal, or params.NAME (the
        ParametersAction's value, as ParamsVariable exposes it)."""
        if expr is None:
            return None
        kind, val = expr
        if kind == "str":
            return val.strip() or None
        if not val.startswith("params."):
            raise PipelineSyntaxError("unknown variable %s" % val)
        name = val[len("params."):]
        v = next((p for p in self.build.params if p.name == name), None)
        return v.as_text().strip() or None if v is not None else None


class Jenkins:
    """The model root: items, nodes, builds, and the queue.  Every access
    happens under `lock`; `changed` wakes the scheduler."""

    def __init__(self, fixture):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = str(fixture.get("version", "2.479.3"))
        self.vtuple = version_tuple(self.version)
        self.quiet_period = int(fixture.get("quiet_period", 5))
        # Jenkins.quietDownInfo: set by doQuietDown, cleared by doCancelQuietDown.
        self.quieting_down = False
        self.quiet_down_reason = None
        self.left_item_ttl = float(fixture.get("left_item_ttl", 300))
        self.start_window = float(fixture.get("start_window", 0.02))
        self.session_hash = secrets.token_hex(4)
        self.root = Folder("", None)
        self.nodes = {}
        self.controller = None
        self.all_builds = []  # every build ever started, in start order
        self.active = []  # running builds (also those of deleted nodes)
        self.concurrency = {}
        self.queue = Queue(self)
        for spec in fixture.get("nodes", []):
            self.add_node(spec)
        if self.controller is None:  # Jenkins always has its built-in node
            self.add_node({"name": "built-in" if self.vtuple >= (2, 307) else "master",
                           "executors": 0})
        for spec in fixture.get("jobs", []):
            self.add_item(spec, self.root)

    # -- items -------------------------------------------------------------

    def add_item(self, spec, parent):
        name = spec.get("name")
        if not name or "/" in name:
            raise ValueError("bad item name %r" % name)
        if name in parent.children:
            raise ValueError("item %r already exists" % name)
        if spec.get("type") == "folder":
            item = Folder(name, parent, spec.get("description", ""))
            parent.children[name] = item
            for child in spec.get("jobs", []):
                self.add_item(child, item)
        else:
            item = Job(spec, parent)
            parent.children[name] = item
        return item

    def folder(self, path, create=False):
        group = self.root
        for part in [p for p in (path or "").split("/") if p]:
            child = group.children.get(part)
            if child is None and create:
                child = self.add_item({"name": part, "type": "folder"}, group)
            if not isinstance(child, Folder):
                raise KeyError(path)
            group = child
        return group

    def item_by_full_name(self, full_name):
        group, item = self.root, None
        for part in full_name.split("/"):
            if not isinstance(group, Folder) or part not in group.children:
                return None
            item = group = group.children[part]
        return item

    def all_jobs(self, group=None):
        for child in (group or self.root).sorted_children():
            if isinstance(child, Folder):
                yield from self.all_jobs(child)
            else:
                yield child

    def remove_item(self, item):
        for job in ([item] if isinstance(item, Job) else list(self.all_jobs(item))):
            for qi in list(self.queue.items):
                if qi.job is job:
                    self.queue.cancel(qi)
            for b in job.builds.values():
                if b.building:
                    b.abort_requested = True
        del item.parent.children[item.name]
        self.kick()

    # -- nodes -------------------------------------------------------------

    def add_node(self, spec):
        name = spec.get("name")
        if not name:
            raise ValueError("node needs a name")
        if name in self.nodes:
            raise ValueError("node %r already exists" % name)
        is_controller = spec.get("controller", name in ("built-in", "master"))
        if is_controller and self.controller is not None:
            raise ValueError("there is already a controller node")
        node = Node(spec, controller=is_controller, version=self.vtuple)
        self.nodes[name] = node
        if is_controller:
            self.controller = node
        self.concurrency.setdefault(name, 0)
        self.kick()
        return node

    def computers(self):
        """Jenkins.getComputers order: controller first, then by name."""
        agents = sorted((n for n in self.nodes.values()
                         if not n.is_controller and n.has_computer), key=lambda n: n.name)
        return [self.controller] + agents

    def computer(self, name):
        """Jenkins.getComputer: '(master)' is the controller, and since 2.307
        (jenkinsci/jenkins #5425, "Terminology cleanup") '(built-in)' too; before
        it, '(built-in)' is looked up as a node's name and found by none."""
        if name == "(master)" or (name == "(built-in)" and self.vtuple >= (2, 307)):
            return self.controller
        node = self.nodes.get(name)
        if node is None or node.is_controller or not node.has_computer:
            return None
        return node

    def agents(self):
        return [n for n in self.nodes.values() if not n.is_controller]

    def label_nodes(self, label):
        """Label.getNodes: the controller first, then matching agents."""
        return [n for n in [self.controller] + self.agents() if label.matches(n.atoms())]

    def set_connected(self, node, connected, user, message=None):
        node.connected = connected
        if not connected:
            node.offline_cause = OfflineCause(user, message)
            # The channel is gone: running builds fail like on a real agent loss.
            for b in list(node.running.values()) + list(node.oneoff):
                if isinstance(b, Starting):
                    continue  # no build yet; end_start creates it or drops it
                b = getattr(b, "run", b)  # a node() body's run fails with it
                b.log.append("Agent went offline during the build")
                b.log.append("ERROR: Connection was broken")
                self.finish_build(b, time.time(), "FAILURE")
        elif not node.temporarily_offline:
            node.offline_cause = None
        self.kick()

    # -- builds ------------------------------------------------------------

    def running_builds(self):
        return list(self.active)

    def start_build(self, item, node, executor, now):
        job = item.job
        number = job.next_build_number
        job.next_build_number += 1
        declared = {d.name for d in job.params}
        # ParametersAction.filter: undeclared parameters are not kept (SECURITY-170)
        params = [p for p in item.params or [] if p.name in declared]
        build = Build(job, number, item, node, executor, params, now)
        if executor is None:  # a flyweight WorkflowRun on the computer's OneOffExecutor
            node.oneoff.append(build)
        else:
            node.running[executor] = build
        job.builds[number] = build
        self.all_builds.append(build)
        self.active.append(build)
        job.active.add(build)
        self.concurrency[node.name] = max(self.concurrency.get(node.name, 0), len(node.running))
        self.queue.leave(item, now, executable=build)
        for cause in build.causes:
            build.log.append(cause.short_description())
        build.log.append("Running as SYSTEM")
        ws = "/var/jenkins_home/workspace/" if node.is_controller else "/home/jenkins/workspace/"
        ws += job.full_name
        if job.is_pipeline:
            self.start_flow(build)
            return build
        if node.is_controller:
            build.log.append("Building on the built-in node in workspace " + ws)
        else:
            labels = " ".join(parse_label_string(node.labels))
            build.log.append("Building remotely on %s%s in workspace %s"
                             % (node.name, " (%s)" % labels if labels else "", ws))
        # Build.BuildExecution.doRun: the wrappers' setUp before any builder
        if self.validate_multi_node(build):
            return build
        build.log.append("[%s] $ /bin/sh -xe /tmp/jenkins%d.sh" % (job.name, 1000000 + item.id))
        build.log.append("+ sleep %s" % Fmt.number(build.planned_duration))
        return build

    def validate_multi_node(self, build):
        """NodeLabel Parameter plugin: a Node parameter that allows several
        nodes (NodeParameterDefinition.createBuildWrapper when
        getAllowMultiNodeSelection) puts a TriggerNextBuildWrapper on every
        freestyle build; its setUp calls validateBuild, which throws an
        IllegalStateException when the job's concurrentBuild differs from
        triggerConcurrentBuilds; Run.execute catches it and the build ends
        FAILURE before any build step runs (Run.handleFatalBuildProblem:
        "FATAL: " and the stack trace, no builder output).  The wrapper is
        the first Node or Label parameter definition's
        (LabelParameterValue.createBuildWrapper); True when it failed."""
        job = build.job
        if job.is_pipeline or not build.has_params_action:
            return False  # BuildWrappers are freestyle; setUp returns early without ParametersAction
        for d in [d for d in job.params if d.kind in ("node", "label")][:1]:
            if d.kind != "node" or not d.multi_node:
                return False
            if job.concurrent and not d.trigger_concurrent:
                msg = ("The project is configured to run builds concurrent, but the node parameter"
                       " [%s] is configured to trigger new builds depending on the state of the"
                       " last build only!" % d.name)
            elif not job.concurrent and d.trigger_concurrent:
                msg = ("The project is configured to NOT run builds concurrent, but the node"
                       " parameter [%s] is configured to trigger new builds concurrent!" % d.name)
            else:
                return False
            build.log.append("FATAL: " + msg)
            build.log.append("java.lang.IllegalStateException: " + msg)
            build.planned_duration = 0
            build.planned_result = "FAILURE"
            build.fatal = True
            return True
        return False

    def finish_build(self, build, now, result=None):
        if not build.building:
            return
        if result is None:
            result = "ABORTED" if build.abort_requested else build.planned_result
        if build.flow is not None:
            self.finish_flow(build, now, result)
            return
        if result == "ABORTED" and build.abort_requested:
            build.log.append("Build was aborted")
            build.log.append("Aborted by %s" % (build.abort_user or "anonymous"))
        elif result == "FAILURE" and not build.fatal:
            build.log.append("Build step 'Execute shell' marked build as failure")
        elif result == "UNSTABLE":
            build.log.append("Build step 'Execute shell' changed build result to UNSTABLE")
        if build.job.is_pipeline:
            build.log += ["[Pipeline] }", "[Pipeline] // node", "[Pipeline] End of Pipeline"]
        build.log.append("Finished: %s" % result)
        build.end = now
        build.result = result
        build.node.running.pop(build.executor, None)
        self.active.remove(build)
        build.job.active.discard(build)
        self.kick()

    def finish_flow(self, build, now, result):
        """The end of a WorkflowRun: its node() executor and one-off executor
        are free; an AfterRestartTask still queued is cancelled."""
        self.release_placeholder(build)
        if build.flow.after_restart is not None:
            self.queue.cancel(build.flow.after_restart)
            build.flow.after_restart = None
        if result == "ABORTED" and build.abort_requested:
            build.log.append("Aborted by %s" % (build.abort_user or "anonymous"))
        build.log += ["[Pipeline] End of Pipeline", "Finished: %s" % result]
        build.end = now
        build.result = result
        if build in build.node.oneoff:
            build.node.oneoff.remove(build)
        self.active.remove(build)
        build.job.active.discard(build)
        self.kick()

    def stop_build(self, build, user):
        if build.building and not build.abort_requested:
            build.abort_requested = True
            build.abort_user = user
            self.kick()

    # -- Pipeline runs (WorkflowRun over CpsFlowExecution) ----------------

    def start_flow(self, build):
        """WorkflowRun.run: the script (CpsFlowDefinition's, or the default
        one standing in for a Jenkinsfile doing node(params.NODE))."""
        job = build.job
        script = job.script
        if script is None:
            pin = next((d for d in job.params if d.kind in ("node", "label")), None)
            text = "node(%s) { sleep %s; currentBuild.result = '%s' }" % (
                "params." + pin.name if pin else "", Fmt.number(build.planned_duration),
                build.planned_result)
            script = PipelineScript(text)
        build.flow = PipelineFlow(build, script)
        build.log.append("[Pipeline] Start of Pipeline")

    def step_pipeline(self, build, now):
        """CpsFlowExecution running the script until a step waits: a sleep,
        or node() until its placeholder gets an executor."""
        f = build.flow
        if build.abort_requested:
            # WorkflowRun.doStop -> the one-off Executor's interrupt(ABORTED):
            # the body is interrupted, a waiting placeholder leaves the queue.
            self.finish_build(build, now)
            return
        if f.resuming:
            return  # the body waits for its placeholder (ExecutorStepDynamicContext.resume)
        while f.pc < len(f.ops):
            op = f.ops[f.pc]
            if op[0] == "sleep":
                if f.wake is None:
                    f.wake = now + op[1]
                    build.log += ["[Pipeline] sleep", "Sleeping for %s sec" % Fmt.number(op[1])]
                if now < f.wake:
                    return
                f.wake = None
            elif op[0] == "node":
                if f.item is None:
                    try:
                        label = f.label_of(op[1])
                    except PipelineSyntaxError as e:
                        build.log.append("groovy.lang.MissingPropertyException: %s" % e)
                        self.finish_build(build, now, "FAILURE")
                        return
                    # ExecutorStepExecution.start: Queue.schedule2(new PlaceholderTask(...), 0)
                    f.item = self.queue.schedule_placeholder(build, label, now)
                    build.log += ["[Pipeline] node",
                                  "Still waiting to schedule task"]
                return  # start_placeholder moves on once an executor took it
            elif op[0] == "endnode":
                self.release_placeholder(build)
            elif op[0] == "echo":
                build.log += ["[Pipeline] echo", op[1]]
            elif op[0] == "error":
                build.log += ["[Pipeline] error", "ERROR: " + op[1]]
                self.finish_build(build, now, "FAILURE")
                return
            elif op[0] == "result":
                # RunWrapper.setResult -> Run.setResult: only ever worse
                if RESULT_ORDINAL[op[1]] > RESULT_ORDINAL[f.result]:
                    f.result = op[1]
            f.pc += 1
        self.finish_build(build, now, f.result)

    def start_placeholder(self, item, node, executor, now):
        """Executor.run of a PlaceholderTask: it occupies the executor and
        the body of node() { } runs."""
        px = PlaceholderExec(item, node, executor)
        node.running[executor] = px
        self.concurrency[node.name] = max(self.concurrency.get(node.name, 0), len(node.running))
        self.queue.leave(item, now, executable=px)
        f = item.run.flow
        f.item, f.held = None, px
        if f.resuming:  # ExecutorStepDynamicContext.resume: the same node() body goes on
            f.resuming = False
            self.kick()
            return
        f.pc += 1
        item.run.node_blocks.append([node.name, executor, now, None])
        ws = "/var/jenkins_home/workspace/" if node.is_controller else "/home/jenkins/workspace/"
        item.run.log += ["Running on %s in %s%s" % (node.display_name, ws, item.run.job.full_name),
                         "[Pipeline] {"]
        self.kick()

    def release_placeholder(self, build):
        """The end of node() { } (or of the run): PlaceholderExecutable.run
        returns, its executor is free; a placeholder still queued is
        cancelled (ExecutorStepExecution.stop -> Queue.cancel)."""
        f = build.flow
        if f.item is not None:
            self.queue.cancel(f.item)
            f.item = None
        if f.held is not None:
            px, f.held = f.held, None
            if px.node.running.get(px.executor) is px:
                del px.node.running[px.executor]
            build.node_blocks[-1][3] = time.time()
            build.log += ["[Pipeline] }", "[Pipeline] // node"]
            self.kick()

    def resume_flow(self, build, now):
        """A WorkflowRun running at a restart: WorkflowRun.onLoad prints
        "Resuming build at ..." and schedules an AfterRestartTask; until an
        executor takes it the run is building on no executor.  A node()
        body that held an executor: ExecutorStepExecution.onResume ->
        ExecutorStepDynamicContext.resume schedules the same PlaceholderTask
        again, whose label is now the node's name (PlaceholderTask's
        Callback set it to computer.getName(), "" for the built-in node,
        which getAssignedLabel takes for its self label), prints "Waiting for
        reconnection of NODE before proceeding with build" and waits for it
        to start; the body goes on only then."""
        f = build.flow
        if build in build.node.oneoff:
            build.node.oneoff.remove(build)
        build.log.append("Resuming build at %s after Jenkins restart"
                         % time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(now)))
        f.after_restart = self.queue.schedule_after_restart(build, now)
        if f.held is not None:
            px, f.held = f.held, None
            if px.node.running.get(px.executor) is px:
                del px.node.running[px.executor]
            # label "" (the built-in node) means Jenkins.getSelfLabel, not anywhere
            f.item = self.queue.schedule_placeholder(build, px.node.self_label, now)
            f.resuming = True
            if not px.node.is_controller:  # only for a non-empty node name
                build.log.append("Waiting for reconnection of %s before proceeding with build"
                                 % px.node.name)

    def resume_run(self, item, node, now):
        """Executor.run of an AfterRestartTask: createExecutable returns the
        run, which is on the computer's OneOffExecutor again."""
        run = item.run
        self.queue.leave(item, now, executable=run)
        run.flow.after_restart = None
        run.node = node
        node.oneoff.append(run)
        self.kick()

    # -- misc --------------------------------------------------------------

    def kick(self):
        """Run a scheduling pass as soon as possible."""
        with self.changed:
            self.changed.notify_all()

    def begin_start(self, item, node, executor, now):
        """Executor.run up to createExecutable (see Starting): the item has
        left the queue as a LeftItem without executable; the build does not
        exist yet.  A zero window starts the build at once.  executor None:
        a flyweight task's OneOffExecutor (Computer.startFlyWeightTask adds
        it to the computer's oneOffExecutors before it runs Executor.run),
        which goes through the same window."""
        self.queue.leave(item, now)
        if self.start_window <= 0:
            return self.end_start(Starting(item, node, executor, now), now)
        st = Starting(item, node, executor, now + self.start_window)
        if executor is None:
            node.oneoff.append(st)
        else:
            node.running[executor] = st
        return None

    def end_start(self, st, now):
        """The rest of Executor.run's locked block: createExecutable, then
        WorkUnit.setExecutable.  AbstractProject.createExecutable (and
        WorkflowJob's) returns null for a disabled job: Executor.run logs
        "cannot be run (for example because it is disabled)" and returns;
        the LeftItem keeps executable null and cancelled false until the
        leftItems cache drops it (Queue.leftItems, expireAfterWrite 5 min)."""
        self.drop_starting(st)
        if st.item.job.disabled or st.item.job not in self.all_jobs():
            self.kick()
            return None
        return self.start_build(st.item, st.node, st.executor, now)

    def starting(self):
        return [s for n in self.nodes.values() for s in list(n.running.values()) + n.oneoff
                if isinstance(s, Starting)]

    @staticmethod
    def drop_starting(st):
        if st in st.node.oneoff:
            st.node.oneoff.remove(st)
        elif st.node.running.get(st.executor) is st:
            del st.node.running[st.executor]

    def restart(self):
        """A controller restart as clients see it: new session hash, the
        in-memory LeftItem cache is gone, and builds in progress do not
        survive it.  Jenkins loads every build record from disk as finished:
        Run(job, buildDir) -> Run.reload sets state COMPLETED and result
        ABORTED "as a defensive measure", then unmarshals build.xml, which
        for a build still running has no result yet: it stays ABORTED, with
        the duration never saved (0).  Items in the start window had left
        the queue (Queue.save no longer has them) and never got a build.
        Pipeline runs are durable and resume instead (resume_flow); queued
        items, node() placeholders waiting among them, are loaded again
        (Queue.load)."""
        now = time.time()
        self.session_hash = secrets.token_hex(4)
        self.queue.left.clear()
        for st in self.starting():
            self.drop_starting(st)
        for build in self.running_builds():
            if build.flow is not None:
                self.resume_flow(build, now)
                continue
            build.end = build.timestamp
            build.result = "ABORTED"
            build.node.running.pop(build.executor, None)
            self.active.remove(build)
            build.job.active.discard(build)
        self.kick()


class Queue:
    """hudson.model.Queue: items, duplicate folding, causes of blockage and
    the maintenance pass that hands buildable items to executors."""

    def __init__(self, jenkins):
        self.j = jenkins
        self.items = []  # waiting, blocked and buildable items, by id
        self.left = {}  # id -> LeftItem, kept left_item_ttl seconds
        self.next_id = 1  # QueueIdStrategy.DefaultStrategy: global, from 1

    # -- scheduling --------------------------------------------------------

    @staticmethod
    def _should_schedule(existing, params, pin):
        """Queue.scheduleInternal: a new request folds into an existing item of
        the same task unless some QueueAction on either side says it differs
        (ParametersAction compares parameter sets; a pin compares nodes)."""
        def keys(values):
            return {v.key() for v in values}
        differs = False
        if existing.params is not None:
            differs |= (bool(existing.params) if params is None
                        else keys(params) != keys(existing.params))
        if params is not None:
            differs |= (bool(params) if existing.params is None
                        else keys(params) != keys(existing.params))
        if existing.pin is not None or pin is not None:
            differs |= existing.pin != pin
        return differs

    def schedule(self, job, delay_seconds, params, causes, pin=None):
        """Queue.schedule2 -> (item, created)."""
        now = time.time()
        due = now + delay_seconds
        dups = [it for it in self.items if it.job is job and not isinstance(it, RunTaskItem)
                and not self._should_schedule(it, params, pin)]
        if not dups:
            item = QueueItem(self.next_id, job, params, causes, pin, now, due)
            self.next_id += 1
            self.items.append(item)
            self.j.kick()
            return item, True
        for it in dups:
            it.causes.extend(causes)  # CauseAction folds into the existing item
            if it.state == "waiting" and it.timestamp > due:
                it.timestamp = due  # keep the shorter of the due times
        self.j.kick()
        return dups[0], False

    def leave(self, item, now, executable=None, cancelled=False):
        if item in self.items:
            self.items.remove(item)
        item.state = "left"
        item.executable = executable
        item.cancelled = cancelled
        item.left_at = now
        self.left.pop(item.id, None)  # re-inserted: the dict stays in leaving order
        self.left[item.id] = item

    def cancel(self, item):
        """Queue.cancel(Item): False when the item already left the queue."""
        if item.state == "left":
            return False
        self.leave(item, time.time(), cancelled=True)
        self.j.kick()
        return True

    def cancel_task(self, job):
        """Queue.cancel(Task): the first waiting item of the job, otherwise one
        blocked and one buildable item."""
        for it in self.by_state("waiting"):
            if it.job is job and not isinstance(it, RunTaskItem):
                return self.cancel(it)
        done = False
        for state in ("blocked", "buildable"):
            for it in self.by_state(state):
                if it.job is job and not isinstance(it, RunTaskItem):
                    done = self.cancel(it) or done
                    break
        return done

    # -- lookup ------------------------------------------------------------

    def expire(self, now):
        # Items are kept in the order they left (Jenkins' leftItems cache
        # expires after write): drop the expired ones from the old end and
        # stop at the first that stays, not a walk over every item.
        while self.left:
            item_id, it = next(iter(self.left.items()))
            if now - it.left_at <= self.j.left_item_ttl:
                break
            del self.left[item_id]

    def get(self, item_id):
        self.expire(time.time())
        for it in self.items:
            if it.id == item_id:
                return it
        return self.left.get(item_id)

    def by_state(self, state):
        items = [it for it in self.items if it.state == state]
        if state == "waiting":
            items.sort(key=lambda it: (it.timestamp, it.id))
        return items

    def listing(self):
        """Queue.getItems order: waiting, blocked, buildable (reversed)."""
        return (self.by_state("waiting") + self.by_state("blocked")
                + list(reversed(self.by_state("buildable"))))

    def item_for(self, job):
        """Queue.getItem(Task): blocked, then buildable, then waiting."""
        for state in ("blocked", "buildable"):
            for it in self.by_state(state):
                if it.job is job and not isinstance(it, RunTaskItem):
                    return it
        for it in self.by_state("waiting"):
            if it.job is job and not isinstance(it, RunTaskItem):
                return it
        return None

    # -- causes of blockage and `why` ---------------------------------------

    def blockage(self, item, now):
        """Why a not-yet-started item may not be handed to an executor even if
        one were free (job-level blocks), as text, or None."""
        job = item.job
        # Queue.isBlockedByShutdown: while quieting down, makeBuildable refuses
        # every task that is not a NonBlockingTask (freestyle builds and
        # Pipeline runs are not) and the item becomes a BlockedItem.
        if self.j.quieting_down:
            return "Jenkins is about to shut down"
        if isinstance(item, RunTaskItem):
            return None  # PlaceholderTask.getCauseOfBlockage; AfterRestartTask is a FlyweightTask
        if not job.concurrent:
            # Executor.run holds the queue lock through the start window, so
            # no Queue.maintain pass can start a second build meanwhile.
            if any(st.item.job is job for st in self.j.starting()):
                return "A build is already in progress"
            if job.is_building():
                # BlockedBecauseOfBuildInProgress
                last = job.last_build()
                est = job.estimated_duration_ms()
                eta = "N/A"
                if est >= 0 and est - ms(now - last.timestamp) > 0:
                    eta = Fmt.time_span(est - ms(now - last.timestamp))
                return "Build #%s is already in progress (ETA: %s)" % (Fmt.number(last.number), eta)
            if item.state != "buildable" and any(
                    o is not item and o.job is job and o.state == "buildable" for o in self.items):
                return "A build is already in progress"
        return None

    def buildable_why(self, item):
        """BuildableItem.getCauseOfBlockage (no executor could take it)."""
        j = self.j
        label = item.assigned_label(j.controller)
        if not j.agents():  # no agents: pointless to talk about nodes
            label = None
        if label is None:
            return "Waiting for next available executor"
        nodes = j.label_nodes(label)
        if all(n.offline for n in nodes):
            if len(nodes) == 1:
                return "\u2018%s\u2019 is offline" % nodes[0].display_name
            if not nodes:
                return "There are no nodes with the label \u2018%s\u2019" % label.name
            return "All nodes of label \u2018%s\u2019 are offline" % label.name
        if len(nodes) == 1:
            return "Waiting for next available executor on \u2018%s\u2019" % nodes[0].display_name
        return "Waiting for next available executor on \u2018%s\u2019" % label.name

    def why(self, item, now):
        if item.state == "waiting":
            left = ms(item.timestamp - now)
            if left <= 0:
                return "Finished waiting"
            return "In the quiet period. Expires in " + Fmt.time_span(left)
        if item.state == "blocked":
            return self.blockage(item, now) or item.blocked_why
        if item.state == "buildable":
            return self.buildable_why(item)
        return None

    def is_stuck(self, item, now):
        """BuildableItem.isStuck."""
        if item.state != "buildable":
            return False
        label = item.assigned_label(self.j.controller)
        if label is not None and all(n.offline for n in self.j.label_nodes(label)):
            return True
        est = item.job.estimated_duration_ms()
        elapsed = ms(now - item.buildable_start)
        if est >= 0:
            return elapsed > max(est, 60000) * 10
        return elapsed > 24 * 3600 * 1000

    # -- maintenance -------------------------------------------------------

    def _can_take(self, node, label):
        """Node.canTake, plus the executor/online checks of the load balancer."""
        if node.offline:
            return False
        if label is not None:
            return label.matches(node.atoms())
        return node.mode == "NORMAL"  # EXCLUSIVE nodes only take labelled items

    def _pick(self, item):
        label = item.assigned_label(self.j.controller)
        candidates = []
        for node in self.j.nodes.values():
            if self._can_take(node, label):
                executor = node.free_executor()
                if executor is not None:
                    candidates.append((node, executor))
        if not candidates:
            return None
        # The default LoadBalancer hashes the task onto the candidate nodes
        # (consistent hashing), so one job tends to go to the same node.
        return min(candidates, key=lambda c: hashlib.sha1(
            (item.job.full_name + "\0" + c[0].name).encode()).hexdigest())

    # -- Pipeline: flyweight runs and node() placeholders -------------------

    def _schedule_run_task(self, make):
        """A run's own task, scheduled with no quiet period: a new item every
        time (each task is its own, nothing to fold into)."""
        item = make(self.next_id)
        self.next_id += 1
        self.items.append(item)
        self.j.kick()
        return item

    def schedule_placeholder(self, run, label, now):
        """Queue.schedule2(PlaceholderTask, 0)."""
        return self._schedule_run_task(lambda i: PlaceholderItem(i, run, label, now))

    def schedule_after_restart(self, run, now):
        """Queue.schedule(new AfterRestartTask(run), 0)."""
        return self._schedule_run_task(lambda i: AfterRestartItem(i, run, now))

    def _pick_flyweight(self, item):
        """Queue.makeFlyWeightTaskBuildable: the built-in node when the item
        has no label (or the built-in's own), else the first node, in
        consistent-hash order of the task's name (weighted by executors: a
        node with none is never picked), that is online and can take it."""
        j = self.j
        c = j.controller
        label = item.assigned_label(c)
        if label is not None and label == LabelAtom(c.self_label):
            return c if c.mode == "NORMAL" or label.matches(c.atoms()) else None
        if label is None and c.mode == "NORMAL" and not c.offline:
            return c
        nodes = sorted((n for n in j.agents() if n.num_executors > 0), key=lambda n: hashlib.sha1(
            (item.job.full_display_name + "\0" + n.name).encode()).hexdigest())
        for n in nodes:
            if not n.offline and self._can_take(n, label):
                return n
        return None

    def maintain(self, now):
        """One Queue.maintain pass: finish due builds, move waiting items whose
        quiet period ended, unblock, and start buildable items."""
        j = self.j
        for build in j.running_builds():
            if build.flow is not None:
                j.step_pipeline(build, now)
            elif build.abort_requested or now >= build.due:
                j.finish_build(build, now)
        for st in j.starting():
            if now >= st.due:
                j.end_start(st, now)
        self.expire(now)
        for it in self.by_state("waiting"):
            if it.timestamp <= now:
                it.buildable_start = now
                why = self.blockage(it, now)
                it.state = "blocked" if why else "buildable"
                it.blocked_why = why
        for it in self.by_state("blocked"):
            if not self.blockage(it, now):
                it.state = "buildable"
        for it in sorted(self.by_state("buildable"), key=lambda i: (i.in_queue_since, i.id)):
            why = self.blockage(it, now)
            if why:
                it.state, it.blocked_why = "blocked", why
                continue
            if it.job.is_pipeline and not isinstance(it, PlaceholderItem):
                # Queue.maintain: a FlyweightTask takes no executor
                node = self._pick_flyweight(it)
                if node is not None and isinstance(it, AfterRestartItem):
                    j.resume_run(it, node, now)
                elif node is not None:
                    j.begin_start(it, node, None, now)
                continue
            pick = self._pick(it)
            if pick and isinstance(it, PlaceholderItem):
                j.start_placeholder(it, pick[0], pick[1], now)
            elif pick:
                j.begin_start(it, pick[0], pick[1], now)

    def next_event(self, now):
        """Seconds until something is due (a quiet period or a build end)."""
        times = [it.timestamp for it in self.items if it.state == "waiting"]
        times += [b.due for b in self.j.running_builds()]
        times += [st.due for st in self.j.starting()]
        return max(0.0, min(times) - now) if times else None


class Scheduler(threading.Thread):
    """Drives Queue.maintain: immediately when kicked (an item was queued, an
    executor freed, a node changed), at the next due time, and every TICK."""

    TICK = 0.02

    def __init__(self, jenkins):
        super().__init__(name="scheduler", daemon=True)
        self.j = jenkins

    def run(self):
        with self.j.changed:
            while True:
                now = time.time()
                self.j.queue.maintain(now)
                wait = self.j.queue.next_event(time.time())
                self.j.changed.wait(self.TICK if wait is None else min(self.TICK, wait))


# ---------------------------------------------------------------------------
# Security (§6)
# ---------------------------------------------------------------------------


class Auth:
    """Who a request is: kind is 'anonymous', 'token', 'password' or 'bad'."""

    def __init__(self, kind, user=None):
        self.kind, self.user = kind, user

    @property
    def name(self):
        return self.user if self.user else "anonymous"

    @property
    def anonymous(self):
        return self.kind == "anonymous"


class Security:
    """Users, Basic authentication, HTTP sessions and CSRF crumbs."""

    CRUMB_FIELD = "Jenkins-Crumb"

    def __init__(self, fixture):
        self.users = dict(fixture.get("users") or {})
        self.enabled = bool(self.users)
        self.anonymous_read = bool(fixture.get("anonymous_read", False))
        self.salt = secrets.token_hex(16)
        self.restart()

    def restart(self):
        # The session cookie name is randomised per launch (executable/Main.java)
        # and sessions live in memory: a restart invalidates every crumb.
        self.cookie_name = "JSESSIONID." + secrets.token_hex(4)
        self.sessions = set()

    def authenticate(self, header):
        """BasicHeaderProcessor: API token first, then the password."""
        if not header:
            return Auth("anonymous")
        scheme, _, data = header.partition(" ")
        if scheme.lower() != "basic":
            return Auth("anonymous")
        try:
            user, _, secret = base64.b64decode(data.strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return Auth("bad", "")
        # Jenkins' default IdStrategy is case-insensitive
        user = next((u for u in self.users if u.lower() == user.lower()), user)
        spec = self.users.get(user)
        if spec and spec.get("token") is not None and secret == str(spec["token"]):
            return Auth("token", user)
        if spec and spec.get("password") is not None and secret == str(spec["password"]):
            return Auth("password", user)
        return Auth("bad", user)

    def can_read(self, auth):
        return not self.enabled or not auth.anonymous or self.anonymous_read

    def can_act(self, auth):
        """Build, cancel, configure, connect...: everyone without security,
        authenticated users with it."""
        return not self.enabled or not auth.anonymous

    def session_of(self, cookies):
        sid = cookies.get(self.cookie_name)
        return sid if sid in self.sessions else None

    def new_session(self):
        sid = "node0%s.node0" % secrets.token_hex(12)
        self.sessions.add(sid)
        return sid

    def crumb(self, auth, client_ip, session):
        """DefaultCrumbIssuer: SHA-256 of 'user;' + client IP + session id, salted."""
        text = "%s;%s%s" % (auth.name, client_ip, session)
        return hashlib.sha256((text + self.salt).encode("utf-8")).hexdigest()

    def crumb_valid(self, req):
        if req.auth.kind == "token":  # ApiCrumbExclusion
            return True
        crumb = req.headers.get(self.CRUMB_FIELD) or req.param(self.CRUMB_FIELD)
        session = self.session_of(req.cookies)
        if not crumb or session is None:
            return False
        return secrets.compare_digest(crumb, self.crumb(req.auth, req.client_ip, session))


# ---------------------------------------------------------------------------
# JSON views: the model as exported beans
# ---------------------------------------------------------------------------


class Views:
    """Builds Stapler-like beans for the model.  Visibilities follow the
    @Exported annotations (ParameterValue/Definition 3, Queue.Item 999,
    item name/url 999, colour 2, run number/url 2), so depth= and tree=
    give the same field sets as Jenkins (§5.6)."""

    def __init__(self, jenkins, security, root_url, auth):
        self.j = jenkins
        self.security = security
        self.root = root_url
        self.auth = auth
        self.now = time.time()

    # -- parameters, causes, actions ----------------------------------------

    def param_value(self, v):
        b = Bean(v.jclass).add("name", v.name, vis=3)
        if v.kind in ("node", "label"):
            b.add("label", v.value, vis=3)
            b.add("value", v.value, vis=3)
        else:
            b.add("value", v.value, vis=4)
        return b

    def param_def(self, d):
        b = Bean(d.jclass)
        b.add("defaultParameterValue", lambda: self.param_value(d.default_value()), vis=3)
        b.add("description", d.description, vis=3)
        b.add("name", d.name, vis=3)
        b.add("type", d.type_name, vis=3)
        if d.kind == "choice":
            b.add("choices", list(d.choices), vis=3)
        return b

    def params_definition_property(self, job):
        return Bean("hudson.model.ParametersDefinitionProperty").add(
            "parameterDefinitions", lambda: [self.param_def(d) for d in job.params], vis=2)

    def parameters_action(self, values):
        return Bean("hudson.model.ParametersAction").add(
            "parameters", lambda: [self.param_value(v) for v in values], vis=2)

    def cause_action(self, causes):
        def cause(c):
            return (Bean("hudson.model.Cause$UserIdCause")
                    .add("shortDescription", c.short_description(), vis=3)
                    .add("userId", c.user, vis=3)
                    .add("userName", c.user or "anonymous", vis=3))
        return Bean("hudson.model.CauseAction").add(
            "causes", lambda: [cause(c) for c in causes], vis=2)

    # -- labels and nodes --------------------------------------------------

    def label(self, label, with_class=True):
        j = self.j
        nodes = j.label_nodes(label)
        online = [n for n in nodes if not n.offline]
        total = sum(n.num_executors for n in online)
        busy = sum(len(n.running) for n in online)
        b = Bean(label.jclass if with_class else None)
        b.add("actions", [])
        b.add("busyExecutors", busy)
        b.add("clouds", [])
        b.add("description", None)
        b.add("idleExecutors", total - busy)
        b.add("loadStatistics", Bean("hudson.model.Label$1"))
        b.add("name", label.name, vis=2)
        b.add("nodes", lambda: [self.node(n) for n in nodes])
        b.add("offline", all(n.offline for n in nodes))
        b.add("tiedJobs", lambda: [self.item(job) for job in j.all_jobs()
                                   if job.assigned_label(j.controller) == label])
        b.add("totalExecutors", total)
        if isinstance(label, LabelAtom):
            b.add("propertiesList", [])
        return b

    def assigned_labels(self, node):
        # Set<LabelAtom>: declared type == runtime type, hence no _class
        return [self.label(LabelAtom(a), with_class=False) for a in node.sorted_atoms()]

    def node(self, node):
        """A Node object (inside a label's `nodes`)."""
        if node.is_controller:
            return self.hudson()
        return (Bean("hudson.slaves.DumbSlave")
                .add("assignedLabels", lambda: self.assigned_labels(node))
                .add("mode", node.mode)
                .add("nodeDescription", node.description)
                .add("nodeName", node.node_name, vis=999)
                .add("numExecutors", node.num_executors))

    def executor(self, node, number):
        build = node.running.get(number)
        if isinstance(build, PlaceholderExec):
            return self.placeholder_executor(build, number)
        return self.executor_of(build, number)

    def executor_of(self, build, number):
        """An Executor (or OneOffExecutor: number -1) running build, or idle."""
        progress, stuck = -1, False
        if isinstance(build, Starting):
            # Executor.isIdle: workUnit != null; getCurrentExecutable: null yet.
            return (Bean(None)
                    .add("currentExecutable", None)
                    .add("idle", False)
                    .add("likelyStuck", False)
                    .add("number", number)
                    .add("progress", -1))
        if build is not None:
            est = build.job.estimated_duration_ms()
            elapsed = ms(self.now - build.timestamp)
            if est > 0:
                progress = min(99, int(elapsed * 100 / est))
            stuck = (est * 10 < elapsed) if est >= 0 else elapsed > 24 * 3600 * 1000
        return (Bean(None)
                .add("currentExecutable", (lambda: self.build(build)) if build else None)
                .add("idle", build is None)
                .add("likelyStuck", stuck)
                .add("number", number)
                .add("progress", progress))

    def offline_cause(self, cause):
        if cause is None:
            return None
        return (Bean(cause.jclass)
                .add("description", cause.description)
                .add("timestamp", ms(cause.timestamp)))

    def computer(self, node):
        numbers = sorted(set(range(node.num_executors)) | set(node.running))
        offline = node.offline
        b = Bean("hudson.model.Hudson$MasterComputer" if node.is_controller
                 else "hudson.slaves.SlaveComputer")
        b.add("actions", [])
        b.add("assignedLabels", lambda: self.assigned_labels(node))
        b.add("description", node.description)
        b.add("displayName", node.display_name)
        b.add("executors", lambda: [self.executor(node, n) for n in numbers])
        b.add("icon", "symbol-computer-offline" if offline else "symbol-computer")
        b.add("iconClassName", "symbol-computer-offline" if offline else "symbol-computer")
        b.add("idle", not node.running and not node.oneoff)  # Computer.isIdle: one-off executors too
        b.add("jnlpAgent", not node.is_controller)
        b.add("launchSupported", node.is_controller)
        b.add("loadStatistics", Bean("hudson.model.Label$1"))
        b.add("manualLaunchAllowed", True)
        b.add("monitorData", Bean(None))
        b.add("numExecutors", node.num_executors)
        b.add("offline", offline)
        b.add("offlineCause", lambda: self.offline_cause(node.offline_cause) if offline else None)
        b.add("offlineCauseReason",
              node.offline_cause.reason if offline and node.offline_cause else "")
        b.add("oneOffExecutors", lambda: [self.executor_of(r, -1) for r in node.oneoff])
        b.add("temporarilyOffline", node.temporarily_offline)
        if not node.is_controller:
            b.add("absoluteRemotePath", None if offline else "/home/jenkins")
        return b

    def computer_set(self):
        online = [n for n in self.j.computers() if not n.offline]
        return (Bean("hudson.model.ComputerSet")
                .add("busyExecutors", sum(len(n.running) for n in online))
                .add("computer", lambda: [self.computer(n) for n in self.j.computers()], inline=True)
                .add("displayName", "Nodes")
                .add("totalExecutors", sum(n.num_executors for n in online)))

    # -- items -------------------------------------------------------------

    def url(self, path):
        return self.root + path

    def health(self, job):
        done = list(itertools.islice((b for b in job.runs() if not b.building), 5))
        if not done:
            return []
        failed = sum(1 for b in done if RESULT_ORDINAL[b.result] >= RESULT_ORDINAL["FAILURE"])
        score = int(100 * (len(done) - failed) / len(done))
        icon = ("80plus" if score > 80 else "60to79" if score > 60 else "40to59"
                if score > 40 else "20to39" if score > 20 else "00to19")
        text = ("No recent builds failed." if failed == 0
                else "%d out of the last %d builds failed." % (failed, len(done)))
        return [Bean(None).add("description", "Build stability: " + text, vis=2)
                .add("iconClassName", "icon-health-" + icon, vis=2)
                .add("iconUrl", "health-%s.png" % icon, vis=2)
                .add("score", score, vis=2)]

    def all_view(self):
        return (Bean("hudson.model.AllView").add("name", "all", vis=2)
                .add("url", self.root, vis=2))

    def item(self, item):
        return self.folder(item) if isinstance(item, Folder) else self.job(item)

    def _item_common(self, b, item):
        b.add("description", item.description)
        b.add("displayName", item.name)
        b.add("displayNameOrNull", None)
        b.add("fullDisplayName", item.full_display_name)
        b.add("fullName", item.full_name)
        b.add("name", item.name, vis=999)
        b.add("url", self.url(item.url_path), vis=999)

    def folder(self, folder):
        b = Bean(Folder.jclass)
        b.add("actions", lambda: [empty_action()])
        self._item_common(b, folder)
        b.add("healthReport", [])
        b.add("jobs", lambda: [self.item(c) for c in folder.sorted_children()])
        b.add("primaryView", lambda: self.all_view())
        b.add("views", lambda: [self.all_view()])
        return b

    def run_ref(self, build):
        return (lambda: self.build(build)) if build is not None else None

    def permalink_ref(self, job, name):
        """A permalink property, resolved only when the tree asks for it."""
        def ref():
            build = job.permalink(name)
            return self.build(build) if build is not None else None
        return ref

    def job(self, job):
        j = self.j
        b = Bean(job.jclass)

        def actions():
            acts = [self.params_definition_property(job)] if job.params else []
            return acts + [empty_action()]
        b.add("actions", actions)
        self._item_common(b, job)
        b.add("buildable", job.buildable)
        # Job.getNewBuilds: the newest 100 only; getBuilds ("allBuilds") is all of them.
        b.add("builds", lambda: RunList(job, self.build, limit=100))
        b.add("color", job.color(), vis=2)
        b.add("firstBuild", self.permalink_ref(job, "firstBuild"))
        b.add("healthReport", lambda: self.health(job))
        b.add("inQueue", j.queue.item_for(job) is not None)
        b.add("keepDependencies", False)
        for link in ("lastBuild", "lastCompletedBuild", "lastFailedBuild", "lastStableBuild",
                     "lastSuccessfulBuild", "lastUnstableBuild", "lastUnsuccessfulBuild"):
            b.add(link, self.permalink_ref(job, link))
        b.add("nextBuildNumber", job.next_build_number)
        b.add("property", lambda: [self.params_definition_property(job)] if job.params else [],
              inline=True)
        qi = j.queue.item_for(job)
        b.add("queueItem", (lambda: self.queue_item(qi)) if qi else None)
        b.add("concurrentBuild", job.concurrent)
        b.add("disabled", job.disabled)
        if job.is_pipeline:
            b.add("resumeBlocked", False)
        else:
            b.add("downstreamProjects", [])
            b.add("labelExpression", job.label_expression())
            b.add("scm", Bean("hudson.scm.NullSCM"))
            b.add("upstreamProjects", [])
        b.add("allBuilds", lambda: RunList(job, self.build), vis=-2)
        return b

    def build(self, build):
        job = build.job
        b = Bean(job.build_class)

        def actions():
            acts = [self.parameters_action(build.params)] if build.has_params_action else []
            return acts + [self.cause_action(build.causes), empty_action()]
        b.add("actions", actions)
        b.add("artifacts", [])
        b.add("building", build.building)
        b.add("description", build.description)
        b.add("displayName", "#%d" % build.number)
        b.add("duration", build.duration_ms)
        b.add("estimatedDuration", job.estimated_duration_ms())
        if job.is_pipeline:  # Run.getExecutor: the OneOffExecutor of the flyweight task
            # (none while an AfterRestartTask waits for one)
            on_oneoff = build.building and (build.flow is None or build.flow.after_restart is None)
            b.add("executor", (lambda: self.executor_of(build, -1)) if on_oneoff else None)
        else:
            b.add("executor", (lambda: self.executor(build.node, build.executor))
                  if build.building else None)
        b.add("fullDisplayName", "%s #%d" % (job.full_display_name, build.number))
        b.add("id", str(build.number))
        b.add("keepLog", False)
        b.add("number", build.number, vis=2)
        b.add("queueId", build.queue_id)
        b.add("result", build.result)
        b.add("timestamp", ms(build.timestamp))
        b.add("url", self.url(build.url_path), vis=2)
        if job.is_pipeline:
            b.add("changeSets", [])
            b.add("culprits", [])
            b.add("inProgress", build.building)
            numbers = sorted(job.builds)
            idx = numbers.index(build.number)
            b.add("nextBuild", self.run_ref(job.builds[numbers[idx + 1]])
                  if idx + 1 < len(numbers) else None)
            b.add("previousBuild", self.run_ref(job.builds[numbers[idx - 1]]) if idx else None)
        else:
            b.add("builtOn", build.node.node_name)
            b.add("changeSet", Bean("hudson.scm.EmptyChangeLogSet").add("items", []).add("kind", None))
            b.add("culprits", [])
            b.add("inProgress", build.building)
        return b

    # -- queue -------------------------------------------------------------

    def queue_item(self, it):
        q = self.j.queue
        b = Bean(QueueItem.JCLASS[it.state])

        def actions():
            if isinstance(it, RunTaskItem):
                return []  # Queue.schedule2(task, 0): no actions
            acts = [self.parameters_action(it.params)] if it.params is not None else []
            return acts + [self.cause_action(it.causes)]
        b.add("actions", actions)  # declared in Actionable: default visibility
        v = 999  # Queue.Item is @ExportedBean(defaultVisibility=999)
        b.add("blocked", it.state == "blocked", vis=v)
        b.add("buildable", it.state == "buildable", vis=v)
        b.add("id", it.id, vis=v)
        b.add("inQueueSince", ms(it.in_queue_since), vis=v)
        b.add("params", it.params_text(), vis=v)
        b.add("stuck", q.is_stuck(it, self.now), vis=v)
        if isinstance(it, PlaceholderItem):
            b.add("task", lambda: self.placeholder_task(it), vis=v)
        elif isinstance(it, AfterRestartItem):
            b.add("task", Bean(AfterRestartItem.JTASK), vis=v)
        else:
            b.add("task", lambda: self.job(it.job), vis=v)
        b.add("url", it.url, vis=v)
        b.add("why", q.why(it, self.now), vis=v)
        if it.state == "waiting":
            b.add("timestamp", ms(it.timestamp), vis=v)
        elif it.state in ("blocked", "buildable"):
            b.add("buildableStartMilliseconds", ms(it.buildable_start), vis=v)
            if it.state == "buildable":
                b.add("pending", False, vis=v)
        else:
            b.add("cancelled", it.cancelled, vis=v)
            if isinstance(it.executable, PlaceholderExec):
                b.add("executable", self.placeholder_executable(it.executable), vis=v)
            else:
                b.add("executable", self.run_ref(it.executable), vis=v)
        return b

    # -- Pipeline placeholders (workflow-durable-task-step) -----------------

    def placeholder_task(self, it):
        """ExecutorStepExecution.PlaceholderTask (@ExportedBean): name,
        fullDisplayName, and url = the run's url, relative (getUrl returns
        Run.getUrl, unlike a job's absolute url)."""
        return (Bean(PLACEHOLDER_TASK)
                .add("fullDisplayName", it.display_name)
                .add("name", it.display_name)
                .add("url", it.run.url_path))

    def placeholder_executable(self, px):
        """PlaceholderTask.PlaceholderExecutable (@ExportedBean): url is
        getAbsoluteUrl, the run's absolute URL."""
        run = px.run
        return (Bean(PLACEHOLDER_EXECUTABLE)
                .add("displayName", px.item.display_name)
                .add("estimatedDuration", run.job.estimated_duration_ms())
                .add("fullDisplayName", px.item.display_name)
                .add("number", run.number)
                .add("timestamp", ms(run.timestamp))
                .add("url", self.url(run.url_path)))

    def placeholder_executor(self, px, number):
        """An Executor whose current executable is a PlaceholderExecutable."""
        b = self.executor_of(px.run, number)
        b.props = [pr for pr in b.props if pr.name != "currentExecutable"]
        b.add("currentExecutable", lambda: self.placeholder_executable(px))
        b.props.sort(key=lambda pr: pr.name)
        return b

    def queue(self):
        items = self.j.queue.listing()
        visible = items if self.security.can_read(self.auth) else []
        return (Bean("hudson.model.Queue")
                .add("discoverableItems", [])
                .add("items", lambda: [self.queue_item(it) for it in visible], inline=True))

    # -- top level ---------------------------------------------------------

    def hudson(self):
        j = self.j
        c = j.controller
        b = Bean("hudson.model.Hudson")
        b.add("assignedLabels", lambda: self.assigned_labels(c))
        b.add("mode", c.mode)
        b.add("nodeDescription", c.description)
        b.add("nodeName", "", vis=999)
        b.add("numExecutors", c.num_executors)
        b.add("description", None)
        b.add("jobs", lambda: [self.item(i) for i in j.root.sorted_children()])
        b.add("overallLoad", Bean(None))
        b.add("primaryView", lambda: self.all_view())
        b.add("quietDownReason", j.quiet_down_reason)
        b.add("quietingDown", j.quieting_down)
        b.add("slaveAgentPort", 50000)
        b.add("unlabeledLoad", Bean("jenkins.model.UnlabeledLoadStatistics"))
        b.add("url", self.root)
        b.add("useCrumbs", True)
        b.add("useSecurity", self.security.enabled)
        b.add("views", lambda: [self.all_view()])
        return b

    def user(self, name):
        return (Bean("hudson.model.User")
                .add("absoluteUrl", self.url("user/%s" % quote(name, safe="")))
                .add("description", None)
                .add("fullName", name, vis=999)
                .add("id", name, vis=999)
                .add("property", [Bean("jenkins.security.ApiTokenProperty"),
                                  Bean("hudson.model.MyViewsProperty"),
                                  Bean("hudson.model.PaneStatusProperties"),
                                  Bean("hudson.search.UserSearchProperty")
                                  .add("insensitiveSearch", True)], inline=True))

    def crumb_issuer(self, crumb):
        return (Bean("hudson.security.csrf.DefaultCrumbIssuer")
                .add("crumb", crumb)
                .add("crumbRequestField", Security.CRUMB_FIELD))


# ---------------------------------------------------------------------------
# XML documents (config.xml)
# ---------------------------------------------------------------------------


def _x(text):
    return html.escape("" if text is None else str(text), quote=False)


def param_def_xml(d, indent):
    pad = " " * indent
    inner = " " * (indent + 2)
    elem = d.jclass
    plugin = ' plugin="nodelabelparameter@1.13.0"' if d.kind in ("node", "label") else ""
    lines = ["%s<%s%s>" % (pad, elem, plugin), "%s<name>%s</name>" % (inner, _x(d.name)),
             "%s<description>%s</description>" % (inner, _x(d.description))]
    if d.kind == "node":
        for tag, values in (("allowedSlaves", d.allowed), ("defaultSlaves", d.default)):
            if values:
                lines.append("%s<%s>" % (inner, tag))
                lines += ["%s  <string>%s</string>" % (inner, _x(v)) for v in values]
                lines.append("%s</%s>" % (inner, tag))
            else:
                lines.append("%s<%s/>" % (inner, tag))
        lines += ["%s<triggerIfResult>%s</triggerIfResult>" % (inner, _x(d.trigger_if_result)),
                  "%s<allowMultiNodeSelection>%s</allowMultiNodeSelection>"
                  % (inner, "true" if d.multi_node else "false"),
                  "%s<triggerConcurrentBuilds>%s</triggerConcurrentBuilds>"
                  % (inner, "true" if d.trigger_concurrent else "false"),
                  "%s<ignoreOfflineNodes>false</ignoreOfflineNodes>" % inner,
                  '%s<nodeEligibility class="%snode.AllNodeEligibility"/>' % (inner, NLP)]
    elif d.kind == "label":
        lines += ["%s<defaultValue>%s</defaultValue>" % (inner, _x(d.default)),
                  "%s<allNodesMatchingLabel>false</allNodesMatchingLabel>" % inner,
                  "%s<triggerIfResult>allCases</triggerIfResult>" % inner,
                  '%s<nodeEligibility class="%snode.AllNodeEligibility"/>' % (inner, NLP)]
    elif d.kind == "boolean":
        lines.append("%s<defaultValue>%s</defaultValue>" % (inner, "true" if d.default else "false"))
    elif d.kind == "choice":
        lines += ['%s<choices class="java.util.Arrays$ArrayList">' % inner,
                  '%s  <a class="string-array">' % inner]
        lines += ["%s    <string>%s</string>" % (inner, _x(c)) for c in d.choices]
        lines += ["%s  </a>" % inner, "%s</choices>" % inner]
    else:
        lines += ["%s<defaultValue>%s</defaultValue>" % (inner, _x(d.default)),
                  "%s<trim>false</trim>" % inner]
    lines.append("%s</%s>" % (pad, elem))
    return lines


def job_config_xml(job):
    """The config.xml Jenkins (XStream) would store for the job."""
    props = []
    if job.params:
        props += ["    <hudson.model.ParametersDefinitionProperty>",
                  "      <parameterDefinitions>"]
        for d in job.params:
            props += param_def_xml(d, 8)
        props += ["      </parameterDefinitions>", "    </hudson.model.ParametersDefinitionProperty>"]
    if job.is_pipeline and not job.concurrent:
        props.append("    <org.jenkinsci.plugins.workflow.job.properties."
                     "DisableConcurrentBuildsJobProperty/>")
    prop_xml = (["  <properties>"] + props + ["  </properties>"]) if props else ["  <properties/>"]
    head = ["<?xml version='1.1' encoding='UTF-8'?>"]
    if job.is_pipeline:
        lines = head + ['<flow-definition plugin="workflow-job@1400.v7fd111b_ec82f">',
                        "  <actions/>", "  <description>%s</description>" % _x(job.description),
                        "  <keepDependencies>false</keepDependencies>"] + prop_xml + [
            '  <definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition" '
            'plugin="workflow-cps@3894.vd0f0248b_a_fc4">',
            "    <script>%s</script>" % _x(job.script.text if job.script else
                                             "node(params.NODE ?: '') { sh 'sleep %s' }"
                                             % Fmt.number(job.duration)),
            "    <sandbox>true</sandbox>", "  </definition>", "  <triggers/>",
            "  <disabled>%s</disabled>" % ("true" if job.disabled else "false"),
            "</flow-definition>"]
        return "\n".join(lines)
    lines = head + ["<project>", "  <actions/>",
                    "  <description>%s</description>" % _x(job.description),
                    "  <keepDependencies>false</keepDependencies>"] + prop_xml
    lines.append('  <scm class="hudson.scm.NullSCM"/>')
    if job.label is not None:
        lines.append("  <assignedNode>%s</assignedNode>" % _x(job.label))
    lines += ["  <canRoam>%s</canRoam>" % ("true" if job.can_roam else "false"),
              "  <disabled>%s</disabled>" % ("true" if job.disabled else "false"),
              "  <blockBuildWhenDownstreamBuilding>false</blockBuildWhenDownstreamBuilding>",
              "  <blockBuildWhenUpstreamBuilding>false</blockBuildWhenUpstreamBuilding>",
              "  <triggers/>",
              "  <concurrentBuild>%s</concurrentBuild>" % ("true" if job.concurrent else "false"),
              "  <builders>", "    <hudson.tasks.Shell>",
              "      <command>sleep %s</command>" % Fmt.number(job.duration),
              "      <configuredLocalRules/>", "    </hudson.tasks.Shell>", "  </builders>",
              "  <publishers/>", "  <buildWrappers/>", "</project>"]
    return "\n".join(lines)


def folder_config_xml(folder):
    return "\n".join([
        "<?xml version='1.1' encoding='UTF-8'?>",
        '<com.cloudbees.hudson.plugins.folder.Folder plugin="cloudbees-folder@6.955.v81e2a_35c08d3">',
        "  <actions/>", "  <description>%s</description>" % _x(folder.description),
        "  <properties/>", "  <folderViews class=\"com.cloudbees.hudson.plugins.folder.views."
        "DefaultFolderViewHolder\">", "    <views>",
        "      <hudson.model.AllView>", "        <owner class=\"com.cloudbees.hudson.plugins."
        "folder.Folder\" reference=\"../../../..\"/>", "        <name>All</name>",
        "        <filterExecutors>false</filterExecutors>", "        <filterQueue>false</filterQueue>",
        "        <properties class=\"hudson.model.View$PropertyList\"/>",
        "      </hudson.model.AllView>", "    </views>", "    <tabBar class=\"hudson.views."
        "DefaultViewsTabBar\"/>", "  </folderViews>", "  <healthMetrics/>",
        "  <icon class=\"com.cloudbees.hudson.plugins.folder.icons.StockFolderIcon\"/>",
        "</com.cloudbees.hudson.plugins.folder.Folder>"])


def node_config_xml(node):
    return "\n".join([
        '<?xml version="1.1" encoding="UTF-8"?>', "<slave>",
        "  <name>%s</name>" % _x(node.name),
        "  <description>%s</description>" % _x(node.description),
        "  <remoteFS>/home/jenkins</remoteFS>",
        "  <numExecutors>%d</numExecutors>" % node.num_executors,
        "  <mode>%s</mode>" % node.mode,
        '  <retentionStrategy class="hudson.slaves.RetentionStrategy$Always"/>',
        '  <launcher class="hudson.slaves.JNLPLauncher">', "    <workDirSettings>",
        "      <disabled>false</disabled>", "      <internalDir>remoting</internalDir>",
        "      <failIfWorkDirIsMissing>false</failIfWorkDirIsMissing>",
        "    </workDirSettings>", "    <webSocket>false</webSocket>", "  </launcher>",
        "  <label>%s</label>" % _x(node.labels), "  <nodeProperties/>", "</slave>"])


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


class Response:
    def __init__(self, status, body=b"", ctype=None, headers=None):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = list(headers or [])
        if ctype:
            self.headers.append(("Content-Type", ctype))
        self.jenkins_headers = True  # X-Jenkins & co. are added on the way out

    def header(self, name, value):
        self.headers.append((name, value))
        return self


class HttpError(Exception):
    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


class Request:
    """A parsed HTTP request with servlet-like parameter access: the query
    string and an x-www-form-urlencoded or multipart body both count."""

    def __init__(self, handler, body):
        self.method = handler.command
        self.raw_target = handler.path
        split = urlsplit(handler.path)
        self.raw_path = split.path or "/"
        self.query_string = split.query
        self.headers = handler.headers
        self.body = body
        self.client_ip = handler.client_address[0]
        self.host = handler.headers.get("Host") or "%s:%d" % handler.server.server_address[:2]
        parts = self.raw_path.split("/")[1:]
        self.trailing_slash = self.raw_path.endswith("/")
        self.segments = [unquote(p, errors="replace") for p in parts if p != ""]
        self.query = parse_qsl(self.query_string, keep_blank_values=True)
        self.form = self._parse_form() if self.method == "POST" else []
        self.params = self.query + self.form
        self.cookies = {}
        if handler.headers.get("Cookie"):
            jar = http.cookies.SimpleCookie()
            try:
                jar.load(handler.headers.get("Cookie"))
            except http.cookies.CookieError:
                pass
            self.cookies = {k: m.value for k, m in jar.items()}
        self.auth = Auth("anonymous")
        self.new_cookie = None

    def _parse_form(self):
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/x-www-form-urlencoded"):
            return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        if ctype.startswith("multipart/form-data"):
            head = ("Content-Type: %s\r\n\r\n" % self.headers.get("Content-Type")).encode()
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
            out = []
            if msg.is_multipart():
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name is not None:
                        payload = part.get_payload(decode=True) or b""
                        out.append((name, payload.decode("utf-8", "replace")))
            return out
        return []

    def param(self, name):
        for k, v in self.params:
            if k == name:
                return v
        return None

    def param_values(self, name):
        return [v for k, v in self.params if k == name]

    @property
    def root_url(self):
        return "http://%s/" % self.host

    def absolute(self, target):
        """Stapler sendRedirect: resolve against the request URL."""
        return urljoin("http://%s%s" % (self.host, self.raw_path), target)


def html_page(title, body_html, status=200):
    doc = ("<!DOCTYPE html><html><head><title>%s [Jenkins]</title></head>"
           "<body>%s</body></html>" % (html.escape(title), body_html))
    return Response(status, doc, "text/html;charset=utf-8",
                    [("X-Hudson", "1.395"), ("X-Frame-Options", "sameorigin")])


def jetty_error(status, message, req):
    """HttpServletResponse.sendError as rendered by Jetty."""
    reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
              404: "Not Found", 500: "Server Error"}.get(status, "Error")
    msg = html.escape(message or reason)
    doc = ("<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;"
           "charset=ISO-8859-1\"/>\n<title>Error %d %s</title>\n</head>\n<body><h2>HTTP ERROR"
           " %d %s</h2>\n<table>\n<tr><th>URI:</th><td>%s</td></tr>\n<tr><th>STATUS:</th><td>"
           "%d</td></tr>\n<tr><th>MESSAGE:</th><td>%s</td></tr>\n<tr><th>SERVLET:</th><td>"
           "Stapler</td></tr>\n</table>\n\n</body>\n</html>\n"
           % (status, msg, status, msg, html.escape(req.raw_path), status, msg))
    return Response(status, doc.encode("iso-8859-1", "replace"), "text/html;charset=iso-8859-1")


def stack_trace(status, exc_class, message, where):
    """Stapler HttpResponses.error(code, Throwable): the stack trace as text."""
    body = "%s: %s\n\tat %s\n" % (exc_class, message, where)
    return Response(status, body, "text/plain;charset=UTF-8")


def not_found(req):
    return html_page("Not Found", "<h1>Not Found</h1><p>%s</p>" % html.escape(req.raw_path), 404)


def require_post(req):
    """@RequirePOST / BuildAuthorizationToken: 405 with Allow: POST."""
    resp = html_page("This URL requires POST",
                     "<h1>This URL requires POST</h1><p>The URL you're trying to access "
                     "requires that requests be sent using POST (like a form submission).</p>"
                     "<form method='POST'><input type='submit' value='Try POSTing'></form>", 405)
    return resp.header("Allow", "POST")


def redirect(req, status, target):
    return Response(status, b"", None, [("Location", req.absolute(target))])


def forward_to_previous_page(req):
    """HttpResponses.forwardToPreviousPage: the Referer, else '.'."""
    return redirect(req, 302, req.headers.get("Referer") or ".")


def parse_delay(text):
    """jenkins.util.TimeDuration.fromString: ms unless suffixed sec/secs;
    returns whole seconds (getTimeInSeconds)."""
    if text is None:
        return None
    text = text.strip()
    factor = 1
    if text.endswith("secs"):
        text, factor = text[:-4], 1000
    elif text.endswith("sec"):
        text, factor = text[:-3], 1000
    try:
        return int(int(text.strip()) * factor / 1000)
    except ValueError:
        raise HttpError(stack_trace(500, "java.lang.IllegalArgumentException",
                                    "Invalid time duration value: " + text,
                                    "jenkins.util.TimeDuration.fromString(TimeDuration.java:102)"))


class JenkinsHttp:
    """Answers Jenkins URLs (everything but /_test/...)."""

    BUILD_LINKS = ("lastBuild", "lastCompletedBuild", "lastSuccessfulBuild", "lastStableBuild",
                   "lastFailedBuild", "lastUnstableBuild", "lastUnsuccessfulBuild", "firstBuild")
    ALWAYS_READABLE = ("login", "logout", "accessDenied", "adjuncts", "error", "oops",
                       "signup", "tcpSlaveAgentListener", "securityRealm", "instance-identity")

    def __init__(self, jenkins, security):
        self.j = jenkins
        self.security = security

    # -- entry -------------------------------------------------------------

    def handle(self, req):
        req.auth = self.security.authenticate(req.headers.get("Authorization"))
        if req.auth.kind == "bad":
            # BasicAuthenticationEntryPoint: the only place that challenges
            resp = jetty_error(401, "Invalid password/token for user: %s" % req.auth.user, req)
            resp.header("WWW-Authenticate", 'Basic realm="Jenkins"')
            resp.jenkins_headers = False
            return resp
        with self.j.lock:
            try:
                resp = self.route(req)
            except HttpError as e:
                resp = e.response
            except Exception:  # a bug here: answer like Jenkins' "Oops!" page
                sys.stderr.write(traceback.format_exc())
                resp = html_page("Jenkins [Oops!]", "<h1>Oops!</h1><pre>%s</pre>"
                                 % html.escape(traceback.format_exc()), 500)
        if req.new_cookie:
            resp.header("Set-Cookie", "%s=%s; Path=/; HttpOnly" % req.new_cookie)
        return resp

    def route(self, req):
        segs = req.segments
        # CrumbFilter runs before Stapler dispatch: any POST, even to a 404.
        if req.method == "POST" and not self.security.crumb_valid(req):
            return jetty_error(403, "No valid crumb was included in the request", req)
        if not self.security.can_read(req.auth) and not (
                segs and segs[0] in self.ALWAYS_READABLE):
            return self.login_required(req, "hudson.model.Hudson.Read")
        if not segs:
            return self.root_page(req)
        head, rest = segs[0], segs[1:]
        handler = {"api": self.r_api_root, "me": self.r_me, "crumbIssuer": self.r_crumb,
                   "queue": self.r_queue, "computer": self.r_computer, "label": self.r_label,
                   "job": self.r_job, "login": self.r_login}.get(head)
        return handler(req, rest) if handler else not_found(req)

    # -- helpers -----------------------------------------------------------

    def views(self, req):
        return Views(self.j, self.security, req.root_url, req.auth)

    def login_required(self, req, permission):
        """HudsonAuthenticationEntryPoint: anonymous lacking a permission."""
        target = "/login?from=" + quote(req.raw_target, safe="")
        resp = html_page("Authentication required",
                         "<meta http-equiv='refresh' content='1;url=%s'/>\n\nAuthentication "
                         "required\n<!--\n-->" % html.escape(target), 403)
        resp.header("X-You-Are-Authenticated-As", "anonymous")
        resp.header("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security."
                    "AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose")
        resp.header("X-Required-Permission", permission)
        return resp

    def require_act(self, req, permission):
        if not self.security.can_act(req.auth):
            raise HttpError(self.login_required(req, permission))

    def api(self, req, rest, make_bean):
        """<object>/api/json (and the api help page)."""
        if rest == ["json"]:
            return self.json(req, make_bean())
        if rest == []:
            return html_page("Remote API", "<h1>REST API</h1><p>Use <a href='json'>json</a>"
                             "?tree=... or ?depth=N.</p>")
        return not_found(req)

    def json(self, req, bean):
        if req.param("jsonp") is not None:
            return jetty_error(403, "jsonp forbidden; implement jenkins.security."
                               "SecureRequester", req)
        depth_text, tree = req.param("depth"), req.param("tree")
        try:
            depth = int(depth_text) if depth_text is not None else 0
        except ValueError:
            return stack_trace(500, "java.lang.NumberFormatException",
                               'For input string: "%s"' % depth_text,
                               "java.lang.Integer.parseInt(Integer.java:652)")
        try:
            data = export(bean, depth=depth, tree=tree)
        except TreeSyntaxError as e:
            return stack_trace(500, "java.lang.IllegalArgumentException",
                               "Malformed tree expression: %s (%s)" % (tree, e),
                               "org.kohsuke.stapler.export.NamedPathPruner.parse"
                               "(NamedPathPruner.java:75)")
        if req.param("pretty") == "true":
            text = json.dumps(data, indent=2, ensure_ascii=False)
        else:
            text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return Response(200, text, "application/json;charset=UTF-8",
                        [("X-Frame-Options", "deny")])

    @staticmethod
    def text(body, status=200):
        return Response(status, body, "text/plain;charset=UTF-8")

    # -- top level ---------------------------------------------------------

    def root_page(self, req):
        names = "".join("<li><a href='%s'>%s</a></li>" % (i.url_path, html.escape(i.name))
                        for i in self.j.root.sorted_children())
        return html_page("Dashboard", "<h1>Dashboard</h1><ul>%s</ul>" % names)

    def r_login(self, req, rest):
        return html_page("Sign in", "<form method='post' action='j_spring_security_check'>"
                         "<input name='j_username'><input name='j_password' type='password'>"
                         "</form>")

    def r_api_root(self, req, rest):
        return self.api(req, rest, lambda: self.views(req).hudson())

    def r_me(self, req, rest):
        if req.auth.anonymous:  # Jenkins.getMe: "/me is not available when not logged in"
            return self.login_required(req, "hudson.model.Hudson.Read")
        if rest[:1] == ["api"]:
            return self.api(req, rest[1:], lambda: self.views(req).user(req.auth.user))
        if not rest:
            return html_page(req.auth.user, "<h1>%s</h1>" % html.escape(req.auth.user))
        return not_found(req)

    def r_crumb(self, req, rest):
        if not rest or rest[0] != "api" or len(rest) != 2 or rest[1] not in ("json", "xml"):
            return not_found(req) if rest else html_page("Crumb Issuer", "")
        session = self.security.session_of(req.cookies)
        if session is None:  # req.getSession(): a new HTTP session and its cookie
            session = self.security.new_session()
            req.new_cookie = (self.security.cookie_name, session)
        crumb = self.security.crumb(req.auth, req.client_ip, session)
        if rest[1] == "json":
            return self.json(req, self.views(req).crumb_issuer(crumb))
        fields = {"crumb": crumb, "crumbRequestField": Security.CRUMB_FIELD}
        xpath = req.param("xpath")
        if xpath is not None:
            compact = xpath.replace(" ", "")
            if compact in ('concat(//crumbRequestField,":",//crumb)',
                           "concat(//crumbRequestField,\":\",//crumb)"):
                return self.text("%s:%s" % (Security.CRUMB_FIELD, crumb))
            for name, value in fields.items():
                if compact == "//%s/text()" % name:
                    return self.text(value)
                if compact == "//%s" % name:
                    return Response(200, "<%s>%s</%s>" % (name, value, name),
                                    "application/xml;charset=UTF-8")
            return stack_trace(500, "javax.xml.transform.TransformerException",
                               "unsupported xpath in this test server: " + xpath, "Api.doXml")
        doc = ("<defaultCrumbIssuer _class='hudson.security.csrf.DefaultCrumbIssuer'>"
               "<crumb>%s</crumb><crumbRequestField>%s</crumbRequestField>"
               "</defaultCrumbIssuer>" % (crumb, Security.CRUMB_FIELD))
        return Response(200, doc, "application/xml;charset=UTF-8")

    # -- queue -------------------------------------------------------------

    def r_queue(self, req, rest):
        q = self.j.queue
        if rest[:1] == ["api"]:
            return self.api(req, rest[1:], lambda: self.views(req).queue())
        if rest == ["cancelItem"]:
            if req.method != "POST":
                return require_post(req)
            text = req.param("id")
            try:
                item_id = int(text) if text not in (None, "") else 0
            except ValueError:
                return stack_trace(500, "java.lang.NumberFormatException",
                                   'For input string: "%s"' % text, "java.lang.Long.parseLong")
            item = q.get(item_id)
            if item is None:
                return stack_trace(404, "java.lang.Exception",
                                   "Provided id (%d) not found" % item_id,
                                   "hudson.model.Queue.doCancelItem(Queue.java:801)")
            if not self.security.can_act(req.auth):
                return stack_trace(422, "java.lang.Exception",
                                   "Item for id (%d) is not cancellable" % item_id,
                                   "hudson.model.Queue.doCancelItem(Queue.java:804)")
            if q.cancel(item):
                return Response(204)
            return stack_trace(500, "java.lang.Exception",
                               "Could not cancel run for id %d" % item_id,
                               "hudson.model.Queue.doCancelItem(Queue.java:810)")
        if len(rest) >= 2 and rest[0] == "item":
            try:
                item = q.get(int(rest[1]))
            except ValueError:
                item = None
            if item is None:
                return not_found(req)
            sub = rest[2:]
            if sub[:1] == ["api"]:
                return self.api(req, sub[1:], lambda: self.views(req).queue_item(item))
            if sub == ["cancelQueue"]:
                if req.method != "POST":
                    return require_post(req)
                if self.security.can_act(req.auth):
                    q.cancel(item)
                return Response(204)
            if not sub and self.j.vtuple >= (2, 469):  # Queue.Item.doIndex
                return self.text("Queue item exists. For details check, for example, %s"
                                 "api/json?tree=cancelled,executable[url]"
                                 % req.absolute(req.raw_path if req.trailing_slash
                                                else req.raw_path + "/"))
            return not_found(req)
        if not rest:
            return html_page("Build Queue", "<h1>Build Queue</h1>")
        return not_found(req)

    # -- computers ---------------------------------------------------------

    def r_computer(self, req, rest):
        if not rest:
            return html_page("Nodes", "<h1>Nodes</h1>")
        if rest[0] == "api":
            return self.api(req, rest[1:], lambda: self.views(req).computer_set())
        node = self.j.computer(rest[0])
        if node is None:
            return not_found(req)
        sub = rest[1:]
        if not sub:
            return html_page(node.display_name, "<h1>%s</h1><p>%s</p>" % (
                html.escape(node.display_name), "offline" if node.offline else "online"))
        if sub[0] == "api":
            return self.api(req, sub[1:], lambda: self.views(req).computer(node))
        if sub == ["config.xml"]:
            if req.method == "POST":
                return jetty_error(403, "config.xml updates are not supported by this test "
                                   "server", req)
            self.require_act(req, "hudson.model.Computer.ExtendedRead")
            if node.is_controller:
                return stack_trace(400, "java.lang.Exception",
                                   "Cannot get config.xml of the built-in node",
                                   "hudson.model.Computer.doConfigDotXml(Computer.java:1564)")
            return Response(200, node_config_xml(node), "application/xml")
        action = sub[0] if len(sub) == 1 else None
        if action in ("toggleOffline", "changeOfflineCause", "doDisconnect"):
            if req.method != "POST":
                return require_post(req)
            if action == "doDisconnect" and node.is_controller:
                return not_found(req)
            self.require_act(req, "hudson.model.Computer.Disconnect")
            message = (req.param("offlineMessage") or "").strip() or None
            user = req.auth.name
            if action == "toggleOffline":
                if node.temporarily_offline:
                    node.temporarily_offline = False
                    if node.connected:
                        node.offline_cause = None
                else:
                    node.temporarily_offline = True
                    node.offline_cause = OfflineCause(user, message)
            elif action == "changeOfflineCause":
                node.temporarily_offline = True
                node.offline_cause = OfflineCause(user, message)
            elif node.connected:
                self.j.set_connected(node, False, user, message)
            self.j.kick()
            return redirect(req, 302, ".")
        return not_found(req)

    # -- labels ------------------------------------------------------------

    def r_label(self, req, rest):
        if not rest:
            return not_found(req)
        label = get_label(rest[0])  # never null: any expression answers
        if rest[1:2] == ["api"]:
            return self.api(req, rest[2:], lambda: self.views(req).label(label))
        if len(rest) == 1:
            return html_page(label.name, "<h1>%s</h1>" % html.escape(label.name))
        return not_found(req)

    # -- jobs --------------------------------------------------------------

    def r_job(self, req, rest):
        segs = ["job"] + rest
        group, item, i = self.j.root, None, 0
        while i < len(segs) and segs[i] == "job":
            if i + 1 >= len(segs) or not isinstance(group, Folder):
                return not_found(req)
            item = group.children.get(segs[i + 1])
            if item is None:
                return not_found(req)
            group, i = item, i + 2
        sub = segs[i:]
        if isinstance(item, Folder):
            return self.folder_routes(req, item, sub)
        return self.job_routes(req, item, sub)

    def folder_routes(self, req, folder, sub):
        if not sub:
            return html_page(folder.full_display_name, "<h1>%s</h1>" % html.escape(folder.name))
        if sub[0] == "api":
            return self.api(req, sub[1:], lambda: self.views(req).folder(folder))
        if sub == ["config.xml"] and req.method != "POST":
            self.require_act(req, "hudson.model.Item.ExtendedRead")
            return Response(200, folder_config_xml(folder), "application/xml")
        return not_found(req)

    def job_routes(self, req, job, sub):
        if not sub:
            return html_page(job.full_display_name, "<h1>%s</h1><p>%s</p>" % (
                html.escape(job.full_display_name), html.escape(job.description)))
        head = sub[0]
        if head == "api":
            return self.api(req, sub[1:], lambda: self.views(req).job(job))
        if sub == ["config.xml"]:
            if req.method == "POST":
                return jetty_error(403, "config.xml updates are not supported by this test "
                                   "server", req)
            self.require_act(req, "hudson.model.Item.ExtendedRead")
            return Response(200, job_config_xml(job), "application/xml")
        if sub == ["build"]:
            return self.do_build(req, job)
        if sub == ["buildWithParameters"]:
            return self.do_build_with_parameters(req, job)
        if sub in (["disable"], ["enable"]):
            # ParameterizedJobMixIn.ParameterizedJob.doDisable / doEnable:
            # @RequirePOST, Item.CONFIGURE, makeDisabled(b) (disabling cancels
            # the job's queue item: Queue.cancel(Task)), HttpRedirect(".")
            if req.method != "POST":
                return require_post(req)
            self.require_act(req, "hudson.model.Item.Configure")
            if sub == ["disable"] and not job.disabled:
                job.disabled = True
                self.j.queue.cancel_task(job)
            elif sub == ["enable"]:
                job.disabled = False
            self.j.kick()
            return redirect(req, 302, ".")
        if sub == ["cancelQueue"]:
            if req.method != "POST":
                return require_post(req)
            self.require_act(req, "hudson.model.Item.Cancel")
            self.j.queue.cancel_task(job)
            return forward_to_previous_page(req)
        build = None
        if head.isdigit():
            build = job.builds.get(int(head))
        elif head in self.BUILD_LINKS:
            build = job.permalink(head)
        if build is None:
            return not_found(req)
        return self.build_routes(req, build, sub[1:])

    def build_routes(self, req, build, sub):
        job = build.job
        if not sub:
            return html_page("%s #%d" % (job.full_display_name, build.number),
                             "<h1>Build #%d</h1><p>%s</p>" % (
                                 build.number, "in progress" if build.building else build.result))
        if sub[0] == "api":
            return self.api(req, sub[1:], lambda: self.views(req).build(build))
        if sub == ["consoleText"]:
            return Response(200, build.log_bytes(), "text/plain;charset=UTF-8")
        if sub in (["logText", "progressiveText"], ["logText", "progressiveHtml"]):
            return self.progressive(req, build, sub[1] == "progressiveHtml")
        if sub in (["stop"], ["term"], ["kill"]):
            if sub != ["stop"] and not job.is_pipeline:
                return not_found(req)  # term/kill exist on WorkflowRun only
            if req.method != "POST":
                return require_post(req)
            self.require_act(req, "hudson.model.Item.Cancel")
            self.j.stop_build(build, req.auth.name)
            return forward_to_previous_page(req)
        if sub == ["submitDescription"]:
            if req.method != "POST":
                return require_post(req)
            self.require_act(req, "hudson.model.Run.Update")
            build.description = req.param("description")
            return redirect(req, 302, ".")
        return not_found(req)

    def progressive(self, req, build, as_html):
        """LargeText.doProgressText: X-Text-Size, X-More-Data while running,
        line ends normalised to CRLF."""
        raw = build.log_bytes()
        try:
            start = int(req.param("start") or 0)
        except ValueError:
            start = 0
        if start > len(raw) or start < 0:
            start = 0
        chunk = raw[start:].replace(b"\n", b"\r\n")
        if as_html:
            chunk = html.escape(chunk.decode("utf-8", "replace"), quote=False).encode("utf-8")
        resp = Response(200, chunk, "text/html;charset=UTF-8" if as_html
                        else "text/plain;charset=UTF-8",
                        [("X-Text-Size", str(len(raw)))])
        if build.building:
            resp.header("X-More-Data", "true")
        return resp

    # -- triggering builds (§1.2) --------------------------------------------

    def _delay(self, req, job):
        seconds = parse_delay(req.param("delay"))
        return self.j.quiet_period if seconds is None else seconds

    def _not_buildable(self, job):
        return stack_trace(409, "java.io.IOException", "%s is not buildable" % job.full_name,
                           "jenkins.model.ParameterizedJobMixIn.doBuild"
                           "(ParameterizedJobMixIn.java:225)")

    def do_build(self, req, job):
        """ParameterizedJobMixIn.doBuild."""
        delay = self._delay(req, job)
        if not job.buildable:
            return self._not_buildable(job)
        if job.params and req.method != "POST":
            return html_page(job.full_display_name, "<h1>This build requires parameters:</h1>"
                             "<form method='post' action='build'>%s</form>" % "".join(
                                 "<input name='%s'>" % html.escape(d.name) for d in job.params))
        self.require_act(req, "hudson.model.Item.Build")
        if req.method != "POST":
            return require_post(req)
        cause = Cause(None if req.auth.anonymous else req.auth.user)
        if job.params:
            return self.build_from_json(req, job, delay, cause)
        item, _created = self.j.queue.schedule(job, delay, None, [cause])
        # schedule2(...).getItem(): also the reused item (JENKINS-66105) -> 201
        return redirect(req, 201, "/" + item.url)

    def build_from_json(self, req, job, delay, cause):
        """ParametersDefinitionProperty._doBuild: the `json` form field."""
        text = req.param("json")
        if not text:
            message = "This page expects a form submission" if req.params else "Nothing is submitted"
            return jetty_error(400, message, req)
        try:
            form = json.loads(text)
        except ValueError as e:
            return stack_trace(500, "net.sf.json.JSONException", str(e), "RequestImpl.getSubmittedForm")
        raw = form.get("parameter") if isinstance(form, dict) else None
        entries = raw if isinstance(raw, list) else ([] if raw is None else [raw])
        values = []
        for jo in entries:
            d = job.param(jo.get("name")) if isinstance(jo, dict) else None
            if d is None:
                return stack_trace(500, "java.lang.IllegalArgumentException",
                                   "No such parameter definition: %s"
                                   % (jo.get("name") if isinstance(jo, dict) else jo),
                                   "hudson.model.ParametersDefinitionProperty._doBuild")
            values.append(d.create_value_json(jo))
        item, created = self.j.queue.schedule(job, delay, values, [cause])
        if not created:  # Queue.schedule returns null for a reused item
            return redirect(req, 302, ".")
        target = form.get("redirectTo") if isinstance(form.get("redirectTo"), str) else None
        if not target or "://" in target or target.startswith("/"):  # Util.isSafeToRedirectTo
            target = "/" + item.url
        try:
            status = int(form.get("statusCode", 201))
        except (TypeError, ValueError):
            status = 201
        return redirect(req, status, target)

    def do_build_with_parameters(self, req, job):
        """ParameterizedJobMixIn.doBuildWithParameters +
        ParametersDefinitionProperty.buildWithParameters."""
        delay = self._delay(req, job)
        self.require_act(req, "hudson.model.Item.Build")
        if req.method != "POST":
            return require_post(req)
        if not job.buildable:
            return self._not_buildable(job)
        if not job.params:
            return stack_trace(400, "java.io.IOException", "%s is not parameterized" % job.full_name,
                               "jenkins.model.ParameterizedJobMixIn.doBuildWithParameters"
                               "(ParameterizedJobMixIn.java:248)")
        # ParametersDefinitionProperty.buildWithParameters: one value per *declared*
        # parameter (d.createValue(req); SimpleParameterDefinition.createValue reads
        # req.getParameterValues(name), its default when absent), so a request
        # parameter the job does not declare is never read: it is in neither the
        # queue item's nor the build's ParametersAction. The system properties
        # hudson.model.ParametersAction.keepUndefinedParameters and .safeParameters
        # act only in ParametersAction.filter, over values already in the action
        # (a plugin's, like gearman-plugin's own ParametersAction), so they cannot
        # bring such a parameter back here: the test server has no knob for them.
        values = []
        for d in job.params:
            given = req.param_values(d.name)
            if not given:
                value = d.default_value()
            elif len(given) != 1:
                return stack_trace(500, "java.lang.IllegalArgumentException",
                                   "Illegal number of parameter values for %s: %d"
                                   % (d.name, len(given)),
                                   "hudson.model.SimpleParameterDefinition.createValue")
            else:
                try:
                    value = d.create_value(given[0])
                except ValueError as e:
                    return stack_trace(500, "java.lang.IllegalArgumentException", str(e),
                                       "hudson.model.ChoiceParameterDefinition.createValue")
            values.append(value)
        cause = Cause(None if req.auth.anonymous else req.auth.user)
        item, created = self.j.queue.schedule(job, delay, values, [cause])
        if created:
            return redirect(req, 201, "/" + item.url)
        # An identical item is queued: 303 to it since 2.308, before that 201.
        return redirect(req, 303 if self.j.vtuple >= (2, 308) else 201, "/" + item.url)


# ---------------------------------------------------------------------------
# Fault injection and request log
# ---------------------------------------------------------------------------


class Faults:
    """latency / fail / drop injected into Jenkins (not /_test) requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency_ms = 0
        self.fail_status = None
        self.fail_until = 0.0
        self.drop_count = 0
        self.drop_after = False    # process the request, then lose the answer
        self.drop_method = None    # only requests with this method

    def take_drop(self, method):
        """None, "before" (request not processed) or "after" (processed, answer lost)."""
        with self.lock:
            if self.drop_count > 0 and self.drop_method in (None, method):
                self.drop_count -= 1
                return "after" if self.drop_after else "before"
            return None

    def failing(self):
        with self.lock:
            if self.fail_status and time.time() < self.fail_until:
                return self.fail_status
            return None


class RequestLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, req, auth_header):
        entry = {"method": req.method, "path": req.raw_path, "query": req.query_string,
                 "time": time.time(), "status": None,
                 "headers": {k.lower(): v for k, v in req.headers.items()},
                 "body": req.body[:65536].decode("utf-8", "replace"),
                 "basic_user": None}
        if auth_header and auth_header.lower().startswith("basic "):
            try:
                entry["basic_user"] = base64.b64decode(
                    auth_header[6:].strip()).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                pass
        with self.lock:
            self.entries.append(entry)
        return entry

    def snapshot(self):
        with self.lock:
            return [dict(e) for e in self.entries]

    def reset(self):
        with self.lock:
            self.entries.clear()


# ---------------------------------------------------------------------------
# Control API (/_test/...)
# ---------------------------------------------------------------------------


class ControlApi:
    """JSON endpoints tests use to steer the fake; never delayed or failed."""

    def __init__(self, app):
        self.app = app
        self.j = app.jenkins

    @staticmethod
    def reply(data, status=200):
        return Response(status, json.dumps(data), "application/json")

    def handle(self, method, path, body):
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError as e:
            return self.reply({"error": "bad JSON: %s" % e}, 400)
        parts = [unquote(p) for p in path.split("/")[2:] if p != ""]
        try:
            with self.j.lock:
                return self.dispatch(method, parts, data)
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            return self.reply({"error": "%s: %s" % (type(e).__name__, e)}, 400)
        except Exception as e:
            sys.stderr.write(traceback.format_exc())
            return self.reply({"error": "%s: %s" % (type(e).__name__, e)}, 500)

    def dispatch(self, method, parts, data):
        app, j = self.app, self.j
        key = (method, parts[0] if parts else "")
        rest = parts[1:]
        if key == ("POST", "latency"):
            app.faults.latency_ms = max(0, int(data.get("ms", 0)))
            return self.reply({"ok": True})
        if key == ("POST", "fail"):
            with app.faults.lock:
                app.faults.fail_status = int(data.get("status", 503))
                app.faults.fail_until = time.time() + float(data.get("seconds", 0))
            return self.reply({"ok": True})
        if key == ("POST", "drop"):
            with app.faults.lock:
                app.faults.drop_count = max(0, int(data.get("count", 0)))
                app.faults.drop_after = bool(data.get("after", False))
                app.faults.drop_method = data.get("method")
            return self.reply({"ok": True})
        if key == ("POST", "start_window"):
            j.start_window = max(0.0, float(data.get("seconds", 0)))
            return self.reply({"ok": True})
        if key == ("POST", "restart"):
            j.restart()
            app.security.restart()
            return self.reply({"ok": True, "session": j.session_hash})
        if key == ("POST", "build"):
            return self.native_build(data)
        if key == ("POST", "quietdown"):
            # What Jenkins.doQuietDown / doCancelQuietDown change.
            j.quieting_down = bool(data.get("on", True))
            j.quiet_down_reason = data.get("reason") if j.quieting_down else None
            j.kick()
            return self.reply({"ok": True})
        if parts[:1] == ["jobs"]:
            return self.jobs(method, "/".join(rest), data)
        if parts[:1] == ["nodes"]:
            return self.nodes(method, "/".join(rest), data)
        if key == ("GET", "builds"):
            return self.reply([self.build_info(b) for b in j.all_builds])
        if key == ("GET", "concurrency"):
            return self.reply(dict(j.concurrency))
        if key == ("GET", "queue"):
            now = time.time()
            return self.reply([{"id": it.id, "job": it.job.full_name, "state": it.state,
                                "params": {p.name: p.value for p in it.params or []},
                                "why": j.queue.why(it, now), "pin": it.pin}
                               for it in j.queue.listing()])
        if key == ("GET", "requests"):
            return self.reply(app.requests.snapshot())
        if key == ("POST", "requests") and rest == ["reset"]:
            app.requests.reset()
            return self.reply({"ok": True})
        if key == ("GET", "state"):
            return self.reply({"session": j.session_hash, "version": j.version,
                               "cookie": app.security.cookie_name})
        return self.reply({"error": "no such control endpoint"}, 404)

    @staticmethod
    def build_info(b):
        return {"job": b.job.full_name, "number": b.number, "node": b.node.name,
                "executor": b.executor, "params": {p.name: p.value for p in b.params},
                "result": b.result, "queue_id": b.queue_id, "start": b.timestamp,
                "end": b.end, "building": b.building, "description": b.description,
                "node_blocks": b.node_blocks}

    def native_build(self, data):
        """A build started inside Jenkins, as a user would (through the queue).
        A node pin goes into the job's Node parameter when it has one, else
        into a label-assignment action (like the Groovy pin in §1.7)."""
        job = self.j.item_by_full_name(data["job"])
        if not isinstance(job, Job):
            return self.reply({"error": "no such job"}, 404)
        if not job.buildable:
            return self.reply({"error": "%s is not buildable" % job.full_name}, 409)
        given = dict(data.get("params") or {})
        node = data.get("node")
        pin = None
        params = None
        if job.params:
            params = []
            node_def = next((d for d in job.params if d.kind == "node"), None)
            if node is not None and node_def is not None:
                given[node_def.name] = node
            elif node is not None:
                pin = node
            for d in job.params:
                params.append(d.create_value(str(given.pop(d.name))) if d.name in given
                              else d.default_value())
            # undeclared values stay on the queue item, dropped from the build
            params += [ParamValue("string", k, str(v)) for k, v in given.items()]
        elif node is not None:
            pin = node
        user = next(iter(self.app.security.users), None)
        item, _ = self.j.queue.schedule(job, int(data.get("delay", 0)), params, [Cause(user)], pin)
        if data.get("old"):
            item.old_record = True  # its build's queueId is -1 (Build.__init__)
        return self.reply({"queue_id": item.id})

    def jobs(self, method, full_name, data):
        j = self.j
        if method == "POST" and not full_name:
            parent = j.folder(data.pop("folder", ""), create=True)
            item = j.add_item(data, parent)
            return self.reply({"ok": True, "full_name": item.full_name}, 201)
        item = j.item_by_full_name(full_name) if full_name else None
        if item is None:
            return self.reply({"error": "no such item %r" % full_name}, 404)
        if method == "DELETE":
            j.remove_item(item)
            return self.reply({"ok": True})
        if method == "PATCH" and isinstance(item, Job):
            was_disabled = item.disabled
            item.apply(data)
            if item.disabled and not was_disabled:
                j.queue.cancel_task(item)  # AbstractProject.makeDisabled
            j.kick()
            return self.reply({"ok": True})
        return self.reply({"error": "unsupported"}, 405)

    def nodes(self, method, name, data):
        j = self.j
        if method == "POST" and not name:
            node = j.add_node(data)
            return self.reply({"ok": True, "name": node.name}, 201)
        node = j.nodes.get(name)
        if node is None:
            return self.reply({"error": "no such node %r" % name}, 404)
        if method == "DELETE":
            if node.is_controller:
                return self.reply({"error": "the controller cannot be removed"}, 400)
            del j.nodes[name]
            j.kick()
            return self.reply({"ok": True})
        if method == "PATCH":
            was_connected = node.connected
            fields = dict(data)
            offline = fields.pop("offline", None)
            node.apply(fields)
            if offline is not None and not node.is_controller:
                if bool(offline) == was_connected:
                    j.set_connected(node, not offline, "admin", data.get("offline_reason"))
            j.kick()
            return self.reply({"ok": True})
        return self.reply({"error": "unsupported"}, 405)


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


class App:
    def __init__(self, fixture, quiet=False):
        self.jenkins = Jenkins(fixture)
        self.security = Security(fixture)
        self.http = JenkinsHttp(self.jenkins, self.security)
        self.faults = Faults()
        self.requests = RequestLog()
        self.control = ControlApi(self)
        self.quiet = quiet
        # Winstone/Jetty closes idle keep-alive connections (a client must cope).
        # (Winstone's --httpKeepAliveTimeout defaults to 5000 ms.)
        self.keepalive_timeout = float(fixture.get("keepalive_timeout", 5))
        self.scheduler = Scheduler(self.jenkins)

    def finish_headers(self, resp):
        if resp.jenkins_headers:
            names = {k.lower() for k, _ in resp.headers}
            for k, v in (("X-Jenkins", self.jenkins.version),
                         ("X-Jenkins-Session", self.jenkins.session_hash),
                         ("X-Content-Type-Options", "nosniff")):
                if k.lower() not in names:
                    resp.headers.append((k, v))


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Jetty sets TCP_NODELAY on accepted sockets (jetty.http.acceptedTcpNoDelay,
    # default true). Without it the body, written after the headers, waits for
    # the client's delayed ACK: 40 ms on every keep-alive answer.
    disable_nagle_algorithm = True

    def setup(self):
        self.timeout = self.server.app.keepalive_timeout
        super().setup()

    def version_string(self):
        return JETTY

    def log_message(self, fmt, *args):
        if not self.server.app.quiet:
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        app = self.server.app
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        if path == "/_test" or path.startswith("/_test/"):
            resp = app.control.handle(self.command, path, body)
            resp.jenkins_headers = False
            return self._send(resp)
        try:
            req = Request(self, body)
        except Exception:
            sys.stderr.write(traceback.format_exc())
            return self._send(Response(400, "bad request", "text/plain"))
        entry = app.requests.add(req, self.headers.get("Authorization"))
        drop = app.faults.take_drop(self.command)
        if drop == "before":
            entry["status"] = "dropped"
            self.close_connection = True
            return
        if drop == "after":        # Jenkins did the work; the client never hears of it
            entry["status"] = "answer lost (%d)" % app.http.handle(req).status
            self.close_connection = True
            return
        if app.faults.latency_ms:
            time.sleep(app.faults.latency_ms / 1000.0)
        status = app.faults.failing()
        if status:
            resp = Response(status, "<html><body><h1>Error %d</h1>injected failure</body></html>"
                            % status, "text/html;charset=utf-8")
            resp.jenkins_headers = False
        else:
            resp = app.http.handle(req)
        entry["status"] = resp.status
        app.finish_headers(resp)
        self._send(resp)

    def _send(self, resp):
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        # Jetty sends no Content-Length (and no body) on 204 (§2.4).
        if resp.status != 204 and resp.status != 304:
            self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:  # e.g. the client asked for Connection: close
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and resp.status not in (204, 304) and resp.body:
            self.wfile.write(resp.body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, RequestHandler)


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)  # atomic: readers never see a partial file


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixture", required=True, help="fixture JSON file")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the bound port here (atomically)")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--verbose", action="store_true",
                    help="per-request log lines (the default; overrides --quiet)")
    args = ap.parse_args(argv)
    with open(args.fixture, encoding="utf-8") as f:
        fixture = json.load(f)
    app = App(fixture, quiet=args.quiet and not args.verbose)
    httpd = Server((args.host, args.port), app)
    port = httpd.server_address[1]

    def on_term(_signum, _frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_term)
    app.scheduler.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    sys.stderr.write("jenkins_server: Jenkins %s listening on http://%s:%d/\n"
                     % (app.jenkins.version, args.host, port))
    sys.stderr.flush()
    try:
        httpd.serve_forever(poll_interval=0.2)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
