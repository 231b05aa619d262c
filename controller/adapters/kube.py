"""The Kubernetes adapter: the only module that imports the `kubernetes` client.

It does two small things for the controller in a cluster: read, create and replace the
`coordination.k8s.io/v1` Lease that `controller/leader.py` campaigns for (implementing its
`LeaseStore` port), and create core/v1 Events so `kubectl get events` shows promotions.
Client errors become the project's errors here, with the cause chained: 404 is
`LeaseNotFound`, 409 is `LeaseConflict`, anything else `LeaseError` (or `KubeError` for
events), so callers never see an `ApiException`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from mlflow_gitops.core.errors import (
    ConfigError,
    KubeError,
    LeaseConflict,
    LeaseError,
    LeaseNotFound,
)
from mlflow_gitops.loop.leader import LeaseRecord
from urllib3.exceptions import HTTPError

COMPONENT = "mlflow-gitops"
#: The leader's address for forwarded triggers, kept on the Lease (loop.leader.LeaseRecord).
LEADER_URL_ANNOTATION = "mlflow-gitops.io/leader-url"
REQUEST_TIMEOUT = 5.0  # seconds; the elector retries, so a hung call must not hold it long


def api_client(host: str | None = None, kubeconfig: str | None = None) -> client.ApiClient:
    """An API client for an explicit host (tests), else in-cluster config, else kubeconfig."""
    if host is not None:
        return client.ApiClient(client.Configuration(host=host))
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        except (ConfigException, OSError) as exc:
            raise ConfigError(
                "cannot reach Kubernetes for leader election: not running in a Pod and no "
                f"usable kubeconfig ({exc}); run without --leader-elect outside a cluster"
            ) from exc
    return client.ApiClient(configuration)


def micro_time(value: datetime) -> datetime:
    """A UTC instant the API server accepts as a MicroTime.

    The server parses MicroTime with exactly six fractional digits, but the client sends
    `datetime.isoformat()`, which drops the fraction when it is zero; nudging such an
    instant by one microsecond keeps the fraction on the wire."""
    if value.tzinfo is None:
        value = value.astimezone()
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=1) if value.microsecond == 0 else value


def _status(exc: ApiException) -> str:
    return f"HTTP {exc.status} {exc.reason or ''}".strip()


class KubeLeaseStore:
    """One Lease (`namespace`/`name`) through `CoordinationV1Api`: the `LeaseStore` port."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.api = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.timeout = request_timeout

    @property
    def where(self) -> str:
        return f"lease {self.namespace}/{self.name}"

    def read(self) -> LeaseRecord:
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout)
        except (ApiException, HTTPError) as exc:
            raise self._wrap(exc, "read") from exc
        return self._record(lease)

    def create(self, record: LeaseRecord) -> LeaseRecord:
        body = client.V1Lease(
            api_version="coordination.k8s.io/v1", kind="Lease",
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace,
                                         annotations=self._annotations(record)),
            spec=self._spec(record))
        try:
            lease = self.api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.timeout)
        except (ApiException, HTTPError) as exc:
            raise self._wrap(exc, "create") from exc
        return self._record(lease)

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        body = client.V1Lease(
            api_version="coordination.k8s.io/v1", kind="Lease",
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace,
                                         resource_version=record.resource_version,
                                         annotations=self._annotations(record)),
            spec=self._spec(record))
        try:
            lease = self.api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.timeout)
        except (ApiException, HTTPError) as exc:
            raise self._wrap(exc, "replace") from exc
        return self._record(lease)

    def _wrap(self, exc: ApiException | HTTPError, verb: str) -> LeaseError:
        if not isinstance(exc, ApiException):
            return LeaseError(f"cannot {verb} {self.where}: API server unreachable ({exc})")
        if exc.status == 404:
            return LeaseNotFound(f"{self.where} does not exist")
        if exc.status == 409:
            return LeaseConflict(f"cannot {verb} {self.where}: another writer got there first")
        if exc.status in (401, 403):
            return LeaseError(
                f"cannot {verb} {self.where}: {_status(exc)}; check the Role in "
                "manifests/base/role.yaml grants leases get/create/update in this namespace")
        return LeaseError(f"cannot {verb} {self.where}: {_status(exc)}")

    @staticmethod
    def _annotations(record: LeaseRecord) -> dict[str, str]:
        return {LEADER_URL_ANNOTATION: record.holder_url} if record.holder_url else {}

    @staticmethod
    def _spec(record: LeaseRecord) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=record.holder,
            lease_duration_seconds=record.lease_duration_seconds,
            acquire_time=micro_time(record.acquire_time) if record.acquire_time else None,
            renew_time=micro_time(record.renew_time) if record.renew_time else None,
            lease_transitions=record.transitions)

    @staticmethod
    def _record(lease: client.V1Lease) -> LeaseRecord:
        spec = lease.spec or client.V1LeaseSpec()
        return LeaseRecord(
            holder=spec.holder_identity or "",
            lease_duration_seconds=spec.lease_duration_seconds or 0,
            acquire_time=spec.acquire_time,
            renew_time=spec.renew_time,
            transitions=spec.lease_transitions or 0,
            resource_version=lease.metadata.resource_version if lease.metadata else None,
            holder_url=((lease.metadata.annotations or {}).get(LEADER_URL_ANNOTATION, "")
                        if lease.metadata else ""))


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about, such as the controller's own Pod or its ConfigMap."""

    kind: str
    name: str
    namespace: str
    api_version: str = "v1"
    uid: str | None = None


class EventRecorder:
    """Creates core/v1 Events in one namespace, as `source.component: mlflow-gitops`."""

    def __init__(self, api: client.ApiClient, namespace: str, instance: str = "",
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.api = client.CoreV1Api(api)
        self.namespace = namespace
        self.instance = instance
        self.timeout = request_timeout

    def emit_event(self, involved: ObjectRef, reason: str, message: str,
                   event_type: str = "Normal") -> None:
        """Record one Event on `involved` (event_type "Normal" or "Warning")."""
        now = datetime.now(timezone.utc)
        event = client.CoreV1Event(
            api_version="v1", kind="Event",
            metadata=client.V1ObjectMeta(name=f"{involved.name}.{time.time_ns():x}",
                                         namespace=self.namespace),
            involved_object=client.V1ObjectReference(
                api_version=involved.api_version, kind=involved.kind, name=involved.name,
                namespace=involved.namespace, uid=involved.uid),
            reason=reason, message=message[:1024], type=event_type,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT, reporting_instance=self.instance or None,
            first_timestamp=now, last_timestamp=now, count=1)
        try:
            self.api.create_namespaced_event(self.namespace, event,
                                             _request_timeout=self.timeout)
        except (ApiException, HTTPError) as exc:
            detail = _status(exc) if isinstance(exc, ApiException) else str(exc)
            raise KubeError(f"cannot create Event {reason} on {involved.kind} "
                            f"{involved.namespace}/{involved.name}: {detail}") from exc
