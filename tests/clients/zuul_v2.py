"""Zuul v2's Gearman launcher (zuul/launcher/gearman.py, tag 2.6.0), on gearproto.

The methods of `Gearman` follow Zuul's code line by line (gearman-plugin.md
§8.1), including Python's name mangling of `build.__gearman_job` and
`build.__gearman_manager`, and `gear`'s handling of packets (WORK_WARNING and
WORK_COMPLETE payloads appended to job.data; a handler that raises is logged
by the poll loop, which goes on). What is not Zuul's is marked "test:"; it
only records what happened, it decides nothing.

The scheduler, the job, the item and the pipeline are small stand-ins for
zuul.model and zuul.scheduler.
"""
import json
import threading
import time
from uuid import uuid4

import gearproto as gear

# zuul.model precedences
PRECEDENCE_NORMAL = 0
PRECEDENCE_LOW = 1
PRECEDENCE_HIGH = 2


class Job:
    """zuul.model.Job: a name and an optional parameter function."""

    def __init__(self, name, parameter_function=None):
        self.name = name
        self.parameter_function = parameter_function

    def __repr__(self):
        return "<Job %s>" % self.name


class Pipeline:
    def __init__(self, name="check", precedence=PRECEDENCE_NORMAL):
        self.name = name
        self.precedence = precedence


class Project:
    def __init__(self, name):
        self.name = name


class Change:
    """A Gerrit change (zuul.model.Change): has refspec, so the change parameters are sent."""

    def __init__(self, project, number=1001, patchset=1, branch="master"):
        self.project = Project(project)
        self.number = number
        self.patchset = patchset
        self.branch = branch
        self.refspec = "refs/changes/%02d/%d/%d" % (number % 100, number, patchset)

    def getBasePath(self):
        return "%02d/%d/%d" % (self.number % 100, self.number, self.patchset)


class BuildSet:
    def __init__(self):
        self.ref = "Z" + uuid4().hex
        self.commit = uuid4().hex + uuid4().hex[:8]
        self.zuul_url = "http://zuul.example/p"


class Item:
    def __init__(self, change):
        self.change = change
        self.current_build_set = BuildSet()


class Worker:
    """zuul.model.Worker: what the worker may say about itself."""

    def __init__(self):
        self.name = "Unknown"
        self.hostname = None
        self.ips = []
        self.fqdn = None
        self.program = None
        self.version = None
        self.extra = {}

    def updateFromData(self, data):
        self.name = data.get("worker_name", self.name)
        self.hostname = data.get("worker_hostname", self.hostname)
        self.ips = data.get("worker_ips", self.ips)
        self.fqdn = data.get("worker_fqdn", self.fqdn)
        self.program = data.get("worker_program", self.program)
        self.version = data.get("worker_version", self.version)
        self.extra = data.get("worker_extra", self.extra)


class Build:
    """zuul.model.Build"""

    def __init__(self, job, uuid):
        self.job = job
        self.uuid = uuid
        self.url = None
        self.number = None
        self.result = None
        self.launch_time = time.time()
        self.estimated_time = None
        self.canceled = False
        self.retry = False
        self.parameters = {}
        self.worker = Worker()
        self.node_labels = []
        self.node_name = None

    def __repr__(self):
        return "<Build %s of %s>" % (self.uuid, self.job.name)


class Scheduler:
    """Records what the launcher reports (zuul.scheduler.Scheduler's two callbacks)."""

    def __init__(self):
        self.started = []
        self.completed = []
        self.cond = threading.Condition()

    def onBuildStarted(self, build):
        with self.cond:
            self.started.append(build)
            self.cond.notify_all()

    def onBuildCompleted(self, build):
        with self.cond:
            self.completed.append(build)
            self.cond.notify_all()

    def wait(self, what, build, timeout=30):
        lst = self.started if what == "started" else self.completed
        with self.cond:
            if not self.cond.wait_for(lambda: build in lst, timeout):
                raise AssertionError("build %r not %s within %ss" % (build, what, timeout))


def getJobData(job):
    if not len(job.data):
        return {}
    d = job.data[-1]
    if not d:
        return {}
    return json.loads(d)


