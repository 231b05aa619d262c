"""The kustomize manifests as `kubectl kustomize` renders them: schema-valid for one
pinned Kubernetes version, offline, and holding the deployment's security promises."""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
# The oldest Kubernetes minor still commonly run; kubernetes-validate ships schemas for
# 1.25-1.37 inside the package, so this needs no network.
K8S_VERSION = "1.30"
NAMESPACE = "mlflow-gitops"
TREES = ["", "base", "overlays/example", "overlays/prometheus"]
COMPONENTS = ["prometheus", "alerts", "dashboard"]
#: Every overlay with every combination of the components (docs/deployment.md documents
#: listing any of them under `components:` of any overlay).
COMBINATIONS = [(tree, combo) for tree in ("base", "overlays/example")
                for n in range(1, len(COMPONENTS) + 1)
                for combo in itertools.combinations(COMPONENTS, n)]
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),  # no upstream schema to check against
        ("monitoring.coreos.com/v1", "PrometheusRule")}
SECRETS = {
    "mlflow-gitops-git": "/var/run/secrets/mlflow-gitops/git",
    "mlflow-gitops-webhook": "/var/run/secrets/mlflow-gitops/webhook",
    "mlflow-gitops-mlflow": "/var/run/secrets/mlflow-gitops/mlflow",
}

Obj = dict[str, Any]


@cache
def render(tree: str) -> tuple[Obj, ...]:
    return _kustomize(MANIFESTS / tree, f"manifests/{tree}")


def _kustomize(folder: Path, shown: str) -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH: cannot render manifests/ with `kubectl kustomize`")
    done = subprocess.run([kubectl, "kustomize", str(folder)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {shown} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


@cache
def render_with(tree: str, components: tuple[str, ...]) -> tuple[Obj, ...]:
    """A user's kustomization: `tree` as its resource plus these components."""
    with tempfile.TemporaryDirectory() as tmp:
        rel = os.path.relpath(MANIFESTS, tmp)
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [f"{rel}/{tree}"],
            "components": [f"{rel}/components/{c}" for c in components]}))
        return _kustomize(Path(tmp), f"{tree} + {', '.join(components)}")


def one(objs: tuple[Obj, ...], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(tree: str = "") -> Obj:
    return one(render(tree), "Deployment")["spec"]["template"]["spec"]


def container(tree: str = "") -> Obj:
    [c] = pod_spec(tree)["containers"]
    return c


@pytest.mark.parametrize("tree", TREES)
def test_every_rendered_object_validates_against_the_pinned_schemas(tree: str) -> None:
    """Each rendered object passes strict OpenAPI validation for the pinned Kubernetes version."""
    objs = render(tree)
    assert objs
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CRDS:
            continue
        assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("tree", "components"), COMBINATIONS)
def test_every_overlay_and_component_combination_renders_and_validates(
        tree: str, components: tuple[str, ...]) -> None:
    """Any overlay plus any set of the components renders once (no duplicate objects) and
    every built-in object validates; each component adds exactly its objects."""
    objs = render_with(tree, components)
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids))
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) not in CRDS:
            assert kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    added = sorted(o["kind"] for o in objs if o not in render(tree))
    expected = {"prometheus": ["ServiceMonitor"], "alerts": ["PrometheusRule"],
                "dashboard": ["ConfigMap"]}
    assert added == sorted(k for c in components for k in expected[c])
    assert all(o["metadata"].get("namespace") == NAMESPACE for o in objs
               if o["kind"] != "Namespace")


