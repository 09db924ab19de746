"""Scans with known text for the OCR tests: text rendered with a TrueType font by
Pillow, saved as PNG, JPEG, TIFF or an image-only PDF; and the character error rate."""

from __future__ import annotations

import io
import random
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
)

KNOWN_TEXT = (
    "Threat report 2024-17. The group APT28, also known as Fancy Bear, exploited "
    "CVE-2023-23397 in Microsoft Outlook to steal credentials from energy companies. "
    "The operators moved laterally with PsExec and Mimikatz, then installed a backdoor "
    "that contacted its server at update.example.com every ten minutes. Siemens and "
    "Schneider Electric controllers speaking Modbus were scanned, but no process was "
    "changed. Apply the vendor patches, reset passwords and block the listed domains."
)
SECOND_PAGE = (
    "Page two of the report lists indicators: the loader hash, two registry keys, "
    "and the scheduled task named WindowsUpdateCheck. Defenders should hunt for "
    "unusual PowerShell use and outbound traffic on port 8443."
)


def font_path() -> Path:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
    assert found, "no TrueType font in /usr/share/fonts: apt-get install fonts-dejavu-core (deploy/setup.sh)"
    return found[0]


def render(text: str, dpi: int = 150, points: float = 12.0) -> Image.Image:
    """A US-letter page with ``text`` in black on white, wrapped at about 70 characters."""
    width, height = int(8.5 * dpi), int(11 * dpi)
    size = round(points * dpi / 72)
    font = ImageFont.truetype(str(font_path()), size)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = dpi  # one-inch margins
    for line in textwrap.wrap(text, 70):
        draw.text((dpi, y), line, font=font, fill=0)
        y += round(size * 1.5)
    return page


def degrade(page: Image.Image, seed: int = 7) -> Image.Image:
    """A worse scan of ``page``: tilted 1.5 degrees, blurred, grey background, speckles."""
    rng = random.Random(seed)
    tilted = page.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    blurred = tilted.filter(ImageFilter.GaussianBlur(1.2)).point(lambda v: 40 + v * 0.75)
    pixels = blurred.load()
    assert pixels is not None
    width, height = blurred.size
    for _ in range(width * height // 200):  # 0.5 % of the pixels: dust
        pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 255))
    return blurred


def encode(pages: list[Image.Image], fmt: str, dpi: int = 150) -> bytes:
    """The pages as one file: PNG/JPEG (first page), TIFF or PDF (every page)."""
    out = io.BytesIO()
    first, rest = pages[0], pages[1:]
    if fmt in ("TIFF", "PDF"):
        first.save(out, fmt, save_all=True, append_images=rest, resolution=dpi)
    else:
        first.save(out, fmt, dpi=(dpi, dpi), **({"quality": 40} if fmt == "JPEG" else {}))
    return out.getvalue()


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, recognised: str) -> float:
    """Character error rate: edit distance / reference length, whitespace runs counted as one space."""
    ref, hyp = " ".join(reference.split()), " ".join(recognised.split())
    return _levenshtein(ref, hyp) / max(1, len(ref))
