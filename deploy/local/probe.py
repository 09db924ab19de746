#!/usr/bin/env python3
"""Protocol-level readiness probes for the local test services (used by services.sh).

    probe.py SERVICE                      one attempt; exit 0 if ready
    probe.py SERVICE --wait SECS --pid N  retry until ready, SECS elapse, or pid N dies
    probe.py s3 --init                    also create the test bucket (idempotent)

Exit codes: 0 ready, 1 not ready (timeout), 2 the server process died, 3 bad usage.
Settings come from the environment that services.sh exports (DOCGRAPH_*). Every
address is 127.0.0.1: these probes never talk to anything off the machine.
The last failure reason goes to stderr, so services.sh can show it with the log tail.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


class NotReady(Exception):
    pass


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"probe.py: {name} is not set (run through services.sh)")
    return value


def _resp_command(sock: socket.socket, *parts: str) -> bytes:
    """Send one RESP command and return the raw reply (enough for short replies)."""
    payload = f"*{len(parts)}\r\n".encode()
    for part in parts:
        data = part.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    sock.sendall(payload)
    sock.settimeout(3)
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply


def probe_redis() -> None:
    # Raw RESP, no client library: PING must answer +PONG (a -LOADING reply while
    # the AOF is replayed means "not yet"), and the FalkorDB module must be loaded.
    port = int(_env("DOCGRAPH_REDIS_PORT"))
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            pong = _resp_command(sock, "PING")
            if not pong.startswith(b"+PONG"):
                raise NotReady(f"PING answered {pong[:80]!r}")
            modules = _resp_command(sock, "MODULE", "LIST")
            if b"graph" not in modules.lower():
                raise NotReady("FalkorDB module ('graph') is not loaded")
    except OSError as exc:
        raise NotReady(f"redis: {exc}") from exc


def probe_neo4j() -> None:
    # The Java main prints its READY marker only after the password is applied;
    # probing Bolt before that would fail auth and count towards Neo4j's lock-out.
    log = os.environ.get("DOCGRAPH_NEO4J_LOG")
    if log:
        try:
            with open(log, encoding="utf-8", errors="replace") as fh:
                if "docgraph-neo4j: READY" not in fh.read():
                    raise NotReady("no READY marker in the log yet")
        except FileNotFoundError as exc:
            raise NotReady(f"no log file {log}") from exc
    from neo4j import GraphDatabase
    from neo4j.exceptions import Neo4jError, ServiceUnavailable

    uri = f"bolt://{HOST}:{int(_env('DOCGRAPH_NEO4J_BOLT_PORT'))}"
    auth = (_env("DOCGRAPH_TEST_NEO4J_USER"), _env("DOCGRAPH_TEST_NEO4J_PASSWORD"))
    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=3) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
            if records[0]["one"] != 1:
                raise NotReady(f"RETURN 1 gave {records!r}")
    except (ServiceUnavailable, Neo4jError, OSError) as exc:
        raise NotReady(f"neo4j: {exc}") from exc


def _s3_client():
    from minio import Minio

    return Minio(
        f"{HOST}:{int(_env('DOCGRAPH_S3_PORT'))}",
        access_key=_env("DOCGRAPH_TEST_S3_ACCESS_KEY"),
        secret_key=_env("DOCGRAPH_TEST_S3_SECRET_KEY"),
        region=os.environ.get("DOCGRAPH_TEST_S3_REGION", "us-east-1"),
        secure=False,
    )


def probe_s3(init: bool = False) -> None:
    # A signed ListBuckets proves the server is up and accepts our root keys.
    from minio.error import MinioException

    client = _s3_client()
    bucket = _env("DOCGRAPH_TEST_S3_BUCKET")
    try:
        client.list_buckets()
        if init and not client.bucket_exists(bucket):
            client.make_bucket(bucket)
            print(f"probe.py: created bucket {bucket}", file=sys.stderr)
        if not client.bucket_exists(bucket) and not init:
            raise NotReady(f"bucket {bucket} does not exist")
    except (MinioException, OSError) as exc:
        raise NotReady(f"s3: {exc}") from exc


def _http(method: str, url: str, body: bytes | None = None, ctype: str | None = None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=3) as resp:  # loopback URLs only
        return resp.status, resp.read()


def probe_jaeger() -> None:
    # Health extension says the pipeline is up, the query API answers, and the
    # OTLP/HTTP receiver accepts an (empty) export request.
    health = int(_env("DOCGRAPH_JAEGER_HEALTH_PORT"))
    query = int(_env("DOCGRAPH_JAEGER_QUERY_PORT"))
    otlp_http = int(_env("DOCGRAPH_JAEGER_OTLP_HTTP_PORT"))
    try:
        status, body = _http("GET", f"http://{HOST}:{health}/status")
        if status != 200 or not json.loads(body).get("healthy"):
            raise NotReady(f"health: {status} {body[:200]!r}")
        status, _ = _http("GET", f"http://{HOST}:{query}/api/services")
        if status != 200:
            raise NotReady(f"query /api/services answered {status}")
        status, _ = _http("POST", f"http://{HOST}:{otlp_http}/v1/traces", b"{}", "application/json")
        if status != 200:
            raise NotReady(f"OTLP/HTTP answered {status}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise NotReady(f"jaeger: {exc}") from exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=["redis", "neo4j", "s3", "jaeger"])
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep retrying")
    parser.add_argument("--pid", type=int, default=0, help="stop early if this pid dies")
    parser.add_argument("--init", action="store_true", help="s3: create the bucket")
    args = parser.parse_args()

    def check() -> None:
        if args.service == "s3":
            probe_s3(init=args.init)
        else:
            {"redis": probe_redis, "neo4j": probe_neo4j, "jaeger": probe_jaeger}[args.service]()

    deadline = time.monotonic() + args.wait
    last = "not probed"
    while True:
        try:
            check()
            return 0
        except NotReady as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if args.pid and not _alive(args.pid):
            print(f"probe.py: {args.service} process {args.pid} exited; last probe: {last}", file=sys.stderr)
            return 2
        if time.monotonic() >= deadline:
            print(f"probe.py: {args.service} not ready: {last}", file=sys.stderr)
            return 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
