"""Reproducible training of the CyNER spaCy pipeline.

::

    python -m docgraph.stages.ner.train                 # -> ~/.cache/docgraph/models/cyner-ner-<hash>
    python -m docgraph.stages.ner.train --out DIR       # -> DIR
    python -m docgraph.stages.ner.train --bundle        # also copy it to stages/ner/model/

It converts ``train.txt``/``valid.txt`` (CoNLL) to DocBin, runs ``spacy train``
with ``stages/ner/config.cfg`` (fixed seed, CPU), keeps the best checkpoint on
valid, applies the CVE tokenizer fix, scores it on valid (model alone and
model + rules) and writes those scores to ``training.json`` in the model dir.
Training uses at most ``--threads`` BLAS/OpenMP threads (2 by default) and
runs in a fresh Python process with pinned float kernels (:func:`training_env`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP threads; effective when called before numpy is imported."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)


def training_env(threads: int) -> dict[str, str]:
    """Environment of the training process: thread caps, and the same float kernels on any x86-64 CPU.

    numpy and OpenBLAS choose SIMD kernels at run time from the CPU (AVX-512 here,
    AVX2 there).  They round differently in the last bit and training amplifies
    it: same seed, config and data, after 400 steps numpy's AVX2 instead of its
    AVX-512 kernels moved valid F1 by 0.002, OpenBLAS's Haswell instead of its
    SkylakeX kernels by 0.02; full runs on two machines ended at 0.675 and 0.643
    (model + rules).  So numpy is held to AVX2 (X86_V3) and OpenBLAS to Haswell,
    which every AVX2 machine has.  blis cannot be told: it takes its Haswell
    kernels, except on Xeons it knows to have two FMA units (AVX-512 ones).
    """
    env = {var: str(threads) for var in _THREAD_VARS}
    if platform.machine().lower() in ("x86_64", "amd64") and _cpu_has("avx2"):
        env["OPENBLAS_CORETYPE"] = "Haswell"
        try:  # the names of numpy's dispatch targets change between numpy versions
            from numpy._core._multiarray_umath import __cpu_dispatch__ as targets
        except ImportError:
            targets = ["AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX"]
            targets += ["AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR"]
        above_avx2 = [t for t in targets if t.startswith("AVX512") or t == "X86_V4"]
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(above_avx2)
    return env


def _cpu_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def _register_callbacks() -> None:
    import spacy

    if "docgraph.ner.after_init.v1" in spacy.registry.callbacks:
        return

    @spacy.registry.callbacks("docgraph.ner.after_init.v1")
    def make_after_init(labels: list[str]) -> Any:
        """After initialization: CVE tokenizer fix, and the CyNER labels on the ner.

        Adding the labels matters when the ner is sourced from a pretrained
        pipeline: spaCy does not re-initialize (so does not add labels to)
        sourced components.
        """

        def after_init(nlp: Any) -> Any:
            from docgraph.stages.ner.pack import apply_tokenizer_fix

            apply_tokenizer_fix(nlp)
            if "ner" in nlp.component_names:
                ner = nlp.get_pipe("ner")
                for label in labels:
                    ner.add_label(label)
            return nlp

        return after_init

    from docgraph.stages.ner.augment import make_mention_replace_augmenter

    spacy.registry.augmenters("docgraph.ner.mention_replace.v1")(make_mention_replace_augmenter)


def prepare_corpus(data_dir: Path, dest: Path) -> dict[str, int]:
    """Write ``train.spacy`` and ``dev.spacy`` from the CoNLL files; returns sentence counts."""
    from docgraph.stages.ner.conll import conll_to_docbin

    return {
        "train": conll_to_docbin(data_dir / "train.txt", dest / "train.spacy"),
        "dev": conll_to_docbin(data_dir / "valid.txt", dest / "dev.spacy"),
    }


def train_model(
    out: Path,
    *,
    config_path: Path,
    data_dir: Path,
    overrides: dict[str, Any] | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """Train into ``out`` (replaced atomically); returns the training summary."""
    import spacy

    from docgraph.stages.ner import LABELS
    from docgraph.stages.ner.cli import evaluate_model
    from docgraph.stages.ner.conll import read_conll
    from docgraph.stages.ner.model import input_digests, model_hash
    from docgraph.stages.ner.pack import default_patterns

    _register_callbacks()
    digest = model_hash(config_path, data_dir)
    out = out.expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cyner-train-", dir=out.parent) as tmp:
        work = Path(tmp)
        counts = prepare_corpus(data_dir, work / "corpus")
        all_overrides = {
            "paths.train": str(work / "corpus" / "train.spacy"),
            "paths.dev": str(work / "corpus" / "dev.spacy"),
            **(overrides or {}),
        }
        started = time.perf_counter()
        _train_in_fresh_process(config_path, work / "output", all_overrides, threads)
        train_seconds = time.perf_counter() - started

        best = work / "output" / "model-best"
        nlp = spacy.load(best)
        valid = read_conll(data_dir / "valid.txt")
        model_only = evaluate_model(nlp, valid)
        with_rules = evaluate_model(nlp, valid, patterns=default_patterns())
        summary = {
            "hash": digest,
            "inputs_sha256": input_digests(config_path, data_dir),
            "config": config_path.name,
            "overrides": {k: v for k, v in (overrides or {}).items()},
            "seed": nlp.config.interpolate()["training"]["seed"],
            "spacy_version": spacy.__version__,
            "labels": list(LABELS),
            "sentences": counts,
            "train_seconds": round(train_seconds, 1),
            "valid": {
                "model": model_only.to_dict(),
                "model+rules": with_rules.to_dict(),
            },
        }
        (best / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(best), str(out))
    return summary


def _train_in_fresh_process(config_path: Path, output: Path, overrides: dict[str, Any], threads: int) -> None:
    """``spacy train`` in a new interpreter with :func:`training_env`.

    Not in this process: the kernel and thread settings only take effect before
    numpy is first imported, and here it may already be (the test suite); and
    spaCy draws the augmentation and the shuffling from the global ``random``,
    which any other thread of this process (telemetry ids, retry jitter) would
    advance at times that depend on the load.
    """
    code = "import sys; from docgraph.stages.ner.train import _spacy_train_child; _spacy_train_child(*sys.argv[1:])"
    args = [str(config_path), str(output), json.dumps(overrides)]
    subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **training_env(threads)}, check=True
    )


def _spacy_train_child(config_path: str, output: str, overrides: str) -> None:
    from spacy.cli.train import train as spacy_train

    _register_callbacks()
    spacy_train(Path(config_path), Path(output), use_gpu=-1, overrides=json.loads(overrides))


def _parse_override(text: str) -> tuple[str, Any]:
    key, _, raw = text.partition("=")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.lstrip("-"), value


def main(argv: list[str] | None = None) -> int:
    from docgraph.stages.ner.model import (
        BUNDLED_MODEL_DIR,
        CONFIG_PATH,
        cached_model_dir,
        default_data_dir,
        is_model_dir,
    )

    parser = argparse.ArgumentParser(
        prog="python -m docgraph.stages.ner.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, help="model directory (default: the cache)")
    parser.add_argument("--config", type=Path, default=CONFIG_PATH)
    parser.add_argument("--data-dir", type=Path, default=None, help="holds train.txt, valid.txt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="retrain even if cached")
    parser.add_argument("--bundle", action="store_true", help=f"also copy the model to {BUNDLED_MODEL_DIR}")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="spaCy config override, e.g. --set training.max_steps=2000",
    )
    args = parser.parse_args(argv)
    limit_threads(args.threads)

    try:
        data_dir = args.data_dir or default_data_dir()
    except FileNotFoundError as exc:
        parser.error(str(exc))
    for name in ("train.txt", "valid.txt"):
        if not (data_dir / name).is_file():
            parser.error(f"{data_dir / name} not found (use --data-dir)")
    overrides = dict(_parse_override(s) for s in args.set)
    out = args.out
    if out is None:
        if overrides:
            parser.error("--set changes the model: give --out too (the cache is keyed by config)")
        out = cached_model_dir(args.config, data_dir)
        if is_model_dir(out) and not args.force:
            print(f"cached model is up to date: {out}")
            _bundle(out, BUNDLED_MODEL_DIR) if args.bundle else None
            return 0

    summary = train_model(
        out, config_path=args.config, data_dir=data_dir, overrides=overrides, threads=args.threads
    )
    for kind, report in summary["valid"].items():
        micro = report["micro"]
        print(f"valid {kind:12s} P={micro['precision']:.4f} R={micro['recall']:.4f} F1={micro['f1']:.4f}")
    print(f"trained in {summary['train_seconds']:.0f}s -> {out}")
    if args.bundle:
        _bundle(out, BUNDLED_MODEL_DIR)
    return 0


def _bundle(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"bundled {src} -> {dest} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    sys.exit(main())
