"""The Helm chart in helm/authserver: rendered and linted by real Helm, checked against Kubernetes.

Helm is the Go SDK that the ``helm-python-sdk`` package ships as a shared library, so rendering
and ``helm lint`` need no helm binary, cluster or network. Every rendered object is validated
against the Kubernetes OpenAPI schemas that ``kubernetes-validate`` ships (strict: unknown
fields fail), for the oldest Kubernetes the chart supports and the newest the package knows.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from authserver.config import Address, Settings

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "authserver"
RELEASE = "authserver"
NAMESPACE = "phraseanet"
OLDEST_KUBERNETES = "1.27"  # Chart.yaml's kubeVersion
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.utils.latest_version())
# Custom resources: kubernetes-validate has no schema for them; checked field by field instead.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

Manifest = dict[str, Any]

# What an operator must always give: the issuer and the three secrets.
REQUIRED: dict[str, Any] = {
    "config": {"issuer": "https://auth.example.com"},
    "secret": {
        "databaseUrl": "postgresql://authserver:pw@postgres:5432/authserver",
        "secretKeys": ["server-key-0123456789abcdefghijklmnopqrstuv"],
        "adminTokens": ["admin-token-0123456789abcdefghijklmnopqrstu"],
    },
}
EXISTING_SECRET: dict[str, Any] = {
    "secret": {
        "existingSecret": "authserver-secrets",
        "databaseUrl": "",
        "secretKeys": [],
        "adminTokens": [],
    }
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "sidecar": {"mode": "sidecar", "janitor": {"enabled": True}},
    "minimal": {
        "replicaCount": 1,
        "migration": {"enabled": False},
        "pdb": {"enabled": False},
        "serviceAccount": {"create": False},
        "service": {"admin": {"enabled": False}},
    },
    "hpa": {"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80}},
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "admin": {
                "extraFrom": [
                    {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}},
                ]
            },
        }
    },
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "existing-secret": EXISTING_SECRET,
    "everything": {
        **EXISTING_SECRET,
        "autoscaling": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "serviceMonitor": {"enabled": True},
        "janitor": {"enabled": True, "timeZone": "Europe/Paris"},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [{"host": "auth.example.com", "paths": [{"path": "/"}]}],
            "tls": [{"secretName": "auth-tls", "hosts": ["auth.example.com"]}],
        },
        "extraEnv": [{"name": "PGSSLROOTCERT", "value": "/etc/authserver-ca/ca.crt"}],
        "extraVolumes": [{"name": "ca", "secret": {"secretName": "pg-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/authserver-ca"}],
        "image": {"digest": "sha256:" + "0" * 64},
    },
}


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values layered like repeated ``-f`` files: mappings merge, anything else replaces."""
    result: dict[str, Any] = {}
    for layer in layers:
        _merge_into(result, copy.deepcopy(layer))
    return result


