"""Typed configuration: one object, read from ``DOCGRAPH_*`` variables and ``.env``.

Everything docgraph does is configured here and passed down explicitly;
nothing reads the environment on its own.  Nested values use ``__``:
``DOCGRAPH_RETRY__ATTEMPTS=5``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin
from urllib.parse import parse_qs, unquote, urlparse, urlsplit

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "DOCGRAPH_"
M = TypeVar("M", bound=BaseModel)
MiB = 1024 * 1024

DEFAULT_TOPOLOGY: dict[str, list[str]] = {
    "extract": [],
    "classify": ["extract"],
    "ner": ["extract"],
    "ingest": ["classify", "ner"],
}


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter: ``min(cap, base * 2**(attempt-1)) * (1 ± jitter)``."""

    attempts: int = Field(3, ge=1, description="total tries of a stage, the first included")
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(300.0, ge=0, description="cap on the delay, seconds")
    jitter: float = Field(0.2, ge=0, le=1, description="± fraction of random spread")


class StageOptions(BaseModel):
    """Per-stage overrides of the global runtime options."""

    concurrency: int | None = Field(None, ge=1)
    retry: RetryPolicy | None = None
    visibility_timeout: float | None = Field(None, gt=0)
    max_deliveries: int | None = Field(None, ge=1)
    max_per_second: float | None = Field(
        None, gt=0, description="starts per second of this stage across all its workers (held in Redis)"
    )
    max_in_flight: int | None = Field(
        None, ge=1, description="jobs of this stage running at once across all its workers (held in Redis)"
    )


class ExtractSettings(BaseModel):
    """Bounds of one extraction (``DOCGRAPH_EXTRACT__<FIELD>``): hostile input
    must never hang a worker or exhaust its memory (docs/extract.md)."""

    max_pages: int = Field(2000, ge=1, description="pages of a PDF")
    max_decompressed_ratio: float = Field(
        100.0, gt=0, description="decompressed bytes / input bytes (DOCX zip members, PDF streams)"
    )
    max_decompressed_bytes: int = Field(512 * MiB, ge=1, description="absolute cap on the same")
    max_text_chars: int = Field(20_000_000, ge=1, description="characters of extracted text")
    timeout: float = Field(120.0, ge=0, description="wall-clock seconds of one extraction")
    ocr: Literal["auto", "off"] = Field(
        "auto", description="OCR of image-only PDF pages and images: auto = when Tesseract is installed"
    )
    ocr_languages: str = Field(
        "eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$", description="Tesseract languages, e.g. eng+deu"
    )
    ocr_dpi: int = Field(300, ge=50, le=1200, description="resolution PDF pages are rendered at for OCR")
    ocr_despeckle: bool = Field(
        True, description="median filter (3 x 3) on each page before OCR: removes scanner dust and JPEG noise"
    )
    ocr_page_timeout: float = Field(60.0, gt=0, description="wall-clock seconds of OCR for one page")
    ocr_max_pixels: int = Field(
        89_478_485, ge=1, description="pixels of one image or page bitmap (Pillow's default bomb limit)"
    )


class NerSettings(BaseModel):
    """The ner stage (``DOCGRAPH_NER__<FIELD>``)."""

    model: Path | None = Field(
        None, description="a trained spaCy pipeline directory; default: the model shipped in the package"
    )
    data_dir: Path | None = Field(
        None, description="labelled CoNLL data for `docgraph ner train` (train.txt, valid.txt); no default"
    )


class EventsSettings(BaseModel):
    """The lifecycle event stream (``DOCGRAPH_EVENTS__<FIELD>``, docs/events.md): each
    event is one XADD inside the script of the state change it reports."""

    enabled: bool = Field(True, description="append lifecycle events (off: one XADD less per state change)")
    max_len: int = Field(100_000, ge=1, description="approximate cap per partition's events stream")
    max_age: float = Field(
        86400.0, ge=0, description="drop events older than this (s), in the idle sweep; 0: length only"
    )

    @property
    def cap(self) -> int:
        """What the scripts get: the MAXLEN of the events stream, 0 when events are off."""
        return self.max_len if self.enabled else 0


