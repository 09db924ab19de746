"""Webhooks on a real redis-server to a real HTTP receiver on loopback: every
event matching a subscription arrives once, signed (checked with the Standard
Webhooks reference library); failures (500, timeouts) are retried with the same
webhook-id, dead-lettered after the cap and replayed with ``docgraph dlq``;
non-public targets are refused unless allowed; a job's ``callback_url`` gets
its terminal event from a real ``docgraph worker``."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.notify import Notifier
from docgraph.core.runtime.snapshot import prometheus_text, snapshot
from docgraph.core.settings import Settings
from docgraph.stages.notify import TargetRefused, WebhookSender, check_target
from tests.conftest import run_cli
from tests.runtime.procs import WorkerProcs

pytestmark = pytest.mark.service
SECRET = "whsec_" + base64.b64encode(b"docgraph-test-secret-0123456789").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-xxxxx").decode()


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST; ``answers[path]`` says what
    each call to that path gets: a status, or ``"sleep:<s>"`` before 200."""

    answers: dict[str, list[int | str]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    script = receiver.answers.get(self.path, [])
                    answer: int | str = script.pop(0) if len(script) > 1 else (script or [200])[0]
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "answer": answer}
                    )
                if isinstance(answer, str):  # "sleep:<s>": slower than the sender's timeout
                    time.sleep(float(answer.split(":")[1]))
                    answer = 200
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def notify_settings(settings: Settings, **notify: Any) -> Settings:
    options = {"allow_private_targets": True, "timeout": 1.0, **notify}
    options.setdefault("retry", {"attempts": 3, "backoff": 0.05, "backoff_max": 0.2, "jitter": 0})
    return settings.model_copy(update={"notify": Settings(notify=options).notify})


async def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Running:
    """A Notifier running in this event loop until the block ends."""

    def __init__(self, settings: Settings, client: Any) -> None:
        sender = WebhookSender(
            timeout=settings.notify.timeout, allow_private=settings.notify.allow_private_targets
        )
        self.notifier = Notifier(settings, client, sender)
        self.stopping = asyncio.Event()

    async def __aenter__(self) -> Notifier:
        self.task = asyncio.create_task(self.notifier.run(self.stopping))
        return self.notifier

    async def __aexit__(self, *exc: object) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 30)