def test_the_validator_rejects_an_unknown_field() -> None:
    """Strict validation fails on a misspelt field, so the schema check is not vacuous."""
    deployment = copy.deepcopy(one(render(""), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_top_level_kustomization_renders_the_base() -> None:
    """`kubectl apply -k manifests/` installs exactly what the base renders."""
    assert render("") == render("base")
    kinds = sorted(o["kind"] for o in render(""))
    assert kinds == sorted(["Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
                            "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"])


def test_all_namespaced_objects_live_in_one_namespace() -> None:
    """Everything but the Namespace itself is created in the controller's namespace."""
    for obj in render(""):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACE
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_deployment_runs_two_replicas_with_leader_election() -> None:
    """Two replicas run, campaigning for one Lease in their own namespace."""
    deployment = one(render(""), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = container()["args"]
    assert "--leader-elect" in args
    flags = dict(zip(args, args[1:], strict=False))
    assert flags["--lease-name"] == "mlflow-gitops"
    assert flags["--lease-namespace"] == "$(POD_NAMESPACE)"
    assert flags["--log-format"] == "json"
    assert flags["--listen"] == "0.0.0.0:8080"
    assert flags["--config"] == "/etc/mlflow-gitops/config.yaml"
    assert flags["--cache-dir"] == "/var/cache/mlflow-gitops"
    assert float(flags["--lease-duration"]) > float(flags["--renew-deadline"]) \
        > float(flags["--retry-period"])


def test_pod_identity_comes_from_the_downward_api() -> None:
    """POD_NAME and POD_NAMESPACE, the lease holder's identity, come from the Pod's metadata."""
    env = {e["name"]: e for e in container().get("env", [])}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_UID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}


def test_container_security_context_is_locked_down() -> None:
    """The container runs as 65532, non-root, read-only, no escalation, no capabilities."""
    ctx = container()["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 65532
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert not ctx["capabilities"].get("add")
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod_spec().get("hostNetwork") and not pod_spec().get("hostPID")


def test_writable_paths_are_empty_dirs() -> None:
    """With a read-only root, the git cache and /tmp are emptyDir volumes."""
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    for path in ("/var/cache/mlflow-gitops", "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path


def test_probes_hit_healthz_and_readyz() -> None:
    """Liveness probes /healthz and readiness probes /readyz on the http port (8080)."""
    c = container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in c["ports"]


def test_resources_have_requests_and_limits() -> None:
    """CPU and memory both have requests and limits, and no request exceeds its limit."""
    resources = container()["resources"]
    for key in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][key]), quantity(resources["limits"][key])
        assert 0 < request <= limit, key


def quantity(text: str) -> float:
    """A Kubernetes quantity ("100m", "1", "256Mi") as a number."""
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in suffixes.items():
        if str(text).endswith(suffix):
            return float(str(text)[: -len(suffix)]) * factor
    return float(text)


def test_rbac_is_exactly_leases_and_events_in_one_namespace() -> None:
    """The Role grants only what controller/adapters/kube.py calls: Lease get/create/update
    and core/v1 Event create, bound in-namespace."""
    objs = render("")
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    rules = {(group, resource, verb)
             for rule in one(objs, "Role")["rules"]
             for group in rule["apiGroups"] for resource in rule["resources"]
             for verb in rule["verbs"]}
    expected = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
    expected |= {("", "events", "create")}
    assert rules == expected
    assert not any("nonResourceURLs" in rule for rule in one(objs, "Role")["rules"])
    binding = one(objs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "mlflow-gitops"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mlflow-gitops",
                                    "namespace": NAMESPACE}]
    assert pod_spec()["serviceAccountName"] == "mlflow-gitops"


@pytest.mark.parametrize("tree", TREES)
def test_secrets_reach_the_pod_only_as_mounted_files(tree: str) -> None:
    """No Secret is read into an env var; the three Secrets are read-only volume mounts."""
    c = container(tree)
    for env in c.get("env", []):
        assert "secretKeyRef" not in env.get("valueFrom", {}), env["name"]
    assert not any("secretRef" in source for source in c.get("envFrom", []))
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod_spec(tree)["volumes"]
               if "secret" in v}
    assert sorted(volumes.values()) == sorted(SECRETS)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    for volume, secret in volumes.items():
        assert mounts[volume]["mountPath"] == SECRETS[secret]
        assert mounts[volume]["readOnly"] is True


def test_file_flags_and_config_point_into_mounted_secrets() -> None:
    """The token and webhook-secret paths the controller reads are inside the Secret mounts."""
    args = container()["args"]
    flags = dict(zip(args, args[1:], strict=False))
    config = yaml.safe_load(one(render(""), "ConfigMap")["data"]["config.yaml"])
    files = [flags["--git-token-file"], flags["--webhook-secret-file"],
             *(r["token_file"] for r in config["registries"].values())]
    for path in files:
        assert any(path.startswith(mount + "/") for mount in SECRETS.values()), path


def test_configmap_holds_a_complete_controller_config() -> None:
    """The base config names a repo, branch, path, interval and a default registry."""
    config = yaml.safe_load(one(render(""), "ConfigMap")["data"]["config.yaml"])
    assert set(config) >= {"repo", "branch", "path", "interval", "registries"}
    assert config["registries"]["default"]["tracking_uri"].startswith("http")
    mounted = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    assert mounted["config"] == "/etc/mlflow-gitops"