def check_webhook_secret(secret: SecretStr, variable: str) -> SecretStr:
    """A Standard Webhooks secret: ``whsec_`` + base64 of at least 24 random bytes."""
    import base64
    import binascii

    text = secret.get_secret_value().removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 24:
        raise ValueError(
            f"{variable} must be 'whsec_' + base64 of at least 24 random bytes (Standard Webhooks); "
            'make one with: python -c "import base64,secrets;'
            "print('whsec_'+base64.b64encode(secrets.token_bytes(32)).decode())\""
        )
    return secret


class WebhookSubscription(BaseModel):
    """One endpoint that gets lifecycle events (``DOCGRAPH_NOTIFY__WEBHOOKS``, a JSON list)."""

    name: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="names its deliveries and dead letters; default: webhook-<n>",
    )
    url: str = Field(description="http(s) URL the events are POSTed to")
    secret: SecretStr = Field(description="signing secret, whsec_<base64> (Standard Webhooks)")
    types: list[str] = Field(
        default_factory=lambda: ["job.*"], description="event types, job.* for a prefix (docs/events.md)"
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        return check_webhook_url(url, "a webhook's url")

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: SecretStr) -> SecretStr:
        return check_webhook_secret(secret, "a webhook's secret")


def check_webhook_url(url: str, what: str) -> str:
    """An absolute http(s) URL of at most 2,048 characters (where it may point is checked
    when it is called: DNS answers change)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise ValueError(f"{what} must be an absolute http:// or https:// URL (<= 2048 characters): {url!r}")
    return url


class NotifySettings(BaseModel):
    """Webhooks (``DOCGRAPH_NOTIFY__<FIELD>``, docs/events.md): the notify worker
    (``docgraph worker --stage notify``) POSTs signed lifecycle events to the
    subscriptions below and to each job's ``callback_url``."""

    webhooks: list[WebhookSubscription] = Field(
        default_factory=list,
        description='\'[{"url": "https://…", "secret": "whsec_…", "types": ["job.completed"]}]\'',
    )
    callback_secret: SecretStr | None = Field(
        None,
        description="signs deliveries to per-job callback_url (required to accept callback_url at submit)",
    )
    callback_types: list[str] = Field(
        default_factory=lambda: ["job.completed", "job.failed", "job.dead", "job.cancelled"],
        description="event types sent to a job's callback_url",
    )
    allow_private_targets: bool = Field(
        False,
        description="allow webhooks to loopback, private, link-local and other non-public addresses "
        "(off: refused, a guard against SSRF)",
    )
    timeout: float = Field(
        10.0, gt=0, le=60, description="seconds one delivery may take, connect to response"
    )
    concurrency: int = Field(16, ge=1, le=256, description="deliveries one notify worker makes at once")
    retry: RetryPolicy = Field(
        default_factory=lambda: RetryPolicy(attempts=8, backoff=2.0, backoff_max=600.0),
        description="tries of one delivery and the backoff between them (Retry-After is honoured)",
    )

    @field_validator("callback_secret")
    @classmethod
    def _secret(cls, secret: SecretStr | None) -> SecretStr | None:
        return None if secret is None else check_webhook_secret(secret, "DOCGRAPH_NOTIFY__CALLBACK_SECRET")

    @model_validator(mode="after")
    def _names(self) -> NotifySettings:
        for n, hook in enumerate(self.webhooks, 1):
            hook.name = hook.name or f"webhook-{n}"
        names = [h.name for h in self.webhooks]
        if len(set(names)) != len(names) or "callback" in names:
            raise ValueError(f"DOCGRAPH_NOTIFY__WEBHOOKS: names must be distinct and not 'callback': {names}")
        return self

    @property
    def active(self) -> bool:
        """Whether anything is to be delivered (then ``docgraph worker`` runs notify too)."""
        return bool(self.webhooks) or self.callback_secret is not None

    def subscription(self, name: str) -> WebhookSubscription | None:
        return next((h for h in self.webhooks if h.name == name), None)


