"""marathon-python 0.13 (PyPI `marathon`) against framework, end to end: every client method
that maps to an endpoint framework serves. Run by tests/clients.rs with the API's URL as the
only argument; exits non-zero (with the traceback) at the first call that fails or answers
other than Marathon would."""

import collections
import collections.abc
import sys
import time

# marathon-python 0.13 predates Python 3.10, which moved `collections.Iterable` to
# `collections.abc`; its JSON encoder still looks for it there. The one shim it needs.
collections.Iterable = collections.abc.Iterable

from marathon import MarathonClient, MarathonHttpError, NotFoundError
from marathon.models import MarathonApp, MarathonGroup, MarathonInfo
from marathon.models.constraint import MarathonConstraint
from marathon.models.events import MarathonDeploymentSuccess

url = sys.argv[1]
c = MarathonClient(url)
WAIT = 60


def until(what, check):
    deadline = time.time() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def settled(app_id, n):
    def check():
        app = c.get_app(app_id, embed_tasks=True)
        running = [t for t in app.tasks if t.state == "TASK_RUNNING"]
        return app if len(running) == n and len(app.tasks) == n and not app.deployments else None
    return until(f"{app_id} at {n} running tasks", check)


def step(name):
    print(f"-- {name}", flush=True)


step("ping, info, leader")
assert c.ping().strip() == b"pong", c.ping()
info = c.get_info()
assert isinstance(info, MarathonInfo) and info.framework_id, info
assert c.get_leader()["leader"], c.get_leader()

step("metrics")
metrics = c.get_metrics()
assert {"counters", "gauges", "histograms", "meters", "timers"} <= set(metrics), metrics
assert "marathon.apps.active.gauge" in metrics["gauges"], metrics["gauges"]

step("create, get, list apps")
app = MarathonApp(cmd="sleep 1000", cpus=0.01, mem=16, instances=1,
                  constraints=[MarathonConstraint("hostname", "LIKE", ".*")], labels={"team": "py"})
created = c.create_app("/py/web", app)
assert created.id == "/py/web", created
assert c.get_app("/py/web").labels == {"team": "py"}
assert "/py/web" in [a.id for a in c.list_apps()]
assert [a.id for a in c.list_apps(app_id="/py")] == ["/py/web"], c.list_apps(app_id="/py")
assert [a.id for a in c.list_apps(label="team==py")] == ["/py/web"]
assert c.list_apps(cmd="sleep 1000", embed_counts=True)[0].tasks_running is not None
settled("/py/web", 1)
try:
    c.create_app("/py/web", app)
    raise AssertionError("a second create of one id must fail")
except MarathonHttpError as e:
    assert e.status_code == 409, e

step("scale, tasks, kill")
c.scale_app("/py/web", instances=3)
settled("/py/web", 3)
c.scale_app("/py/web", delta=-1)
settled("/py/web", 2)
tasks = c.list_tasks("/py/web")
assert len(tasks) == 2 and all(t.app_id == "/py/web" for t in tasks), tasks
assert len([t for t in c.list_tasks() if t.app_id == "/py/web"]) == 2
victim = tasks[0].id
c.kill_task("/py/web", victim)
until("the killed task replaced", lambda: victim not in [t.id for t in c.list_tasks("/py/web")] and len(c.list_tasks("/py/web")) == 2)
victim = c.list_tasks("/py/web")[0].id
c.kill_given_tasks([victim], scale=True)
settled("/py/web", 1)
c.kill_tasks("/py/web", scale=False)
until("a replacement after kill_tasks", lambda: len(c.list_tasks("/py/web")) == 1)

step("update, versions, rollback, restart")
before = c.list_versions("/py/web")
c.update_app("/py/web", MarathonApp(cmd="sleep 2000", cpus=0.01, mem=16, instances=1))
until("the update", lambda: c.get_app("/py/web").cmd == "sleep 2000" and not c.get_app("/py/web").deployments)
versions = c.list_versions("/py/web")
assert len(versions) == len(before) + 1, (before, versions)
first = c.get_version("/py/web", versions[-1])
assert first.cmd == "sleep 1000", first
c.rollback_app("/py/web", versions[-1])
until("the rollback", lambda: c.get_app("/py/web").cmd == "sleep 1000" and not c.get_app("/py/web").deployments)
old = {t.id for t in c.list_tasks("/py/web")}
c.restart_app("/py/web")
until("the restart", lambda: {t.id for t in c.list_tasks("/py/web")}.isdisjoint(old) and len(c.list_tasks("/py/web")) == 1)
c.update_apps([MarathonApp(id="/py/web", instances=2)])
settled("/py/web", 2)

step("deployments and the queue")
c.update_app("/py/slow", MarathonApp(cmd="sleep 1000", cpus=1000, mem=16, instances=1))
deployments = until("a deployment", lambda: [d for d in c.list_deployments() if "/py/slow" in d.affected_apps])
assert isinstance(c.list_queue(), list)
assert any(q.app.id == "/py/slow" for q in c.list_queue()), c.list_queue()
c.reset_delay("/py/slow")
c.delete_deployment(deployments[0].id, force=True)
until("the deployment gone", lambda: not [d for d in c.list_deployments() if d.id == deployments[0].id])
c.delete_app("/py/slow", force=True)

step("groups")
group = MarathonGroup(id="/pyg", apps=[MarathonApp(id="/pyg/a", cmd="sleep 1000", cpus=0.01, mem=16, instances=1)])
c.create_group(group)
until("the group's app", lambda: settled("/pyg/a", 1))
g = c.get_group("/pyg")
assert [a.id for a in g.apps] == ["/pyg/a"], g
assert "/pyg" in [x.id for x in c.list_groups()]
c.scale_group("/pyg", 2)
settled("/pyg/a", 2)
c.update_group("/pyg", MarathonGroup(id="/pyg", apps=[MarathonApp(id="/pyg/a", cmd="sleep 3000", cpus=0.01, mem=16, instances=1)]))
until("the group update", lambda: c.get_app("/pyg/a").cmd == "sleep 3000" and not c.get_app("/pyg/a").deployments)
c.delete_group("/pyg", force=True)
until("the group gone", lambda: "/pyg" not in [x.id for x in c.list_groups()])
try:
    c.get_group("/pyg")
    raise AssertionError("a deleted group must be 404")
except NotFoundError:
    pass

step("events")
stream = c.event_stream(event_types=[MarathonDeploymentSuccess])
c.scale_app("/py/web", instances=1)
event = next(stream)
assert isinstance(event, MarathonDeploymentSuccess), event

step("delete")
c.delete_app("/py/web", force=True)
until("the app gone", lambda: "/py/web" not in [a.id for a in c.list_apps()])
try:
    c.get_app("/py/web")
    raise AssertionError("a deleted app must be 404")
except NotFoundError:
    pass
print("marathon-python: all calls answered as Marathon's", flush=True)