def test_service_exposes_http_8080_to_the_controller_pods() -> None:
    """The Service routes port 8080 (metrics and webhook) to the Deployment's pods."""
    objs = render("")
    service = one(objs, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http",
                                         "protocol": "TCP"}]
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_example_overlay_sets_repo_tracking_uri_and_image() -> None:
    """The example overlay changes the repo, tracking URI and image, and nothing in RBAC."""
    base = yaml.safe_load(one(render(""), "ConfigMap")["data"]["config.yaml"])
    mine = yaml.safe_load(one(render("overlays/example"), "ConfigMap")["data"]["config.yaml"])
    assert mine["repo"] != base["repo"]
    assert mine["registries"]["default"]["tracking_uri"] != \
        base["registries"]["default"]["tracking_uri"]
    assert container("overlays/example")["image"] != container()["image"]
    assert one(render("overlays/example"), "Role") == one(render(""), "Role")


def test_prometheus_component_adds_a_servicemonitor_for_the_service() -> None:
    """The prometheus component adds a ServiceMonitor scraping /metrics on the Service's port."""
    objs = render_with("overlays/example", ("prometheus",))
    monitor = one(objs, "ServiceMonitor")
    service = one(objs, "Service")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http", "/metrics")]
    assert ports == {"http"}


def _alert_groups() -> Obj:
    rule = one(render_with("base", ("alerts",)), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def test_alerts_cover_stuck_states_no_pass_and_out_of_sync() -> None:
    """The PrometheusRule alerts on stuck Error and Refused entries, no successful pass and
    being out of sync too long, each on a metric the controller exports."""
    rules = {r["alert"]: r["expr"] for g in _alert_groups()["groups"] for r in g["rules"]}
    assert 'state="Error"' in rules["MlflowGitopsStuckInError"]
    assert 'state="Refused"' in rules["MlflowGitopsStuckRefused"]
    assert "mlflow_gitops_reconcile_total" in rules["MlflowGitopsNoSuccessfulPass"]
    assert "mlflow_gitops_out_of_sync" in rules["MlflowGitopsOutOfSyncTooLong"]
    from mlflow_gitops.adapters.metrics import RESULTS, STATES, Metrics

    exported = Metrics().render()[0].decode()
    for expr in rules.values():
        for name in ("mlflow_gitops_entries", "mlflow_gitops_reconcile_total",
                     "mlflow_gitops_out_of_sync", "mlflow_gitops_leader",
                     "mlflow_gitops_invalid_commit"):
            if name in expr:
                assert f"# TYPE {name.removesuffix('_total')}" in exported, name
    assert {"Error", "Refused"} <= set(STATES) and {"success", "refused"} <= set(RESULTS)


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    """`promtool check rules` accepts the PrometheusRule's groups (skipped without promtool;
    `make test` installs Debian's prometheus package for it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; make test does)")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_alert_groups()))
    done = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_dashboard_is_a_grafana_configmap_the_sidecar_loads() -> None:
    """The dashboard component is one ConfigMap labelled grafana_dashboard: "1" holding
    dashboard JSON whose queries use the controller's metrics."""
    objs = render_with("base", ("dashboard",))
    [config] = [o for o in objs if o["kind"] == "ConfigMap"
                and o["metadata"]["name"] == "mlflow-gitops-dashboard"]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["mlflow-gitops.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs and all("mlflow_gitops_" in e for e in exprs)


def test_the_image_tag_is_the_release_version() -> None:
    """The base deploys the image of its own release, never a moving tag like `dev`."""
    from mlflow_gitops import __version__

    assert container()["image"] == f"mlflow-gitops:{__version__}"


def test_disruption_budget_keeps_one_replica_and_network_policy_admits_only_http() -> None:
    """The PDB lets a drain take one replica at a time; the NetworkPolicy admits ingress
    only to the http port (webhook and metrics) of the controller pods."""
    objs = render("")
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_deployment_args_parse_with_the_run_command() -> None:
    """The image's `mlflow-gitops run` accepts the Deployment's args exactly as written."""
    from mlflow_gitops.cli import build_parser

    args = [a.replace("$(POD_NAMESPACE)", NAMESPACE) for a in container()["args"]]
    parsed = build_parser().parse_args(["run", *args])
    assert parsed.leader_elect and parsed.lease_namespace == NAMESPACE
    assert parsed.cache_dir == "/var/cache/mlflow-gitops"
