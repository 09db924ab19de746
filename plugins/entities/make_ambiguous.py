"""Regenerate ``data/attack/ambiguous.txt`` (a maintainer's script, not used at run time).

The dataset's README calls 136 names risky for dictionary matching: 3
characters or fewer, or one common English word (wordfreq zipf >= 3.0).  The
list is computed once here and shipped, so docgraph needs no word-frequency
package at run time::

    pip install wordfreq==3.1.1 && python plugins/entities/make_ambiguous.py
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "attack"
HEADER = (
    "# ATT&CK names that are weak evidence alone: 3 characters or fewer, or one alphabetic word with\n"
    "# wordfreq zipf_frequency(name.lower(), 'en') >= 3.0 (wordfreq 3.1.1). Made by plugins/entities/make_ambiguous.py.\n"
)


def main() -> None:
    from wordfreq import zipf_frequency

    with (DATA / "gazetteer.tsv").open(encoding="utf-8") as f:
        names = {row["name"] for row in csv.DictReader(f, delimiter="\t")}
    risky = {n for n in names if len(n) <= 3 or (n.isalpha() and zipf_frequency(n.lower(), "en") >= 3.0)}
    (DATA / "ambiguous.txt").write_text(
        HEADER + "\n".join(sorted(risky, key=str.lower)) + "\n", encoding="utf-8"
    )
    print(f"{len(risky)} ambiguous names")


if __name__ == "__main__":
    main()
