"""Fidelity tests of the fake Jenkins (tests/jenkins/jenkins_server.py).

Run:  /usr/bin/python3 -m pytest -q tests/test_jenkins_server.py

The real client library (Debian's python3-jenkins 1.4.0) must behave against
the fake as it does against real Jenkins (shared/reference/jenkins-rest.md
§7.1), and raw HTTP answers must have Jenkins' status codes, headers and JSON
shapes.  Every test polls with a timeout instead of sleeping for a result, and
every server started here is stopped by its fixture.
"""

import base64
import http.client
import itertools
import json
import os
import re
import sys
import time
from urllib.parse import quote

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/jenkins has no __init__.py on purpose: as a package it would shadow
# python-jenkins' `jenkins`.  Its modules are imported from the directory.
sys.path.insert(0, os.path.join(HERE, "jenkins"))

import jenkins  # noqa: E402  python-jenkins
import jenkins_server as js  # noqa: E402
import jkctl  # noqa: E402

assert jenkins.__file__.startswith("/usr/lib/python3/"), jenkins.__file__

FIXTURE = os.path.join(HERE, "fixtures", "basic.json")
USER, TOKEN, PASSWORD = "gearman", "tok123", "pw123"


def basic(user, secret):
    return "Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()


TOKEN_AUTH = {"Authorization": basic(USER, TOKEN)}
PASSWORD_AUTH = {"Authorization": basic(USER, PASSWORD)}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_names = itertools.count(1)


def unique(prefix):
    return "%s-%d" % (prefix, next(_names))


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jk():
    """One server shared by tests that only add their own jobs and nodes."""
    server = jkctl.JenkinsServer(FIXTURE, quiet=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh():
    """A private server per test (fault injection, restart, custom fixtures)."""
    servers = []

    def start(fixture=FIXTURE):
        server = jkctl.JenkinsServer(fixture, quiet=True)
        servers.append(server)
        return server.start()
    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def client(jk):
    """python-jenkins authenticated with the API token."""
    return jenkins.Jenkins(jk.url, USER, TOKEN, timeout=10)


def get_json(jk, path, headers=TOKEN_AUTH):
    status, hdrs, body = jk.http("GET", path, headers=headers)
    assert status == 200, (path, status, body[:300])
    assert hdrs["content-type"] == "application/json;charset=UTF-8"
    return json.loads(body)


def trigger(jk, job_path, params=None, delay="0sec", headers=TOKEN_AUTH, endpoint=None):
    """POST buildWithParameters (form body) or build; returns (status, headers, body)."""
    fields = dict(params or {})
    if delay is not None:
        fields["delay"] = delay
    endpoint = endpoint or ("buildWithParameters" if params is not None else "build")
    body = "&".join("%s=%s" % (quote(k), quote(str(v))) for k, v in fields.items())
    return jk.http("POST", "/%s/%s" % (job_path, endpoint), body=body,
                   headers=dict(headers, **FORM))


def queue_id(location):
    m = re.fullmatch(r"http://[^/]+/queue/item/(\d+)/", location)
    assert m, location
    return int(m.group(1))


def job_path(full_name):
    return "/".join("job/" + quote(p) for p in full_name.split("/"))


def add_node(jk, executors=1, labels="", mode="NORMAL", **extra):
    name = unique("n")
    jk.add_node(dict({"name": name, "labels": labels, "executors": executors, "mode": mode},
                     **extra))
    return name


def add_job(jk, **spec):
    name = unique(spec.pop("prefix", "job"))
    jk.add_job(dict({"name": name}, **spec))
    return name


def wait_build(jk, qid, done=True, timeout=10):
    """Wait until queue item `qid` produced a build (finished if `done`)."""
    def check():
        b = jk.build_for(qid)
        return b if b and (not done or not b["building"]) else None
    return jk.wait_for(check, timeout=timeout, what="build of queue item %d" % qid)


def queue_item(jk, qid):
    return get_json(jk, "/queue/item/%d/api/json" % qid)


# ---------------------------------------------------------------------------
# pure units: label grammar, tree= grammar, message formatting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("expr,name,true_on,false_on", [
    ("foo||bar&&zot", "foo||bar&&zot", [{"foo"}, {"bar", "zot"}], [{"bar"}, set()]),
    ("  ( foo || bar )  && zot", "(foo||bar)&&zot", [{"bar", "zot"}], [{"foo"}]),
    ("!foo <-> bar", "!foo<->bar", [{"bar"}, {"foo"}], [set(), {"foo", "bar"}]),
    ("a-->b", "a-->b", [{"b"}, set()], [{"a-"}]),  # (a-) -> b
    ("a-b", "a-b", [{"a-b"}], [{"a", "b"}]),
    ('"with space"&&x', '"with space"&&x', [{"with space", "x"}], [{"with", "space", "x"}]),
    ("linux && !(arm || gpu)", "linux&&!(arm||gpu)", [{"linux", "x86"}], [{"linux", "arm"}]),
    ("a -> b <-> c", "a->b<->c", [{"c"}, {"a", "b", "c"}], [{"a", "c"}]),
])
def test_label_expression_grammar(expr, name, true_on, false_on):
    label = js.parse_label_expression(expr)
    assert label.name == name
    assert all(label.matches(s) for s in true_on)
    assert not any(label.matches(s) for s in false_on)


@pytest.mark.parametrize("bad", ["a <- b", "a - b", "->", "-!", "foo bar", "foo(bar)",
                                 "!!a", "a->b->c", "a &", "(a", "a)", "'a'", ""])
def test_label_expression_errors(bad):
    with pytest.raises(js.LabelSyntaxError):
        js.parse_label_expression(bad)


def test_get_label_falls_back_to_an_atom():
    # Jenkins.getLabel: unparseable text is one atom; never an error
    assert js.get_label("foo bar").name == '"foo bar"'
    assert js.get_label("foo bar").matches({"foo bar"})
    assert js.get_label('"x86"').name == "x86"
    assert js.parse_label_string('linux "with space" x86') == ["linux", "with space", "x86"]


def test_tree_grammar():
    t = js.parse_tree("jobs[name,url,jobs[name]{0,2}],builds{3},x{1,},y{,4}")
    assert sorted(t.children) == ["builds", "jobs", "x", "y"]
    inner = t.children["jobs"].children["jobs"]
    assert (inner.lo, inner.hi) == (0, 2)
    assert (t.children["builds"].lo, t.children["builds"].hi) == (3, 4)
    assert (t.children["x"].lo, t.children["x"].hi) == (1, None)
    assert (t.children["y"].lo, t.children["y"].hi) == (0, 4)
    for bad in ["jobs[", "jobs[]", ",", "a{x}", "a]", "a[b]]", "", "a{1,2"]:
        with pytest.raises(js.TreeSyntaxError):
            js.parse_tree(bad)


def test_message_formatting():
    assert js.Fmt.time_span(4900) == "4.9 sec"
    assert js.Fmt.time_span(4000) == "4 sec"
    assert js.Fmt.time_span(12000) == "12 sec"
    assert js.Fmt.time_span(65000) == "1 min 5 sec"
    assert js.Fmt.time_span(990) == "0.99 sec"
    assert js.Fmt.time_span(50) == "50 ms"
    assert js.Fmt.number(2532) == "2,532"


# ---------------------------------------------------------------------------
# python-jenkins against the fake
# ---------------------------------------------------------------------------


def test_version_and_whoami(jk):
    fresh_client = jenkins.Jenkins(jk.url, USER, TOKEN)
    # get_version does not resolve auth itself: on a locked-down master the
    # first call is anonymous -> 403 -> BadHTTPException (§7.1)
    with pytest.raises(jenkins.BadHTTPException):
        fresh_client.get_version()
    me = fresh_client.get_whoami()
    assert me["id"] == USER and me["_class"] == "hudson.model.User"
    assert fresh_client.get_version() == "2.479.3"


def test_get_jobs_and_folder_contents(client):
    top = client.get_jobs()
    names = {j["fullname"] for j in top}
    assert {"folder1", "plain", "pinned", "pipe", "disabled-job"} <= names
    folder = next(j for j in top if j["name"] == "folder1")
    assert folder["_class"] == "com.cloudbees.hudson.plugins.folder.Folder"
    assert "color" not in folder  # folders have no ball colour
    assert [c["name"] for c in folder["jobs"]] == ["build-a"]
    everything = {j["fullname"] for j in client.get_all_jobs()}
    assert "folder1/build-a" in everything
    disabled = next(j for j in top if j["name"] == "disabled-job")
    assert disabled["color"] == "disabled"


def test_get_job_info_fields(client):
    info = client.get_job_info("folder1/build-a")
    assert info["_class"] == "hudson.model.FreeStyleProject"
    assert info["fullName"] == "folder1/build-a"
    assert info["url"].endswith("/job/folder1/job/build-a/")
    assert info["labelExpression"] == "linux && x86"
    assert info["buildable"] is True and info["disabled"] is False
    assert info["concurrentBuild"] is True
    assert "nextBuildNumber" in info and "inQueue" in info and "queueItem" in info
    defs = info["property"][0]["parameterDefinitions"]
    node = defs[0]
    assert node["_class"] == "org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition"
    assert node["type"] == "NodeParameterDefinition" and node["name"] == "NODE"
    assert node["defaultParameterValue"] == {
        "_class": "org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterValue",
        "name": "NODE", "label": "node1", "value": "node1"}
    assert defs[1]["defaultParameterValue"]["value"] == "bar"
    assert "allowedSlaves" not in json.dumps(info)  # not exported; config.xml only
    plain = client.get_job_info("plain")
    assert plain["labelExpression"] is None and plain["concurrentBuild"] is False
    assert plain["property"] == []
    pipe = client.get_job_info("pipe")
    assert pipe["_class"] == "org.jenkinsci.plugins.workflow.job.WorkflowJob"
    assert "labelExpression" not in pipe
    labelled = client.get_job_info("labelled")
    types = [d["type"] for d in labelled["property"][0]["parameterDefinitions"]]
    assert types == ["LabelParameterDefinition", "BooleanParameterDefinition",
                     "TextParameterDefinition"]


