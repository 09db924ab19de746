"""Every Redis key docgraph uses, in one place.

Keys of one job's hand-off (its record, the stage streams, the retry set,
the dead-letter streams and the state indexes of its partition) share the
hash tag ``{<prefix>:p<N>}``, so on Redis Cluster each partition lives in one
slot and the hand-off script may touch all of them atomically.  Scale a
cluster by raising ``DOCGRAPH_PARTITIONS`` (before the first job is
submitted: a job's partition is derived from its id).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from docgraph.core.envelope import LANES, Lane

__all__ = ["JOB_STATES", "LANES", "Keys", "Lane", "PartitionKeys"]

JOB_STATES = ("queued", "running", "retrying", "completed", "failed", "dead", "cancelled")


@dataclass(frozen=True)
class PartitionKeys:
    """Key names of one partition."""

    prefix: str
    partition: int

    @property
    def tag(self) -> str:
        return f"{{{self.prefix}:p{self.partition}}}"

    def stream(self, stage: str, lane: Lane | str) -> str:
        return f"{self.tag}:stream:{stage}:{Lane(lane).value}"

    def dlq(self, stage: str) -> str:
        return f"{self.tag}:dlq:{stage}"

    @property
    def delayed(self) -> str:
        """Sorted set of retries, scored by due time (ms)."""
        return f"{self.tag}:delayed"

    @property
    def events(self) -> str:
        """Stream of the partition's lifecycle events (docs/events.md), appended by the scripts."""
        return f"{self.tag}:events"

    @property
    def notify_due(self) -> str:
        """Sorted set of webhook deliveries (JSON), scored by when they are next due (ms);
        a notify worker that takes one moves its score past the delivery's timeout.
        Fed from :attr:`events` (consumer group ``notify``); dead letters in ``dlq("notify")``."""
        return f"{self.tag}:notify:due"

    @property
    def job_prefix(self) -> str:
        return f"{self.tag}:job:"

    def job(self, job_id: str) -> str:
        return f"{self.job_prefix}{job_id}"

    def state_index(self, state: str) -> str:
        """Sorted set of job ids in ``state``, scored by the time they entered it (ms)."""
        return f"{self.tag}:state:{state}"

    @property
    def paused(self) -> str:
        """Hash: stage -> when it was paused (ms).  One per partition, so the read
        script checks it in its own slot; pausing writes every partition."""
        return f"{self.tag}:paused"

    @property
    def latest(self) -> str:
        """Hash: document name (else URI) -> its newest job, under latest-wins
        (``DOCGRAPH_LATEST_WINS``); a field goes when that job's record does."""
        return f"{self.tag}:latest"

    @property
    def idempotency(self) -> str:
        """Hash: idempotency key -> job id."""
        return f"{self.tag}:idem"

    @property
    def state_indexes(self) -> list[str]:
        return [self.state_index(s) for s in JOB_STATES]

    # ACL key patterns (``docgraph acl``): glob patterns matching the names above
    @property
    def all_pattern(self) -> str:
        """Every key of this partition."""
        return f"{glob_escape(self.tag)}:*"

    def stream_pattern(self, stage: str) -> str:
        """Every lane of ``stage``'s stream."""
        return f"{glob_escape(self.tag)}:stream:{glob_escape(stage)}:*"

    @property
    def job_pattern(self) -> str:
        return f"{glob_escape(self.job_prefix)}*"


class Keys:
    """Key names for a deployment (prefix) with ``partitions`` partitions."""

    def __init__(self, prefix: str = "docgraph", partitions: int = 1) -> None:
        self.prefix = prefix
        self.partitions = partitions
        self._parts = [PartitionKeys(prefix, p) for p in range(partitions)]

    def partition_of(self, job_id: str) -> int:
        if self.partitions == 1:
            return 0
        return zlib.crc32(job_id.encode()) % self.partitions

    def for_job(self, job_id: str) -> PartitionKeys:
        return self._parts[self.partition_of(job_id)]

    def part(self, partition: int) -> PartitionKeys:
        return self._parts[partition]

    def all(self) -> list[PartitionKeys]:
        return list(self._parts)

    @property
    def layout(self) -> str:
        """Hash: ``partitions`` -> the partition count this deployment's jobs were
        created with (core/runtime/layout.py).  In partition 0, which every
        process reads whatever its count, so a mismatch is always seen."""
        return f"{self.part(0).tag}:layout"

    def limit(self, stage: str) -> tuple[str, str, str]:
        """A stage's cluster-wide limits (core/runtime/limits.py): the rate's theoretical
        arrival time (string, ms), the in-flight permits (sorted set scored by expiry) and
        the limits its live workers enforce (hash ``max_per_second``, ``max_in_flight``,
        for monitor, dashboard and /metrics; it lapses with the last of them).
        Their own hash tag: one slot per stage, apart from the partitions."""
        tag = f"{{{self.prefix}:limit:{stage}}}"
        return f"{tag}:rate", f"{tag}:in-flight", f"{tag}:config"

    @property
    def limits_pattern(self) -> str:
        """ACL pattern of every :meth:`limit` key."""
        return f"{{{glob_escape(self.prefix)}:limit:*"

    def lease(self, consumer: str) -> str:
        """String with a TTL: the consumer's process is alive while it exists
        (renewed by a heartbeat thread; not partitioned, read outside scripts)."""
        return f"{self.prefix}:lease:{consumer}"

    def workers(self, stage: str) -> str:
        """Hash of live consumers of ``stage`` -> last heartbeat (not partitioned)."""
        return f"{self.prefix}:workers:{stage}"

    @property
    def lease_pattern(self) -> str:
        """ACL pattern of every :meth:`lease`."""
        return f"{glob_escape(self.prefix)}:lease:*"

    @property
    def workers_pattern(self) -> str:
        """ACL pattern of every :meth:`workers` hash."""
        return f"{glob_escape(self.prefix)}:workers:*"


def glob_escape(name: str) -> str:
    """``name`` as a literal in a Redis glob pattern (ACL ``~``, ``SCAN MATCH``)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in name)