class ResolveSettings(BaseModel):
    """Entity resolution in ingest (``DOCGRAPH_RESOLVE__<FIELD>``): which names are one entity."""

    aliases_file: Path | None = Field(
        None,
        description="the user's aliases, YAML or CSV (docs/ner.md, 'Entity resolution'); they win over packs",
    )
    attack: bool = Field(
        True, description="resolve MITRE ATT&CK groups, software, campaigns and techniques (built-in pack)"
    )


class RelationsSettings(BaseModel):
    """Typed relations in ingest (``DOCGRAPH_RELATIONS__<FIELD>``): ``docgraph_extract_relations``."""

    enabled: bool = Field(True, description="extract typed relations (USES, TARGETS, ...) in ingest")
    min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="relations less confident than this are not written to the graph"
    )


class RedisTlsSettings(BaseModel):
    """TLS for ``rediss://`` URLs (``DOCGRAPH_REDIS_TLS__<FIELD>``): the server's
    certificate is verified by default; a client certificate turns on mutual TLS."""

    ca_file: Path | None = Field(
        None, description="PEM bundle of the CA(s) that signed the server's certificate; default: system CAs"
    )
    cert_file: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    key_file: Path | None = Field(None, description="the client certificate's private key (PEM)")
    verify: bool = Field(True, description="verify the server's certificate (off: testing only)")
    check_hostname: bool = Field(True, description="the certificate must name the host connected to")

    @model_validator(mode="after")
    def _check_files(self) -> RedisTlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError(
                "DOCGRAPH_REDIS_TLS__KEY_FILE is set without DOCGRAPH_REDIS_TLS__CERT_FILE (mutual TLS needs both)"
            )
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"DOCGRAPH_REDIS_TLS__{name.upper()}={str(path)!r} is not a readable file")
        return self

    def redis_py_options(self) -> dict[str, Any]:
        """redis-py's ``ssl_*`` keyword arguments for these settings."""
        return {
            "ssl_ca_certs": str(self.ca_file) if self.ca_file else None,
            "ssl_certfile": str(self.cert_file) if self.cert_file else None,
            "ssl_keyfile": str(self.key_file) if self.key_file else None,
            "ssl_cert_reqs": "required" if self.verify else "none",
            "ssl_check_hostname": self.verify and self.check_hostname,
        }

    @property
    def configured(self) -> bool:
        """Whether anything but the defaults is set (then the URL must be TLS)."""
        return bool(self.model_fields_set)