def test_build_job_queue_item_and_build_lifecycle(jk, client):
    node = add_node(jk, executors=1, labels="linux x86")
    qid = client.build_job("folder1/build-a", {"NODE": node, "delay": "1sec", "DURATION": "0.6"})
    assert isinstance(qid, int)
    waiting = client.get_queue_item(qid)
    assert waiting["_class"] == "hudson.model.Queue$WaitingItem"
    assert re.fullmatch(r"In the quiet period\. Expires in 0\.\d+ sec|In the quiet period\. "
                        r"Expires in 1 sec", waiting["why"]), waiting["why"]
    assert "executable" not in waiting and "cancelled" not in waiting
    assert waiting["url"] == "queue/item/%d/" % qid
    assert waiting["task"]["url"].startswith(jk.url)
    assert "\n[NodeParameterValue: NODE=%s]" % node in waiting["params"]

    # A LeftItem's executable is null through the start window (Executor.run): wait for it.
    left = jk.wait_for(lambda: (lambda it: it.get("executable") and it)(client.get_queue_item(qid)),
                       timeout=5, what="queue item to start")
    assert left["_class"] == "hudson.model.Queue$LeftItem"
    assert left["cancelled"] is False and left["why"] is None
    number = left["executable"]["number"]
    running = client.get_build_info("folder1/build-a", number)
    assert running["building"] is True and running["result"] is None
    assert running["duration"] == 0 and running["executor"] == {}
    assert running["builtOn"] == node and running["queueId"] == qid
    done = jk.wait_for(lambda: (lambda b: b if not b["building"] else None)(
        client.get_build_info("folder1/build-a", number)), what="build to finish")
    assert done["result"] == "SUCCESS" and done["executor"] is None
    assert done["duration"] >= 600
    params = {p["name"]: p["value"] for p in done["actions"][0]["parameters"]}
    assert params == {"NODE": node, "FOO": "bar", "DURATION": "0.6", "RESULT": ""}
    assert done["estimatedDuration"] > 0
    assert done["fullDisplayName"] == "folder1 \u00bb build-a #%d" % number
    assert "Finished: SUCCESS" in client.get_build_console_output("folder1/build-a", number)


def test_identical_trigger_gets_303_and_python_jenkins_raises(jk, client):
    params = {"NODE": unique("nowhere"), "delay": "30sec"}
    qid = client.build_job("folder1/build-a", params)
    # 303 -> followed to /queue/item/N/ (text, since 2.469) -> no Location
    with pytest.raises(jenkins.EmptyResponseException):
        client.build_job("folder1/build-a", params)
    status, headers, body = trigger(jk, "job/folder1/job/build-a",
                                    {"NODE": params["NODE"]}, delay="30sec")
    assert status == 303 and queue_id(headers["location"]) == qid and body == b""
    status, headers, body = jk.http("GET", "/queue/item/%d/" % qid, headers=TOKEN_AUTH)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"api/json?tree=cancelled,executable[url]" in body
    assert [i["id"] for i in jk.queue() if i["job"] == "folder1/build-a"].count(qid) == 1
    # different parameter values make a separate item
    other = client.build_job("folder1/build-a", dict(params, FOO="other"))
    assert other != qid
    for item in (qid, other):
        with pytest.raises(jenkins.EmptyResponseException):
            client.cancel_queue(item)


def test_stop_build_aborts(jk, client):
    node = add_node(jk, labels="linux x86")
    qid = client.build_job("folder1/build-a", {"NODE": node, "delay": "0sec", "DURATION": "30"})
    number = wait_build(jk, qid, done=False)["number"]
    client.stop_build("folder1/build-a", number)  # 302 followed to the build page
    info = jk.wait_for(lambda: (lambda b: b if not b["building"] else None)(
        client.get_build_info("folder1/build-a", number)), timeout=5, what="abort")
    assert info["result"] == "ABORTED" and info["duration"] < 30000
    console = client.get_build_console_output("folder1/build-a", number)
    assert "Aborted by gearman" in console and console.endswith("Finished: ABORTED\n")
    # stopping a finished build is a no-op that still redirects
    status, headers, _ = jk.http("POST", "/job/folder1/job/build-a/%d/stop" % number,
                                 headers=TOKEN_AUTH)
    assert status == 302 and headers["location"].endswith("/job/folder1/job/build-a/%d/" % number)


def test_nodes(jk, client):
    nodes = client.get_nodes()
    assert nodes[0] == {"name": "Built-In Node", "offline": False}
    assert {"node1", "node2", "gpu1"} <= {n["name"] for n in nodes}
    info = client.get_node_info("node1")
    assert info["_class"] == "hudson.slaves.SlaveComputer"
    assert info["displayName"] == "node1" and info["numExecutors"] == 2
    assert info["executors"] == [{}, {}]  # fields hidden at depth 0
    assert {"name": "linux"} in info["assignedLabels"] and {"name": "node1"} in info["assignedLabels"]
    assert info["offlineCause"] is None and info["offlineCauseReason"] == ""
    deep = client.get_node_info("node1", depth=1)
    assert deep["executors"][0] == {"currentExecutable": None, "idle": True,
                                    "likelyStuck": False, "number": 0, "progress": -1}
    controller = client.get_node_info("(master)")
    assert controller["_class"] == "hudson.model.Hudson$MasterComputer"
    assert controller["displayName"] == "Built-In Node"
    assert {"name": "built-in"} in controller["assignedLabels"]
    # the display name is not a URL name (why get_running_builds fails, §4.3)
    with pytest.raises(jenkins.JenkinsException):
        client.get_node_info("Built-In Node")
    for path in ("/computer/(built-in)/api/json", "/computer/%28built-in%29/api/json"):
        assert get_json(jk, path)["displayName"] == "Built-In Node"
    status, _, _ = jk.http("HEAD", "/computer/node1/api/json", headers=TOKEN_AUTH)
    assert status == 200


def test_get_running_builds_fails_on_built_in_node(client):
    # python-jenkins 1.4.0 maps only 'master' to '(master)': on >= 2.307 it asks
    # for /computer/Built-In%20Node/ and gets a 404 (§4.3), as with real Jenkins
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        client.get_running_builds()


def test_disable_and_enable_node(jk, client):
    node = add_node(jk, executors=1)
    client.disable_node(node, "maintenance window")
    info = client.get_node_info(node)
    assert info["temporarilyOffline"] is True and info["offline"] is True
    assert info["offlineCauseReason"] == "maintenance window"
    assert info["offlineCause"] == {"_class": "hudson.slaves.OfflineCause$UserCause"}
    client.enable_node(node)
    info = client.get_node_info(node)
    assert info["temporarilyOffline"] is False and info["offline"] is False
    assert info["offlineCause"] is None


def test_cancel_queue(jk, client):
    qid = client.build_job("pinned", {"NODE": unique("ghost"), "delay": "60sec"})
    # 204 without Content-Length -> EmptyResponseException, like real Jenkins
    with pytest.raises(jenkins.EmptyResponseException):
        client.cancel_queue(qid)
    item = client.get_queue_item(qid)
    assert item["_class"] == "hudson.model.Queue$LeftItem"
    assert item["cancelled"] is True and item["executable"] is None
    assert qid not in [i["id"] for i in client.get_queue_info()]
    status, headers, body = jk.http("POST", "/queue/cancelItem?id=%d" % qid, headers=TOKEN_AUTH)
    assert status == 500 and b"Could not cancel run for id %d" % qid in body
    status, _, _ = jk.http("POST", "/queue/cancelItem?id=999999", headers=TOKEN_AUTH)
    assert status == 404
    status, headers, _ = jk.http("GET", "/queue/cancelItem?id=1", headers=TOKEN_AUTH)
    assert status == 405 and headers["allow"] == "POST"


def test_401_for_bad_credentials_403_for_anonymous(jk):
    bad = jenkins.Jenkins(jk.url, USER, "wrong-token")
    with pytest.raises(jenkins.JenkinsException, match=r"\[401\]"):
        bad.get_job_info("plain")
    anonymous = jenkins.Jenkins(jk.url)
    with pytest.raises(jenkins.JenkinsException, match=r"\[403\]"):
        anonymous.get_job_info("plain")
    status, headers, _ = jk.http("GET", "/api/json",
                                 headers={"Authorization": basic(USER, "nope")})
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="Jenkins"'
    status, headers, _ = jk.http("GET", "/api/json")
    assert status == 403 and "www-authenticate" not in headers
    assert headers["x-you-are-authenticated-as"] == "anonymous"
    status, _, _ = jk.http("GET", "/me/api/json")
    assert status == 403


def test_password_auth_needs_a_session_bound_crumb(jk):
    path = "/job/plain/build?delay=60sec"
    status, _, body = jk.http("POST", path, headers=PASSWORD_AUTH)
    assert status == 403 and b"No valid crumb was included in the request" in body
    status, headers, body = jk.http("GET", "/crumbIssuer/api/json", headers=PASSWORD_AUTH)
    crumb = json.loads(body)
    assert crumb["_class"] == "hudson.security.csrf.DefaultCrumbIssuer"
    assert crumb["crumbRequestField"] == "Jenkins-Crumb"
    assert re.fullmatch(r"[0-9a-f]{64}", crumb["crumb"])
    cookie = headers["set-cookie"].split(";")[0]
    assert re.fullmatch(r"JSESSIONID\.[0-9a-f]{8}=\S+", cookie)
    # the crumb alone (no session cookie) is not enough
    status, _, _ = jk.http("POST", path, headers=dict(PASSWORD_AUTH, **{"Jenkins-Crumb": crumb["crumb"]}))
    assert status == 403
    status, headers, _ = jk.http("POST", path, headers=dict(
        PASSWORD_AUTH, **{"Jenkins-Crumb": crumb["crumb"], "Cookie": cookie}))
    assert status == 201
    qid = queue_id(headers["location"])
    # the crumb also works as a form field; API-token POSTs need none
    status, _, _ = jk.http("POST", "/queue/cancelItem?id=%d" % qid, headers=TOKEN_AUTH)
    assert status == 204
    # python-jenkins with a password fetches the crumb and keeps the cookie
    pw_client = jenkins.Jenkins(jk.url, USER, PASSWORD)
    qid = pw_client.build_job("pinned", {"NODE": unique("ghost"), "delay": "60sec"})
    with pytest.raises(jenkins.EmptyResponseException):
        pw_client.cancel_queue(qid)
    # crumbs are bound to the user
    status, _, _ = jk.http("POST", path, headers={"Jenkins-Crumb": crumb["crumb"], "Cookie": cookie})
    assert status == 403


# ---------------------------------------------------------------------------
# raw HTTP: trigger responses, errors, headers, tree/depth
# ---------------------------------------------------------------------------


