"""The example's own tests: the counting function, and the stage in a real worker
(``docgraph.testing`` starts a private Redis with the FalkorDB graph)."""

from __future__ import annotations

from docgraph_wordcount import count_words, plugin

from docgraph.testing import run_stages

TEXT = (
    "Graphs connect documents. A graph of documents shows which documents share words: "
    "graphs, documents and words."
)


def test_count_words_skips_short_words_and_stopwords() -> None:
    counts = count_words(TEXT, min_length=5, stopwords=["shows"])
    assert counts["documents"] == 4
    assert "which" in counts and "shows" not in counts and "share" in counts
    assert all(len(w) >= 5 for w in counts)


async def test_the_stage_runs_between_extract_and_ingest_and_links_words() -> None:
    # plugins=[plugin] registers it even where the package is not installed; installed, its
    # entry point has already loaded it and this changes nothing
    async with run_stages(plugins=[plugin], plugin_settings={"wordcount": {"top": 3}}) as harness:
        assert harness.settings.topology["wordcount"] == ["extract"]
        assert "wordcount" in harness.settings.topology["ingest"]
        assert harness.settings.concurrency_for("wordcount") == 4
        job = await harness.submit_text(TEXT, name="graphs.txt")
        status = await harness.wait(job, timeout=120)
        assert status.state == "completed", status.to_dict()
        top = status.output("wordcount")["top"]
        assert list(top) == ["documents", "graphs", "words"]
        assert status.output("ingest")["contributed_edges"] == 3
        rows = harness.query(
            "MATCH (d:Document)-[r:HAS_WORD]->(w:Word) RETURN w.key, r.count, r.stage ORDER BY w.key"
        )
        assert rows == [("documents", 4, "wordcount"), ("graphs", 2, "wordcount"), ("words", 2, "wordcount")]
