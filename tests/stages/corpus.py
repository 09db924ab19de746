"""A mixed document set: the shared PDF corpus plus generated DOCX, HTML, text
and bad inputs, each with the outcome it must reach."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PDF_CORPUS = REPO.parent / "shared" / "corpus" / "pdf"

# Image-only PDFs (no text layer; pictures without writing, so they are dead-lettered with
# "OCR found no text", or "needs OCR" where OCR is off) and the encrypted one, from the
# extractor tests.
NEEDS_OCR = {
    "cmyk-image.pdf",
    "grayscale-image.pdf",
    "imagemagick-ASCII85Decode.pdf",
    "imagemagick-CCITTFaxDecode.pdf",
    "imagemagick-lzw.pdf",
}
ENCRYPTED = {"libreoffice-writer-password.pdf"}

VENDORS = ["Siemens", "Schneider Electric", "Rockwell Automation", "ABB", "Honeywell", "Yokogawa"]
PROTOCOLS = ["Modbus", "DNP3", "IEC 61850", "OPC UA", "PROFINET", "BACnet"]
NAMES = [
    'O\'Brien "Quote" Group',
    "Back\\slash Corp",
    "MATCH (n) DETACH DELETE n",
    "Группа Песчаный червь",
    "サンドワーム",
    "RETURN 1 //",
]


@dataclass
class Doc:
    path: Path
    expect: str  # "completed" or a fragment of the dead-letter reason


def _paragraph(rng: random.Random, i: int) -> str:
    return (
        f"Advisory {i}: {rng.choice(VENDORS)} devices speaking {rng.choice(PROTOCOLS)} are affected by "
        f"CVE-20{rng.randint(10, 25)}-{rng.randint(1000, 99999)} (CWE-{rng.randint(20, 900)}). "
        f"Attackers from 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} used "
        f"technique T{rng.randint(1000, 1600)}. The group {rng.choice(NAMES)} was named in the report. "
        "Apply the vendor patch and restrict network access to the controller."
    )


def build(folder: Path, total: int = 200, seed: int = 7) -> list[Doc]:
    """``total`` documents: every PDF of the shared corpus, then generated ones."""
    from docx import Document as Docx

    rng = random.Random(seed)
    docs = [
        Doc(p, "encrypted" if p.name in ENCRYPTED else "OCR" if p.name in NEEDS_OCR else "completed")
        for p in sorted(PDF_CORPUS.glob("*.pdf"))
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    docs.append(Doc(folder / "empty.txt", "empty"))
    (folder / "random.bin").write_bytes(rng.randbytes(4096))
    docs.append(Doc(folder / "random.bin", "unsupported"))
    i = 0
    while len(docs) < total:
        kind = i % 3
        body = "\n\n".join(_paragraph(rng, i * 10 + k) for k in range(rng.randint(1, 6)))
        if kind == 0:
            path = folder / f"doc{i}.docx"
            d = Docx()
            for para in body.split("\n\n"):
                d.add_paragraph(para)
            d.save(str(path))
        elif kind == 1:
            path = folder / f"page{i}.html"
            paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
            path.write_text(
                f"<!doctype html><html><head><title>t{i}</title></head><body>{paras}</body></html>"
            )
        else:
            path = folder / f"note{i}.txt"
            path.write_text(body, encoding="utf-8" if i % 2 else "utf-16")
        docs.append(Doc(path, "completed"))
        i += 1
    return docs