def test_trigger_response_shape(jk):
    headers = dict(TOKEN_AUTH, Host="jenkins.example.com:8080")
    status, hdrs, body = trigger(jk, "job/pinned", {"NODE": unique("ghost")}, delay="60sec",
                                 headers=headers)
    assert status == 201 and body == b""
    assert hdrs["content-length"] == "0"
    location = hdrs["location"]
    assert re.fullmatch(r"http://jenkins\.example\.com:8080/queue/item/\d+/", location)
    qid = queue_id(location)
    assert queue_item(jk, qid)["task"]["url"] == "http://127.0.0.1:%d/job/pinned/" % jk.port
    # parameters from the query string work too; undefined ones are ignored
    status, hdrs, _ = jk.http("POST", "/job/pinned/buildWithParameters?NODE=%s&BOGUS=1&delay=60sec"
                              % unique("ghost"), headers=TOKEN_AUTH)
    assert status == 201
    item = queue_item(jk, queue_id(hdrs["location"]))
    assert [p["name"] for p in item["actions"][0]["parameters"]] == ["NODE", "DURATION", "RESULT"]
    for q in (qid, queue_id(hdrs["location"])):
        assert jk.http("POST", "/queue/cancelItem?id=%d" % q, headers=TOKEN_AUTH)[0] == 204
    # non-parameterized /build: 201 with Location as well
    status, hdrs, _ = trigger(jk, "job/plain", delay="60sec")
    assert status == 201 and hdrs["content-length"] == "0"
    assert jk.http("POST", "/queue/cancelItem?id=%d" % queue_id(hdrs["location"]),
                   headers=TOKEN_AUTH)[0] == 204


def test_trigger_errors(jk):
    status, headers, _ = jk.http("GET", "/job/plain/build", headers=TOKEN_AUTH)
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = jk.http("GET", "/job/pinned/buildWithParameters", headers=TOKEN_AUTH)
    assert status == 405 and headers["allow"] == "POST"
    status, _, body = trigger(jk, "job/disabled-job")
    assert status == 409 and b"disabled-job is not buildable" in body
    status, _, _ = trigger(jk, "job/disabled-job", {}, endpoint="buildWithParameters")
    assert status == 409
    status, _, body = trigger(jk, "job/plain", {}, endpoint="buildWithParameters")
    assert status == 400 and b"plain is not parameterized" in body
    status, _, body = jk.http("POST", "/job/pinned/build", headers=TOKEN_AUTH)
    assert status == 400 and b"Nothing is submitted" in body
    for path in ("job/no-such-job", "job/folder1/job/nope", "job/plain/job/x"):
        assert trigger(jk, path, {})[0] == 404
    assert jk.http("GET", "/job/nope/api/json", headers=TOKEN_AUTH)[0] == 404
    # two values for one parameter on buildWithParameters are refused
    status, _, _ = jk.http("POST", "/job/pinned/buildWithParameters?NODE=a&NODE=b",
                           headers=TOKEN_AUTH)
    assert status == 500


def test_build_with_json_form(jk):
    form = json.dumps({"parameter": [{"name": "NODE", "value": unique("ghost")}]})
    body = "json=" + quote(form)
    status, headers, _ = jk.http("POST", "/job/pinned/build?delay=60sec", body=body,
                                 headers=dict(TOKEN_AUTH, **FORM))
    assert status == 201
    qid = queue_id(headers["location"])
    # the same again folds into the queued item: 302 to the job, no id
    status, headers, _ = jk.http("POST", "/job/pinned/build?delay=60sec", body=body,
                                 headers=dict(TOKEN_AUTH, **FORM))
    assert status == 302 and headers["location"].endswith("/job/pinned/")
    assert jk.http("POST", "/queue/cancelItem?id=%d" % qid, headers=TOKEN_AUTH)[0] == 204


def test_api_headers_and_keepalive(jk):
    conn = http.client.HTTPConnection("127.0.0.1", jk.port, timeout=5)
    try:
        sessions = set()
        for path in ("/api/json", "/computer/api/json", "/queue/api/json", "/job/plain/api/json"):
            conn.request("GET", path, headers=TOKEN_AUTH)  # same connection each time
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200 and len(body) == int(resp.getheader("Content-Length"))
            assert resp.getheader("X-Jenkins") == "2.479.3"
            assert resp.getheader("X-Content-Type-Options") == "nosniff"
            assert resp.getheader("Content-Type") == "application/json;charset=UTF-8"
            sessions.add(resp.getheader("X-Jenkins-Session"))
        assert len(sessions) == 1 and re.fullmatch(r"[0-9a-f]{8}", sessions.pop())
        conn.request("GET", "/", headers=TOKEN_AUTH)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and resp.getheader("X-Jenkins") == "2.479.3"
        # HEAD: GET's Content-Length, no body; the connection stays in sync
        conn.request("HEAD", "/job/plain/api/json", headers=TOKEN_AUTH)
        resp = conn.getresponse()
        assert resp.read() == b"" and int(resp.getheader("Content-Length")) > 0
        # 204 without Content-Length (Jetty) on a reused connection
        conn.request("POST", "/job/pinned/buildWithParameters?delay=60sec&NODE=" + unique("g"),
                     headers=TOKEN_AUTH)
        resp = conn.getresponse()
        resp.read()
        qid = queue_id(resp.getheader("Location"))
        conn.request("POST", "/queue/cancelItem?id=%d" % qid, headers=TOKEN_AUTH)
        resp = conn.getresponse()
        assert resp.status == 204 and resp.getheader("Content-Length") is None
        assert resp.read() == b""
        conn.request("GET", "/queue/item/%d/api/json" % qid, headers=TOKEN_AUTH)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["cancelled"] is True
    finally:
        conn.close()
    top = get_json(jk, "/api/json")
    assert top["_class"] == "hudson.model.Hudson"
    assert top["useCrumbs"] is True and top["useSecurity"] is True
    assert top["nodeName"] == "" and top["mode"] == "NORMAL" and top["numExecutors"] == 0
    assert top["url"] == jk.url


def test_depth_default_field_sets(jk):
    top = get_json(jk, "/api/json")
    for job in top["jobs"]:
        expected = {"_class", "name", "url"} if job["name"] == "folder1" else \
            {"_class", "name", "url", "color"}
        assert set(job) == expected, job
    qid = jk.start_native("plain")
    wait_build(jk, qid)
    info = get_json(jk, "/job/plain/api/json")
    assert set(info["builds"][0]) == {"_class", "number", "url"}
    assert set(info["lastBuild"]) == {"_class", "number", "url"}
    deeper = get_json(jk, "/job/plain/api/json?depth=1")
    assert "result" in deeper["builds"][0] and "duration" in deeper["builds"][0]
    computers = get_json(jk, "/computer/api/json")
    assert computers["_class"] == "hudson.model.ComputerSet"
    node1 = next(c for c in computers["computer"] if c["displayName"] == "node1")
    assert node1["executors"] == [{}, {}]
    node1 = next(c for c in get_json(jk, "/computer/api/json?depth=1")["computer"]
                 if c["displayName"] == "node1")
    assert set(node1["executors"][0]) == {"currentExecutable", "idle", "likelyStuck",
                                          "number", "progress"}
    assert jk.http("GET", "/api/json?depth=x", headers=TOKEN_AUTH)[0] == 500


def test_tree_filtering(jk):
    data = get_json(jk, "/api/json?tree=jobs[name]")
    assert set(data) == {"_class", "jobs"}
    assert all(set(j) == {"_class", "name"} for j in data["jobs"])
    data = get_json(jk, "/api/json?tree=jobs[name,jobs[name,color]]{0,2}")
    assert len(data["jobs"]) == 2
    folder = get_json(jk, "/api/json?tree=%s" % quote("jobs[name,jobs[name,color]]"))
    folder = next(j for j in folder["jobs"] if j["name"] == "folder1")
    assert folder["jobs"] == [{"_class": "hudson.model.FreeStyleProject", "name": "build-a",
                               "color": folder["jobs"][0]["color"]}]
    info = get_json(jk, "/job/folder1/job/build-a/api/json?tree=name,labelExpression,"
                        "property[parameterDefinitions[name,type]],nosuchfield")
    assert info == {"_class": "hudson.model.FreeStyleProject", "name": "build-a",
                    "labelExpression": "linux && x86",
                    "property": [{"_class": "hudson.model.ParametersDefinitionProperty",
                                  "parameterDefinitions": [
                                      {"_class": js.NLP + "NodeParameterDefinition",
                                       "name": "NODE", "type": "NodeParameterDefinition"},
                                      {"_class": "hudson.model.StringParameterDefinition",
                                       "name": "FOO", "type": "StringParameterDefinition"},
                                      {"_class": "hudson.model.StringParameterDefinition",
                                       "name": "DURATION", "type": "StringParameterDefinition"},
                                      {"_class": "hudson.model.StringParameterDefinition",
                                       "name": "RESULT", "type": "StringParameterDefinition"}]}]}
    # a named object property without [...] is just its _class
    assert get_json(jk, "/job/plain/api/json?tree=scm") == {
        "_class": "hudson.model.FreeStyleProject", "scm": {"_class": "hudson.scm.NullSCM"}}
    star = get_json(jk, "/computer/node1/api/json?tree=*")
    assert "displayName" in star and star["executors"] == [{}, {}]
    for bad in ("jobs[", "jobs[]", "jobs]", "a{x}"):
        status, _, _ = jk.http("GET", "/api/json?tree=" + quote(bad), headers=TOKEN_AUTH)
        assert status == 500, bad


def test_config_xml(jk):
    status, headers, body = jk.http("GET", "/job/folder1/job/build-a/config.xml", headers=TOKEN_AUTH)
    assert status == 200 and headers["content-type"].startswith("application/xml")
    xml = body.decode()
    assert "<assignedNode>linux &amp;&amp; x86</assignedNode>" in xml
    assert "<canRoam>false</canRoam>" in xml and "<disabled>false</disabled>" in xml
    assert "<concurrentBuild>true</concurrentBuild>" in xml
    assert re.search(r"<org\.jvnet\.jenkins\.plugins\.nodelabelparameter\.NodeParameterDefinition"
                     r" plugin=\"nodelabelparameter@[^\"]+\">\s*<name>NODE</name>.*?<allowedSlaves>"
                     r"\s*<string>node1</string>\s*<string>gpu1</string>\s*</allowedSlaves>"
                     r"\s*<defaultSlaves>\s*<string>node1</string>", xml, re.S)
    plain = jk.http("GET", "/job/plain/config.xml", headers=TOKEN_AUTH)[2].decode()
    assert "<canRoam>true</canRoam>" in plain and "<assignedNode>" not in plain
    status, _, body = jk.http("GET", "/computer/gpu1/config.xml", headers=TOKEN_AUTH)
    assert status == 200 and b"<mode>EXCLUSIVE</mode>" in body
    assert b"<label>linux gpu</label>" in body and b"<numExecutors>1</numExecutors>" in body
    assert jk.http("GET", "/computer/(built-in)/config.xml", headers=TOKEN_AUTH)[0] == 400


