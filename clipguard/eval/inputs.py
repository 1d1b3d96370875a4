"""Checks of the inputs of the RCI training / evaluation commands, before any work starts.

Each raises ``FileNotFoundError`` or ``ValueError`` with a message that names the item,
the reason and the command that makes it, instead of a failure minutes into a run:

* :func:`require_data_root` — a validated data root (``validated/`` manifests);
* :func:`require_features` — a features directory that holds the clips of the root's pairs
  (features extracted from another corpus hold none of them);
* :func:`model_kind` — a trained model directory: ``teacher`` or ``student``;
* :func:`require_teacher_cache` — a teacher cache directory written by ``cache-teacher``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clipguard.features.store_format import TokenStore, read_manifest, resolve_features_dir


def require_data_root(root: str | Path) -> Path:
    """``root`` if it is a folder with validated manifests."""
    from clipguard.encoders.inputs import ACCEPTED_PAIRS

    p = Path(root)
    if not p.is_dir():
        raise FileNotFoundError(f"data root {p} is not a folder")
    if not (p / ACCEPTED_PAIRS).is_file():
        raise FileNotFoundError(f"{p / ACCEPTED_PAIRS} not found: run `clipguard data validate {p}` first")
    return p


@dataclass(frozen=True)
class FeatureCoverage:
    """How many of the clips the pairs of some splits need have extracted features."""

    features_dir: Path
    needed: int
    missing: tuple[str, ...]

    @property
    def message(self) -> str:
        if not self.missing:
            return f"features {self.features_dir}: all {self.needed} clips present"
        return (
            f"features {self.features_dir}: {len(self.missing)} of {self.needed} clips have none "
            f"(e.g. {', '.join(self.missing[:3])}; quarantined at extraction?): their pairs are skipped"
        )


def require_features(root: str | Path, features_dir: str | Path, splits: Sequence[str]) -> FeatureCoverage:
    """Resolve ``features_dir`` and check it holds the clips of ``root``'s pairs in ``splits``.

    Raises:
        FileNotFoundError: no extracted features there.
        ValueError: no pairs in ``splits``, or the features hold none of their clips (they
            were extracted from another data root).
    """
    from clipguard.training.data import load_pairs

    features = resolve_features_dir(features_dir)
    pairs = load_pairs(root, tuple(splits))
    needed = sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))
    have = set(TokenStore(features).clip_ids)
    missing = tuple(c for c in needed if c not in have)
    if len(missing) == len(needed):
        try:
            extracted_from = read_manifest(features).get("last_run", {}).get("data_version", "?")
        except FileNotFoundError:
            extracted_from = "?"
        raise ValueError(
            f"features {features} hold none of the {len(needed)} clips of the {'/'.join(splits)} pairs of {root} "
            f"(they were extracted from data version {extracted_from}): run `clipguard features extract {root}`"
        )
    return FeatureCoverage(features, len(needed), missing)


def model_kind(model_dir: str | Path) -> str:
    """``teacher`` or ``student``: the kind of a trained model directory (its ``training.json``)."""
    from clipguard.training.teacher import TRAINING_FILE, read_training_meta

    p = Path(model_dir)
    if not (p / TRAINING_FILE).is_file():
        raise FileNotFoundError(
            f"{p / TRAINING_FILE} not found: {p} is not a trained model folder (rci train-teacher / train-student print one)"
        )
    meta = read_training_meta(p)
    kind = meta.get("kind")
    if kind not in ("teacher", "student"):
        raise ValueError(f"{p}: training.json names kind {kind!r}, not teacher or student")
    if not meta.get("complete"):
        raise ValueError(f"{p}: training did not finish (rerun the training command to resume it)")
    return str(kind)


def require_teacher_cache(path: str | Path) -> Path:
    """``path`` if it is a teacher cache (its ``index.json``), else a ``FileNotFoundError`` naming the fix."""
    from clipguard.training.teacher_cache import INDEX_FILE

    p = Path(path)
    if not (p / INDEX_FILE).is_file():
        raise FileNotFoundError(
            f"{p / INDEX_FILE} not found: {p} is not a teacher cache (run `clipguard rci cache-teacher TEACHER_DIR --root ROOT`)"
        )
    return p
