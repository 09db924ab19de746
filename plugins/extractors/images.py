"""PNG, JPEG and TIFF images: OCR with Tesseract, one page per image frame.

Only when OCR is available (``ocr.OcrOptions.unavailable``): otherwise this
returns None and the ``unsupported`` extractor refuses the image with the
reason.  Pillow reads only the header on open, so every frame's declared size
is checked against ``ocr_max_pixels`` before any pixel is decoded; a
multi-page TIFF counts against ``max_pages`` like a PDF.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from docgraph.plugins.extractors import formats
from docgraph.plugins.extractors.chunking import build_document
from docgraph.plugins.extractors.errors import (
    CORRUPT,
    DECOMPRESSION_BOMB,
    NO_TEXT,
    TOO_MANY_PAGES,
    ExtractionError,
)
from docgraph.plugins.extractors.limits import Limits
from docgraph.plugins.extractors.ocr import (
    OcrOptions,
    OcrReport,
    check_pixels,
    nothing_found,
    recognise_pages,
)
from docgraph.plugins.extractors.text import base_type
from docgraph.plugins.hookspecs import hookimpl
from docgraph.plugins.types import ExtractedDocument

CONTENT_TYPES = formats.IMAGES
_ORIENTATION = 0x0112  # EXIF tag


def _corrupt(mime: str, err: Exception) -> ExtractionError:
    return ExtractionError(
        CORRUPT,
        f"The image ({mime}) is corrupt and cannot be read ({type(err).__name__}: {err}). "
        "Open it in an image viewer and save it again, then submit it.",
    )


def _frames(image: Any, count: int, options: OcrOptions) -> Iterator[tuple[int, Any]]:
    """Each frame as a grayscale copy, its declared size checked before it is decoded, turned
    upright by its EXIF orientation (a photo of a page taken with the phone held sideways)."""
    from PIL import ImageOps

    for index in range(count):
        image.seek(index)
        width, height = image.size
        check_pixels(width * height, options, f"page {index + 1}", f"{width:,} x {height:,}")
        frame = image.convert("L")
        upright = ImageOps.exif_transpose(frame) if image.getexif().get(_ORIENTATION, 1) != 1 else frame
        if upright is not frame:
            frame.close()
        yield index + 1, upright


def extract_image(data: bytes, content_type: str, limits: Limits, options: OcrOptions) -> ExtractedDocument:
    from PIL import Image

    mime = base_type(content_type)
    deadline = limits.deadline()
    try:
        image = Image.open(io.BytesIO(data), formats=[mime.split("/")[1].upper()])
        count = int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError as err:  # over twice Pillow's own limit: refused on open
        raise ExtractionError(
            DECOMPRESSION_BOMB,
            f"The image is too large to decode safely ({err}); it looks like a decompression "
            "bomb and was not read. If it is a genuine scan, reduce its resolution "
            "(this is Pillow's own limit, above DOCGRAPH_EXTRACT__OCR_MAX_PIXELS).",
        ) from err
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's UnidentifiedImageError is an OSError
        raise _corrupt(mime, err) from err
    if count > limits.max_pages:
        raise ExtractionError(
            TOO_MANY_PAGES,
            f"The image has {count:,} pages, over the limit of {limits.max_pages:,} "
            "(DOCGRAPH_EXTRACT__MAX_PAGES). Split it into smaller files, or raise the limit.",
        )
    report = OcrReport()
    texts = [""] * count
    with image:
        try:
            for number, text in recognise_pages(_frames(image, count, options), options, deadline, report):
                texts[number - 1] = text
        except ExtractionError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            raise _corrupt(mime, err) from err
    return build_document(
        texts,
        mime,
        limits,
        paged=True,
        metadata=report.metadata(),
        empty_code=NO_TEXT,
        empty_message=nothing_found(f"In the image ({mime})", count, report),
    )


@hookimpl
def docgraph_extract_text(data: bytes, content_type: str, settings: Any) -> ExtractedDocument | None:
    if base_type(content_type) not in CONTENT_TYPES:
        return None
    options = OcrOptions.from_settings(settings)
    if options.unavailable() is not None:
        return None  # the unsupported extractor refuses it, saying why
    limits = Limits.from_settings(settings)
    limits.check_size(data)
    return extract_image(data, content_type, limits, options)
