"""classify: the document's type with a confidence.

The default is a keyword-rule classifier for the cyber/ICS domain; labels and
keywords are plain data, so a deployment replaces them.  A scikit-learn model
trained with ``docgraph classify train`` is used instead when configured.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from docgraph.core.stage import StageContext, StageResult
from docgraph.stages.extract import load_extracted

DEFAULT_RULES: dict[str, list[str]] = {
    "vulnerability_advisory": [
        "cve-",
        "cvss",
        "vulnerability",
        "advisory",
        "affected products",
        "mitigation",
        "patch",
        "exploit",
        "remediation",
        "security update",
    ],
    "threat_report": [
        "threat actor",
        "apt",
        "campaign",
        "malware",
        "indicators of compromise",
        "ioc",
        "c2",
        "command and control",
        "att&ck",
        "ttp",
        "phishing",
        "backdoor",
        "ransomware",
    ],
    "incident_report": [
        "incident",
        "timeline",
        "root cause",
        "outage",
        "breach",
        "response",
        "forensic",
        "lessons learned",
        "impact assessment",
    ],
    "technical_manual": [
        "manual",
        "datasheet",
        "installation",
        "configuration",
        "specifications",
        "firmware",
        "user guide",
        "wiring",
        "operating instructions",
        "plc",
        "module",
    ],
    "policy_standard": [
        "policy",
        "standard",
        "shall",
        "compliance",
        "requirements",
        "iec 62443",
        "nist",
        "iso 27001",
        "governance",
        "audit",
    ],
}


@lru_cache(maxsize=8)
def _compiled(rules: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [
        (label, re.compile("|".join(r"\b" + re.escape(k) for k in keywords), re.IGNORECASE))
        for label, keywords in rules
    ]


def classify_text(
    text: str, rules: dict[str, list[str]] | None = None
) -> tuple[str, float, dict[str, float]]:
    """Label, confidence and per-label scores (softmax over log-scaled keyword hits)."""
    rules = rules or DEFAULT_RULES
    key = tuple((label, tuple(words)) for label, words in rules.items())
    hits = {label: len(rx.findall(text[:200_000])) for label, rx in _compiled(key)}
    if not any(hits.values()):
        return "other", 1.0, {"other": 1.0}
    logits = {label: math.log1p(n) * 2 for label, n in hits.items()}
    z = sum(math.exp(v) for v in logits.values())
    scores = {label: math.exp(v) / z for label, v in logits.items()}
    best = max(scores, key=scores.__getitem__)
    return best, round(scores[best], 4), {k: round(v, 4) for k, v in scores.items()}


def classify(ctx: StageContext) -> StageResult:
    text = load_extracted(ctx)["text"]
    model = ctx.settings.classify_model
    if model is not None:
        from docgraph.stages.classify_model import predict

        label, confidence = predict(str(model), text)
        return StageResult(output={"label": label, "confidence": confidence, "by": "model"})
    label, confidence, _scores = classify_text(text)
    return StageResult(output={"label": label, "confidence": confidence, "by": "rules"})