def test_progressive_text_and_description(jk):
    node = add_node(jk, labels="linux x86")
    qid = jk.start_native("folder1/build-a", node=node, params={"DURATION": "30"})
    number = wait_build(jk, qid, done=False)["number"]
    base = "/job/folder1/job/build-a/%d" % number
    status, headers, body = jk.http("GET", base + "/logText/progressiveText?start=0",
                                    headers=TOKEN_AUTH)
    assert status == 200 and headers["x-more-data"] == "true"
    size = int(headers["x-text-size"])
    assert body.count(b"\r\n") == body.count(b"\n") > 0  # CRLF line ends
    status, headers, body = jk.http("GET", base + "/logText/progressiveText?start=%d" % size,
                                    headers=TOKEN_AUTH)
    assert body == b"" and int(headers["x-text-size"]) == size
    status, headers, _ = jk.http("POST", base + "/submitDescription", body="description=hello+world",
                                 headers=dict(TOKEN_AUTH, **FORM))
    assert status == 302 and headers["location"].endswith(base + "/")
    assert get_json(jk, base + "/api/json")["description"] == "hello world"
    assert jk.http("POST", base + "/stop", headers=TOKEN_AUTH)[0] == 302
    wait_build(jk, qid)
    status, headers, body = jk.http("POST", base + "/logText/progressiveText",
                                    body="start=%d" % size, headers=dict(TOKEN_AUTH, **FORM))
    assert "x-more-data" not in headers and body.endswith(b"Finished: ABORTED\r\n")
    # start beyond the end restarts from 0
    status, headers, body = jk.http("GET", base + "/logText/progressiveText?start=999999",
                                    headers=TOKEN_AUTH)
    assert body.startswith(b"Started by user")
    assert get_json(jk, "/job/folder1/job/build-a/lastBuild/api/json")["number"] >= number
    assert jk.http("POST", base + "/term", headers=TOKEN_AUTH)[0] == 404  # Pipeline only


def test_label_api_never_404(jk):
    data = get_json(jk, "/label/%s/api/json" % quote("linux&&!arm", safe=""))
    assert data["_class"] == "hudson.model.labels.LabelExpression$And"
    assert data["name"] == "linux&&!arm"
    names = [n["nodeName"] for n in data["nodes"]]
    assert "node1" in names and "gpu1" in names and "node2" not in names
    assert all(n["_class"] == "hudson.slaves.DumbSlave" for n in data["nodes"])
    atom = get_json(jk, "/label/gpu1/api/json")
    assert atom["_class"] == "hudson.model.labels.LabelAtom" and atom["totalExecutors"] == 1
    assert atom["tiedJobs"] == [] and atom["idleExecutors"] == 1
    ghost = get_json(jk, "/label/no-such-label/api/json")
    assert ghost["nodes"] == [] and ghost["offline"] is True
    controller = get_json(jk, "/label/built-in/api/json")
    assert controller["nodes"] == [{"_class": "hudson.model.Hudson", "nodeName": ""}]


# ---------------------------------------------------------------------------
# scheduler
# ---------------------------------------------------------------------------


