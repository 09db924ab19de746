"""The dashboard in a real browser: headless Chromium (Debian's chromium +
chromium-driver, driven by Selenium) against a real API on a real Redis, with
jobs completed, dead and queued.  Screenshots go to docs/img/dashboard-*.png."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from docgraph.core.envelope import DocumentRef
from docgraph.core.runtime.dlq import DeadLetters
from docgraph.core.runtime.jobs import JobStore
from docgraph.core.runtime.keys import JOB_STATES
from docgraph.core.settings import RetryPolicy, Settings, StageOptions
from docgraph.testing import run_stages
from tests.api.conftest import TOKENS, api_settings, serve
from tests.runtime.helpers import running_worker, wait_for_states

pytestmark = pytest.mark.service
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


def browser(javascript: bool = True) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    )
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    d = browser()
    try:
        yield d
    finally:
        d.quit()


def login(d: webdriver.Chrome, url: str) -> None:
    d.get(f"{url}/ui")
    WebDriverWait(d, 15).until(ec.presence_of_element_located((By.NAME, "token")))
    d.find_element(By.NAME, "token").send_keys(TOKENS[0])
    d.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button").click()
    WebDriverWait(d, 15).until(ec.title_contains("Overview"))


def console_errors(d: webdriver.Chrome) -> list[dict]:
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]


async def until_state(store: JobStore, job_id: str, state: str, timeout: float = 30) -> None:
    await wait_for_states(store, [job_id], {state}, timeout=timeout)


async def test_pages_search_replay_cancel_pause_and_auth_in_chromium(settings, client, tmp_path, driver):
    # classify retries wait 10 minutes: a job failing it once stays `retrying` for the test
    slow_retry = StageOptions(retry=RetryPolicy(attempts=3, backoff=600, jitter=0))
    limited = StageOptions(max_per_second=50, max_in_flight=8)  # shown on the overview
    s = api_settings(settings, tmp_path, stages={"classify": slow_retry, "ingest": limited})
    store = JobStore(client, s)
    docs = [
        DocumentRef(
            uri=f"file:///reports/report-{n}.pdf", sha256=f"{n}" * 8 + "ab" * 28, name=f"report-{n}.pdf"
        )
        for n in range(3)
    ]
    # a job in every state, with a worker running throughout
    async with running_worker(s, client):
        done = [(await store.submit(doc))[0] for doc in docs]
        # three failed tries: dead; replayed, its fourth succeeds
        dead, _ = await store.submit(None, metadata={"name": "broken.pdf", "fail": {"extract": 3}})
        failed, _ = await store.submit(
            None, metadata={"name": "scan.pdf", "permanent": {"extract": "no text"}}
        )
        retrying, _ = await store.submit(None, metadata={"name": "flaky.pdf", "fail": {"classify": 1}})
        later = datetime.now(UTC) + timedelta(hours=1)
        queued, _ = await store.submit(None, metadata={"name": "waiting.pdf"}, not_before=later)
        running, _ = await store.submit(None, metadata={"name": "long.pdf", "spin_ms": {"extract": 120_000}})
        await wait_for_states(store, [*done, dead, failed], {"completed", "failed", "dead"})
        await until_state(store, retrying, "retrying")
        await until_state(store, running, "running")
        states = {j: (await store.get(j)).state for j in (*done, dead, failed, retrying, queued, running)}
        assert set(states.values()) == set(JOB_STATES) - {"cancelled"}, states  # cancelled: from the page

        with serve(s) as server:
            url = server.url
            driver.get(f"{url}/ui/jobs")  # no session: the login page
            assert "/ui/login" in driver.current_url
            driver.find_element(By.NAME, "token").send_keys("wrong")
            driver.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button").click()
            # the click navigates: wait for the answer page, not the login page still shown
            WebDriverWait(driver, 15).until(lambda d: "not one of DOCGRAPH_API_TOKENS" in d.page_source)
            driver.get_log("browser")  # drained: that 403 was the point; from here on none is expected
            login(driver, url)
            assert "long.pdf" in driver.page_source  # the running job, by its document
            assert "50/s, 0/8 running" in driver.page_source  # ingest's limits
            SHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SHOTS / "dashboard-overview.png"))

            for job_id, state in states.items():  # the state filter finds each job
                driver.get(f"{url}/ui/jobs?state={state}")
                assert job_id[:12] in driver.page_source, (state, job_id)
            driver.get(f"{url}/ui/jobs?q=11111111abab")  # a sha256 prefix: report-1.pdf, and only it
            assert done[1][:12] in driver.page_source and done[0][:12] not in driver.page_source
            driver.get(f"{url}/ui/jobs?q={done[2][:10]}")  # a job id prefix
            assert done[2][:12] in driver.page_source
            driver.get(f"{url}/ui/jobs?q=waiting")
            assert queued[:12] in driver.page_source
            driver.get(f"{url}/ui/jobs?state=completed&since=2000-01-01T00:00")
            assert all(j[:12] in driver.page_source for j in done)
            driver.get(f"{url}/ui/jobs?state=completed&until=2000-01-01T00:00")  # the time filter holds them
            assert not any(j[:12] in driver.page_source for j in done)
            driver.get(f"{url}/ui/jobs?state=completed")
            driver.save_screenshot(str(SHOTS / "dashboard-jobs.png"))

            driver.get(f"{url}/ui/jobs/{failed}")  # the timeline names the error
            assert "scan.pdf" in driver.page_source and "no text" in driver.page_source
            driver.get(f"{url}/ui/jobs/{done[0]}")
            assert "report-0.pdf" in driver.page_source and "extract" in driver.page_source
            driver.save_screenshot(str(SHOTS / "dashboard-job.png"))

            letters = DeadLetters(client, s)
            assert await letters.count("extract") == 2  # the dead job's and the failed one's
            driver.get(f"{url}/ui/dlq/extract")
            assert dead[:12] in driver.page_source and failed[:12] in driver.page_source
            driver.save_screenshot(str(SHOTS / "dashboard-dead-letters.png"))
            form = driver.find_element(By.XPATH, f"//tr[.//code[text()='{dead[:12]}']]//form")  # its row's
            form.find_element(By.NAME, "confirm").click()
            form.find_element(By.TAG_NAME, "button").click()
            WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert).accept()  # hx-confirm asks first
            WebDriverWait(driver, 15).until(lambda d: "replayed 1" in d.page_source)
            assert [lt.job_id for lt in await letters.list("extract")] == [failed]
            await until_state(store, dead, "completed")  # back in the pipeline, and through it

            driver.get(f"{url}/ui/jobs/{running}")  # cancel the running job from its page
            form = driver.find_element(By.CSS_SELECTOR, f"form[action='/ui/jobs/{running}/cancel']")
            form.find_element(By.NAME, "confirm").click()
            form.find_element(By.TAG_NAME, "button").click()
            WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert).accept()
            await until_state(store, running, "cancelled")
            driver.get(f"{url}/ui/jobs/{running}")
            assert "state-cancelled" in driver.page_source

            driver.get(f"{url}/ui")
            form = driver.find_element(By.CSS_SELECTOR, "form[action='/ui/stages/ner/pause']")
            form.find_element(By.NAME, "confirm").click()
            form.find_element(By.TAG_NAME, "button").click()
            WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert).accept()
            WebDriverWait(driver, 15).until(lambda d: "/ui/stages/ner/resume" in d.page_source)
            assert await client.hexists(store.keys.part(0).paused, "ner")
            assert console_errors(driver) == [], console_errors(driver)


async def test_job_page_lists_the_documents_entities_and_relations(driver, monkeypatch):
    for name in [n for n in os.environ if n.startswith("DOCGRAPH_") and not n.startswith("DOCGRAPH_TEST_")]:
        monkeypatch.delenv(name)
    text = (
        "Fancy Bear sent phishing mails and ran PowerShell (T1059.001) on the hosts it reached.\n\n"
        "The implant beaconed to hxxp://update-check[.]com/a every hour."
    )
    # the real pipeline (shipped NER model, resolution, FalkorDB) on the harness's own Redis;
    # chunks of ~100 characters put each paragraph in a chunk of its own
    async with run_stages(Settings(chunk_chars=100)) as h:
        job_id = await h.submit_text(text, name="fancy-bear.txt")
        status = await h.wait(job_id, timeout=180)
        assert status.state == "completed", status.to_dict()
        doc = status.output("ingest")["document_id"]
        in_graph = h.query(
            "MATCH (:Document {id: $id})<-[:PART_OF]-(:Chunk)-[:MENTIONS]->(e:Entity) "
            "RETURN DISTINCT e.key, e.name ORDER BY e.name, e.key",  # two entities may share a name
            id=doc,
        )
        with serve(h.settings.model_copy(update={"api_tokens": list(TOKENS)})) as server:
            login(driver, server.url)
            driver.get(f"{server.url}/ui/jobs/{job_id}")
            entities = [
                [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#entities + table tr")[1:]
            ]
            relations = [
                [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, "#relations + table tr")[1:]
            ]
            driver.save_screenshot(str(SHOTS / "dashboard-job-graph.png"))
            assert console_errors(driver) == [], console_errors(driver)
    # the page lists what the graph holds: every entity once, the alias resolved to its ATT&CK group
    assert sorted(row[1] for row in entities) == [row[1] for row in in_graph]
    assert ["Group", "APT28", "1", "G0007", "Fancy Bear"] == next(
        row[:5] for row in entities if row[1] == "APT28"
    )
    assert "http://update-check.com/a" in [row[1] for row in entities]  # refanged
    # relations: APT28 and PowerShell share the first chunk; the indicator is alone in the second
    pairs = {(r[0], r[1], r[2]) for r in relations}
    assert any("APT28" in a and t == "CO_OCCURS" and "PowerShell" in b for a, t, b in pairs) or any(
        "PowerShell" in a and t == "CO_OCCURS" and "APT28" in b for a, t, b in pairs
    ), relations
    assert not any("update-check" in a or "update-check" in b for a, _, b in pairs), relations


def test_pages_read_without_javascript(settings, tmp_path):
    s = api_settings(settings, tmp_path)
    d = browser(javascript=False)
    try:
        with serve(s) as server:
            login(d, server.url)
            for path in ("/ui", "/ui/jobs", "/ui/dlq/extract"):
                d.get(f"{server.url}{path}")
                assert d.find_element(By.TAG_NAME, "h1").text
    finally:
        d.quit()