RedisMode = Literal["single", "cluster", "sentinel"]
REDIS_SCHEMES: dict[str, tuple[RedisMode, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
URL_EXAMPLES = (
    "redis://127.0.0.1:6379/0, rediss://host:6380/0, redis+cluster://h1:7000,h2:7001, "
    "redis+sentinel://h1:26379,h2:26379/mymaster"
)


@dataclass(frozen=True)
class RedisTarget:
    """What ``DOCGRAPH_REDIS_URL`` names: one server, a cluster's seed nodes, or
    Sentinels and a master name; with or without TLS.  Clients are built from it
    by ``core.runtime.connection`` only."""

    url: str = field(repr=False)  # may hold the password
    mode: RedisMode
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_redis_url(value: str) -> RedisTarget:
    """Parse ``value`` or raise ValueError saying what is wrong (and naming the variable)."""
    var = f"DOCGRAPH_REDIS_URL={mask_redis_url(value)!r}"
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise ValueError(
            f"{var} is not a Redis URL: it must start with one of "
            f"{', '.join(s + '://' for s in REDIS_SCHEMES)} (e.g. {URL_EXAMPLES})"
        )
    mode, tls = REDIS_SCHEMES[scheme.lower()]
    if mode == "single":
        return _parse_single(value, var, tls)
    parts = urlsplit(value)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    default_port = 26379 if mode == "sentinel" else 6379
    nodes = tuple(_host_port(h.strip(), default_port, var) for h in hosts.split(",") if h.strip())
    if not nodes:
        raise ValueError(
            f"{var} names no host (e.g. {scheme}://127.0.0.1:{default_port}"
            + ("/mymaster)" if mode == "sentinel" else ")")
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f"{var}: {scheme}:// takes no ?options or #fragment (use DOCGRAPH_REDIS_TLS__* for TLS)"
        )
    path = [p for p in parts.path.split("/") if p]
    db = 0
    if mode == "cluster":
        if path and path != ["0"]:
            raise ValueError(f"{var}: a Redis Cluster has only database 0; drop the path {parts.path!r}")
        master = ""
    else:
        if not path or len(path) > 2:
            raise ValueError(
                f"{var} names no Sentinel master: end it with /<master-name>[/<db>] "
                f"(e.g. {scheme}://127.0.0.1:26379/mymaster)"
            )
        master = unquote(path[0])
        if len(path) == 2:
            db = _db(path[1], var)
    return RedisTarget(value, mode, tls, nodes, master, db, unquote(user) or None, unquote(password) or None)


def _parse_single(value: str, var: str, tls: bool) -> RedisTarget:
    parsed = urlparse(value)
    if parsed.scheme == "unix":
        return RedisTarget(value, "single", False, (), "", 0, parsed.username, parsed.password)
    if not parsed.hostname:
        raise ValueError(f"{var} names no host (e.g. redis://127.0.0.1:6379/0)")
    if "," in parsed.netloc:
        raise ValueError(
            f"{var} lists several hosts: use redis+cluster:// for a cluster's seed nodes or "
            "redis+sentinel://…/<master-name> for Sentinels"
        )
    try:
        port = parsed.port or 6379
    except ValueError:
        raise ValueError(f"{var} has an invalid port (use 1-65535)") from None
    db_text = parsed.path.strip("/") or parse_qs(parsed.query).get("db", ["0"])[0]
    return RedisTarget(
        value,
        "single",
        tls,
        ((parsed.hostname, port),),
        "",
        _db(db_text, var),
        unquote(parsed.username) if parsed.username else None,
        unquote(parsed.password) if parsed.password else None,
    )


def _host_port(text: str, default: int, var: str) -> tuple[str, int]:
    host, port = text, ""
    if text.startswith("["):  # [::1]:7000
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not host:
        raise ValueError(f"{var}: {text!r} names no host")
    if not port:
        return host, default
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{var}: {text!r} has an invalid port (use 1-65535)")
    return host, int(port)


def _db(text: str, var: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{var}: the database {text!r} is not a number (e.g. /0)")
    return int(text)


def mask_redis_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print and log."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{hosts}{slash}{path}"


# Names documented before the groups existed; still read (a grouped name wins).
LEGACY_NAMES: dict[str, tuple[str, str]] = {
    "DOCGRAPH_MAX_PAGES": ("extract", "max_pages"),
    "DOCGRAPH_MAX_DECOMPRESSED_RATIO": ("extract", "max_decompressed_ratio"),
    "DOCGRAPH_MAX_DECOMPRESSED_BYTES": ("extract", "max_decompressed_bytes"),
    "DOCGRAPH_MAX_TEXT_CHARS": ("extract", "max_text_chars"),
    "DOCGRAPH_EXTRACT_TIMEOUT": ("extract", "timeout"),
    "DOCGRAPH_NER_MODEL": ("ner", "model"),
}
# DOCGRAPH_* variables that configure docgraph's scripts and tests, not Settings.
TOOLING_NAMES = frozenset(
    """CI RUN_PROCESSES CACHE RUN_DIR BUILD_JOBS GOCACHE GOPATH PYTHON MAVEN_REPO START_TIMEOUT
    REDIS_PORT S3_PORT NEO4J_BOLT_PORT NEO4J_HEAP NEO4J_LOG VERSITYGW_VERSION JAEGER_VERSION
    JAEGER_HEALTH_ADDR JAEGER_HEALTH_PORT JAEGER_OTLP_GRPC_ADDR JAEGER_OTLP_GRPC_PORT
    JAEGER_OTLP_HTTP_ADDR JAEGER_OTLP_HTTP_PORT JAEGER_QUERY_GRPC_ADDR JAEGER_QUERY_GRPC_PORT
    JAEGER_QUERY_HTTP_ADDR JAEGER_QUERY_PORT PDF_CORPUS""".split()
)
TOOLING_PREFIXES = ("DOCGRAPH_TEST_",)


class LegacyNamesSource(PydanticBaseSettingsSource):
    """Reads :data:`LEGACY_NAMES` from the environment into their groups."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (group, key) in LEGACY_NAMES.items():
            if name in os.environ:
                values.setdefault(group, {})[key] = os.environ[name]
        return values


class Settings(BaseSettings):
    """docgraph configuration. Every field can be set as ``DOCGRAPH_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="DOCGRAPH_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis holding streams, job state, retries and dead letters: redis:// or "
        "rediss:// (TLS), redis+cluster://h1:p1,h2:p2 (seed nodes), "
        "redis+sentinel://h1:p1,h2:p2/<master> (each also rediss+…)",
    )
    redis_tls: RedisTlsSettings = Field(default_factory=RedisTlsSettings)
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        le=64,
        description="replicas that must confirm each script round trip (Redis WAIT) before it returns: "
        "a submit or hand-off that returned survives a failover; 0: no WAIT (asynchronous replication)",
    )
    redis_wait_timeout_ms: int = Field(
        1000,
        ge=1,  # WAIT with 0 blocks forever
        le=10_000,
        description="how long one WAIT waits for those replicas (ms); fewer in time: the round trip raises "
        "NotReplicated and is retried like a lost connection",
    )
    key_prefix: str = Field("docgraph", pattern=r"^[A-Za-z0-9_.-]+$")
    partitions: int = Field(1, ge=1, le=1024, description="hash-tagged key partitions")
    topology: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_TOPOLOGY))
    plugins: list[str] = Field(default_factory=list, description="extra plugin modules")

    concurrency: int = Field(16, ge=1, description="jobs one worker process runs at once")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    stages: dict[str, StageOptions] = Field(default_factory=dict)
    visibility_timeout: float = Field(
        60.0, gt=0, description="seconds before a silent consumer's entries are reclaimed"
    )
    max_deliveries: int = Field(
        5, ge=1, description="deliveries of one entry (crashes included) before dead-lettering"
    )
    poll_interval: float = Field(
        1.0, gt=0, le=4, description="seconds a blocking read waits (below the 5 s socket timeout)"
    )
    shutdown_grace: float = Field(30.0, ge=0, description="seconds to finish in-flight work")
    max_event_bytes: int = Field(1_000_000, ge=1024)

    completed_max_age: float = Field(3600.0, ge=0, description="keep completed jobs (s)")
    completed_max_count: int = Field(1000, ge=0, description="keep at most this many completed")
    failed_max_age: float = Field(86400.0, ge=0, description="keep failed/dead jobs (s)")
    failed_max_count: int = Field(100_000, ge=0)
    dlq_max_len: int = Field(100_000, ge=1, description="approximate cap per dead-letter stream")
    events: EventsSettings = Field(default_factory=EventsSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    object_store_url: str = Field(
        "", description="file:///path or s3://bucket/prefix; default: <data_dir>/objects"
    )
    s3_endpoint: str = Field("", description="host:port of MinIO / S3")
    s3_access_key: str = ""
    s3_secret_key: str = Field("", repr=False)
    s3_secure: bool = False
    s3_allowed_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="buckets besides the store's own that workers may read documents from: "
        '\'["b1","b2"]\' or b1,b2 (anything else is dead-lettered unread)',
    )
    latest_wins: bool = Field(
        False,
        description="a new submit of a document (same name, else URI) cancels an older job of it that "
        "has not started yet (job.cancelled with superseded_by); per submit: --latest-wins / ?latest_wins=",
    )
    max_document_bytes: int = Field(50 * 1024 * 1024, ge=1)
    chunk_chars: int = Field(1500, ge=100, description="target characters per chunk")
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    ner: NerSettings = Field(default_factory=NerSettings)
    resolve: ResolveSettings = Field(default_factory=ResolveSettings)
    relations: RelationsSettings = Field(default_factory=RelationsSettings)

    graph_sink: Literal["falkordb", "neo4j"] = Field(
        "falkordb", description="falkordb: the graph module in the Redis above; neo4j: Bolt"
    )
    graph_name: str = Field("docgraph", description="FalkorDB graph key")
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = Field("", repr=False)
    neo4j_database: str = "neo4j"
    neo4j_retry_seconds: float = Field(
        15.0, gt=0, description="how long the driver retries transient errors before the stage fails"
    )
    classify_model: Path | None = Field(None, description="model from `docgraph classify train`")

    data_dir: Path = Field(Path(".docgraph"), description="embedded Redis data and documents")
    appendfsync: Literal["always", "everysec", "no"] = "everysec"
    chaos_crash_at: str = Field(
        "", description="testing only: kill the worker (exit 137) at this point of a job"
    )
    chaos_crash_probability: float = Field(0.0, ge=0, le=1)
    log_json: bool = Field(
        False, description="log one JSON object per line with trace_id, span_id, job_id and stage"
    )
    trace_link_template: str = Field("", description="e.g. http://127.0.0.1:16686/trace/{trace_id}")
    health_file: Path | None = Field(
        None,
        description="a worker touches this file every few seconds (liveness, independent of Redis); "
        "`docgraph health` checks its age",
    )

    api_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description='bearer tokens the HTTP API accepts: \'["t1","t2"]\' or t1,t2; empty: auth off (logged)',
    )
    api_max_upload_bytes: int | None = Field(
        None,
        ge=1024,
        description="largest request body the HTTP API reads; default: max_document_bytes + 1 MiB",
    )
    api_max_json_bytes: int = Field(1024 * 1024, ge=1024, description="largest JSON request body")

    # plugins' typed settings by namespace (``docgraph_settings_model``), filled in by
    # docgraph.plugins.manager.load_plugins; read with :meth:`plugin`
    _plugin_settings: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        legacy = LegacyNamesSource(settings_cls)
        return init_settings, env_settings, legacy, dotenv_settings, file_secret_settings

    @property
    def api_upload_limit(self) -> int:
        """Largest multipart request body (the document plus form overhead)."""
        return self.api_max_upload_bytes or self.max_document_bytes + 1024 * 1024

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        parse_redis_url(value)  # raises a ValueError naming the variable and the problem
        return value

    @model_validator(mode="after")
    def _check_redis_tls(self) -> Settings:
        if self.redis_tls.configured and not self.redis_target.tls:
            raise ValueError(
                f"DOCGRAPH_REDIS_TLS__* is set but DOCGRAPH_REDIS_URL={mask_redis_url(self.redis_url)!r} "
                "is plaintext: use rediss:// (or rediss+cluster://, rediss+sentinel://)"
            )
        return self

    @property
    def redis_target(self) -> RedisTarget:
        """The parsed ``redis_url`` (server, cluster seeds or Sentinels; TLS or not)."""
        return parse_redis_url(self.redis_url)

    @field_validator("api_tokens", "s3_allowed_buckets", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError as exc:
                    raise ValueError(
                        f'DOCGRAPH_API_TOKENS is not a JSON list ({exc}); use \'["t1","t2"]\''
                    ) from None
            return [t.strip() for t in text.split(",") if t.strip()]
        return value

    @model_validator(mode="after")
    def _check_topology(self) -> Settings:
        from docgraph.core.topology import Topology

        Topology(self.topology)  # raises a ValueError naming the problem
        # With the default topology, plugins may still add stages (StageSpec.after):
        # the plugin manager checks DOCGRAPH_STAGES against the effective topology.
        unknown = set(self.stages) - set(self.topology)
        if unknown and self.topology_is_explicit:
            raise ValueError(
                f"DOCGRAPH_STAGES configures {sorted(unknown)}, which are not in the topology "
                f"{sorted(self.topology)}"
            )
        return self

    @property
    def topology_is_explicit(self) -> bool:
        """Whether the topology was configured (``DOCGRAPH_TOPOLOGY`` or an argument):
        then it is used as given, and plugins' stage placements are ignored."""
        return "topology" in self.model_fields_set

    def plugin(self, namespace: str, model: type[M] | None = None) -> M:
        """A plugin's typed settings, read from ``DOCGRAPH_<NAMESPACE>__<FIELD>`` when
        the plugins were loaded (``docgraph.plugins.manager.load_plugins``)."""
        try:
            value = self._plugin_settings[namespace]
        except KeyError:
            from docgraph.core.errors import ConfigError

            raise ConfigError(
                f"no plugin settings {namespace!r} (known: {sorted(self._plugin_settings)}): "
                "is the plugin that declares them installed or listed in DOCGRAPH_PLUGINS?"
            ) from None
        if model is not None and not isinstance(value, model):
            raise TypeError(f"plugin settings {namespace!r} are {type(value).__name__}, not {model.__name__}")
        return value  # type: ignore[return-value]

    def retry_for(self, stage: str) -> RetryPolicy:
        options = self.stages.get(stage)
        return options.retry if options and options.retry else self.retry

    def concurrency_for(self, stage: str) -> int:
        options = self.stages.get(stage)
        return options.concurrency if options and options.concurrency else self.concurrency

    def limits_for(self, stage: str) -> tuple[float | None, int | None]:
        """(max_per_second, max_in_flight) of ``stage`` across all workers; None: no limit."""
        options = self.stages.get(stage)
        return (options.max_per_second, options.max_in_flight) if options else (None, None)

    def visibility_timeout_for(self, stage: str) -> float:
        options = self.stages.get(stage)
        if options and options.visibility_timeout:
            return options.visibility_timeout
        return self.visibility_timeout

    def max_deliveries_for(self, stage: str) -> int:
        options = self.stages.get(stage)
        if options and options.max_deliveries:
            return options.max_deliveries
        return self.max_deliveries


def _env_names(model: type[BaseModel], prefix: str) -> tuple[set[str], set[str]]:
    """Every variable name a settings model reads, and the prefixes of its
    free-form dict fields (``DOCGRAPH_STAGES__<any>``)."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for field_name, info in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        names.add(name)
        annotation = info.annotation
        if get_origin(annotation) is dict:
            prefixes.add(f"{name}__")
            continue
        options = [annotation, *get_args(annotation)]
        nested = next((a for a in options if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is not None:
            sub_names, sub_prefixes = _env_names(nested, f"{name}__")
            names |= sub_names
            prefixes |= sub_prefixes
    return names, prefixes


def unknown_variables(
    environ: Mapping[str, str] | None = None, plugins: Mapping[str, type[BaseModel]] | None = None
) -> list[str]:
    """One message per ``DOCGRAPH_*`` variable no setting reads, naming the closest valid one.

    ``plugins`` are the plugins' settings models by namespace: their variables
    (``DOCGRAPH_<NAMESPACE>__<FIELD>``) count as known.  A typo
    (``DOCGRAPH_CONCURENCY``) would otherwise be ignored without a word."""
    environ = os.environ if environ is None else environ
    names, prefixes = _env_names(Settings, ENV_PREFIX)
    names |= set(LEGACY_NAMES)
    for namespace, model in (plugins or {}).items():
        sub_names, sub_prefixes = _env_names(model, f"{ENV_PREFIX}{namespace.upper()}__")
        names |= sub_names
        prefixes |= sub_prefixes
    messages = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in names or var.startswith((*prefixes, *TOOLING_PREFIXES)):
            continue
        if var.removeprefix(ENV_PREFIX) in TOOLING_NAMES:
            continue
        suffixes = sorted(n.removeprefix(ENV_PREFIX) for n in names)
        close = difflib.get_close_matches(var.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.75)
        hint = (
            f"; did you mean {ENV_PREFIX}{close[0]}?"
            if close
            else "; `docgraph config show` lists the settings"
        )
        messages.append(f"{var} is not a docgraph setting and is ignored{hint}")
    return messages
