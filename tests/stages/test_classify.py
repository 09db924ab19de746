"""Classification: the default rules, and a model trained with `docgraph classify train`."""

from __future__ import annotations

import os
import random
import subprocess
import sys

from docgraph.stages.classify import classify_text
from docgraph.stages.classify_model import predict

TOPICS = {
    "advisory": [
        "CVE",
        "patch",
        "affected versions",
        "CVSS",
        "mitigation",
        "firmware update",
        "vulnerability",
    ],
    "threat": [
        "threat actor",
        "campaign",
        "malware",
        "command and control",
        "phishing",
        "backdoor",
        "implant",
    ],
    "manual": [
        "installation",
        "wiring diagram",
        "configuration menu",
        "power supply",
        "mounting",
        "terminal block",
    ],
}
FILLER = ["the", "system", "device", "operator", "network", "report", "section", "page", "plant", "data"]


def _doc(rng: random.Random, words: list[str]) -> str:
    return " ".join(rng.choice(words) if rng.random() < 0.3 else rng.choice(FILLER) for _ in range(120))


def test_default_rules():
    assert (
        classify_text("CVE-2024-1234 affects the PLC; apply the patch (CVSS 9.8)")[0]
        == "vulnerability_advisory"
    )
    assert classify_text("The threat actor ran a phishing campaign with ransomware")[0] == "threat_report"
    assert classify_text("nothing to see here")[:2] == ("other", 1.0)


def test_train_command_reports_accuracy_and_the_model_classifies(tmp_path):
    rng = random.Random(3)
    for label, words in TOPICS.items():
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(12):
            (tmp_path / "data" / label / f"{i}.txt").write_text(_doc(rng, words))
    (tmp_path / "data" / "manual" / "broken.txt").write_bytes(b"")  # reported and skipped
    out = tmp_path / "clf.pkl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "docgraph.core.cli",
            "classify",
            "train",
            str(tmp_path / "data"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "skipped" in text and "broken.txt" in text
    accuracy = float(text.split("cross-validated accuracy (5-fold): ")[1].split()[0])
    assert accuracy >= 0.9
    label, confidence = predict(str(out), _doc(random.Random(99), TOPICS["threat"]))
    assert label == "threat" and confidence > 0.5
