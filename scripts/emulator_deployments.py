"""ECS service deployments for the emulator: moto implements none of ListServiceDeployments,
DescribeServiceDeployments, DescribeServiceRevisions or StopServiceDeployment, which rollback_service
and notify_human's likely cause read, so the demo and the built binaries could not run them.

A service deployment is kept for every CreateService, and for every UpdateService that changes the
task definition (which also gets a new primary deployment id, as in ECS) or forces a new deployment: its source revision is the one the service ran, its
target the one it runs now. moto has no rollout, so each is SUCCESSFUL at once, and
StopServiceDeployment answers ConflictException as ECS does for a finished deployment. The answers
have the shapes of the AWS API reference; the Rust tests of those paths stand on aws-smithy-mocks
(actions/lambda/incident-rollback-service/tests), not on this.

Test infrastructure only: nothing in the functions knows it exists.
"""
import datetime
import itertools

from moto.core.responses import ActionResult
from moto.ecs.exceptions import ServiceNotFoundException
from moto.ecs.responses import EC2ContainerServiceResponse

_ids = itertools.count(1)
STOPPABLE = {"PENDING", "IN_PROGRESS"}


def _store(backend):
    if not hasattr(backend, "emulator_deployments"):
        backend.emulator_deployments = {"deployments": [], "revisions": {}}
    return backend.emulator_deployments


def _arn(backend, kind, cluster, service, ident):
    return f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:{kind}/{cluster}/{service}/{ident}"


def _revision(backend, service, task_definition, now):
    """The service's revision running `task_definition`: the one it already has, else a new one."""
    store, cluster = _store(backend), service.cluster_arn.rsplit("/", 1)[-1]
    for arn, revision in reversed(store["revisions"].items()):
        if revision["serviceArn"] == service.arn and revision["taskDefinition"] == task_definition:
            return arn
    arn = _arn(backend, "service-revision", cluster, service.name, f"{next(_ids):020d}")
    store["revisions"][arn] = {"serviceRevisionArn": arn, "serviceArn": service.arn, "clusterArn": service.cluster_arn,
                               "taskDefinition": task_definition, "createdAt": now}
    return arn


def _summary(arn, count):
    return {"arn": arn, "requestedTaskCount": count, "runningTaskCount": count, "pendingTaskCount": 0}


def record(backend, service, source_task_definition):
    """A finished deployment of the service from `source_task_definition` (None: its first) to what it runs now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    cluster = service.cluster_arn.rsplit("/", 1)[-1]
    target = _revision(backend, service, service.task_definition, now)
    sources = [_summary(_revision(backend, service, source_task_definition, now), service.desired_count)] \
        if source_task_definition else []
    _store(backend)["deployments"].append({
        "serviceDeploymentArn": _arn(backend, "service-deployment", cluster, service.name, f"emu{next(_ids):012d}"),
        "serviceArn": service.arn, "clusterArn": service.cluster_arn, "createdAt": now, "startedAt": now,
        "finishedAt": now, "status": "SUCCESSFUL", "sourceServiceRevisions": sources,
        "targetServiceRevision": _summary(target, service.desired_count)})


def _service_of(response):
    cluster = response._get_param("cluster", "default").rsplit("/", 1)[-1]
    return response.ecs_backend._get_service(cluster, response._get_param("service").rsplit("/", 1)[-1])


def install():
    """Adds the four operations to moto's ECS, and the history to CreateService and UpdateService."""
    create, update = EC2ContainerServiceResponse.create_service, EC2ContainerServiceResponse.update_service

    def create_service(self):
        result = create(self)
        cluster = self._get_param("cluster", "default").rsplit("/", 1)[-1]
        record(self.ecs_backend, self.ecs_backend._get_service(cluster, self._get_param("serviceName")), None)
        return result

    def update_service(self):
        try:
            before = _service_of(self).task_definition
        except ServiceNotFoundException:
            return update(self)
        service = _service_of(self)
        result = update(self)
        if service.task_definition != before and service.deployments:
            # ECS starts a new deployment for a new task definition; moto does only when forced.
            now = datetime.datetime.now(datetime.timezone.utc)
            service.deployments[0].update({"id": f"ecs-svc/{next(_ids):019d}", "createdAt": now, "updatedAt": now,
                                           "taskDefinition": service.task_definition})
        if service.task_definition != before or self._get_param("forceNewDeployment"):
            record(self.ecs_backend, service, before)
        return result

    def list_service_deployments(self):
        service = _service_of(self)
        after = (self._get_param("createdAt") or {}).get("after")
        after = after.timestamp() if isinstance(after, datetime.datetime) else after  # moto parses it, or not
        listed = [d for d in _store(self.ecs_backend)["deployments"] if d["serviceArn"] == service.arn
                  and (after is None or d["createdAt"].timestamp() > float(after))]
        briefs = [{k: d[k] for k in ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "startedAt",
                                     "finishedAt", "status")} | {"targetServiceRevisionArn": d["targetServiceRevision"]["arn"]}
                  for d in listed]
        return ActionResult({"serviceDeployments": briefs})

    def describe_service_deployments(self):
        wanted = self._get_param("serviceDeploymentArns") or []
        found = [d for d in _store(self.ecs_backend)["deployments"] if d["serviceDeploymentArn"] in wanted]
        known = {d["serviceDeploymentArn"] for d in found}
        failures = [{"arn": a, "reason": "MISSING"} for a in wanted if a not in known]
        return ActionResult({"serviceDeployments": found, "failures": failures})

    def describe_service_revisions(self):
        wanted, revisions = self._get_param("serviceRevisionArns") or [], _store(self.ecs_backend)["revisions"]
        return ActionResult({"serviceRevisions": [revisions[a] for a in wanted if a in revisions],
                             "failures": [{"arn": a, "reason": "MISSING"} for a in wanted if a not in revisions]})

    def stop_service_deployment(self):
        from moto.core.exceptions import JsonRESTError
        arn = self._get_param("serviceDeploymentArn")
        found = [d for d in _store(self.ecs_backend)["deployments"] if d["serviceDeploymentArn"] == arn]
        if not found or found[0]["status"] not in STOPPABLE:
            raise JsonRESTError("ConflictException", "The service deployment is not in progress")
        found[0]["status"] = "ROLLBACK_REQUESTED"
        return ActionResult({"serviceDeploymentArn": arn})

    for name, method in [("create_service", create_service), ("update_service", update_service),
                         ("list_service_deployments", list_service_deployments),
                         ("describe_service_deployments", describe_service_deployments),
                         ("describe_service_revisions", describe_service_revisions),
                         ("stop_service_deployment", stop_service_deployment)]:
        setattr(EC2ContainerServiceResponse, name, method)
