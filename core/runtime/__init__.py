"""The runtime: everything between Redis and a stage function.

Reading order: ``keys`` (every Redis key name) → ``lua`` (every script) →
``calls`` (one typed call per script: its KEYS/ARGV layout and arguments) →
``connection`` (one way to connect, running calls and batching them) → ``jobs`` (submit, status, paging) → ``runner`` (read, run, hand off,
retry, dead-letter, reclaim) → ``worker`` (runners plus upkeep in one process)
→ ``dlq`` (list, show, replay, purge) → ``snapshot`` (counts for monitor and
metrics).  ``broker`` is the FastStream side (AsyncAPI, the broker connection),
``embedded`` the private redis-server of ``docgraph run``.
"""

from docgraph.core.runtime.connection import Batcher, Scripts, connect, connection_options
from docgraph.core.runtime.control import StageControl, UnknownStage
from docgraph.core.runtime.dlq import DeadLetter, DeadLetters
from docgraph.core.runtime.embedded import EmbeddedRedis
from docgraph.core.runtime.jobs import JobStatus, JobStore, Page, StageStatus, epoch_ms, now_ms
from docgraph.core.runtime.keys import JOB_STATES, LANES, Keys, Lane, PartitionKeys
from docgraph.core.runtime.recovery import DeliveryCapExceeded, Upkeep
from docgraph.core.runtime.runner import StageRunner, backoff_delay
from docgraph.core.runtime.services import build_services
from docgraph.core.runtime.snapshot import Snapshot, prometheus_text, snapshot
from docgraph.core.runtime.worker import Worker

__all__ = [
    "JOB_STATES",
    "LANES",
    "Batcher",
    "DeadLetter",
    "DeadLetters",
    "DeliveryCapExceeded",
    "EmbeddedRedis",
    "JobStatus",
    "JobStore",
    "Keys",
    "Lane",
    "Page",
    "PartitionKeys",
    "Scripts",
    "Snapshot",
    "StageControl",
    "StageRunner",
    "StageStatus",
    "UnknownStage",
    "Upkeep",
    "Worker",
    "backoff_delay",
    "build_services",
    "connect",
    "connection_options",
    "epoch_ms",
    "now_ms",
    "prometheus_text",
    "snapshot",
]