def _merge_into(target: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


def values_for(variant: str, **more: Any) -> dict[str, Any]:
    return merged(REQUIRED, VARIANTS[variant], more)


def render(values: dict[str, Any]) -> list[Manifest]:
    """Every object the chart renders (hooks and tests included), as a fresh install would."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        document
        for name, text in sorted(files.items())
        if name.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [
        m
        for m in manifests
        if m["kind"] == kind and m["metadata"]["name"] == f"{RELEASE}{name_suffix}"
    ]
    assert len(found) == 1, f"{kind} {RELEASE}{name_suffix}: {len(found)} rendered"
    return found[0]


def kinds(manifests: list[Manifest]) -> set[str]:
    return {m["kind"] for m in manifests}


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each pod spec the chart renders, named by the object that holds it."""
    for m in manifests:
        name = f"{m['kind']}/{m['metadata']['name']}"
        if m["kind"] in ("Deployment", "Job"):
            yield name, m["spec"]["template"]["spec"]
        elif m["kind"] == "CronJob":
            yield name, m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif m["kind"] == "Pod":
            yield name, m["spec"]


def pod_template(manifests: list[Manifest]) -> dict[str, Any]:
    """The Deployment's pod template (metadata and spec)."""
    template: dict[str, Any] = one(manifests, "Deployment")["spec"]["template"]
    return template


def server(manifests: list[Manifest]) -> dict[str, Any]:
    """The authserver container of the Deployment."""
    container: dict[str, Any] = pod_template(manifests)["spec"]["containers"][0]
    return container


def config(manifests: list[Manifest]) -> dict[str, str]:
    """The settings in the release's ConfigMap."""
    data: dict[str, str] = one(manifests, "ConfigMap")["data"]
    return data


def server_settings(manifests: list[Manifest]) -> Settings:
    """What the server's own parser makes of the environment the chart gives its container:
    the ConfigMap, then each env entry (a value, or a key of the release's Secret)."""
    container = server(manifests)
    assert container["envFrom"] == [{"configMapRef": {"name": RELEASE}}]
    secret = one(manifests, "Secret")["data"]
    environ = dict(config(manifests))
    for entry in container.get("env", []):
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == RELEASE, entry
            environ[entry["name"]] = base64.b64decode(secret[ref["key"]]).decode()
    return Settings.from_env(environ)


def pod_annotations(manifests: list[Manifest]) -> dict[str, str]:
    annotations: dict[str, str] = pod_template(manifests)["metadata"]["annotations"]
    return annotations


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (``256Mi``, ``1Gi``, ``500M``) in MiB."""
    match = re.fullmatch(r"([0-9.]+)(Mi|Gi|M|G)", quantity)
    assert match is not None, quantity
    factor = {"Mi": 1.0, "Gi": 1024.0, "M": 1e6 / 2**20, "G": 1e9 / 2**20}[match.group(2)]
    return float(match.group(1)) * factor


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    """Each variant rendered once for the whole module."""
    return {variant: render(values_for(variant)) for variant in VARIANTS}


@pytest.fixture(scope="module")
def default(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    """The chart rendered with default values (plus the required ones)."""
    return rendered["default"]


# Helm itself


@pytest.mark.parametrize("variant", VARIANTS)
def test_lint_strict_passes(variant: str) -> None:
    """`helm lint --strict` finds no warning or error, for each variant of values."""
    report = helm.lint(
        CHART,
        values_for(variant),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{OLDEST_KUBERNETES}.0",
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


def test_chart_defaults_satisfy_schema() -> None:
    """The chart's own values.yaml validates against its values.schema.json."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)


def test_schema_rejects_unknown_setting() -> None:
    """A misspelt AUTHSERVER_* setting fails the install instead of being ignored."""
    values = values_for("default", config={"settings": {"ACCESS_TOKEN_TTI": "1h"}})
    with pytest.raises(helm.HelmValuesError, match="ACCESS_TOKEN_TTI"):
        render(values)


def test_schema_rejects_short_server_key() -> None:
    """A server key shorter than the server accepts fails at install time."""
    values = values_for("default", secret={"secretKeys": ["too-short"]})
    with pytest.raises(helm.HelmValuesError, match="secretKeys"):
        render(values)


def test_missing_issuer_fails_render() -> None:
    """Without config.issuer the chart refuses to render, naming the value."""
    with pytest.raises(helm.HelmRenderError, match=r"config\.issuer is required"):
        render(merged(REQUIRED, {"config": {"issuer": ""}}))


def test_missing_secret_values_fail_render() -> None:
    """Without secrets or an existing Secret the chart refuses to render."""
    with pytest.raises(helm.HelmRenderError, match=r"secret\.databaseUrl is required"):
        render(merged(REQUIRED, {"secret": {"databaseUrl": ""}}))


def test_short_termination_grace_fails_render() -> None:
    """A termination grace period that would cut the drain short fails the render."""
    values = values_for("default", terminationGracePeriodSeconds=20)
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds"):
        render(values)


# Kubernetes schemas


@pytest.mark.parametrize("kubernetes", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_validate_against_kubernetes(
    rendered: dict[str, list[Manifest]], variant: str, kubernetes: str
) -> None:
    """Every rendered built-in object is valid (strictly, no unknown field) for Kubernetes."""
    checked = 0
    for manifest in rendered[variant]:
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, kubernetes, strict=True)
        checked += 1
    assert checked >= 3


def test_service_monitor_is_well_formed(rendered: dict[str, list[Manifest]]) -> None:
    """The ServiceMonitor scrapes /metrics on the admin port of the admin Service only."""
    manifests = rendered["service-monitor"]
    monitor = one(manifests, "ServiceMonitor")
    admin = one(manifests, "Service", "-admin")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= admin["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == "admin"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == admin["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_service_monitor_off_by_default(default: list[Manifest]) -> None:
    """No ServiceMonitor is rendered unless asked for (its CRD may not exist)."""
    assert "ServiceMonitor" not in kinds(default)


# The Deployment


def test_default_renders_the_deployment_set(default: list[Manifest]) -> None:
    """Default values render the server, its Services, config, secret, hook and budget."""
    assert kinds(default) == {
        "ConfigMap",
        "Deployment",
        "Job",
        "Pod",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    }


def test_probes_use_health_endpoints(default: list[Manifest]) -> None:
    """Liveness and start-up probe /healthz; readiness probes /readyz (the database)."""
    container = server(default)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_every_pod_is_hardened(default: list[Manifest]) -> None:
    """Every pod runs non-root, read-only, without privilege escalation or capabilities."""
    specs = dict(pod_specs(default))
    assert len(specs) == 3  # server, migration hook, helm test
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name


def test_pods_run_as_the_image_user(default: list[Manifest]) -> None:
    """The pods' user id is the numeric USER of the Dockerfile."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    for name, spec in pod_specs(default):
        assert str(spec["securityContext"]["runAsUser"]) == user[0], name
        assert str(spec["securityContext"]["runAsGroup"]) == user[1], name


def test_tmp_is_a_writable_empty_dir(default: list[Manifest]) -> None:
    """With a read-only root filesystem, /tmp is an emptyDir mounted into the server."""
    spec = pod_template(default)["spec"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    # The pod's /tmp mount path, not a temporary file of this test.
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108


def test_memory_is_sized_for_argon2(default: list[Manifest]) -> None:
    """Memory requests cover two concurrent 64 MiB argon2 verifies plus the process."""
    resources = server(default)["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= 256
    assert mebibytes(resources["limits"]["memory"]) >= 512
    assert "cpu" not in resources["limits"]


def test_checksums_roll_pods_on_config_change(default: list[Manifest]) -> None:
    """Changing a setting changes the pods' config checksum, not their secret checksum."""
    changed = render(values_for("default", config={"settings": {"ACCESS_TOKEN_TTL": "15m"}}))
    before, after = pod_annotations(default), pod_annotations(changed)
    assert re.fullmatch(r"[0-9a-f]{64}", before["checksum/config"])
    assert after["checksum/config"] != before["checksum/config"]
    assert after["checksum/secret"] == before["checksum/secret"]


def test_checksums_roll_pods_on_secret_change(default: list[Manifest]) -> None:
    """Rotating a server key changes the pods' secret checksum."""
    keys = ["new-server-key-0123456789abcdefghijklmnopq", *REQUIRED["secret"]["secretKeys"]]
    changed = render(values_for("default", secret={"secretKeys": keys}))
    before, after = pod_annotations(default), pod_annotations(changed)
    assert re.fullmatch(r"[0-9a-f]{64}", before["checksum/secret"])
    assert after["checksum/secret"] != before["checksum/secret"]


def test_grace_period_outlasts_shutdown_grace(default: list[Manifest]) -> None:
    """Kubernetes waits longer than the server's drain plus the preStop pause."""
    spec = pod_template(default)["spec"]
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = int(config(default)["AUTHSERVER_SHUTDOWN_GRACE"])
    assert spec["terminationGracePeriodSeconds"] > grace + int(pre_stop[1])


def test_rolling_update_keeps_capacity(default: list[Manifest]) -> None:
    """A rolling update starts a new pod before it stops an old one."""
    strategy = one(default, "Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_settings_reach_the_server(default: list[Manifest]) -> None:
    """The server reads the ConfigMap and takes each secret from the release's Secret."""
    container = server(default)
    assert container["envFrom"] == [{"configMapRef": {"name": RELEASE}}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    for name in ("AUTHSERVER_DATABASE_URL", "AUTHSERVER_SECRET_KEYS", "AUTHSERVER_ADMIN_TOKENS"):
        assert refs[name] == {"name": RELEASE, "key": name}
    data = config(default)
    assert data["AUTHSERVER_ISSUER"] == "https://auth.example.com"
    assert data["AUTHSERVER_PUBLIC_ADDR"] == "0.0.0.0:8080"
    assert not any("SECRET" in key or "TOKEN" in key or "DATABASE" in key for key in data)
    settings = server_settings(default)
    assert settings.issuer == "https://auth.example.com"
    assert settings.public_addr == Address("0.0.0.0", 8080)  # noqa: S104
    assert settings.database_url == REQUIRED["secret"]["databaseUrl"]
    assert list(settings.secret_keys) == REQUIRED["secret"]["secretKeys"]
    assert list(settings.admin_tokens) == REQUIRED["secret"]["adminTokens"]


def test_numeric_settings_render_as_whole_numbers() -> None:
    """Large numbers in config.settings reach the server as digits, not as 2.592e+06."""
    settings = {
        "REFRESH_TOKEN_TTL": 2592000,
        "JANITOR_BATCH": 1000000,
        "ALLOW_HTTP_REDIRECTS": True,
    }
    manifests = render(values_for("default", config={"settings": settings}))
    data = config(manifests)
    assert data["AUTHSERVER_REFRESH_TOKEN_TTL"] == "2592000"
    assert data["AUTHSERVER_JANITOR_BATCH"] == "1000000"
    assert data["AUTHSERVER_ALLOW_HTTP_REDIRECTS"] == "true"
    parsed = server_settings(manifests)
    assert parsed.refresh_token_ttl == 2592000
    assert parsed.janitor_batch == 1000000
    assert parsed.allow_http_redirects is True


def test_secret_joins_keys_newest_first(default: list[Manifest]) -> None:
    """The Secret holds the server keys comma-separated in the order given."""
    keys = [
        "new-server-key-0123456789abcdefghijklmnopq",
        "old-server-key-0123456789abcdefghijklmnopq",
    ]
    secret = one(render(values_for("default", secret={"secretKeys": keys})), "Secret")
    assert base64.b64decode(secret["data"]["AUTHSERVER_SECRET_KEYS"]).decode() == ",".join(keys)


# Services and network


def test_admin_service_is_cluster_ip() -> None:
    """The admin Service is ClusterIP even when the public one is a LoadBalancer."""
    manifests = render(values_for("default", service={"public": {"type": "LoadBalancer"}}))
    assert one(manifests, "Service", "-public")["spec"]["type"] == "LoadBalancer"
    admin = one(manifests, "Service", "-admin")
    assert admin["spec"]["type"] == "ClusterIP"
    assert admin["spec"]["ports"][0]["targetPort"] == "admin"


def test_admin_listener_reachable_in_deployment(default: list[Manifest]) -> None:
    """Behind the admin Service, the admin listener binds the pod address, not loopback."""
    assert config(default)["AUTHSERVER_ADMIN_ADDR"] == "0.0.0.0:8081"
    ports = {p["name"]: p["containerPort"] for p in server(default)["ports"]}
    assert ports == {"http": 8080, "admin": 8081}


def test_admin_listener_on_loopback_without_service(rendered: dict[str, list[Manifest]]) -> None:
    """Without the admin Service the admin listener stays on 127.0.0.1 and is not declared."""
    manifests = rendered["minimal"]
    assert config(manifests)["AUTHSERVER_ADMIN_ADDR"] == "127.0.0.1:8081"
    assert [p["name"] for p in server(manifests)["ports"]] == ["http"]
    assert not [m for m in manifests if m["metadata"]["name"].endswith("-admin")]


def test_ipv6_listen_host_is_bracketed() -> None:
    """An IPv6 listen host renders as [::]:port, the form AUTHSERVER_*_ADDR parses."""
    manifests = render(values_for("default", config={"listenHost": "::"}))
    assert config(manifests)["AUTHSERVER_PUBLIC_ADDR"] == "[::]:8080"
    assert config(manifests)["AUTHSERVER_ADMIN_ADDR"] == "[::]:8081"
    settings = server_settings(manifests)
    assert settings.public_addr == Address("::", 8080)
    assert settings.admin_addr == Address("::", 8081)


def test_services_select_only_server_pods(rendered: dict[str, list[Manifest]]) -> None:
    """Migration and janitor pods never match the Services' selectors (no stray endpoints)."""
    manifests = rendered["everything"]
    selector = one(manifests, "Service", "-public")["spec"]["selector"]
    server_labels = pod_template(manifests)["metadata"]["labels"]
    assert selector.items() <= server_labels.items()
    job = one(manifests, "Job", "-migrate")["spec"]["template"]["metadata"]["labels"]
    cron = one(manifests, "CronJob", "-janitor")["spec"]["jobTemplate"]["spec"]["template"]
    for labels in (job, cron["metadata"]["labels"]):
        assert not selector.items() <= labels.items()


def test_network_policy_limits_admin_port(rendered: dict[str, list[Manifest]]) -> None:
    """The admin port admits only labelled pods (and extra peers); the public port anyone."""
    policy = one(rendered["network-policy"], "NetworkPolicy")
    public, admin = policy["spec"]["ingress"]
    assert public["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert "from" not in public
    assert admin["ports"] == [{"port": "admin", "protocol": "TCP"}]
    assert admin["from"][0] == {"podSelector": {"matchLabels": {"authserver-admin-client": "true"}}}
    assert admin["from"][1] == {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_network_policy_off_by_default(default: list[Manifest]) -> None:
    """No NetworkPolicy is rendered unless asked for."""
    assert "NetworkPolicy" not in kinds(default)


# Scaling


def test_hpa_replaces_fixed_replicas(rendered: dict[str, list[Manifest]]) -> None:
    """With autoscaling on, an autoscaling/v2 HPA owns the replica count."""
    manifests = rendered["hpa"]
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == RELEASE
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert "replicas" not in one(manifests, "Deployment")["spec"]


def test_pdb_allows_one_disruption(default: list[Manifest]) -> None:
    """The PodDisruptionBudget lets drains take one server pod at a time."""
    pdb = one(default, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    labels = pod_template(default)["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


# Migrations and the janitor


def test_migration_job_is_a_pre_install_hook(default: list[Manifest]) -> None:
    """`authserver migrate` runs as a pre-install/pre-upgrade hook, after its hook Secret."""
    job = one(default, "Job", "-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    secret = one(default, "Secret", "-migrate")
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert "hook-succeeded" in secret["metadata"]["annotations"]["helm.sh/hook-delete-policy"]


def test_migration_job_carries_its_own_settings(default: list[Manifest]) -> None:
    """The hook runs before the release's ConfigMap exists, so its settings are inline."""
    container = one(default, "Job", "-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    env = {e["name"]: e for e in container["env"]}
    assert env["AUTHSERVER_ISSUER"]["value"] == "https://auth.example.com"
    database = env["AUTHSERVER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert database["name"] == f"{RELEASE}-migrate"


def test_pods_skip_migrations_when_the_hook_runs(rendered: dict[str, list[Manifest]]) -> None:
    """Pods start with MIGRATE_ON_START=false with the hook, true without it."""
    assert config(rendered["default"])["AUTHSERVER_MIGRATE_ON_START"] == "false"
    assert config(rendered["minimal"])["AUTHSERVER_MIGRATE_ON_START"] == "true"
    assert "Job" not in kinds(rendered["minimal"])


def test_janitor_cronjob_turns_off_in_server_janitor(rendered: dict[str, list[Manifest]]) -> None:
    """With the CronJob, it runs `authserver janitor` and pods get JANITOR_INTERVAL=0."""
    manifests = rendered["everything"]
    cron = one(manifests, "CronJob", "-janitor")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["janitor"]
    assert config(manifests)["AUTHSERVER_JANITOR_INTERVAL"] == "0"


def test_in_server_janitor_keeps_its_interval(default: list[Manifest]) -> None:
    """Without the CronJob the chart leaves the in-server janitor's interval alone."""
    assert "CronJob" not in kinds(default)
    assert "AUTHSERVER_JANITOR_INTERVAL" not in config(default)


def test_workers_reach_the_server(default: list[Manifest]) -> None:
    """values.yaml `workers` is the server's AUTHSERVER_WORKERS, its pools within the budget."""
    assert config(default)["AUTHSERVER_WORKERS"] == "2"
    settings = server_settings(default)
    assert settings.workers == 2
    assert settings.workers * settings.per_worker().pool_max_size <= settings.pool_budget
    chosen = render(values_for("default", workers=4, config={"settings": {"POOL_BUDGET": 20}}))
    assert server_settings(chosen).per_worker().pool_max_size == 5


def test_zero_workers_leaves_the_count_to_the_server() -> None:
    """`workers: 0` sets no AUTHSERVER_WORKERS: the server counts the CPUs it may use."""
    assert "AUTHSERVER_WORKERS" not in config(render(values_for("default", workers=0)))


def test_schema_rejects_negative_workers() -> None:
    """`workers` below 0 fails the schema, before anything is rendered."""
    with pytest.raises(helm.HelmValuesError, match="workers"):
        render(values_for("default", workers=-1))


# An existing Secret and sidecar mode


def test_existing_secret_is_used_everywhere(rendered: dict[str, list[Manifest]]) -> None:
    """With secret.existingSecret no Secret is rendered and every pod reads that one."""
    manifests = rendered["everything"]
    assert "Secret" not in kinds(manifests)
    for name, spec in pod_specs(manifests):
        refs = [
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in spec["containers"]
            for e in c.get("env", [])
            if "valueFrom" in e
        ]
        assert refs in ([], ["authserver-secrets"] * 3), name


def test_sidecar_renders_only_shared_pieces(rendered: dict[str, list[Manifest]]) -> None:
    """Sidecar mode renders config, secret, migration hook and janitor, and no server pods."""
    manifests = rendered["sidecar"]
    assert kinds(manifests) == {"ConfigMap", "CronJob", "Job", "Secret", "ServiceAccount"}
    assert config(manifests)["AUTHSERVER_ADMIN_ADDR"] == "127.0.0.1:8081"


def test_sidecar_example_is_a_valid_pod() -> None:
    """SIDECAR.md's example validates and keeps the admin listener on loopback."""
    text = (CHART / "SIDECAR.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    (example,) = [yaml.safe_load(block) for block in blocks if "kind: Deployment" in block]
    for kubernetes in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(example, kubernetes, strict=True)
    (sidecar,) = [
        c for c in example["spec"]["template"]["spec"]["containers"] if c["name"] == "authserver"
    ]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["AUTHSERVER_ADMIN_ADDR"] == "127.0.0.1:8081"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    context = sidecar["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