def verified(request: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The body, after the Standard Webhooks library accepted its signature."""
    return Webhook(secret).verify(request["body"], request["headers"])


def doc(n: int) -> DocumentRef:
    return DocumentRef(uri=f"file:///reports/r{n}.pdf", sha256=f"{n:064x}", name=f"r{n}.pdf")


async def test_each_matching_event_arrives_once_signed(settings, client, receiver):
    s = notify_settings(
        settings,
        webhooks=[
            {"name": "all", "url": receiver.url("/all"), "secret": SECRET},
            {"url": receiver.url("/cancels"), "secret": OTHER_SECRET, "types": ["job.cancelled"]},
        ],
    )
    store = JobStore(client, s)
    ids = [(await store.submit(doc(n)))[0] for n in range(20)]
    async with Running(s, client):  # events before the first notify worker are sent too
        for job_id in ids[:5]:
            await store.cancel(job_id)
        await until(
            lambda: len(receiver.on("/all")) >= 25 and len(receiver.on("/cancels")) >= 5, "deliveries"
        )
        await asyncio.sleep(1)  # nothing more comes
    got = [verified(r) for r in receiver.on("/all")]
    assert sorted((b["type"], b["data"]["job_id"]) for b in got) == sorted(
        [("job.submitted", j) for j in ids] + [("job.cancelled", j) for j in ids[:5]]
    )
    assert len({r["headers"]["webhook-id"] for r in receiver.on("/all")}) == 25
    first = next(b for b in got if b["data"]["job_id"] == ids[3] and b["type"] == "job.submitted")
    assert first["data"]["name"] == "r3.pdf" and first["data"]["sha256"] == f"{3:064x}"
    assert first["data"]["seq"] == 1 and first["data"]["id"].startswith("0-")
    cancels = [verified(r, OTHER_SECRET) for r in receiver.on("/cancels")]
    assert sorted(b["data"]["job_id"] for b in cancels) == sorted(ids[:5])
    assert all(b["data"]["previous"] == "queued" for b in cancels)
    with pytest.raises(Exception, match=r"(?i)signature"):
        verified(receiver.on("/cancels")[0], SECRET)  # signed with its own subscription's secret


async def test_failures_are_retried_with_one_id_dead_lettered_at_the_cap_and_replayed(
    settings, client, receiver
):
    receiver.answers = {"/flaky": [500, 503, 204], "/slow": ["sleep:2", 200], "/down": [500]}
    s = notify_settings(
        settings,
        webhooks=[
            {"name": name, "url": receiver.url(f"/{name}"), "secret": SECRET}
            for name in ("flaky", "slow", "down")
        ],
    )
    store = JobStore(client, s)
    job_id, _ = await store.submit(doc(1))
    dlq = DeadLetters(client, s)
    async with Running(s, client) as notifier:
        await until(lambda: len(receiver.on("/flaky")) == 3 and len(receiver.on("/slow")) == 2, "retries")
        await until(lambda: notifier.dead == 1, "the dead letter")
        letters = await dlq.list("notify")
        assert [(lt.job_id, lt.fields["target"], lt.fields["attempts"]) for lt in letters] == [
            (job_id, "down", "3")
        ]
        assert letters[0].fields["error"].startswith("HTTP 500 from 127.0.0.1")
        assert len(receiver.on("/down")) == 3
        metrics = prometheus_text(await snapshot(store))
        assert 'docgraph_dead_letters{stage="notify"} 1.0' in metrics
        for path in ("/flaky", "/slow", "/down"):  # every try of a delivery carries the same id
            assert len({r["headers"]["webhook-id"] for r in receiver.on(path)}) == 1
            for r in receiver.on(path):
                verified(r)

        receiver.answers["/down"] = [200]  # the receiver is fixed
        assert await dlq.replay("notify") == 1
        await until(lambda: len(receiver.on("/down")) == 4, "the replayed delivery")
        assert await dlq.count("notify") == 0
    assert verified(receiver.on("/down")[-1])["data"]["job_id"] == job_id
    assert await client.zcard(s_keys(s).part(0).notify_due) == 0  # nothing left to deliver


def s_keys(s: Settings):
    from docgraph.core.runtime.keys import Keys

    return Keys(s.key_prefix, s.partitions)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]:9/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "ftp://example.org/x",
        "file:///etc/passwd",
    ],
)
async def test_non_public_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_public_addresses_pass_the_target_check():
    await check_target("https://93.184.215.14/hook", allow_private=False)  # a literal: no DNS asked
    await check_target("http://127.0.0.1:9/x", allow_private=True)


async def test_a_refused_target_is_dead_lettered_at_once_and_never_called(settings, client, receiver):
    s = notify_settings(
        settings,
        allow_private_targets=False,
        webhooks=[{"name": "inside", "url": receiver.url("/x"), "secret": SECRET}],
    )
    job_id, _ = await JobStore(client, s).submit(doc(2))
    async with Running(s, client) as notifier:
        await until(lambda: notifier.dead == 1, "the dead letter")
    (letter,) = await DeadLetters(client, s).list("notify")
    assert (
        letter.fields["attempts"] == "1"
        and "DOCGRAPH_NOTIFY__ALLOW_PRIVATE_TARGETS" in letter.fields["error"]
    )
    assert receiver.received == []


async def test_callback_url_needs_a_secret_and_http(settings, client):
    store = JobStore(client, settings)
    with pytest.raises(ValueError, match="DOCGRAPH_NOTIFY__CALLBACK_SECRET"):
        await store.submit(doc(3), callback_url="https://example.org/hook")
    signed = JobStore(client, notify_settings(settings, callback_secret=SECRET))
    with pytest.raises(ValueError, match="http"):
        await signed.submit(doc(3), callback_url="gopher://example.org/hook")


def test_a_bad_secret_names_the_variable_and_how_to_make_one():
    with pytest.raises(Exception, match="DOCGRAPH_NOTIFY__CALLBACK_SECRET must be 'whsec_'"):
        Settings(notify={"callback_secret": "short"})


async def test_a_job_callback_gets_its_terminal_events_from_a_real_worker(
    settings, client, receiver, tmp_path
):
    s = notify_settings(settings, callback_secret=SECRET)
    store = JobStore(client, s)
    env = {
        "DOCGRAPH_NOTIFY__CALLBACK_SECRET": SECRET,
        "DOCGRAPH_NOTIFY__ALLOW_PRIVATE_TARGETS": "true",
        "DOCGRAPH_TOPOLOGY": json.dumps(s.topology),
    }
    procs = WorkerProcs(s, tmp_path, **env)
    procs.start(1)  # every stage, and notify (a callback secret is set)
    try:
        done, _ = await store.submit(doc(4), callback_url=receiver.url("/done"))
        dead, _ = await store.submit(
            doc(5), callback_url=receiver.url("/dead"), metadata={"permanent": {"extract": "unreadable"}}
        )
        await until(lambda: receiver.on("/done") and receiver.on("/dead"), "both callbacks", 90)
        await asyncio.sleep(1)
    finally:
        assert procs.stop(timeout=60) == [0], procs.logs()
    (completed,) = [verified(r) for r in receiver.on("/done")]  # callback types: terminal ones only
    assert completed["type"] == "job.completed" and completed["data"]["job_id"] == done
    (failed,) = [verified(r) for r in receiver.on("/dead")]
    assert failed["type"] == "job.failed" and failed["data"]["stage"] == "extract"
    assert "unreadable" in failed["data"]["error"]


def test_dlq_cli_lists_notify_letters(settings):
    out = run_cli(
        {
            "DOCGRAPH_REDIS_URL": settings.redis_url,
            "DOCGRAPH_KEY_PREFIX": settings.key_prefix,
            "PATH": "/usr/bin",
        },
        "dlq",
        "list",
        "notify",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


async def test_a_notify_worker_killed_mid_delivery_leaves_it_to_another(settings, client, receiver, tmp_path):
    """SIGKILL while the receiver holds the request: the delivery's lease runs out and
    the next notify worker makes it again, with the same webhook-id."""
    receiver.answers = {"/held": ["sleep:5", 200]}
    hook = {"name": "held", "url": receiver.url("/held"), "secret": SECRET, "types": ["job.submitted"]}
    s = notify_settings(settings, webhooks=[hook], timeout=6.0)
    env = {
        "DOCGRAPH_NOTIFY__WEBHOOKS": json.dumps([hook]),
        "DOCGRAPH_NOTIFY__TIMEOUT": "6",
        "DOCGRAPH_NOTIFY__ALLOW_PRIVATE_TARGETS": "true",
    }
    procs = WorkerProcs(s, tmp_path, stages=["notify"], **env)
    (first,) = procs.start(1)
    try:
        job_id, _ = await JobStore(client, s).submit(doc(6))
        await until(lambda: len(receiver.on("/held")) == 1, "the first try", 60)
        procs.kill9(first)
        procs.start(1)
        await until(lambda: len(receiver.on("/held")) == 2, "the try after the lease (timeout + 10 s)", 60)
    finally:
        codes = procs.stop(timeout=60)
    assert codes[1:] == [0], procs.logs()
    tries = receiver.on("/held")
    assert tries[0]["headers"]["webhook-id"] == tries[1]["headers"]["webhook-id"]
    assert verified(tries[1])["data"]["job_id"] == job_id
    await asyncio.sleep(1)
    assert len(receiver.on("/held")) == 2  # and not again
