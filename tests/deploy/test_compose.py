"""The compose stack for real: deploy/compose/compose.yaml with the locally built
images, under a project name of its own, published on 127.0.0.1 (random ports).

50 documents go in through the API container, a third of them as uploads to
the S3 server whose bucket notification reaches the API's webhook. While they
flow, the only ``ner`` container is SIGKILLed and the stage scaled to 3. Then:
every job completed, nothing dead-lettered, no job for docgraph's own objects,
Neo4j (over Bolt from here) holds exactly the documents, chunks and mentions
the jobs report, a job's trace is in Jaeger (through the collector), Redis
refuses clients without the password, ``docker compose stop`` stops every
docgraph container with exit status 0 within its grace period, and after
``down`` (volumes kept) and ``up`` the jobs and the graph are still there."""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import ROOT, inspect, sh

pytestmark = [pytest.mark.service, pytest.mark.slow]

COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
TOKEN = "compose-test-token"
DOCGRAPH_SERVICES = ("api", "extract", "classify", "ner", "ingest", "upkeep")
STAGES = ("extract", "classify", "ner", "ingest")
STATES = ("queued", "running", "retrying", "completed", "failed", "dead", "cancelled")
N_DOCS, N_S3 = 50, 17
GRACE = 45  # stop_grace_period in compose.yaml


class Stack:
    def __init__(self, project: str, image: str) -> None:
        self.project = project
        self.env = {
            **os.environ,
            "DOCGRAPH_IMAGE": image,
            "DOCGRAPH_API_TOKEN": TOKEN,
            "DOCGRAPH_VISIBILITY_TIMEOUT": "10",  # a killed consumer's entries come back after 10 s
            # "" = a random port on 127.0.0.1 (compose.yaml: "127.0.0.1:${VAR-default}:port")
            **{f"DOCGRAPH_{s}_PORT": "" for s in ("API", "REDIS", "NEO4J", "S3", "JAEGER")},
        }

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        return sh("docker", "compose", "-p", self.project, "-f", str(COMPOSE), *args,
                  timeout=timeout, check=check, env=self.env).stdout  # fmt: skip

    def port(self, service: str, port: int) -> str:
        return self.compose("port", service, str(port)).strip()

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-a", "-q", service).split()

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://{self.port('api', 8000)}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )


