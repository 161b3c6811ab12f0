"""Worker Deployment versions: which build new workflow runs go to (``relayflow deployment``).

For any application whose worker runs versioned (``worker_deployment_name``
and ``worker_build_id`` set; ``docs/operating/safe-deploys.md``). The calls
are Temporal's own (``DescribeWorkerDeployment`` and
``SetWorkerDeploymentCurrentVersion`` of the workflow service, what
``temporal worker deployment describe|set-current-version`` sends), so they
mean what the server documents: after ``promote``, new runs and the next
workflow task of every auto-upgrade run go to the promoted build; a pinned
run stays on the build it started on until it closes. A version is
``draining`` while pinned runs still need it and ``drained`` when none do:
then its workers can be stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from relayflow.config.settings import Settings
from relayflow.operate.deadlines import (
    BadInput,
    NotFound,
    OperatorError,
    connected_temporal,
    temporal_answers,
)

__all__ = [
    "DeploymentRefused",
    "DeploymentState",
    "DeploymentVersion",
    "Promotion",
    "deployment_state",
    "promote",
]

IDENTITY = "relayflow deployment promote"


class DeploymentRefused(OperatorError):
    """Temporal refused the change (e.g. no worker of that build polled); its answer says why."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class DeploymentVersion:
    """One build of a Worker Deployment, as Temporal describes it.

    Attributes:
        build_id: The build's id (``worker_build_id``).
        status: ``current``, ``ramping``, ``draining`` (pinned runs still on
            it), ``drained`` (none: its workers can stop), ``inactive`` (never
            current) or ``unknown``.
    """

    build_id: str
    status: str


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """A Worker Deployment: its current build and every build Temporal knows.

    Attributes:
        name: The deployment's name.
        current_build_id: The build new runs go to ("" when none is current).
        versions: Every build with a worker that polled, newest first.
    """

    name: str
    current_build_id: str
    versions: list[DeploymentVersion]

    def as_json(self) -> dict[str, Any]:
        """For ``--output json``."""
        return {"name": self.name, "current_build_id": self.current_build_id,
                "versions": [{"build_id": v.build_id, "status": v.status}
                             for v in self.versions]}


@dataclass(frozen=True, slots=True)
class Promotion:
    """A build made current.

    Attributes:
        deployment: The deployment's name.
        build_id: The build now current.
        previous_build_id: The build current before ("" when none was).
    """

    deployment: str
    build_id: str
    previous_build_id: str

    def as_line(self) -> str:
        """One line for people."""
        before = self.previous_build_id or "none"
        return (f"build {self.build_id} of worker deployment {self.deployment} is current "
                f"(was {before}): new runs and auto-upgrade runs go to it, pinned runs stay")


_STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CREATED: "inactive",
}


def _deployment(settings: Settings, deployment: str | None) -> str:
    name = deployment or settings.worker_deployment_name
    if not name:
        raise BadInput("no worker deployment named: give --deployment or set "
                       "RELAYFLOW_WORKER_DEPLOYMENT_NAME")
    return name


async def _describe(client: Client, settings: Settings, name: str) -> DeploymentState:
    try:
        answer = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=settings.temporal_namespace,
                                            deployment_name=name))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no worker deployment {name!r}: no versioned worker of it "
                           "has polled yet") from None
        raise
    info = answer.worker_deployment_info
    summaries = sorted(info.version_summaries, key=lambda v: v.create_time.ToDatetime(),
                       reverse=True)
    return DeploymentState(
        name=name,
        current_build_id=info.routing_config.current_deployment_version.build_id,
        versions=[DeploymentVersion(
            build_id=v.deployment_version.build_id,
            status=_STATUS.get(v.status, "unknown")) for v in summaries])


async def deployment_state(settings: Settings, deployment: str | None = None, *,
                           seconds: float) -> DeploymentState:
    """The current build of ``deployment`` (default ``worker_deployment_name``) and its builds.

    Raises:
        BadInput: No deployment named, none configured.
        NotFound: Temporal knows no such deployment.
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """
    name = _deployment(settings, deployment)
    client = await connected_temporal(settings, seconds)
    async with temporal_answers(settings, seconds):
        return await _describe(client, settings, name)


async def promote(settings: Settings, build_id: str, deployment: str | None = None, *,
                  seconds: float) -> Promotion:
    """Make ``build_id`` the current build of ``deployment`` (default ``worker_deployment_name``).

    Temporal refuses a build none of whose workers has polled yet: start the
    new build's workers first, then promote it.

    Raises:
        BadInput: No deployment named, none configured.
        DeploymentRefused: Temporal refused (its message says why).
        relayflow.operate.deadlines.Unanswered: Temporal did not answer.
    """
    name = _deployment(settings, deployment)
    client = await connected_temporal(settings, seconds)
    async with temporal_answers(settings, seconds):
        try:
            answer = await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=settings.temporal_namespace, deployment_name=name,
                    build_id=build_id, identity=IDENTITY))
        except RPCError as error:
            if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION,
                                RPCStatusCode.INVALID_ARGUMENT):
                raise DeploymentRefused(f"Temporal refused to make build {build_id} of "
                                        f"{name} current: {error.message}") from None
            raise
    return Promotion(deployment=name, build_id=build_id,
                     previous_build_id=answer.previous_deployment_version.build_id)
