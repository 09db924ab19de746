"""``docgraph acl``: least-privilege Redis ACL users, one per role.

The lines are computed from the configured prefix, partitions and topology
(key names from ``core/runtime/keys.py``), so they stay right when those change.
Scripts run with their caller's ACL: the commands a role's Lua scripts call are
granted on the role's keys, and nothing else (no FLUSHALL, CONFIG, KEYS, DEBUG,
SHUTDOWN, MONITOR, ACL…).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

import typer

from docgraph.core.cli.common import err, load_plugins
from docgraph.core.runtime.keys import Keys, glob_escape
from docgraph.core.settings import Settings
from docgraph.core.topology import Topology
from docgraph.plugins.sinks.falkordb import write_lock_key


class Role(str, Enum):
    publisher = "publisher"
    submitter = "submitter"
    worker = "worker"
    api = "api"
    monitor = "monitor"


# Every connection: PING (probes), SELECT (a /<db> in the URL).  Not CLIENT SETINFO:
# Redis 7.0 has no such command (ACL SETUSER would fail); on 7.2+ redis-py's
# CLIENT SETINFO on connect is refused and ignored (add +client|setinfo to quiet ACL LOG).
CONNECT = ("ping", "select")
# WAIT: DOCGRAPH_REDIS_WAIT_REPLICAS ends every script round trip with it (granted
# whatever the setting, so turning it on needs no new ACL; it only blocks its caller)
SCRIPTS = ("evalsha", "eval", "script|load", "wait")
# What the Lua scripts call (core/runtime/lua.py) besides reads.
SCRIPT_WRITES = ("hset", "hsetnx", "hdel", "hincrby", "del", "pexpire", "zadd", "zrem", "xtrim")
SCRIPT_READS = ("hget", "hmget", "hexists", "hgetall", "exists", "zcard", "zrange", "zrangebyscore", "zscore")
# XAUTOCLAIM: the notify worker takes a dead notifier's unacknowledged events
STREAMS_RW = (
    "xadd",
    "xack",
    "xdel",
    "xreadgroup",
    "xclaim",
    "xautoclaim",
    "xpending",
    "xlen",
    "xgroup|create",
)
# Stage limits (core/runtime/limits.py): the scripts read the server's clock, the
# rate's arrival time, count and expire permits
LIMITS = ("time", "get", "incr", "zremrangebyscore")
# The FalkorDB sink (DOCGRAPH_GRAPH_SINK=falkordb): its client asks INFO whether it
# talks to a Sentinel or a cluster, then queries the graph key; writers take turns
# through redis-py's lock (SET NX, and scripts that GET, PEXPIRE and DEL it).  Module
# commands: ACL SETUSER refuses them on a Redis without the module (use neo4j there).
FALKORDB = ("info", "get", "graph.query", "graph.ro_query", "graph.list", "graph.explain")
# Reading it (the API's /v1/entities and /v1/documents/{id}/graph, docgraph graph): read-only queries
FALKORDB_READS = ("info", "graph.ro_query", "graph.list")
READS = (
    "hget",
    "hgetall",
    "hmget",
    "hlen",
    "exists",
    "zcard",
    "zcount",
    "zscore",
    "zrange",
    "zrangebyscore",
    "zrevrange",
    "zrevrangebyscore",
    "xlen",
    "xrange",
    "xrevrange",
    "xread",
    "xpending",
    "xinfo|groups",
    "xinfo|stream",
)


@dataclass(frozen=True)
class Grant:
    """One role: key patterns (``~`` read-write, ``%R~`` read-only, ``%W~``
    write-only) and commands."""

    keys: tuple[str, ...]
    commands: tuple[str, ...]
    what: str


def grant(role: Role, settings: Settings) -> Grant:
    keys = Keys(settings.key_prefix, settings.partitions)
    parts = keys.all()
    roots = Topology(settings.topology).roots
    # not %W~: Redis counts XADD as reading its key too (it returns the new id)
    root_streams = tuple(f"~{p.stream_pattern(r)}" for p in parts for r in roots)
    everything = tuple(f"~{p.all_pattern}" for p in parts)
    if role is Role.publisher:
        return Grant(root_streams, ("xadd", *CONNECT), "XADD events to the root stage streams, nothing else")
    if role is Role.submitter:
        job_keys = tuple(
            f"~{pattern}"
            for p in parts
            for pattern in (
                p.job_pattern,
                p.idempotency,
                p.state_index("queued"),
                glob_escape(p.events),
                # latest-wins: the document's newest job; cancelling an older one moves it
                # to the cancelled index and removes its scheduled roots
                glob_escape(p.latest),
                p.state_index("cancelled"),
                p.delayed,
            )
        ) + tuple(f"~{p.stream_pattern(r)}" for p in parts for r in roots)
        job_keys += (f"~{glob_escape(keys.layout)}",)  # the first submit records the partition count
        # SUBMIT also appends job.submitted to the partition's events stream
        commands = (
            *SCRIPTS,
            "hget",
            "hsetnx",
            "hmget",
            "hgetall",
            "exists",
            "hset",
            "hincrby",
            "del",
            "zadd",
            "zrem",
            "xadd",
            *CONNECT,
        )
        return Grant(
            job_keys,
            commands,
            "submit jobs through the SUBMIT script (docgraph submit, JobStore.submit) "
            "and read their records (submit --wait, status)",
        )
    if role is Role.worker:
        graph: tuple[str, ...] = ()
        graph_keys: tuple[str, ...] = ()
        if settings.graph_sink == "falkordb":  # the graph lives in this Redis (module commands)
            graph = FALKORDB
            graph_keys = tuple(
                f"~{glob_escape(k)}" for k in (settings.graph_name, write_lock_key(settings.graph_name))
            )
        return Grant(
            (
                *everything,
                f"~{keys.lease_pattern}",
                f"~{keys.workers_pattern}",
                f"~{keys.limits_pattern}",
                *graph_keys,
            ),
            (*SCRIPTS, *SCRIPT_WRITES, *SCRIPT_READS, *STREAMS_RW, "set", *LIMITS, *graph, *CONNECT),
            "run stages: read, hand off, retry, dead-letter, reclaim, keep leases and retention"
            + (", write the FalkorDB graph" if graph else ""),
        )
    # the graph reads (API graph endpoints, docgraph graph) when the graph is in this Redis
    falkordb = settings.graph_sink == "falkordb"
    # ``~``, not ``%R~``: the module's GRAPH.RO_QUERY does not declare its key read-only;
    # the commands granted (no GRAPH.QUERY) are what keeps these roles from writing
    graph_read = (f"~{glob_escape(settings.graph_name)}",) if falkordb else ()
    graph_read_commands = FALKORDB_READS if falkordb else ()
    if role is Role.api:
        return Grant(
            (*everything, f"%R~{keys.workers_pattern}", f"%R~{keys.limits_pattern}", *graph_read),
            (*SCRIPTS, *SCRIPT_WRITES, *READS, "xadd", "xdel", "xack", *graph_read_commands, *CONNECT),
            "the HTTP API: submit, status, list, cancel, delete, dead letters (list, replay, purge), /metrics"
            + (", read the FalkorDB graph" if falkordb else ""),
        )
    return Grant(
        (
            *(f"%R~{p.all_pattern}" for p in parts),
            f"%R~{keys.workers_pattern}",
            f"%R~{keys.limits_pattern}",
            *graph_read,
        ),
        (*READS, *graph_read_commands, *CONNECT),
        "read-only: docgraph monitor, counts, job records, dead letters"
        + (", docgraph graph on the FalkorDB graph" if falkordb else ""),
    )


def setuser_line(user: str, role: Role, settings: Settings, password: str | None) -> list[str]:
    """The arguments of one ``ACL SETUSER`` (``reset`` first: re-running it replaces the user)."""
    g = grant(role, settings)
    secret = f"#{hashlib.sha256(password.encode()).hexdigest()}" if password is not None else "nopass"
    return [
        "ACL",
        "SETUSER",
        user,
        "reset",
        "on",
        secret,
        "resetchannels",
        *g.keys,
        *(f"+{c}" for c in g.commands),
    ]


def _quote(arg: str) -> str:
    """An argument as redis-cli reads it (quoted only when it must be)."""
    if arg and not any(c in arg for c in " \t\"'\\"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def acl(
    role: Annotated[Role, typer.Option("--role", "-r", help="publisher, submitter, worker, api or monitor")],
    user: Annotated[str | None, typer.Option(help="ACL user name; default: docgraph-<role>")] = None,
    password_env: Annotated[
        str | None, typer.Option("--password-env", help="read the user's password from this variable")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="the user's password (visible in `ps`: prefer --password-env)")
    ] = None,
    nopass: Annotated[
        bool, typer.Option("--nopass", help="a user without a password (testing only)")
    ] = False,
) -> None:
    """Print the ACL SETUSER line of a least-privilege Redis user for one role.

    Key patterns come from DOCGRAPH_KEY_PREFIX, DOCGRAPH_PARTITIONS and the
    topology (plugins' stages included): print the lines again after changing them.
    The password is printed as its SHA-256 (#…), never in clear.

    [bold]publisher[/bold]  XADD to the root stages' streams only (any system, `redis-cli XADD`)
    [bold]submitter[/bold]  the SUBMIT script + reading job records (`docgraph submit [--wait]`, JobStore.submit)
    [bold]worker[/bold]     `docgraph worker` / `docgraph run`'s workers: streams, records, retries, leases
    [bold]api[/bold]        `docgraph serve`: submit, status, list, cancel, delete, dead letters, /metrics
    [bold]monitor[/bold]    read-only: `docgraph monitor`, `status`, `jobs`, `dlq list|show`

    Example: [bold]DOCGRAPH_WORKER_PW=… docgraph acl --role worker --password-env DOCGRAPH_WORKER_PW | redis-cli[/bold]
    then [bold]DOCGRAPH_REDIS_URL=redis://docgraph-worker:…@host:6379/0 docgraph worker[/bold]
    """
    given = [name for name, v in (("--password-env", password_env), ("--password", password)) if v] + (
        ["--nopass"] if nopass else []
    )
    if len(given) != 1:
        err.print(
            "[red]error:[/red] give exactly one of --password-env VAR, --password or --nopass"
            + (f" (got {', '.join(given)})" if given else "")
        )
        raise typer.Exit(2)
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            err.print(f"[red]error:[/red] --password-env {password_env}: the variable is unset or empty")
            raise typer.Exit(2)
    settings = load_plugins().settings
    args = setuser_line(user or f"docgraph-{role.value}", role, settings, None if nopass else password)
    typer.echo(" ".join(_quote(a) for a in args))  # plain: rich would turn ":a:" into an emoji


__all__ = ["Grant", "Role", "acl", "grant", "setuser_line"]
