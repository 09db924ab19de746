"""Tesseract through pytesseract: is it installed, and one image in, text and confidence out.

pytesseract runs the ``tesseract`` program per image, so a page that takes too
long is killed (``timeout``) instead of hanging a worker thread, and a crash in
Tesseract cannot take the worker down.  Each run uses one thread
(``OMP_THREAD_LIMIT=1`` in Tesseract's environment unless the variable is set):
extract's concurrency, not OpenMP, spreads pages over the cores, and OpenMP
threads on a busy machine only slow it down.  Only the Tesseract processes get
the variable: the worker's own OpenMP users (scikit-learn, the graph module)
keep theirs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"
ORIENTATION_SURE = 2.0  # Tesseract's orientation confidence above which a page is turned


class OcrTimeout(Exception):
    """Tesseract did not finish one image within its timeout (the process was killed)."""


@dataclass(frozen=True)
class Engine:
    """Whether OCR can run here: ``reason`` says why not when ``ok`` is False."""

    ok: bool
    version: str = ""
    reason: str = ""


@dataclass(frozen=True)
class PageText:
    """What Tesseract read on one image: text in reading order and the mean word confidence (0-100)."""

    text: str
    confidence: float | None
    words: int


class _TesseractEnvironment(Mapping[str, str]):
    """``os.environ`` as it is now, plus ``OMP_THREAD_LIMIT=1`` unless set: what pytesseract
    hands the ``tesseract`` processes it starts (its module-level ``environ``)."""

    def _current(self) -> dict[str, str]:
        return {"OMP_THREAD_LIMIT": "1", **os.environ}

    def __getitem__(self, key: str) -> str:
        return self._current()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


@lru_cache(maxsize=1)
def _pytesseract() -> Any:
    import pytesseract

    pytesseract.pytesseract.environ = _TesseractEnvironment()
    return pytesseract


@lru_cache(maxsize=8)
def engine(languages: str) -> Engine:
    """Tesseract's version if it is installed with every language in ``languages`` (``eng+deu``)."""
    try:
        pytesseract = _pytesseract()
    except ImportError:
        return Engine(False, reason="the pytesseract package is not installed (pip install pytesseract)")
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return Engine(False, reason=f"Tesseract is not installed ({INSTALL_HINT})")
    try:
        version = str(pytesseract.get_tesseract_version())
        installed = set(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractError, OSError, subprocess.SubprocessError) as err:
        return Engine(False, reason=f"Tesseract does not run ({err})")
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        return Engine(
            False,
            version,
            f"Tesseract has no data for {', '.join(missing)} (DOCGRAPH_EXTRACT__OCR_LANGUAGES={languages}; "
            f"install e.g. tesseract-ocr-{missing[0]})",
        )
    return Engine(True, version)


def _join(data: dict[str, list[Any]]) -> PageText:
    """Words back into lines and paragraphs, from Tesseract's TSV (block, paragraph, line numbers)."""
    out: list[str] = []
    confidences: list[float] = []
    last: tuple[int, int, int] | None = None
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        if last is not None:
            out.append(" " if key == last else "\n" if key[:2] == last[:2] else "\n\n")
        out.append(word)
        confidences.append(conf)
        last = key
    mean = round(sum(confidences) / len(confidences), 1) if confidences else None
    return PageText("".join(out), mean, len(confidences))


def rotation(image: Any, timeout: float) -> int:
    """Degrees (90, 180, 270) to turn ``image`` clockwise so its text stands upright, from
    Tesseract's orientation detection; 0 when it is upright or Tesseract cannot tell."""
    pytesseract = _pytesseract()
    try:
        osd = pytesseract.image_to_osd(
            image, config="--psm 0", timeout=timeout, output_type=pytesseract.Output.DICT
        )
    except RuntimeError as err:
        if "timeout" in str(err).lower():
            raise OcrTimeout(str(err)) from err
        return 0  # too few characters, or no osd data: leave the page as it is
    turn = int(osd.get("rotate", 0))
    return turn if turn in (90, 180, 270) and float(osd.get("orientation_conf", 0)) >= ORIENTATION_SURE else 0


def recognise(image: Any, languages: str, timeout: float) -> PageText:
    """OCR one PIL image; :class:`OcrTimeout` after ``timeout`` seconds."""
    pytesseract = _pytesseract()

    try:
        data = pytesseract.image_to_data(
            image, lang=languages, timeout=timeout, output_type=pytesseract.Output.DICT
        )
    except RuntimeError as err:
        if "timeout" in str(err).lower():
            raise OcrTimeout(str(err)) from err
        raise
    return _join(data)
