"""k8s/: every rendered object of each overlay against pinned schemas, plus platform rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_helpers import (
    OVERLAYS,
    PLATFORM_ENV,
    REPO_ROOT,
    SCHEMAS,
    SECRET_ENV,
    by_name,
    of_kind,
    render,
)

from shared.events.registry import SERVICE_PORTS, SERVICES, TOPIC_PARTITIONS, all_topics

#: Kubernetes version the manifests target; schemas ship with the `kubernetes-validate`
#: package (its `v1.31.0-local-strict` set: unknown fields are errors).
KUBERNETES_VERSION = "1.31.0"
NAMESPACES = {"dev": "cfp-dev", "prod": "cfp"}
TOPIC_REPLICAS = {"dev": 1, "prod": 3}


def _crd_schemas() -> dict[str, dict[str, Any]]:
    document = json.loads((SCHEMAS / "crds.json").read_text(encoding="utf-8"))
    defs = document["$defs"]
    return {kind: {**schema, "$defs": defs} for kind, schema in document["kinds"].items()}


CRD_SCHEMAS = _crd_schemas()


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['apiVersion']}/{obj['kind']}"


def _label(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_match_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    import kubernetes_validate

    errors, checked = [], 0
    for obj in rendered[overlay]:
        if _key(obj) in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{_label(obj)}: no Kubernetes {KUBERNETES_VERSION} schema for {_key(obj)}"
            )
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{_label(obj)}: {error.message} at {list(error.path)}")
    assert not errors, "\n".join(errors)
    assert checked >= 25


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_crd_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    errors = []
    for obj in rendered[overlay]:
        schema = CRD_SCHEMAS.get(_key(obj))
        if schema is None:
            continue
        validator = jsonschema.Draft202012Validator(schema)
        errors += [f"{_label(obj)}: {e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
    assert not errors, "\n".join(errors)


def test_crd_schemas_reject_bad_objects() -> None:
    topic = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": "x", "labels": {"strimzi.io/cluster": "c"}},
        "spec": {"partitions": 0, "replicas": 1, "partition": 3},
    }
    validator = jsonschema.Draft202012Validator(CRD_SCHEMAS["kafka.strimzi.io/v1beta2/KafkaTopic"])
    messages = [e.message for e in validator.iter_errors(topic)]
    assert any("minimum" in m for m in messages)
    assert any("partition" in m for m in messages)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_namespaced(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for obj in rendered[overlay]:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == NAMESPACES[overlay]
            labels = obj["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        else:
            assert obj["metadata"].get("namespace") == NAMESPACES[overlay], _label(obj)


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (_label(obj), obj["spec"]["template"]["spec"])
        for obj in objects
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    pods = _pod_specs(rendered[overlay])
    (config_map,) = by_name(rendered[overlay], "ConfigMap")
    secrets = list(by_name(rendered[overlay], "Secret"))
    assert len(pods) == len(SERVICES) + 1
    for label, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, label
        assert pod["securityContext"]["runAsUser"] != 0, label
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", label
        assert pod["automountServiceAccountToken"] is False, label
        assert pod["serviceAccountName"].startswith("cfp-"), label
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["capabilities"]["drop"] == ["ALL"], label
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{label} {kind}"
            image = container["image"]
            assert ":" in image, f"{label}: image {image} has no tag"
            assert not image.endswith(":latest"), label
            assert image != "cfp", f"{label}: image not set by the overlay"
            envs = container["envFrom"]
            config_refs = [r["configMapRef"]["name"] for r in envs if "configMapRef" in r]
            secret_refs = [r["secretRef"]["name"] for r in envs if "secretRef" in r]
            assert config_refs == [config_map], label
            assert len(secret_refs) == 1, label
            assert secret_refs[0].startswith("cfp-secrets"), label
            if secrets:
                assert secret_refs == secrets, f"{label}: not the generated Secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_service_resources(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, service: str
) -> None:
    objects = rendered[overlay]
    port = SERVICE_PORTS[service]
    deployment = by_name(objects, "Deployment")[service]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["cfp", "serve", service, "--host", "0.0.0.0", "--port", str(port)]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"

    svc = by_name(objects, "Service")[service]
    assert svc["spec"]["ports"][0]["port"] == port
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert svc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "cfp"

    assert f"cfp-{service}" in by_name(objects, "ServiceAccount")
    pdb = by_name(objects, "PodDisruptionBudget")[service]
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    hpa = by_name(objects, "HorizontalPodAutoscaler")[service]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    if overlay == "prod":
        assert hpa["spec"]["minReplicas"] >= 2, "prod keeps two replicas for the PDB"
    if service != "intake":
        # A consumer group gains nothing from more replicas than partitions.
        assert hpa["spec"]["maxReplicas"] <= max(TOPIC_PARTITIONS.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_job(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    job = by_name(rendered[overlay], "Job")["cfp-migrate"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["cfp", "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_follow_the_registry(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    topics = of_kind(rendered[overlay], "KafkaTopic")
    assert {t["spec"]["topicName"]: t["spec"]["partitions"] for t in topics} == all_topics()
    clusters = set(by_name(rendered[overlay], "Kafka"))
    for topic in topics:
        assert topic["spec"]["replicas"] == TOPIC_REPLICAS[overlay], _label(topic)
        config = topic["spec"]["config"]
        assert int(config["min.insync.replicas"]) < topic["spec"]["replicas"] or overlay == "dev"
        assert int(config["retention.ms"]) >= 7 * 24 * 3600 * 1000
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] in clusters


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_cluster_example(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    kafka = by_name(rendered[overlay], "Kafka")["cfp-kafka"]
    pool = by_name(rendered[overlay], "KafkaNodePool")["dual-role"]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "cfp-kafka"
    replicas = TOPIC_REPLICAS[overlay]
    assert pool["spec"]["replicas"] == replicas
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == replicas
    assert config["offsets.topic.replication.factor"] == replicas
    assert config["auto.create.topics.enable"] is False


def test_topic_generator_output_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "k8s" / "generate_topics.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_network_policies(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    policies = by_name(rendered[overlay], "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    dns = policies["allow-dns-egress"]["spec"]
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    http = policies["cfp-allow-http"]["spec"]
    allowed_out = {p["port"] for rule in http["egress"] for p in rule["ports"]}
    assert allowed_out == set(SERVICE_PORTS.values())


def test_prod_has_monitoring_and_no_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    prod = rendered["prod"]
    monitor = by_name(prod, "ServiceMonitor")["cfp"]
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "cfp"}
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert {"cfp-alerts", "cfp-platform"} <= set(by_name(prod, "PrometheusRule"))
    assert not of_kind(prod, "Secret"), "prod secrets come from the secret manager"
    config = of_kind(prod, "ConfigMap")[0]["data"]
    assert config["CFP_ENVIRONMENT"] == "production"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_map_holds_no_secret(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    (config,) = of_kind(rendered[overlay], "ConfigMap")
    assert set(config["data"]) == PLATFORM_ENV - SECRET_ENV
    assert config["data"]["KAFKA_TOPIC_PREFIX"] == "", "KafkaTopic names carry no prefix"


def test_secret_template_is_placeholders_only() -> None:
    path = REPO_ROOT / "k8s" / "base" / "secret.template.yaml"
    secret = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(secret["stringData"]) == SECRET_ENV
    assert all("REPLACE_ME" in value for value in secret["stringData"].values())
    for kustomization in Path(REPO_ROOT, "k8s").rglob("kustomization.yaml"):
        resources = yaml.safe_load(kustomization.read_text(encoding="utf-8")).get("resources", [])
        assert "secret.template.yaml" not in resources, kustomization
    import kubernetes_validate

    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)


def test_base_renders_on_its_own() -> None:
    objects = render(REPO_ROOT / "k8s" / "base")
    assert {o["metadata"]["name"] for o in of_kind(objects, "Deployment")} == set(SERVICES)
