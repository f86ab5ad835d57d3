"""nodepool v0's demand computation (nodepool/nodepool.py GearmanClient.getNeededWorkers),
over gearproto: which node labels are needed, and how many, from gearmand's
admin `status` (gearman-plugin.md §8.2).

For every function starting with `build:` the total count (queued + running:
nodepool subtracts the running nodes elsewhere) is demand; for `build:X:Y`
it is demand for label Y; the count of a plain `build:X` is charged to the
first label seen registered as `build:X:*`, or to nothing when there is none.
"""
import gearproto as gear


def getNeededWorkers(client):
    needed_workers = {}
    job_worker_map = {}
    unspecified_jobs = {}
    for connection in client.active_connections:
        try:
            req = gear.StatusAdminRequest()
            connection.sendAdminRequest(req, timeout=300)
        except Exception:
            continue
        for line in req.response.split('\n'):
            parts = [x.strip() for x in line.split('\t')]
            # parts[0] - function name
            # parts[1] - total jobs queued (including building)
            # parts[2] - jobs building
            # parts[3] - workers registered
            if not parts or parts[0] == '.':
                continue
            if not parts[0].startswith('build:'):
                continue
            function = parts[0][len('build:'):]
            try:
                queued = int(parts[1])
            except ValueError:
                queued = 0
            if ':' in function:
                fparts = function.split(':')
                # fparts[0] - function name
                # fparts[1] - target node [type]
                job = fparts[-2]
                worker = fparts[-1]
                workers = job_worker_map.get(job, [])
                workers.append(worker)
                job_worker_map[job] = workers
                if queued > 0:
                    needed_workers[worker] = (
                        needed_workers.get(worker, 0) + queued)
            elif queued > 0:
                job = function
                unspecified_jobs[job] = (unspecified_jobs.get(job, 0) +
                                         queued)
    for job, queued in unspecified_jobs.items():
        workers = job_worker_map.get(job)
        if not workers:
            continue
        worker = workers[0]
        needed_workers[worker] = (needed_workers.get(worker, 0) +
                                  queued)
    return needed_workers
