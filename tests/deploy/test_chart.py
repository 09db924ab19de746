"""The Helm chart: lint, render, validate every object against the Kubernetes
schemas (kubernetes-validate) and KEDA's CRDs (v2.18.1), check what the chart
promises (triggers, probes, grace, security), and refuse broken values."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from docgraph.core.runtime.keys import LANES, Keys
from docgraph.core.settings import Settings
from tests.deploy.chart import (
    CHART,
    PRODUCTION,
    by_kind,
    deployment_command,
    helm,
    needs_tools,
    render,
    scaled_objects,
)

pytestmark = needs_tools

KUBERNETES_VERSION = "1.33.0"  # the k8s.io API version KEDA v2.18.1 is built against
VARIANTS = {"default": (), "production": (PRODUCTION,)}


def keda_crd_schema(kind_file: str) -> dict[str, Any]:
    crd = yaml.safe_load((Path(os.environ["DOCGRAPH_TEST_KEDA_CRDS"]) / kind_file).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


CRD_FILES = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
}


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION.read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint(variant: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for f in VARIANTS[variant]:
        args += ["-f", str(f)]
    out = helm(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_validates(variant: str) -> None:
    objects = render(*VARIANTS[variant])
    kinds = sorted(o["kind"] for o in objects)
    stages = 4
    expected = ["ConfigMap", "Service", "ServiceAccount"]
    expected += ["Deployment"] * (stages + 2) + ["PodDisruptionBudget"] * (stages + 2)
    expected += ["ScaledObject"] * stages + ["TriggerAuthentication"] * (variant == "production")
    assert kinds == sorted(expected)
    schemas = {kind: keda_crd_schema(f) for kind, f in CRD_FILES.items()}
    for obj in objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            # KEDA's CRD schema; additionalProperties=false where the CRD says
            # so, unknown fields would be pruned by the API server: refuse them here
            jsonschema.validate(obj["spec"], schemas[obj["kind"]]["properties"]["spec"])
            assert set(obj) <= {"apiVersion", "kind", "metadata", "spec"}
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_wrong_object_fails_validation() -> None:
    """The validators above do fail: a trigger with a number as metadata value
    (KEDA's CRD wants strings) and a Deployment with a misspelt field."""
    objects = render()
    so = next(iter(scaled_objects(objects).values()))
    so["spec"]["triggers"][0]["metadata"]["streamLength"] = 16
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so["spec"], keda_crd_schema(CRD_FILES["ScaledObject"])["properties"]["spec"])
    dep = next(iter(by_kind(objects, "Deployment").values()))
    dep["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_triggers_cover_every_partition_and_lane_in_stream_length_mode(variant: str) -> None:
    values = (
        production_values()
        if variant == "production"
        else yaml.safe_load((CHART / "values.yaml").read_text())
    )
    objects = render(*VARIANTS[variant])
    keys = Keys(values["docgraph"]["keyPrefix"], values["docgraph"]["partitions"])
    sos = scaled_objects(objects)
    assert sorted(sos) == sorted(s["name"] for s in values["stages"])
    for stage_values in values["stages"]:
        stage = stage_values["name"]
        spec = sos[stage]["spec"]
        streams = [t["metadata"]["stream"] for t in spec["triggers"]]
        # docgraph's own key code names the streams the workers read
        assert streams == [part.stream(stage, lane) for part in keys.all() for lane in LANES]
        target = stage_values.get("streamLength", values["autoscaling"]["streamLength"])
        for t in spec["triggers"]:
            meta = t["metadata"]
            assert t["type"] == "redis-streams"
            # streamLength mode: no consumerGroup (which would select pending or lag mode)
            assert not {"consumerGroup", "lagCount", "pendingEntriesCount"} & set(meta)
            assert meta["streamLength"] == str(target)
            assert meta["enableTLS"] == str(values["redis"]["tls"]["enabled"]).lower()
            assert meta["address"] == f"{values['redis']['host']}:{values['redis']['port']}"
            assert ("authenticationRef" in t) == values["redis"]["auth"]["enabled"]
        modifiers = spec["advanced"]["scalingModifiers"]
        assert modifiers["formula"] == " + ".join(t["name"] for t in spec["triggers"])
        assert modifiers["target"] == str(target)
        assert spec["maxReplicaCount"] == stage_values.get(
            "maxReplicaCount", values["autoscaling"]["maxReplicaCount"]
        )
        assert spec["minReplicaCount"] == stage_values.get(
            "minReplicaCount", values["autoscaling"]["minReplicaCount"]
        )
        assert spec["cooldownPeriod"] == values["autoscaling"]["cooldownPeriod"]
        assert spec["pollingInterval"] == values["autoscaling"]["pollingInterval"]
    if variant == "production":
        (auth,) = by_kind(objects, "TriggerAuthentication").values()
        refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
        assert refs == {"password": ("docgraph-redis", "password"), "ca": ("redis-ca", "ca.crt")}


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_probes_grace_and_security(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values = (
        production_values()
        if variant == "production"
        else yaml.safe_load((CHART / "values.yaml").read_text())
    )
    objects = render(*VARIANTS[variant])
    (config,) = by_kind(objects, "ConfigMap").values()
    assert config["data"]["DOCGRAPH_HEALTH_FILE"] == "/tmp/docgraph.alive"
    grace = float(config["data"]["DOCGRAPH_SHUTDOWN_GRACE"])
    assert grace == values["docgraph"]["shutdownGraceSeconds"]
    longest = {s["name"]: s["longestJobSeconds"] for s in values["stages"]}
    assert not by_kind(objects, "Secret"), "the chart must never carry credentials"

    deployments = by_kind(objects, "Deployment")
    for dep in deployments.values():
        pod = dep["spec"]["template"]["spec"]
        component = dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["securityContext"]["runAsUser"] == 10001
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/data"}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        env = {e["name"]: e for e in container["env"]}
        # credentials only as references to existing Secrets
        for ref in values["docgraph"]["secretEnv"]:
            assert env[ref["env"]] == {
                "name": ref["env"],
                "valueFrom": {"secretKeyRef": {"name": ref["secretName"], "key": ref["key"]}},
            }
        assert "DOCGRAPH_REDIS_URL" in env and "DOCGRAPH_REDIS_URL" not in config["data"]
        if values["redis"]["auth"]["enabled"]:
            assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": values["redis"]["auth"]["existingSecret"],
                "key": values["redis"]["auth"]["passwordKey"],
            }
        # docgraph accepts every setting the pod gets (URL with the password expanded)
        for k in [k for k in os.environ if k.startswith("DOCGRAPH_")]:
            monkeypatch.delenv(k)
        for k, v in config["data"].items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv(
            "DOCGRAPH_REDIS_URL", env["DOCGRAPH_REDIS_URL"]["value"].replace("$(REDIS_PASSWORD)", "pw")
        )
        settings = Settings(_env_file=None)
        assert settings.partitions == values["docgraph"]["partitions"]

        if component.startswith("worker-"):
            stage = component.removeprefix("worker-")
            assert deployment_command(objects, component)[:4] == ["docgraph", "worker", "--stage", stage]
            assert "replicas" not in dep["spec"], "KEDA's HPA owns the replica count"
            assert pod["terminationGracePeriodSeconds"] > grace + longest[stage]
            live = container["livenessProbe"]["exec"]["command"]
            assert live == ["docgraph", "health", "--max-age", "30"]  # the file, not Redis
            assert "--ready" in container["readinessProbe"]["exec"]["command"]
        elif component == "upkeep":
            assert deployment_command(objects, component) == ["docgraph", "worker", "--upkeep-only"]
            assert dep["spec"]["replicas"] >= 1
            assert pod["terminationGracePeriodSeconds"] > grace
        else:
            assert component == "api"
            assert deployment_command(objects, "api") == [
                "docgraph",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                "8000",
            ]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert len(deployments) == len(values["stages"]) + 2
    for pdb in by_kind(objects, "PodDisruptionBudget").values():
        assert "minAvailable" not in pdb["spec"], "a stage at zero replicas must not block a drain"


def test_grace_is_computed_from_the_longest_job() -> None:
    objects = render(values={"docgraph.shutdownGraceSeconds": 45, "docgraph.terminationMarginSeconds": 5})
    deps = by_kind(objects, "Deployment")
    assert deps["docgraph-ner"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45 + 120 + 5
    assert (
        deps["docgraph-classify"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45 + 30 + 5
    )


def test_partitions_value_multiplies_triggers() -> None:
    sos = scaled_objects(render(values={"docgraph.partitions": 3, "autoscaling.lanes": ["high", "normal"]}))
    assert len(sos["ner"]["spec"]["triggers"]) == 6
    assert sos["ner"]["spec"]["triggers"][5]["metadata"]["stream"] == "{docgraph:p2}:stream:ner:normal"


def test_upkeep_notify_runs_the_webhook_worker() -> None:
    objects = render(values={"upkeep.notify": True})
    assert deployment_command(objects, "upkeep") == ["docgraph", "worker", "--stage", "notify"]


def test_autoscaling_off_gives_plain_replicas() -> None:
    objects = render(values={"autoscaling.enabled": False})
    assert not scaled_objects(objects)
    deps = by_kind(objects, "Deployment")
    assert deps["docgraph-ner"]["spec"]["replicas"] == 1


BROKEN = {
    "negative maxReplicaCount": (
        {"autoscaling.maxReplicaCount": -1},
        "at '/autoscaling/maxReplicaCount': minimum: got -1, want 1",
    ),
    "redis auth without a Secret name": (
        {"redis.auth.enabled": True},
        "at '/redis/auth/existingSecret': minLength: got 0, want 1",
    ),
    "secretEnv without a Secret name": (
        {"docgraph.secretEnv": [{"env": "DOCGRAPH_NEO4J_PASSWORD", "key": "password"}]},
        "at '/docgraph/secretEnv/0': missing property 'secretName'",
    ),
    "a credential in the ConfigMap": (
        {"docgraph.settings": {"DOCGRAPH_NEO4J_PASSWORD": "hunter2"}},
        "at '/docgraph/settings/DOCGRAPH_NEO4J_PASSWORD': value must be 'credential: put it in a Secret",
    ),
    "a setting the chart derives": (
        {"docgraph.settings": {"DOCGRAPH_PARTITIONS": "8"}},
        "at '/docgraph/settings/DOCGRAPH_PARTITIONS': value must be 'set by the chart",
    ),
    "a Secret overriding the Redis URL the chart builds": (
        {"docgraph.secretEnv": [{"env": "DOCGRAPH_REDIS_URL", "secretName": "x", "key": "url"}]},
        "at '/docgraph/secretEnv/0/env': value must be 'set by the chart",
    ),
    "zero partitions": ({"docgraph.partitions": 0}, "at '/docgraph/partitions': minimum: got 0, want 1"),
    "an unknown lane": ({"autoscaling.lanes": ["urgent"]}, "at '/autoscaling/lanes/0'"),
    "a misspelt key": ({"autoscaling.maxReplicas": 5}, "additional properties 'maxReplicas' not allowed"),
    "root containers": ({"securityContext.runAsNonRoot": False}, "at '/securityContext/runAsNonRoot'"),
    "no upkeep replica": ({"upkeep.replicas": 0}, "at '/upkeep/replicas': minimum: got 0, want 1"),
    "a stage without longestJobSeconds": (
        {"stages": [{"name": "ner"}]},
        "at '/stages/0': missing property 'longestJobSeconds'",
    ),
    "min above max": (
        {"stages": [{"name": "ner", "longestJobSeconds": 60, "minReplicaCount": 5, "maxReplicaCount": 2}]},
        "stages[ner]: minReplicaCount 5 is above maxReplicaCount 2",
    ),
    "a grace period shorter than grace + longest job": (
        {"stages": [{"name": "ner", "longestJobSeconds": 120, "terminationGracePeriodSeconds": 100}]},
        "stages[ner]: terminationGracePeriodSeconds 100 must be above docgraph.shutdownGraceSeconds (30) "
        "+ longestJobSeconds (120) = 150",
    ),
}


TEMPLATE_CHECKS = {"min above max", "a grace period shorter than grace + longest job"}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_values_are_refused(case: str, tmp_path: Path) -> None:
    values, message = BROKEN[case]
    # as a values file, the way users pass them
    doc: dict[str, Any] = {}
    for dotted, value in values.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    proc = helm("template", "docgraph", str(CHART), "-f", str(broken), check=False)
    assert proc.returncode != 0, f"helm template accepted {case}"
    assert message in proc.stderr, proc.stderr
    proc = helm("lint", str(CHART), "-f", str(broken), check=False)
    if case in TEMPLATE_CHECKS:
        # helm lint runs templates in lint mode, where `fail` is only [INFO]:
        # these cross-field checks (JSON Schema cannot compare two fields)
        # stop `helm template` / `install` / `upgrade`, and lint still shows them
        assert proc.returncode == 0 and message in proc.stderr, proc.stderr
    else:
        assert proc.returncode != 0, f"helm lint accepted {case}"
        assert message in proc.stderr + proc.stdout, proc.stderr + proc.stdout
