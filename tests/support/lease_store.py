"""An in-process stand-in for the Kubernetes API server, for Lease objects and Events only.

No real API server can run on this machine: there is no kube-apiserver, k3s, kind or
envtest binary in the package registries and no container runtime. So leader election is
tested against this store instead, served over HTTP on a free loopback port so the real
`kubernetes` client talks to it exactly as it would to a cluster. It implements the API's
semantics for the one object the election uses, as the generic registry does for Leases:
GET of an absent Lease is 404; POST of an existing one is 409 AlreadyExists; PUT must carry
the current `metadata.resourceVersion` (missing: 422 Invalid; stale: 409 Conflict) and
creates the Lease when absent (Leases allow create-on-update); every write bumps the
resourceVersion; MicroTime fields must have exactly six fractional digits, as the server's
parser demands; errors are `Status` objects. It also accepts POSTed core/v1 Events and keeps
them in `events` for assertions. `outage` makes every request fail with 503, to exercise
the renew deadline. Anything else (watch, patch, list options, admission, RBAC) is absent.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LEASES = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/]+))?$")
EVENTS = re.compile(r"^/api/v1/namespaces/([^/]+)/events$")
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
LEASE_GR = "leases.coordination.k8s.io"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str = "",
                 kind: str = "leases", group: str = "coordination.k8s.io") -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = {"name": name, "group": group, "kind": kind} if name else None

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": self.message,
                                "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(value: Any, field: str) -> str:
    """Parse as the server's MicroTime does, then re-render it in UTC, as the server does."""
    if not isinstance(value, str) or not MICRO_TIME.match(value):
        raise ApiError(400, "BadRequest",
                       f'Lease in version "v1" cannot be handled as a Lease: {field}: parsing '
                       f'time {json.dumps(value)} as "2006-01-02T15:04:05.000000Z07:00": '
                       "cannot parse")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseStore:
    """The state and the API rules, independent of HTTP."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._rv = itertools.count(1000)

    def get(self, ns: str, name: str) -> dict[str, Any]:
        with self.lock:
            if (ns, name) not in self.leases:
                raise ApiError(404, "NotFound", f'{LEASE_GR} "{name}" not found', name)
            return copy.deepcopy(self.leases[(ns, name)])

    def create(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        name = self._check(ns, body, "Lease", "coordination.k8s.io/v1")
        with self.lock:
            if (ns, name) in self.leases:
                raise ApiError(409, "AlreadyExists", f'{LEASE_GR} "{name}" already exists', name)
            return self._store(ns, name, body, created=None)

    def replace(self, ns: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        given = self._check(ns, body, "Lease", "coordination.k8s.io/v1")
        if given != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({given}) does not "
                           f"match the name on the URL ({name})")
        with self.lock:
            old = self.leases.get((ns, name))
            if old is None:  # Leases allow create-on-update
                return 201, self._store(ns, name, body, created=None)
            rv = body["metadata"].get("resourceVersion")
            if not rv:
                raise ApiError(422, "Invalid", f'{LEASE_GR} "{name}" is invalid: metadata.'
                               "resourceVersion: Invalid value: 0x0: must be specified for "
                               "an update", name)
            if rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {LEASE_GR} '
                               f'"{name}": the object has been modified; please apply your '
                               "changes to the latest version and try again", name)
            return 200, self._store(ns, name, body, created=old)

    def add_event(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        name = self._check(ns, body, "Event", "v1")
        involved = body.get("involvedObject") or {}
        if involved.get("namespace", ns) != ns:
            raise ApiError(422, "Invalid", f'Event "{name}" is invalid: involvedObject.'
                           "namespace: Invalid value: does not match event.namespace", name,
                           kind="events", group="")
        for field in ("firstTimestamp", "lastTimestamp"):
            value = body.get(field)
            if value is not None and not (isinstance(value, str) and TIME.match(value)):
                raise ApiError(400, "BadRequest", f"{field}: cannot parse {value!r} as RFC3339")
        with self.lock:
            event = copy.deepcopy(body)
            event.update(apiVersion="v1", kind="Event")
            event["metadata"].update(namespace=ns, uid=str(uuid.uuid4()),
                                     resourceVersion=str(next(self._rv)),
                                     creationTimestamp=_now())
            self.events.append(event)
            return copy.deepcopy(event)

    @staticmethod
    def _check(ns: str, body: dict[str, Any], kind: str, api_version: str) -> str:
        for key, want in (("kind", kind), ("apiVersion", api_version)):
            if body.get(key) not in (None, "", want):
                raise ApiError(400, "BadRequest", f"{key} {body.get(key)!r} is not {want!r}")
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise ApiError(422, "Invalid", f"{kind} is invalid: metadata.name: Required value:"
                           " name or generateName is required")
        if meta.get("namespace") not in (None, "", ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        return str(meta["name"])

    def _store(self, ns: str, name: str, body: dict[str, Any],
               created: dict[str, Any] | None) -> dict[str, Any]:
        spec = dict(body.get("spec") or {})
        for field in ("acquireTime", "renewTime"):
            if spec.get(field) is not None:
                spec[field] = _micro(spec[field], f"spec.{field}")
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            raise ApiError(422, "Invalid", f'{LEASE_GR} "{name}" is invalid: spec.'
                           f"leaseDurationSeconds: Invalid value: {duration}: must be greater "
                           "than 0", name)
        if spec.get("leaseTransitions", 0) < 0:
            raise ApiError(422, "Invalid", f'{LEASE_GR} "{name}" is invalid: spec.'
                           "leaseTransitions: must be greater than or equal to 0", name)
        meta = {"name": name, "namespace": ns,
                "uid": created["metadata"]["uid"] if created else str(uuid.uuid4()),
                "resourceVersion": str(next(self._rv)),
                "creationTimestamp": created["metadata"]["creationTimestamp"] if created
                else _now()}
        for key in ("labels", "annotations"):
            if body["metadata"].get(key):
                meta[key] = body["metadata"][key]
        lease = {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": meta,
                 "spec": spec}
        self.leases[(ns, name)] = lease
        return copy.deepcopy(lease)


class _Handler(BaseHTTPRequestHandler):
    server: LeaseStoreServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        store = self.server.store
        path = self.path.split("?", 1)[0]
        try:
            if self.server.outage:
                raise ApiError(503, "ServiceUnavailable", "the server is currently unable to "
                               "handle the request")
            lease, event = LEASES.match(path), EVENTS.match(path)
            if lease and method == "GET" and lease.group(2):
                code, body = 200, store.get(lease.group(1), lease.group(2))
            elif lease and method == "POST" and not lease.group(2):
                code, body = 201, store.create(lease.group(1), self._body())
            elif lease and method == "PUT" and lease.group(2):
                code, body = store.replace(lease.group(1), lease.group(2), self._body())
            elif event and method == "POST":
                code, body = 201, store.add_event(event.group(1), self._body())
            elif lease or event:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource")
        except ApiError as exc:
            code, body = exc.code, exc.status()
        self.server.requests.append((method, path, code))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body is not a JSON object")
        return body


class LeaseStoreServer(ThreadingHTTPServer):
    """`with LeaseStoreServer() as api:` serves `api.store` at `api.url` until the block ends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store = LeaseStore()
        self.outage = False
        self.requests: list[tuple[str, str, int]] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> LeaseStoreServer:
        self._thread = threading.Thread(target=self.serve_forever, name="lease-store",
                                         daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> LeaseStoreServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
