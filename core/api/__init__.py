"""The HTTP API (FastAPI): submit, job status and paging, dead letters, the S3 webhook, health.

``app`` builds the application; ``problems`` turns every error into
``application/problem+json`` (RFC 9457) and bounds request bodies.
"""

from docgraph.core.api.app import create_app

__all__ = ["create_app"]
