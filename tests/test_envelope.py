"""The envelope's label: how log lines and monitors name a job."""

from __future__ import annotations

from docgraph.core.envelope import DocumentRef, Envelope

JOB = "30971fc8" + "0" * 24


def test_label_prefers_the_document_name_then_its_file_then_metadata():
    named = Envelope(
        job_id=JOB, stage="extract", document=DocumentRef(uri="s3://b/k/x.pdf", name="report.pdf")
    )
    assert named.label == "report.pdf (job 30971fc8…)"
    unnamed = Envelope(job_id=JOB, stage="extract", document=DocumentRef(uri="file:///data/docs/a.txt"))
    assert unnamed.label == "a.txt (job 30971fc8…)"
    by_meta = Envelope(job_id="j1", stage="ner", metadata={"name": "notes.md"})
    assert by_meta.label == "notes.md (job j1)"
    assert Envelope(job_id="j2", stage="ner").label == "job j2"


def test_a_job_record_is_labelled_by_its_document_like_its_envelope():
    from docgraph.core.runtime.jobs import parse_job

    def record(**fields: str):
        return parse_job({k.encode(): v.encode() for k, v in {"id": "30971fc8" * 4, **fields}.items()}, ())

    assert record(doc_name="report.pdf", doc_uri="file:///x/y.pdf").label == "report.pdf (30971fc8…)"
    assert record(doc_uri="s3://bucket/in/a.txt").label == "a.txt (30971fc8…)"
    assert record(meta='{"name": "notes.md"}').label == "notes.md (30971fc8…)"
    assert record().label == "30971fc83097"