class ZuulGearmanClient(gear.Client):
    def __init__(self, zuul_gearman, host, port):
        super().__init__(host, port)
        self.__zuul_gearman = zuul_gearman

    def handleWorkComplete(self, packet):
        job = super().handleWorkComplete(packet)
        self.__zuul_gearman.onBuildCompleted(job)
        return job

    def handleWorkFail(self, packet):
        job = super().handleWorkFail(packet)
        self.__zuul_gearman.onBuildCompleted(job)
        return job

    def handleWorkException(self, packet):
        job = super().handleWorkException(packet)
        self.__zuul_gearman.onBuildCompleted(job)
        return job

    def handleWorkStatus(self, packet):
        job = super().handleWorkStatus(packet)
        self.__zuul_gearman.onWorkStatus(job)
        return job

    def handleWorkData(self, packet):
        job = super().handleWorkData(packet)
        self.__zuul_gearman.onWorkStatus(job)
        return job


class Gearman:
    negative_function_cache_ttl = 5

    def __init__(self, host, port, sched):
        self.sched = sched
        self.builds = {}
        self.meta_jobs = {}  # A list of meta-jobs like stop or describe
        self.gearman = ZuulGearmanClient(self, host, port)
        self.function_cache = set()
        self.function_cache_time = 0
        self.meta_submitted = []  # test: the stop/describe jobs sent, to see their answers

    def stop(self):
        self.gearman.shutdown()

    def gearman_job(self, build):
        """test: the gear.Job behind a build (Zuul keeps it name-mangled)."""
        return build.__gearman_job

    def isJobRegistered(self, name):
        if self.function_cache_time:
            for connection in self.gearman.active_connections:
                if connection.connect_time > self.function_cache_time:
                    self.function_cache = set()
                    self.function_cache_time = 0
                    break
        if name in self.function_cache:
            return True
        if ((time.time() - self.function_cache_time) <
                self.negative_function_cache_ttl):
            return False
        self.function_cache_time = time.time()
        for connection in self.gearman.active_connections:
            try:
                req = gear.StatusAdminRequest()
                connection.sendAdminRequest(req, timeout=300)
            except Exception:
                continue
            for line in req.response.split('\n'):
                parts = [x.strip() for x in line.split()]
                if not parts or parts[0] == '.':
                    continue
                self.function_cache.add(parts[0])
        if name in self.function_cache:
            return True
        return False

    def launch(self, job, item, pipeline, dependent_items=[]):
        dependent_items = dependent_items[:]
        dependent_items.reverse()
        uuid = str(uuid4().hex)
        params = dict(ZUUL_UUID=uuid,
                      ZUUL_PROJECT=item.change.project.name)
        params['ZUUL_PIPELINE'] = pipeline.name
        params['ZUUL_URL'] = item.current_build_set.zuul_url
        if hasattr(item.change, 'refspec'):
            changes_str = '^'.join(
                ['%s:%s:%s' % (i.change.project.name, i.change.branch,
                               i.change.refspec)
                 for i in dependent_items + [item]])
            params['ZUUL_BRANCH'] = item.change.branch
            params['ZUUL_CHANGES'] = changes_str
            params['ZUUL_REF'] = ('refs/zuul/%s/%s' %
                                  (item.change.branch,
                                   item.current_build_set.ref))
            params['ZUUL_COMMIT'] = item.current_build_set.commit

            zuul_changes = ' '.join(['%s,%s' % (i.change.number,
                                                i.change.patchset)
                                     for i in dependent_items + [item]])
            params['ZUUL_CHANGE_IDS'] = zuul_changes
            params['ZUUL_CHANGE'] = str(item.change.number)
            params['ZUUL_PATCHSET'] = str(item.change.patchset)

        # The destination_path is a unqiue path for this build request
        # and generally where the logs are expected to be placed
        destination_path = '/'.join([item.change.getBasePath(),
                                     pipeline.name, job.name, uuid[:7]])
        params['BASE_LOG_PATH'] = item.change.getBasePath()
        params['LOG_PATH'] = destination_path

        # Allow the job to update the params (updateBuildParams, no swift)
        if callable(job.parameter_function):
            job.parameter_function(item, job, params)

        if 'ZUUL_NODE' in params:
            name = "build:%s:%s" % (job.name, params['ZUUL_NODE'])
        else:
            name = "build:%s" % job.name
        build = Build(job, uuid)
        build.parameters = params

        if job.name == 'noop':
            build.result = 'SUCCESS'
            self.sched.onBuildCompleted(build)
            return build

        gearman_job = gear.Job(name, json.dumps(params),
                               unique=uuid)
        build.__gearman_job = gearman_job
        self.builds[uuid] = build

        if not self.isJobRegistered(gearman_job.name):
            self.onBuildCompleted(gearman_job, 'NOT_REGISTERED')
            return build

        if pipeline.precedence == PRECEDENCE_NORMAL:
            precedence = gear.PRECEDENCE_NORMAL
        elif pipeline.precedence == PRECEDENCE_HIGH:
            precedence = gear.PRECEDENCE_HIGH
        elif pipeline.precedence == PRECEDENCE_LOW:
            precedence = gear.PRECEDENCE_LOW

        try:
            self.gearman.submitJob(gearman_job, precedence=precedence,
                                   timeout=300)
        except Exception:
            self.onBuildCompleted(gearman_job, 'EXCEPTION')
            return build

        if not gearman_job.handle:
            self.onBuildCompleted(gearman_job, 'NO_HANDLE')

        return build

    def cancel(self, build):
        build.canceled = True
        try:
            job = build.__gearman_job  # noqa
        except AttributeError:
            return

        if build.number is not None:
            self.cancelRunningBuild(build)
            return

        if self.cancelJobInQueue(build):
            return

        time.sleep(1)

        if build.number:
            self.cancelRunningBuild(build)
            return

    def onBuildCompleted(self, job, result=None):
        if job.unique in self.meta_jobs:
            del self.meta_jobs[job.unique]
            return

        build = self.builds.get(job.unique)
        if build:
            data = getJobData(job)
            build.node_labels = data.get('node_labels', [])
            build.node_name = data.get('node_name')
            if not build.canceled:
                if result is None:
                    result = data.get('result')
                if result is None:
                    build.retry = True
                build.result = result
                self.sched.onBuildCompleted(build)
            # The test suite expects the build to be removed from the
            # internal dict after it's added to the report queue.
            del self.builds[job.unique]

    def onWorkStatus(self, job):
        data = getJobData(job)
        build = self.builds.get(job.unique)
        if build:
            # Allow URL to be updated
            build.url = data.get('url') or build.url
            # Update information about worker
            build.worker.updateFromData(data)

            if build.number is None:
                build.number = data.get('number')
                build.__gearman_manager = data.get('manager')
                self.sched.onBuildStarted(build)

            if job.denominator:
                build.estimated_time = float(job.denominator) / 1000

    def cancelJobInQueue(self, build):
        job = build.__gearman_job

        req = gear.CancelJobAdminRequest(job.handle)
        job.connection.sendAdminRequest(req, timeout=300)
        if req.response.startswith("OK"):
            try:
                del self.builds[job.unique]
            except KeyError:
                pass
            return True
        return False

    def cancelRunningBuild(self, build):
        stop_uuid = str(uuid4().hex)
        data = dict(name=build.job.name,
                    number=build.number)
        stop_job = gear.Job("stop:%s" % build.__gearman_manager,
                            json.dumps(data), unique=stop_uuid)
        self.meta_jobs[stop_uuid] = stop_job
        self.meta_submitted.append(stop_job)  # test
        self.gearman.submitJob(stop_job, precedence=gear.PRECEDENCE_HIGH,
                               timeout=300)
        return True

    def setBuildDescription(self, build, desc):
        try:
            name = "set_description:%s" % build.__gearman_manager
        except AttributeError:
            # We haven't yet received the first data packet that tells
            # us where the job is running.
            return False

        if not self.isJobRegistered(name):
            return False

        desc_uuid = str(uuid4().hex)
        data = dict(name=build.job.name,
                    number=build.number,
                    html_description=desc)
        desc_job = gear.Job(name, json.dumps(data), unique=desc_uuid)
        self.meta_jobs[desc_uuid] = desc_job
        self.meta_submitted.append(desc_job)  # test
        self.gearman.submitJob(desc_job, precedence=gear.PRECEDENCE_LOW,
                               timeout=300)
        return True


def single_use_node(item, job, params):
    """OpenStack's layout parameter function for single-use (nodepool) nodes."""
    params['OFFLINE_NODE_WHEN_COMPLETE'] = '1'
