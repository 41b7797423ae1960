"""The deployment files in contrib/: each parses, and what it hands the registry is accepted.

There is no Docker engine or Kubernetes cluster here, so the files are checked for what can be
checked without one: the compose file's variables and the Kubernetes ConfigMap load through our
configuration loader as the container would load them; the names the manifests use to refer to
each other exist; the systemd unit passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from distribution import config as config_module

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
#: The configuration baked into the image, which REGISTRY_* variables override.
IMAGE_CONFIG = ROOT / "etc" / "config.yml"


def compose_service() -> dict[str, Any]:
    return yaml.safe_load((CONTRIB / "compose" / "docker-compose.yml").read_text())["services"][
        "registry"
    ]


def test_compose_environment_is_the_guides_and_loads() -> None:
    service = compose_service()
    env = {name: str(value) for name, value in service["environment"].items()}
    loaded = config_module.parse(IMAGE_CONFIG.read_text(), env)

    assert loaded.http.addr == "0.0.0.0:5000"
    assert (loaded.http.tls.certificate, loaded.http.tls.key) == (
        "/certs/domain.crt",
        "/certs/domain.key",
    )
    assert loaded.auth.type == "htpasswd"
    assert loaded.auth.parameters == {"realm": "Registry Realm", "path": "/auth/htpasswd"}
    assert loaded.storage.parameters["rootdirectory"] == "/var/lib/registry"


def test_compose_mounts_what_the_environment_names() -> None:
    service = compose_service()
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert mounts == {"/var/lib/registry", "/certs", "/auth"}
    for name, value in service["environment"].items():
        if name.endswith(("_CERTIFICATE", "_KEY", "_PATH")):
            assert str(Path(value).parent) in mounts, name
    assert "5000:5000" in service["ports"]
    assert service["command"][-1].endswith("exec /entrypoint.sh /etc/docker/registry/config.yml")
    document = yaml.safe_load((CONTRIB / "compose" / "docker-compose.yml").read_text())
    assert set(service["secrets"]) <= set(document["secrets"])


def kubernetes_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted((CONTRIB / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") != "Kustomization":
                objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def test_kustomization_lists_every_manifest() -> None:
    directory = CONTRIB / "kubernetes"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    manifests = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_kubernetes_references_resolve() -> None:
    objects = kubernetes_objects()
    deployment = objects[("Deployment", "registry")]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"] == deployment["spec"]["selector"]["matchLabels"]
    assert objects[("Service", "registry")]["spec"]["selector"] == pod["metadata"]["labels"]

    secret = objects[("Secret", "registry-secrets")]["stringData"]
    container = pod["spec"]["containers"][0]
    for variable in container["env"]:
        ref = variable["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "registry-secrets" and ref["key"] in secret
    for volume in pod["spec"]["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = objects[("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])]
            assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in objects
        if "secret" in volume:
            assert all(item["key"] in secret for item in volume["secret"]["items"])
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in pod["spec"]["volumes"]}

    backend = objects[("Ingress", "registry")]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    service_ports = {p["name"] for p in objects[("Service", "registry")]["spec"]["ports"]}
    assert backend["service"]["name"] == "registry"
    assert backend["service"]["port"]["name"] in service_ports


def test_kubernetes_config_loads_with_the_pods_environment() -> None:
    objects = kubernetes_objects()
    text = objects[("ConfigMap", "registry-config")]["data"]["config.yml"]
    secret = objects[("Secret", "registry-secrets")]["stringData"]
    loaded = config_module.parse(text, {"REGISTRY_HTTP_SECRET": secret["http-secret"]})

    assert loaded.http.secret == secret["http-secret"]
    assert loaded.storage.cache.blobdescriptor == "redis"
    redis_host, _, redis_port = loaded.redis.addr.partition(":")
    redis_service = objects[("Service", redis_host)]
    assert int(redis_port) in {p["port"] for p in redis_service["spec"]["ports"]}
    assert loaded.auth.type == "htpasswd"
    assert loaded.auth.parameters["path"] == "/auth/htpasswd"
    user, _, hashed = secret["htpasswd"].strip().partition(":")
    assert user == "admin" and bcrypt.checkpw(b"change-me", hashed.encode())
    container = objects[("Deployment", "registry")]["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == int(loaded.http.addr.lstrip(":"))


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is needed to check the unit"
    registry = shutil.which("registry", path=str(ROOT / ".venv" / "bin")) or shutil.which(
        "registry"
    )
    assert registry, "the registry console script is not installed"
    unit = (CONTRIB / "systemd" / "registry.service").read_text()
    assert "ExecStart=/usr/local/bin/registry serve /etc/docker/registry/config.yml" in unit
    # verify checks that the binary exists: point it at the one installed here.
    (tmp_path / "registry.service").write_text(unit.replace("/usr/local/bin/registry", registry))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "registry.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "registry.service" not in result.stderr, result.stderr