def test_executor_limit_is_never_exceeded(jk):
    label = unique("cap")
    node = add_node(jk, executors=2, labels=label)
    job = add_job(jk, label=label, concurrent=True, duration=0.3,
                  params=[{"type": "string", "name": "N", "default": ""}])
    qids = [jk.start_native(job, params={"N": str(i)}) for i in range(6)]
    assert len(set(qids)) == 6
    builds = [wait_build(jk, q, timeout=15) for q in qids]
    assert {b["node"] for b in builds} == {node}
    assert jk.concurrency()[node] == 2
    # the recorded intervals agree: never more than 2 builds at one instant
    events = sorted([(b["start"], 1) for b in builds] + [(b["end"], -1) for b in builds],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_pinned_build_waits_for_busy_node(jk):
    node = add_node(jk, executors=1, labels="linux x86")
    first = jk.start_native("pinned", node=node, params={"DURATION": "30"})
    number = wait_build(jk, first, done=False)["number"]
    status, headers, _ = trigger(jk, "job/pinned", {"NODE": node, "DURATION": "0"})
    second = queue_id(headers["location"])
    item = jk.wait_for(lambda: (lambda i: i if i["_class"].endswith("BuildableItem") else None)(
        queue_item(jk, second)), what="buildable item")
    assert item["why"] == "Waiting for next available executor on \u2018%s\u2019" % node
    assert item["buildable"] is True and item["stuck"] is False and item["pending"] is False
    assert "buildableStartMilliseconds" in item and "executable" not in item
    deep = get_json(jk, "/computer/%s/api/json?depth=1" % node)
    assert deep["executors"][0]["currentExecutable"]["number"] == number
    assert deep["idle"] is False
    jk.http("POST", "/job/pinned/%d/stop" % number, headers=TOKEN_AUTH)
    assert wait_build(jk, second)["node"] == node


def test_why_for_offline_and_missing_nodes(jk):
    offline = add_node(jk, executors=1, temporarily_offline=True, offline_reason="broken")
    ghost = unique("ghost")
    qids = {}
    for name in (offline, ghost):
        qids[name] = queue_id(trigger(jk, "job/pinned", {"NODE": name})[1]["location"])
    # agents with 0 executors have no Computer, so they count as offline
    nocomp = unique("nocomp")
    add_node(jk, executors=0, labels=nocomp + " linux")
    add_node(jk, executors=0, labels=nocomp + " linux")
    expr = "%s&&linux" % nocomp
    qids[expr] = queue_id(trigger(jk, "job/labelled", {"LABEL": expr})[1]["location"])

    def why(name):
        item = queue_item(jk, qids[name])
        return item if item["_class"].endswith("BuildableItem") else None
    item = jk.wait_for(lambda: why(offline), what="item on offline node")
    assert item["why"] == "\u2018%s\u2019 is offline" % offline and item["stuck"] is True
    item = jk.wait_for(lambda: why(ghost), what="item on missing node")
    assert item["why"] == "There are no nodes with the label \u2018%s\u2019" % ghost
    item = jk.wait_for(lambda: why(expr), what="item on executor-less label")
    assert item["why"] == "All nodes of label \u2018%s\u2019 are offline" % expr  # no computers
    # bringing the node online lets its item run
    jk.update_node(offline, temporarily_offline=False)
    assert wait_build(jk, qids[offline])["node"] == offline
    for name in (ghost, expr):
        assert jk.http("POST", "/queue/cancelItem?id=%d" % qids[name], headers=TOKEN_AUTH)[0] == 204


def test_exclusive_node_takes_only_labelled_work(fresh):
    jk = fresh({"version": "2.479.3", "nodes": [
        {"name": "built-in", "executors": 0},
        {"name": "excl", "labels": "special", "executors": 1, "mode": "EXCLUSIVE"}],
        "jobs": [{"name": "roam"}, {"name": "special-job", "label": "special"},
                 {"name": "pin", "params": [{"type": "node", "name": "NODE"}]}]})
    roam = jk.start_native("roam")
    item = jk.wait_for(lambda: (lambda i: i if i["_class"].endswith("BuildableItem") else None)(
        get_json(jk, "/queue/item/%d/api/json" % roam, headers={})), what="buildable")
    assert item["why"] == "Waiting for next available executor"  # roaming: no label
    assert wait_build(jk, jk.start_native("special-job"))["node"] == "excl"
    # a build pinned by a Node parameter bypasses EXCLUSIVE (non-null label)
    assert wait_build(jk, jk.start_native("pin", node="excl"))["node"] == "excl"
    assert jk.build_for(roam) is None
    jk.add_node({"name": "normal", "executors": 1})
    assert wait_build(jk, roam)["node"] == "normal"


def test_label_expression_matching(jk):
    tag = unique("tag")
    a = add_node(jk, labels="%s linux x86" % tag)
    b = add_node(jk, labels="%s linux arm" % tag)
    c = add_node(jk, labels="%s linux gpu" % tag, mode="EXCLUSIVE")
    cases = {"%s&&!arm&&!gpu" % tag: {a}, "%s&&(arm||gpu)" % tag: {b, c},
             '"%s" && gpu' % tag: {c}, "%s&&(x86 -> foo)" % tag: {b, c}}
    for expr, allowed in cases.items():
        job = add_job(jk, label=expr, concurrent=True, duration=0,
                      params=[{"type": "string", "name": "N", "default": ""}])
        ran = {wait_build(jk, jk.start_native(job, params={"N": str(i)}))["node"] for i in range(4)}
        assert ran <= allowed and ran, (expr, ran)


def test_non_concurrent_job_blocks(jk):
    node = add_node(jk, executors=2)
    job = add_job(jk, label=node, concurrent=False, duration=0.4,  # a node's name is a label
                  params=[{"type": "string", "name": "N", "default": ""}])
    first = jk.start_native(job, params={"N": "1"})
    wait_build(jk, first, done=False)
    second = jk.start_native(job, params={"N": "2"})
    item = jk.wait_for(lambda: (lambda i: i if i["_class"].endswith("BlockedItem") else None)(
        queue_item(jk, second)), what="blocked item")
    assert item["blocked"] is True
    assert item["why"] == "Build #1 is already in progress (ETA: N/A)"
    b1, b2 = wait_build(jk, first), wait_build(jk, second)
    assert b1["end"] <= b2["start"] and b2["number"] == 2
    third = jk.start_native(job, params={"N": "3"})
    wait_build(jk, third, done=False)
    fourth = jk.start_native(job, params={"N": "4"})
    item = jk.wait_for(lambda: (lambda i: i if i["_class"].endswith("BlockedItem") else None)(
        queue_item(jk, fourth)), what="blocked item with ETA")
    assert re.fullmatch(r"Build #3 is already in progress \(ETA: (0\.\d+ sec|\d+ ms|N/A)\)",
                        item["why"]), item["why"]
    wait_build(jk, fourth)


def test_quiet_period_default_and_delay(jk):
    ghost = unique("ghost")
    status, headers, _ = trigger(jk, "job/pinned", {"NODE": ghost}, delay=None)
    qid = queue_id(headers["location"])
    item = queue_item(jk, qid)
    assert item["_class"] == "hudson.model.Queue$WaitingItem"
    assert abs(item["timestamp"] - item["inQueueSince"] - 5000) <= 1  # global quiet period
    assert re.fullmatch(r"In the quiet period\. Expires in (4\.\d+|5) sec", item["why"]), item["why"]
    assert jk.http("POST", "/queue/cancelItem?id=%d" % qid, headers=TOKEN_AUTH)[0] == 204
    node = add_node(jk, labels="linux x86")
    for delay in ("0sec", "10", "0"):  # '10' is 10 ms -> 0 s
        started = time.monotonic()
        qid = queue_id(trigger(jk, "job/pinned", {"NODE": node, "N": delay}, delay=delay)[1]["location"])
        wait_build(jk, qid, done=False, timeout=3)
        assert time.monotonic() - started < 1.0
    item = queue_item(jk, queue_id(trigger(jk, "job/pinned", {"NODE": ghost},
                                           delay="3sec")[1]["location"]))
    assert abs(item["timestamp"] - item["inQueueSince"] - 3000) <= 1
    assert jk.http("POST", "/queue/cancelItem?id=%d" % item["id"], headers=TOKEN_AUTH)[0] == 204


def test_zero_duration_build_still_runs(jk):
    node = add_node(jk)
    job = add_job(jk, label=node, duration=0, result="UNSTABLE")
    qid = jk.start_native(job)
    b = wait_build(jk, qid)
    assert b["result"] == "UNSTABLE" and b["end"] >= b["start"]
    info = get_json(jk, "/job/%s/1/api/json" % job)
    assert info["building"] is False and info["result"] == "UNSTABLE"
    assert get_json(jk, "/job/%s/api/json" % job)["color"] == "yellow"


def test_left_items_expire(fresh):
    jk = fresh({"version": "2.479.3", "left_item_ttl": 0.5,
                "nodes": [{"name": "a", "executors": 1}], "jobs": [{"name": "j"}]})
    qid = jk.start_native("j")
    wait_build(jk, qid)
    assert get_json(jk, "/queue/item/%d/api/json" % qid, headers={})["executable"]["number"] == 1
    jk.wait_for(lambda: jk.http("GET", "/queue/item/%d/api/json" % qid)[0] == 404,
                timeout=3, what="left item expiry")
    # the fallback mapping still works: builds carry their queueId
    data = get_json(jk, "/job/j/api/json?tree=builds[number,queueId]", headers={})
    assert data["builds"] == [{"_class": "hudson.model.FreeStyleBuild", "number": 1, "queueId": qid}]


# ---------------------------------------------------------------------------
# versions, security off, control API
# ---------------------------------------------------------------------------


def test_security_off_and_old_version(fresh):
    jk = fresh({"version": "2.462.3", "quiet_period": 5,
                "nodes": [{"name": "a", "executors": 1}],
                "jobs": [{"name": "p", "params": [{"type": "string", "name": "X"}]}]})
    top = get_json(jk, "/api/json", headers={})
    assert top["useSecurity"] is False and top["useCrumbs"] is True
    # CSRF protection is always on (2.222+): anonymous POSTs need a crumb
    status, _, _ = jk.http("POST", "/job/p/buildWithParameters?X=1")
    assert status == 403
    status, headers, body = jk.http("GET", "/crumbIssuer/api/json")
    crumb, cookie = json.loads(body)["crumb"], headers["set-cookie"].split(";")[0]
    status, headers, _ = jk.http("POST", "/job/p/buildWithParameters?X=1",
                                 headers={"Jenkins-Crumb": crumb, "Cookie": cookie})
    assert status == 201
    qid = queue_id(headers["location"])
    # before 2.469 /queue/item/N/ had no index page
    assert jk.http("GET", "/queue/item/%d/" % qid)[0] == 404
    # python-jenkins: anonymous client works, the 303 case is a NotFoundException here
    anon = jenkins.Jenkins(jk.url)
    with pytest.raises(jenkins.NotFoundException):
        anon.build_job("p", {"X": "1"})
    assert anon.get_version() == "2.462.3"


def test_anonymous_read_only(fresh):
    jk = fresh({"version": "2.479.3", "users": {USER: {"token": TOKEN}}, "anonymous_read": True,
                "nodes": [{"name": "a", "executors": 1}], "jobs": [{"name": "j"}]})
    assert get_json(jk, "/job/j/api/json", headers={})["name"] == "j"
    status, headers, body = jk.http("GET", "/crumbIssuer/api/json")
    crumb = {"Jenkins-Crumb": json.loads(body)["crumb"],
             "Cookie": headers["set-cookie"].split(";")[0]}
    status, headers, _ = jk.http("POST", "/job/j/build", headers=crumb)
    assert status == 403 and headers["x-required-permission"] == "hudson.model.Item.Build"
    assert jk.http("GET", "/me/api/json")[0] == 403
    assert jk.http("POST", "/job/j/build", headers=TOKEN_AUTH)[0] == 201


def test_control_fail(fresh):
    jk = fresh()
    jk.fail(503, 0.6)
    status, headers, _ = jk.http("GET", "/api/json", headers=TOKEN_AUTH)
    assert status == 503 and "x-jenkins" not in headers
    assert jk.queue() == []  # control API unaffected
    jk.wait_for(lambda: jk.http("GET", "/api/json", headers=TOKEN_AUTH)[0] == 200,
                timeout=3, what="failure window to end")


def test_control_latency(fresh):
    jk = fresh()
    jk.latency(300)
    started = time.monotonic()
    assert jk.http("GET", "/api/json", headers=TOKEN_AUTH)[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    jk.builds()
    assert time.monotonic() - started < 0.25  # control calls are not delayed
    jk.latency(0)
    started = time.monotonic()
    jk.http("GET", "/api/json", headers=TOKEN_AUTH)
    assert time.monotonic() - started < 0.25


def test_control_drop(fresh):
    jk = fresh()
    jk.drop(2)
    for _ in range(2):
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            jk.http("GET", "/api/json", headers=TOKEN_AUTH)
    assert jk.http("GET", "/api/json", headers=TOKEN_AUTH)[0] == 200
    statuses = [r["status"] for r in jk.requests() if r["path"] == "/api/json"]
    assert statuses == ["dropped", "dropped", 200]


def test_control_restart(fresh):
    jk = fresh()
    _, headers, body = jk.http("GET", "/crumbIssuer/api/json", headers=PASSWORD_AUTH)
    crumb_headers = dict(PASSWORD_AUTH, **{"Jenkins-Crumb": json.loads(body)["crumb"],
                                           "Cookie": headers["set-cookie"].split(";")[0]})
    session = headers["x-jenkins-session"]
    done = jk.start_native("pinned", node="node1")
    wait_build(jk, done)
    running = jk.start_native("pinned", node="node2", params={"DURATION": "0.8"})
    wait_build(jk, running, done=False)
    jk.restart()
    status, headers, _ = jk.http("GET", "/api/json", headers=TOKEN_AUTH)
    assert headers["x-jenkins-session"] != session
    assert jk.http("GET", "/queue/item/%d/api/json" % done, headers=TOKEN_AUTH)[0] == 404
    # Run.reload: a build in progress is loaded as finished, ABORTED (issue 17)
    after = wait_build(jk, running)
    assert after["result"] == "ABORTED" and after["building"] is False, after
    # sessions are gone: the old crumb + cookie no longer work
    assert jk.http("POST", "/job/plain/build", headers=crumb_headers)[0] == 403
    # queue ids keep counting
    assert jk.start_native("plain", delay=60) > running


def test_control_requests_jobs_and_nodes(fresh):
    jk = fresh()
    jk.reset_requests()
    jk.http("GET", "/job/plain/api/json?tree=name", headers=TOKEN_AUTH)
    log = jk.requests()
    assert [(r["method"], r["path"], r["query"]) for r in log] == [
        ("GET", "/job/plain/api/json", "tree=name")]
    assert log[0]["basic_user"] == USER and log[0]["status"] == 200
    jk.add_job({"name": "new", "label": "linux", "duration": 0}, folder="f2/f3")
    assert get_json(jk, "/job/f2/job/f3/job/new/api/json")["fullName"] == "f2/f3/new"
    jk.update_job("f2/f3/new", disabled=True)
    assert trigger(jk, "job/f2/job/f3/job/new")[0] == 409
    jk.update_job("f2/f3/new", disabled=False, label=None)
    assert get_json(jk, "/job/f2/job/f3/job/new/api/json")["labelExpression"] is None
    jk.remove_job("f2/f3/new")
    assert jk.http("GET", "/job/f2/job/f3/job/new/api/json", headers=TOKEN_AUTH)[0] == 404
    jk.add_node({"name": "extra", "labels": "a b", "executors": 3})
    assert get_json(jk, "/computer/extra/api/json")["numExecutors"] == 3
    jk.update_node("extra", executors=1, mode="EXCLUSIVE", labels="c")
    assert b"<mode>EXCLUSIVE</mode>" in jk.http("GET", "/computer/extra/config.xml",
                                                headers=TOKEN_AUTH)[2]
    jk.update_node("extra", offline=True, offline_reason="unplugged")
    info = get_json(jk, "/computer/extra/api/json")
    assert info["offline"] is True and info["temporarilyOffline"] is False
    assert info["offlineCauseReason"] == "unplugged"
    jk.remove_node("extra")
    assert jk.http("GET", "/computer/extra/api/json", headers=TOKEN_AUTH)[0] == 404
    with pytest.raises(jkctl.ControlError):
        jk.start_native("no/such/job")


# ---------------------------------------------------------------------------
# issue 17: job URLs (Util.rawEncode), queueId -1, the built-in node's URL
# ---------------------------------------------------------------------------

# Legal in a job name (Jenkins.checkGoodName refuses ?*/\%!@#$^&|<>[]:;) and
# left bare by Util.rawEncode, except '~' and ' ', which it encodes.
ODD_NAME = "deploy (prod)+x,y=z~'q'"
ODD_URL = "deploy%20(prod)+x,y=z%7E'q'"


def test_raw_encode_is_hudson_util(jk):
    """Util.rawEncode's uriMap, character for character."""
    assert js.raw_encode(ODD_NAME) == ODD_URL
    assert js.raw_encode("!$&'()*+,-.=@_aZ9") == "!$&'()*+,-.=@_aZ9"
    assert js.raw_encode('"#%/:;<>?[\\]^`{|}~') == \
        "%22%23%25%2F%3A%3B%3C%3E%3F%5B%5C%5D%5E%60%7B%7C%7D%7E"
    assert js.raw_encode("t\u00e2che\t") == "t%C3%A2che%09"


def test_job_urls_are_raw_encoded(jk, client):
    """AbstractItem.getShortUrl: the job's url, the queue item's task.url and
    the build's url all carry Util.rawEncode(name); any encoding of the same
    name reaches the job (Stapler decodes the path)."""
    name = ODD_NAME + unique("")
    enc = js.raw_encode(name)
    jk.add_job({"name": name, "concurrent": True, "duration": 0.5,
                "params": [{"type": "string", "name": "X"}]})
    job = get_json(jk, "/job/%s/api/json" % enc)
    assert job["url"] == jk.url + "job/%s/" % enc, job["url"]
    # our client's encoding (every reserved character %XX) reaches it too
    assert get_json(jk, "/job/%s/api/json" % quote(name, safe=""))["name"] == name
    status, headers, _ = trigger(jk, "job/" + quote(name, safe=""), {"X": "1"}, delay="30sec")
    assert status == 201
    qid = queue_id(headers["location"])
    items = get_json(jk, "/queue/api/json?tree=items[id,task[url]]")["items"]
    assert [it["task"]["url"] for it in items if it["id"] == qid] == [jk.url + "job/%s/" % enc], items
    # python-jenkins quotes names its own way and still finds the job
    assert client.get_job_info(name)["url"] == jk.url + "job/%s/" % enc
    with pytest.raises(jenkins.EmptyResponseException):  # 204, as in test_cancel_queue
        client.cancel_queue(qid)


def test_old_build_record_has_queue_id_minus_one(jk):
    """Run.getQueueId is Run.QUEUE_ID_UNKNOWN (-1) for an old record."""
    name = add_job(jk, concurrent=True, duration=0)
    jk.start_native(name, old=True)
    b = jk.wait_for(lambda: [x for x in jk.builds() if x["job"] == name and not x["building"]],
                    what="old build")[0]
    assert b["queue_id"] == -1
    assert get_json(jk, "/job/%s/%d/api/json" % (name, b["number"]))["queueId"] == -1
    qid = jk.start_native(name)
    assert get_json(jk, "/job/%s/%d/api/json" % (name, wait_build(jk, qid)["number"]))["queueId"] == qid


@pytest.mark.parametrize("version,old", [("2.303.3", True), ("2.306", True), ("2.307", False),
                                         ("2.479.3", False)])
def test_built_in_node_url_by_version(fresh, version, old):
    """Jenkins.getComputer takes "(built-in)" only since 2.307 (#5425, which
    also made MasterComputer.getUrl "computer/(built-in)/"); "(master)" always."""
    jk = fresh({"version": version, "nodes": [{"name": "a", "executors": 1}], "jobs": []})
    status, headers, _ = jk.http("GET", "/computer/(master)/api/json")
    assert status == 200 and headers["x-jenkins"] == version
    status, _, _ = jk.http("GET", "/computer/(built-in)/api/json")
    assert status == (404 if old else 200)
    names = [c["displayName"] for c in get_json(jk, "/computer/api/json", headers={})["computer"]]
    assert names[0] == ("master" if old else "Built-In Node")
    # python-jenkins lists the controller under its displayName
    assert jenkins.Jenkins(jk.url, timeout=10).get_nodes()[0]["name"] == names[0]


# ---------------------------------------------------------------------------
# issue 17: the start window, disabled jobs, restart, multi-node Node parameters
# ---------------------------------------------------------------------------

LEFT_ITEM = "hudson.model.Queue$LeftItem"


def left_item(jk, qid):
    """Queue item `qid` once it has left the queue (a LeftItem), else None."""
    item = queue_item(jk, qid)
    return item if item["_class"] == LEFT_ITEM else None


def test_start_window_left_item_without_build(fresh):
    """hudson.model.Executor.run, under Queue.callWithLock: Queue.onStartExecuting
    (the item leaves `pendings`, a LeftItem whose getExecutable() is null) comes
    before task.createExecutable() (AbstractProject.newBuild: the build joins the
    job's builds) and WorkUnit.setExecutable (Run.setQueueId, the LeftItem's
    executable); Executor.isIdle is false from WorkUnit.setExecutor on.  Queue.getItem
    and the job's builds are read without that lock, so a client sees the window."""
    window = 2.0
    jk = fresh({"version": "2.303.3",  # python-jenkins' get_running_builds needs 'master'
                "users": {USER: {"token": TOKEN}},
                "nodes": [{"name": "a", "executors": 1}],
                "jobs": [{"name": "j", "duration": 3,
                          "params": [{"type": "string", "name": "X"}]}]})
    jk.start_window(window)
    client = jenkins.Jenkins(jk.url, USER, TOKEN, timeout=10)
    status, hdrs, _ = trigger(jk, "job/j", {"X": "1"})
    assert status == 201
    qid = queue_id(hdrs["location"])
    item = jk.wait_for(lambda: left_item(jk, qid), what="the item to leave the queue")
    # -- inside the window: no build anywhere yet
    assert item["cancelled"] is False and item["executable"] is None, item
    assert item["why"] is None and item["task"]["name"] == "j"
    assert get_json(jk, "/queue/api/json")["items"] == []
    job = get_json(jk, "/job/j/api/json")
    assert job["builds"] == [] and job["lastBuild"] is None and job["inQueue"] is False
    assert job["nextBuildNumber"] == 1  # newBuild has not assigned a number
    assert jk.http("GET", "/job/j/1/api/json", headers=TOKEN_AUTH)[0] == 404
    comp = get_json(jk, "/computer/a/api/json?depth=1")
    assert comp["idle"] is False
    assert comp["executors"] == [{"currentExecutable": None, "idle": False, "likelyStuck": False,
                                  "number": 0, "progress": -1}], comp["executors"]
    # python-jenkins reads the same: a LeftItem without executable, nothing running
    q = client.get_queue_item(qid)
    assert q["_class"] == LEFT_ITEM and q["executable"] is None and q["cancelled"] is False
    assert client.get_running_builds() == []
    assert client.get_queue_info() == []
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        client.get_build_info("j", 1)
    # -- after the window: WorkUnit.setExecutable links item and build
    b = wait_build(jk, qid, done=False)
    info = client.get_build_info("j", b["number"])
    assert info["number"] == 1 and info["queueId"] == qid
    # the build was made no sooner than the window after the item was queued
    assert info["timestamp"] - item["inQueueSince"] >= window * 1000 - 1, (info, item)
    left = queue_item(jk, qid)
    assert left["_class"] == LEFT_ITEM and left["cancelled"] is False
    assert left["executable"]["number"] == 1
    assert left["executable"]["url"] == jk.url + "job/j/1/"
    assert info["building"] is True
    assert client.get_running_builds() == [{"name": "j", "number": 1, "url": jk.url + "job/j/1/",
                                            "node": "a", "executor": 0}]
    assert wait_build(jk, qid)["result"] == "SUCCESS"


def test_disable_job_cancels_first_waiting_item_others_get_no_build(jk, client):
    """ParameterizedJob.makeDisabled(true) -> Queue.cancel(Task): the first
    WaitingItem of the task in waitingList order (timestamp, then id) is
    cancelled and it returns; the other waiting items stay, reach an executor
    when their quiet period ends, and ParameterizedJob.createExecutable returns
    null for a disabled job: Executor.run logs "cannot be run" and the LeftItem
    keeps executable null, cancelled false.  No build is made."""
    node = add_node(jk, executors=3)
    job = add_job(jk, prefix="dis", label=node, concurrent=True, duration=0.2,
                  params=[{"type": "string", "name": "X"}])
    # ids first < second < third; second is due first, so it is the one cancelled
    delays = {"first": "3sec", "second": "2sec", "third": "4sec"}
    qids = {}
    for name, delay in delays.items():
        status, hdrs, _ = trigger(jk, job_path(job), {"X": name}, delay=delay)
        assert status == 201
        qids[name] = queue_id(hdrs["location"])
    assert qids["first"] < qids["second"] < qids["third"]
    assert [queue_item(jk, q)["_class"] for q in qids.values()] == ["hudson.model.Queue$WaitingItem"] * 3
    client.disable_job(job)  # POST /job/X/disable: ParameterizedJob.doDisable -> makeDisabled
    assert get_json(jk, "/job/%s/api/json" % job)["buildable"] is False
    cancelled = queue_item(jk, qids["second"])
    assert cancelled["_class"] == LEFT_ITEM, cancelled
    assert cancelled["cancelled"] is True and cancelled["executable"] is None
    assert sorted(i["id"] for i in get_json(jk, "/queue/api/json")["items"]) == \
        [qids["first"], qids["third"]]
    assert get_json(jk, "/job/%s/api/json" % job)["disabled"] is True
    for name in ("first", "third"):
        jk.wait_for(lambda: left_item(jk, qids[name]), timeout=10, what="%s to leave" % name)
    # the executor is free again (end_start ran) and the items never got a build
    jk.wait_for(lambda: get_json(jk, "/computer/%s/api/json" % node)["idle"], what="idle node")
    for name in ("first", "third"):
        item = queue_item(jk, qids[name])
        assert item["cancelled"] is False and item["executable"] is None, (name, item)
    data = get_json(jk, "/job/%s/api/json" % job)
    assert data["builds"] == [] and data["nextBuildNumber"] == 1 and data["inQueue"] is False
    assert [b for b in jk.builds() if b["job"] == job] == []


def test_disable_job_cancels_one_blocked_item_running_build_finishes(jk, client):
    """Queue.cancel(Task) without a waiting item: `blockedProjects.cancel(p) |
    buildables.cancel(p)`, each ItemList.cancel the first item of the task.
    A non-concurrent job with a build running has both others blocked: the
    first is cancelled, the second waits for the build, then leaves without
    a build.  makeDisabled stops no build: the running one ends SUCCESS."""
    node = add_node(jk, executors=3)
    job = add_job(jk, prefix="dis", label=node, concurrent=False, duration=1.0,
                  params=[{"type": "string", "name": "X"}])
    running = queue_id(trigger(jk, job_path(job), {"X": "0"})[1]["location"])
    wait_build(jk, running, done=False)
    blocked = [queue_id(trigger(jk, job_path(job), {"X": str(i)})[1]["location"]) for i in (1, 2)]
    for qid in blocked:
        jk.wait_for(lambda: queue_item(jk, qid)["_class"] == "hudson.model.Queue$BlockedItem",
                    what="blocked item %d" % qid)
    client.disable_job(job)
    first = client.get_queue_item(blocked[0])
    assert first["_class"] == LEFT_ITEM and first["cancelled"] is True
    second = client.get_queue_item(blocked[1])
    assert second["_class"] == "hudson.model.Queue$BlockedItem", second
    assert wait_build(jk, running)["result"] == "SUCCESS"
    jk.wait_for(lambda: left_item(jk, blocked[1]), what="second to leave")
    jk.wait_for(lambda: get_json(jk, "/computer/%s/api/json" % node)["idle"], what="idle node")
    second = client.get_queue_item(blocked[1])
    assert second["cancelled"] is False and second["executable"] is None, second
    assert [b["queue_id"] for b in jk.builds() if b["job"] == job] == [running]
    assert client.get_job_info(job)["nextBuildNumber"] == 2


def test_restart_aborts_running_build_and_drops_the_start_window(fresh):
    """A controller restart (Jenkins.doSafeRestart; here POST /_test/restart):
    Run.reload loads a build that was in progress as COMPLETED, ABORTED (its
    build.xml has no result), duration never saved (0); the session hash
    (X-Jenkins-Session) is new; an item in Executor.run's start window had
    left the queue (Queue.save keeps no such item) and never gets a build."""
    jk = fresh({"version": "2.303.3", "users": {USER: {"token": TOKEN}},
                "nodes": [{"name": "a", "executors": 1}, {"name": "b", "executors": 1}],
                "jobs": [{"name": "long", "label": "a", "duration": 60},
                         {"name": "quick", "label": "b", "duration": 0.1}]})
    client = jenkins.Jenkins(jk.url, USER, TOKEN, timeout=10)
    session = jk.http("GET", "/api/json", headers=TOKEN_AUTH)[1]["x-jenkins-session"]
    running = jk.start_native("long")
    wait_build(jk, running, done=False)
    assert client.get_build_info("long", 1)["building"] is True
    jk.start_window(1.5)
    starting = jk.start_native("quick")
    jk.wait_for(lambda: left_item(jk, starting), what="quick in the start window")
    assert get_json(jk, "/computer/b/api/json")["idle"] is False
    reply = jk.restart()
    status, headers, _ = jk.http("GET", "/api/json", headers=TOKEN_AUTH)
    assert status == 200 and headers["x-jenkins-session"] not in (None, session)
    assert reply["session"] == headers["x-jenkins-session"]
    info = client.get_build_info("long", 1)
    assert info["building"] is False and info["result"] == "ABORTED", info
    assert info["duration"] == 0 and info["queueId"] == running
    assert client.get_job_info("long")["color"] == "aborted"
    # the start-window item: its LeftItem is gone with the cache, its executor free
    assert jk.http("GET", "/queue/item/%d/api/json" % starting, headers=TOKEN_AUTH)[0] == 404
    assert get_json(jk, "/computer/a/api/json")["idle"] is True
    assert get_json(jk, "/computer/b/api/json")["idle"] is True
    # a build queued now passes its own window, which ends after the dropped
    # one's would have; it is build #1: the dropped item never took a number
    after = jk.start_native("quick")
    assert after > starting
    assert wait_build(jk, after)["number"] == 1
    assert [b["queue_id"] for b in jk.builds() if b["job"] == "quick"] == [after]
    assert client.get_job_info("quick")["nextBuildNumber"] == 2


def multi_node_job(jk, node, trigger_if_result, concurrent):
    return add_job(jk, prefix="multi", concurrent=concurrent, duration=0.1,
                   params=[{"type": "node", "name": "NODE", "default": [node],
                            "trigger_if_result": trigger_if_result}])


NOT_CONCURRENT_PARAM = ("The project is configured to run builds concurrent, but the node parameter"
                        " [NODE] is configured to trigger new builds depending on the state of the"
                        " last build only!")
NOT_CONCURRENT_PROJECT = ("The project is configured to NOT run builds concurrent, but the node"
                          " parameter [NODE] is configured to trigger new builds concurrent!")


@pytest.mark.parametrize("trigger_if_result,concurrent,multi,message", [
    ("allCases", True, True, NOT_CONCURRENT_PARAM),
    ("success", True, True, NOT_CONCURRENT_PARAM),
    ("allowMultiSelectionForConcurrentBuilds", False, True, NOT_CONCURRENT_PROJECT),
    ("unstable", False, True, None),
    ("allowMultiSelectionForConcurrentBuilds", True, True, None),
    ("multiSelectionDisallowed", True, False, None),
    ("multiSelectionDisallowed", False, False, None),
])
def test_multi_node_param_concurrency_must_match(jk, client, trigger_if_result, concurrent, multi,
                                                 message):
    """NodeParameterDefinition(..., triggerIfResult, ...) derives
    allowMultiNodeSelection (all but multiSelectionDisallowed) and
    triggerConcurrentBuilds (allowMultiSelectionForConcurrentBuilds only);
    LabelParameterValue.createBuildWrapper -> createBuildWrapper gives a
    TriggerNextBuildWrapper when multi-node; Build.doRun calls its setUp,
    which calls validateBuild: IllegalStateException when the project's
    concurrentBuild differs from triggerConcurrentBuilds (Messages
    BuildWrapper.param_not_concurrent / project_not_concurrent), printed by
    Run.handleFatalBuildProblem; the build ends FAILURE."""
    node = add_node(jk, executors=1)
    job = multi_node_job(jk, node, trigger_if_result, concurrent)
    xml = client.get_job_config(job)
    assert "<triggerIfResult>%s</triggerIfResult>" % trigger_if_result in xml
    assert "<allowMultiNodeSelection>%s</allowMultiNodeSelection>" % str(multi).lower() in xml
    conc = trigger_if_result == "allowMultiSelectionForConcurrentBuilds"
    assert "<triggerConcurrentBuilds>%s</triggerConcurrentBuilds>" % str(conc).lower() in xml
    assert "<concurrentBuild>%s</concurrentBuild>" % str(concurrent).lower() in xml
    qid = client.build_job(job, {"NODE": node, "delay": "0sec"})
    b = wait_build(jk, qid)
    info = client.get_build_info(job, b["number"])
    assert info["builtOn"] == node and info["queueId"] == qid
    log = client.get_build_console_output(job, b["number"])
    if message is None:
        assert info["result"] == "SUCCESS" and "FATAL" not in log, log
        return
    assert info["result"] == "FAILURE"
    lines = log.splitlines()
    fatal = lines.index("FATAL: " + message)
    assert lines[fatal + 1] == "java.lang.IllegalStateException: " + message
    assert lines[-1] == "Finished: FAILURE"


# ---------------------------------------------------------------------------
# Pipeline jobs (issue 17): flyweight runs, node() placeholders, results, stop
# ---------------------------------------------------------------------------

WORKFLOW_RUN = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
PLACEHOLDER = "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask"
NODE_PARAM = {"type": "node", "name": "NODE"}


def add_pipeline(jk, script, params=(NODE_PARAM,)):
    return add_job(jk, prefix="pipe", type="pipeline", params=list(params), script=script)


def computer(jk, node):
    cur = "currentExecutable%5B_class,url,number,displayName,fullDisplayName%5D"
    return get_json(jk, "/computer/%s/api/json?tree=idle,executors%%5Bidle,%s%%5D,"
                    "oneOffExecutors%%5B%s%%5D" % (node, cur, cur))


def test_pipeline_script_subset():
    ops = js.PipelineScript("sleep 1; node(params.NODE) { sleep(2)\n currentBuild.result = 'UNSTABLE' }"
                            "\nnode('linux') { echo 'hi' }\nerror 'boom'").ops
    assert ops == [("sleep", 1.0), ("node", ("word", "params.NODE")), ("sleep", 2.0),
                   ("result", "UNSTABLE"), ("endnode",), ("node", ("str", "linux")),
                   ("echo", "hi"), ("endnode",), ("error", "boom")]
    for bad in ("node(params.NODE) {", "sh 'make'", "currentBuild.result = 'GREEN'"):
        with pytest.raises(js.PipelineSyntaxError):
            js.PipelineScript(bad)


def test_pipeline_run_is_flyweight_and_node_takes_an_executor(jk, client):
    """Queue.makeFlyWeightTaskBuildable: the run starts on the node's
    OneOffExecutor with its only executor idle; node(params.NODE) then takes
    the executor through a PlaceholderExecutable whose url is the run's."""
    node = add_node(jk, executors=1)
    job = add_pipeline(jk, "sleep 0.8; node(params.NODE) { sleep 0.8 }")
    status, hdrs, _ = trigger(jk, job_path(job), {"NODE": node})
    assert status == 201
    qid = queue_id(hdrs["location"])
    wait_build(jk, qid, done=False)
    c = computer(jk, node)
    assert c["executors"][0]["idle"] is True and c["idle"] is False
    one = c["oneOffExecutors"]
    assert len(one) == 1 and one[0]["currentExecutable"]["_class"] == WORKFLOW_RUN
    info = client.get_build_info(job, 1)
    assert info["_class"] == WORKFLOW_RUN and info["building"] is True and info["result"] is None
    assert "builtOn" not in info
    url = jk.url + "job/%s/1/" % job

    def in_node():
        ex = computer(jk, node)["executors"][0]
        return ex if not ex["idle"] else None
    ex = jk.wait_for(in_node, what="the placeholder on the executor")
    cur = ex["currentExecutable"]
    assert cur["_class"] == PLACEHOLDER + "$PlaceholderExecutable"
    assert cur["url"] == url and cur["number"] == 1
    assert cur["displayName"] == cur["fullDisplayName"] == "part of %s #1" % job
    b = wait_build(jk, qid)
    assert b["result"] == "SUCCESS" and len(b["node_blocks"]) == 1 and b["node_blocks"][0][0] == node
    assert client.get_build_info(job, 1)["result"] == "SUCCESS"
    c = computer(jk, node)
    assert c["idle"] is True and c["oneOffExecutors"] == []


def test_pipeline_placeholder_waits_in_the_queue(jk, client):
    """A second run starts though the node is busy (a flyweight needs no free
    executor); its node() waits as a PlaceholderTask item for the label."""
    node = add_node(jk, executors=1)
    job = add_pipeline(jk, "node(params.NODE) { sleep 1.5 }")
    q1 = queue_id(trigger(jk, job_path(job), {"NODE": node})[1]["location"])
    jk.wait_for(lambda: not computer(jk, node)["executors"][0]["idle"], what="first run in node()")
    q2 = queue_id(trigger(jk, job_path(job), {"NODE": node})[1]["location"])
    wait_build(jk, q2, done=False)

    def placeholder():
        items = get_json(jk, "/queue/api/json")["items"]
        return [i for i in items if i["task"]["_class"] == PLACEHOLDER] or None
    items = jk.wait_for(placeholder, what="a placeholder item")
    assert len(items) == 1
    it = items[0]
    assert it["_class"] == "hudson.model.Queue$BuildableItem" and it["actions"] == []
    # PlaceholderTask's @Exported have visibility 1: at depth 0 only its class shows
    assert it["task"] == {"_class": PLACEHOLDER}
    task = get_json(jk, "/queue/item/%d/api/json?depth=1" % it["id"])["task"]
    assert task["url"] == "job/%s/2/" % job  # relative: PlaceholderTask.getUrl
    assert task["name"] == task["fullDisplayName"] == "part of %s #2" % job
    assert it["why"] == "Waiting for next available executor on \u2018%s\u2019" % node
    assert client.get_job_info(job)["inQueue"] is False  # another task than the job
    assert [i["id"] for i in client.get_queue_info()] == [it["id"]]
    assert client.get_build_info(job, 2)["building"] is True
    wait_build(jk, q1)
    b2 = wait_build(jk, q2)
    assert b2["result"] == "SUCCESS"
    assert jk.concurrency()[node] == 1


@pytest.mark.parametrize("script,result", [
    ("node(params.NODE) { currentBuild.result = 'UNSTABLE' }", "UNSTABLE"),
    ("node(params.NODE) { currentBuild.result = 'FAILURE'; currentBuild.result = 'UNSTABLE' }",
     "FAILURE"),  # Run.setResult only ever makes it worse
    ("node(params.NODE) { error 'boom' }", "FAILURE"),
    ("echo 'no node at all'", "SUCCESS"),
])
def test_pipeline_results(jk, client, script, result):
    node = add_node(jk, executors=1)
    job = add_pipeline(jk, script)
    qid = queue_id(trigger(jk, job_path(job), {"NODE": node})[1]["location"])
    assert wait_build(jk, qid)["result"] == result
    assert client.get_build_info(job, 1)["result"] == result


AFTER_RESTART = "org.jenkinsci.plugins.workflow.job.AfterRestartTask"


def test_pipeline_run_resumes_after_restart(fresh):
    """A WorkflowRun survives a restart (WorkflowRun.onLoad): it stays
    building, "Resuming build at ..." is logged and an AfterRestartTask
    (a flyweight item, no actions, JSON only its _class) puts it on a
    OneOffExecutor again. A node() body that held an executor schedules its
    PlaceholderTask again for that node (ExecutorStepDynamicContext.resume:
    "Waiting for reconnection of NODE ...") and goes on when it starts; a
    node() still waiting keeps its queued placeholder (Queue.load), and
    goes first. Both end with their own result, never more than the node's
    executor in use."""
    jk = fresh({"users": {USER: {"token": TOKEN}}, "nodes": [{"name": "a", "executors": 1}]})
    client = jenkins.Jenkins(jk.url, USER, TOKEN, timeout=10)
    job = add_pipeline(jk, "node(params.NODE) { sleep 2 }")
    q1 = queue_id(trigger(jk, job_path(job), {"NODE": "a"})[1]["location"])
    jk.wait_for(lambda: not computer(jk, "a")["executors"][0]["idle"], what="run 1 in node()")
    q2 = queue_id(trigger(jk, job_path(job), {"NODE": "a"})[1]["location"])

    def placeholders():
        return [i for i in get_json(jk, "/queue/api/json")["items"]
                if i["task"]["_class"] == PLACEHOLDER] or None
    waiting = jk.wait_for(placeholders, what="run 2's placeholder")[0]["id"]
    jk.restart()
    assert client.get_build_info(job, 1)["building"] is True
    assert client.get_build_info(job, 2)["building"] is True
    # after the restart, in WorkflowRun order: run 1's AfterRestartTask and
    # its placeholder again, run 2's AfterRestartTask
    ar1, ph1, ar2 = waiting + 1, waiting + 2, waiting + 3
    for qid, number in ((ar1, 1), (ar2, 2)):
        it = jk.wait_for(lambda: left_item(jk, qid), what="AfterRestartTask %d started" % qid)
        assert it["task"] == {"_class": AFTER_RESTART} and it["actions"] == []
        assert it["cancelled"] is False and it["executable"]["number"] == number, it
    task = get_json(jk, "/queue/item/%d/api/json?depth=1" % ph1)["task"]
    assert task["_class"] == PLACEHOLDER and task["url"] == "job/%s/1/" % job
    b1, b2 = wait_build(jk, q1), wait_build(jk, q2, timeout=15)
    assert b1["result"] == b2["result"] == "SUCCESS"
    assert len(b1["node_blocks"]) == 1 and b1["node_blocks"][0][0] == "a"
    # Resuming reserves no executor (ExecutorStepDynamicContext.resume's
    # TODO): run 2's placeholder, queued first, takes it first; run 1's
    # body goes on once run 2 let go.
    assert b2["end"] <= b1["end"]
    log = client.get_build_console_output(job, 1)
    assert "after Jenkins restart" in log and "Resuming build at " in log
    assert "Waiting for reconnection of a before proceeding with build" in log
    assert log.count("Running on ") == 1 and log.rstrip().endswith("Finished: SUCCESS")
    assert "Waiting for reconnection" not in client.get_build_console_output(job, 2)
    assert jk.concurrency()["a"] == 1
    assert computer(jk, "a")["oneOffExecutors"] == []


def test_pipeline_resumed_on_the_built_in_node_stays_there(fresh):
    """The built-in node's name is "", which PlaceholderTask.getAssignedLabel
    takes for Jenkins.getSelfLabel: a body resumed there waits for the
    built-in node, though an agent is free (here run 2's waiting
    placeholder takes the built-in executor first)."""
    jk = fresh({"users": {USER: {"token": TOKEN}},
                "nodes": [{"name": "built-in", "labels": "", "executors": 1, "mode": "NORMAL"},
                          {"name": "a", "executors": 1}]})
    job = add_pipeline(jk, "node('built-in') { sleep 1.5 }", params=())
    q1 = queue_id(trigger(jk, job_path(job))[1]["location"])
    jk.wait_for(lambda: not computer(jk, "(built-in)")["executors"][0]["idle"], what="run 1 in node()")
    q2 = queue_id(trigger(jk, job_path(job))[1]["location"])
    jk.wait_for(lambda: [i for i in get_json(jk, "/queue/api/json")["items"]
                         if i["task"]["_class"] == PLACEHOLDER] or None, what="run 2's placeholder")
    jk.restart()
    assert wait_build(jk, q1)["result"] == wait_build(jk, q2, timeout=15)["result"] == "SUCCESS"
    assert jk.concurrency().get("a", 0) == 0, jk.concurrency()
    assert "Waiting for reconnection" not in jenkins.Jenkins(jk.url, USER, TOKEN).get_build_console_output(job, 1)


def test_pipeline_stop_aborts_in_node_and_while_waiting(jk, client):
    """WorkflowRun.doStop: ABORTED; the executor of node() is freed and a
    placeholder still queued is cancelled."""
    node = add_node(jk, executors=1)
    job = add_pipeline(jk, "node(params.NODE) { sleep 30 }")
    q1 = queue_id(trigger(jk, job_path(job), {"NODE": node})[1]["location"])
    jk.wait_for(lambda: not computer(jk, node)["executors"][0]["idle"], what="first run in node()")
    q2 = queue_id(trigger(jk, job_path(job), {"NODE": node})[1]["location"])
    wait_build(jk, q2, done=False)
    jk.wait_for(lambda: get_json(jk, "/queue/api/json")["items"] or None, what="placeholder")
    client.stop_build(job, 2)
    assert wait_build(jk, q2)["result"] == "ABORTED"
    assert get_json(jk, "/queue/api/json")["items"] == []
    client.stop_build(job, 1)
    b1 = wait_build(jk, q1)
    assert b1["result"] == "ABORTED" and b1["node_blocks"][0][3] is not None
    assert computer(jk, node)["idle"] is True
    assert [b["node_blocks"] for b in jk.builds() if b["job"] == job and b["number"] == 2] == [[]]


# ---------------------------------------------------------------------------
# issue 17, row 9: undeclared parameters
# ---------------------------------------------------------------------------


def test_build_with_parameters_drops_undeclared_parameters(jk, client):
    """ParametersDefinitionProperty.buildWithParameters makes a value for each
    declared parameter only (d.createValue(req); SimpleParameterDefinition
    reads req.getParameterValues(name), its default when absent), so a
    request parameter the job does not declare never enters the
    ParametersAction: not in the queue item, not in the build.
    keepUndefinedParameters/safeParameters only govern ParametersAction.filter
    over values already in the action, so nothing brings it back."""
    node = add_node(jk, executors=1)
    name = add_job(jk, prefix="zuul", label=node, duration=0, concurrent=True,
                   params=[{"type": "node", "name": "NODE"},
                           {"type": "string", "name": "ZUUL_UUID", "default": "none"},
                           {"type": "string", "name": "DEFAULTED", "default": "d"}])
    declared = ["NODE", "ZUUL_UUID", "DEFAULTED"]
    # python3-jenkins, as a client that relied on the plugin passing ZUUL_* through would call it.
    qid = client.build_job(name, {"NODE": node, "ZUUL_UUID": "u1", "ZUUL_PIPELINE": "gate",
                                  "delay": "0sec"})
    item = client.get_queue_item(qid)
    assert [p["name"] for p in item["actions"][0]["parameters"]] == declared
    number = wait_build(jk, qid)["number"]
    info = client.get_build_info(name, number)
    params = {p["name"]: p["value"] for p in info["actions"][0]["parameters"]}
    assert params == {"NODE": node, "ZUUL_UUID": "u1", "DEFAULTED": "d"}
    # Raw form body and query string alike: undeclared names are never read.
    status, hdrs, _ = trigger(jk, job_path(name), {"NODE": node, "ZUUL_PROJECT": "p"})
    assert status == 201
    b = wait_build(jk, queue_id(hdrs["location"]))
    assert sorted(b["params"]) == sorted(declared)
    status, hdrs, _ = jk.http("POST", "/%s/buildWithParameters?NODE=%s&ZUUL_CHANGE=1&delay=0sec"
                              % (job_path(name), node), headers=TOKEN_AUTH)
    assert status == 201
    assert sorted(wait_build(jk, queue_id(hdrs["location"]))["params"]) == sorted(declared)
    # The job's declared parameters, as the coordinator reads them for the map.
    defs = [d for p in client.get_job_info(name)["property"] for d in p.get("parameterDefinitions", [])]
    assert [(d["name"], d["type"]) for d in defs] == [
        ("NODE", "NodeParameterDefinition"), ("ZUUL_UUID", "StringParameterDefinition"),
        ("DEFAULTED", "StringParameterDefinition")]


def test_job_disable_enable_routes(jk, client):
    """ParameterizedJob.doDisable / doEnable: POST only, a redirect to the job."""
    job = add_job(jk, concurrent=True)
    status, headers, _ = jk.http("GET", "/job/%s/disable" % job, headers=TOKEN_AUTH)
    assert status == 405 and headers["allow"] == "POST"
    client.disable_job(job)
    assert client.get_job_info(job)["buildable"] is False
    client.enable_job(job)
    assert client.get_job_info(job)["buildable"] is True
