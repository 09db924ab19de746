"""docgraph's core: the plugin contract at the top, then one package per role.

Reading order for a newcomer:

1. The contract a plugin sees (this package's modules, importing no subpackage):
   ``errors`` (PermanentError = dead-letter, anything else = retry), ``stage``
   (StageSpec, StageContext, StageResult, Services), ``envelope`` (the event on
   the wire), ``topology`` (the stage DAG), ``settings`` (one typed object).
2. ``runtime/`` — between Redis and a stage: ``keys`` → ``lua`` → ``connection``
   → ``jobs`` (submit) → ``runner`` (read, run, hand off) → ``worker`` → ``dlq``.
3. ``store/`` (documents and artifacts: file://, s3://) and ``telemetry/``
   (OpenTelemetry from OTEL_*), which the runtime uses.
4. The edges: ``api/`` (FastAPI) and ``cli/`` (typer, one module per command
   group), which never import each other, and ``testing/`` (published as
   ``docgraph.testing``: the harness plugin authors test with), which nothing imports.

A plugin author starts at ``docgraph.plugins.hookspecs`` (every hook, documented)
and docs/plugins.md; ``docgraph.plugins.manager.load_plugins`` turns settings +
plugins into the effective configuration (topology, stage options, plugin settings).

docs/architecture.md follows one job through these modules.  A stage author
needs only the names below::

    from docgraph.core import PermanentError, StageContext, StageResult, StageSpec
"""

from docgraph.core.errors import ConfigError, PermanentError
from docgraph.core.stage import Services, StageContext, StageResult, StageSpec

__all__ = ["ConfigError", "PermanentError", "Services", "StageContext", "StageResult", "StageSpec"]
