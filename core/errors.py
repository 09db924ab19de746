"""Error types that decide what the runtime does with a failed job.

A stage raises :class:`PermanentError` when retrying cannot help (bad input):
the job goes straight to the dead-letter stream with the reason.  Any other
exception is treated as transient and retried with backoff.
"""


class DocgraphError(Exception):
    """Base of every error docgraph raises on purpose."""


class PermanentError(DocgraphError):
    """Bad input or a condition no retry can fix; dead-lettered at once.

    The message is shown to users as is, so say what is wrong and what to do.
    """


class ConfigError(DocgraphError):
    """Invalid configuration, reported before anything starts."""


class JobCancelled(DocgraphError):
    """The job was cancelled while its stage ran (raised by ``ctx.progress``).

    A stage need not catch it: the runtime drops the job's entry, nothing
    downstream runs, and the job stays ``cancelled``."""