@pytest.fixture
def stack(images, unique) -> Iterator[Stack]:
    s = Stack(unique, images)
    try:
        started = time.monotonic()
        s.compose("up", "-d", "--wait", timeout=600)
        print(f"compose up --wait (cold volumes): {time.monotonic() - started:.1f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)
        left = sh(
            "docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={unique}"
        ).stdout.split()
        if left:
            sh("docker", "rm", "-f", "-v", *left, check=False)


def _documents(seed: int = 9) -> dict[str, str]:
    """50 distinct advisories, each naming a CVE no other one does."""
    rng = random.Random(seed)
    vendors = ["Siemens", "Schneider Electric", "Rockwell Automation", "ABB", "Honeywell", "Yokogawa"]
    protocols = ["Modbus", "DNP3", "OPC UA", "PROFINET", "BACnet"]
    docs = {}
    for i in range(N_DOCS):
        cve = f"CVE-2024-{31000 + i}"
        paragraphs = [
            f"Advisory {i}: {rng.choice(vendors)} controllers speaking {rng.choice(protocols)} are affected "
            f"by {cve} (CWE-{rng.randint(20, 900)}). Attackers from 10.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)}.{rng.randint(1, 254)} used technique T{rng.randint(1000, 1600)} "
            "and APT28 was named in the report. Apply the vendor patch and restrict access."
            for _ in range(6)
        ]
        docs[f"advisory-{i:02d}.txt"] = "\n\n".join(paragraphs) + "\n"
    return docs


def _all_jobs(api: httpx.Client) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for state in STATES:
        cursor = None
        while True:
            r = api.get(
                "/v1/jobs", params={"state": state, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            )
            r.raise_for_status()
            jobs |= {j["id"]: j for j in r.json()["jobs"]}
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
    return jobs


def _dead_letters(api: httpx.Client) -> dict[str, int]:
    return {stage: api.get(f"/v1/dlq/{stage}").json()["count"] for stage in STAGES}


def _graph(stack: Stack) -> dict[str, Any]:
    from neo4j import GraphDatabase

    uri = f"bolt://{stack.port('neo4j', 7687)}"
    with GraphDatabase.driver(uri, auth=("neo4j", "docgraph-compose-pw")) as driver:

        def q(cypher: str, **params: Any) -> list[dict[str, Any]]:
            return [r.data() for r in driver.execute_query(cypher, params, database_="neo4j").records]

        return {
            "documents": sorted(r["name"] for r in q("MATCH (d:Document) RETURN d.name AS name")),
            "chunks": q("MATCH (c:Chunk)-[:PART_OF]->(:Document) RETURN count(c) AS n")[0]["n"],
            "mentions": q("MATCH (:Chunk)-[m:MENTIONS]->(:Entity) RETURN count(m) AS n")[0]["n"],
            "all_chunks": q("MATCH (c:Chunk) RETURN count(c) AS n")[0]["n"],
            "cves": {
                r["doc"]: sorted(r["cves"])
                for r in q(
                    "MATCH (d:Document)<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(e:Entity) "
                    "WHERE toUpper(e.name) STARTS WITH 'CVE-2024-3' RETURN d.name AS doc, collect(DISTINCT toUpper(e.name)) AS cves"
                )
            },
        }


def _wait_all_completed(api: httpx.Client, ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = _all_jobs(api)
        done = {i for i in ids if jobs.get(i, {}).get("state") == "completed"}
        bad = {
            i: jobs[i]["state"]
            for i in ids
            if jobs.get(i, {}).get("state") in ("failed", "dead", "cancelled")
        }
        assert not bad, (bad, _dead_letters(api))
        if done == ids:
            return jobs
        assert time.monotonic() < deadline, (
            f"{len(ids - done)} of {len(ids)} jobs not completed: {_dead_letters(api)}"
        )
        time.sleep(0.5)


def test_compose_stack_end_to_end(stack: Stack) -> None:
    import redis
    from minio import Minio

    docs = _documents()
    names = sorted(docs)
    via_s3 = set(names[::3][:N_S3])
    assert len(via_s3) == N_S3

    # Redis has a password: a client without it gets nothing.
    host, port = stack.port("redis", 6379).rsplit(":", 1)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=host, port=int(port)).ping()

    with stack.api() as api:
        assert api.get("/readyz").json()["status"] == "ready"
        s3 = Minio(
            stack.port("s3", 7070), "docgraph", "docgraph-compose-secret", secure=False, region="us-east-1"
        )
        submitted: dict[str, str] = {}  # job id -> name
        t_submit = time.monotonic()
        for name in names:
            data = docs[name].encode()
            if name in via_s3:  # the bucket notification starts the job through the API's webhook
                s3.put_object(
                    "docgraph", f"docs/inbox/{name}", io.BytesIO(data), len(data), content_type="text/plain"
                )
            else:
                r = api.post("/v1/jobs", files={"file": (name, data, "text/plain")})
                assert r.status_code == 202, r.text
                submitted[r.json()["id"]] = name

        # While jobs flow: SIGKILL the only ner container, then scale ner to 3.
        [ner] = stack.containers("ner")

        def ner_running() -> set[str]:
            r = api.get("/v1/jobs", params={"state": "running", "stage": "ner", "limit": 1000})
            return {j["id"] for j in r.json()["jobs"]}

        deadline = time.monotonic() + 120
        while not ner_running():  # ner has a backlog: with concurrency 4 it always holds jobs from now on
            assert time.monotonic() < deadline, "no job reached ner"
            time.sleep(0.05)
        sh("docker", "kill", ner)
        # what the dead consumer held: no other ner consumer exists yet, so these stay "running"
        held = ner_running()
        assert held, "the ner container held no job when it was killed"
        stack.compose("up", "-d", "--wait", "--scale", "ner=3", "--no-recreate", timeout=300)
        assert len(stack.compose("ps", "-q", "ner").split()) == 3

        # every job completes, nothing is dead-lettered
        deadline = time.monotonic() + 60
        while len(_all_jobs(api)) < N_DOCS:
            assert time.monotonic() < deadline, f"only {len(_all_jobs(api))} jobs: webhook calls lost?"
            time.sleep(0.5)
        jobs = _all_jobs(api)
        assert len(jobs) == N_DOCS, sorted(
            j["metadata"].get("name", "?") for j in jobs.values()
        )  # no artifact loops
        jobs = _wait_all_completed(api, set(jobs), timeout=300)
        print(
            f"{N_DOCS} jobs ({N_S3} via the S3 webhook) completed {time.monotonic() - t_submit:.1f} s after the first submit"
        )
        assert _dead_letters(api) == dict.fromkeys(STAGES, 0)
        by_name = {j["metadata"]["name"]: j for j in jobs.values()}
        assert sorted(by_name) == names
        assert all(by_name[n]["id"] == i for i, n in submitted.items())
        assert {n for n, j in by_name.items() if j["metadata"].get("source", "").startswith("s3:")} == via_s3
        attempts = {i: next(st for st in jobs[i]["stages"] if st["name"] == "ner")["attempts"] for i in held}
        assert all(n >= 2 for n in attempts.values()), attempts  # reclaimed from the dead consumer, then done
        print(
            f"ner SIGKILLed holding {len(held)} jobs: each reclaimed (ner attempts {sorted(attempts.values())}), completed"
        )

        # Neo4j holds exactly what the jobs report
        outputs = [{st["name"]: st["output"] for st in j["stages"]} for j in jobs.values()]
        graph = _graph(stack)
        assert graph["documents"] == names
        assert (
            graph["chunks"] == graph["all_chunks"] == sum(o["extract"]["chunks"] for o in outputs) >= N_DOCS
        )
        assert graph["mentions"] == sum(o["ner"]["mentions"] for o in outputs) > N_DOCS
        print(
            {k: v for k, v in graph.items() if k in ("chunks", "mentions")},
            "documents:",
            len(graph["documents"]),
        )
        assert graph["cves"] == {n: [f"CVE-2024-{31000 + i}"] for i, n in enumerate(names)}

        # a job's trace, exported to the collector, is in Jaeger: API, every stage. (The last
        # job ner ran: spans the SIGKILLed container had not exported yet are gone with it.)
        job = max(
            jobs.values(), key=lambda j: next(st["started"] for st in j["stages"] if st["name"] == "ner")
        )
        jaeger = f"http://{stack.port('jaeger', 16686)}"
        deadline = time.monotonic() + 60
        while True:
            r = httpx.get(f"{jaeger}/api/traces/{job['trace_id']}", timeout=10)
            services = set()
            if r.status_code == 200 and r.json().get("data"):
                trace = r.json()["data"][0]
                services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
            if {"docgraph-api", *(f"docgraph-{st}" for st in STAGES)} <= services:
                break
            assert time.monotonic() < deadline, (r.status_code, services)
            time.sleep(1)

    # `docker compose stop`: every docgraph container exits 0 within its grace period
    ours = {svc: stack.containers(svc) for svc in DOCGRAPH_SERVICES}
    started = time.monotonic()
    stack.compose("stop", timeout=300)
    took = time.monotonic() - started
    print(f"compose stop: {took:.1f} s")
    assert took < GRACE + 30
    codes = {c: inspect(c)["State"] for cs in ours.values() for c in cs}
    assert {c: s["ExitCode"] for c, s in codes.items() if s["ExitCode"] != 0} == {}, codes
    assert all(not s["OOMKilled"] and s["Status"] == "exited" for s in codes.values())

    # down (volumes kept), up: the finished jobs and the graph are still there
    stack.compose("down", "-t", "10", timeout=300)
    started = time.monotonic()
    stack.compose("up", "-d", "--wait", timeout=600)
    print(f"compose up --wait (warm volumes): {time.monotonic() - started:.1f} s")
    with stack.api() as api:
        again = _all_jobs(api)
        assert {i: j["state"] for i, j in again.items()} == dict.fromkeys(jobs, "completed")
        assert _dead_letters(api) == dict.fromkeys(STAGES, 0)
    assert _graph(stack) == graph
