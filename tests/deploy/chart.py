"""Render the Helm chart and run KEDA's own scaler code on what it renders.

The binaries come from ``deploy/helm/build-tools.sh`` (``deploy/test.sh`` runs
it and exports ``DOCGRAPH_TEST_HELM_BIN`` / ``DOCGRAPH_TEST_KEDA_CHECK_BIN`` /
``DOCGRAPH_TEST_KEDA_CRDS``); without them the tests skip, which CI turns into
failures.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "docgraph"
PRODUCTION = CHART / "values-production.yaml"
TOOLS_ENV = ("DOCGRAPH_TEST_HELM_BIN", "DOCGRAPH_TEST_KEDA_CHECK_BIN", "DOCGRAPH_TEST_KEDA_CRDS")

needs_tools = [
    pytest.mark.service,
    pytest.mark.skipif(
        any(not os.environ.get(v) for v in TOOLS_ENV),
        reason='helm / keda-check not built: eval "$(deploy/helm/build-tools.sh)"',
    ),
]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [os.environ["DOCGRAPH_TEST_HELM_BIN"], *args], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def set_args(values: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    for key, value in (values or {}).items():
        out += ["--set-json", f"{key}={json.dumps(value)}"]
    return out


def render(*value_files: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``helm template`` -> the rendered objects."""
    args = ["template", "docgraph", str(CHART), "--namespace", "docgraph"]
    for f in value_files:
        args += ["-f", str(f)]
    out = helm(*args, *set_args(values)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def scaled_objects(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """stage name -> its ScaledObject."""
    return {
        o["metadata"]["labels"]["docgraph.dev/stage"]: o for o in by_kind(objects, "ScaledObject").values()
    }


def deployment_command(objects: list[dict[str, Any]], component: str) -> list[str]:
    """The container command of a rendered Deployment: the image's ENTRYPOINT
    (``docgraph``) followed by the chart's args."""
    for dep in by_kind(objects, "Deployment").values():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] == component:
            return ["docgraph", *dep["spec"]["template"]["spec"]["containers"][0]["args"]]
    raise KeyError(component)


def keda_check(scaled_object: dict[str, Any], auth_params: dict[str, str] | None = None) -> dict[str, Any]:
    """Run KEDA's redis-streams scaler (and scalingModifiers) on one ScaledObject."""
    proc = subprocess.run(
        [os.environ["DOCGRAPH_TEST_KEDA_CHECK_BIN"]],
        input=json.dumps({"scaledObject": scaled_object, "authParams": auth_params or {}}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
