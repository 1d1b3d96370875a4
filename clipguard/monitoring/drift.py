"""Data-drift watch: Evidently ``DataDriftPreset`` on projected embeddings and clip statistics.

Inputs are per-clip tables (pandas) with ``clip_id``, ``event_timestamp``,
``clip_embedding`` (a 128-float list/array per clip) and, when present, ``text_pooled``
(384 floats), the text fields ``title`` / ``ocr`` / ``asr``, audio statistics
(``audio_rms``, ``has_audio``) and the student's ``score``. Extracted features hold the
vectors and ``has_audio``; :func:`with_manifest` joins the text fields and the split from
the data root's manifest. Each clip becomes a few numeric columns, in groups chosen by
:class:`~clipguard.config.DriftConfig.groups`:

=================  ==========================================================
group              columns
=================  ==========================================================
``visual``         ``emb_pc0..emb_pc{k-1}``, ``emb_resid``
``text_embedding`` ``txt_pc0..txt_pc{k-1}``, ``txt_resid``
``text_stats``     ``{title,ocr,asr}_tokens``, ``hashtag_count``, ``hashtag_share``
``text_novelty``   ``new_words``, ``new_hashtags``
``audio``          ``audio_rms``, ``has_audio``
``score``          ``score``
=================  ==========================================================

``*_pc*`` are the coordinates on the top ``k`` principal components of the **training
reference** (:func:`fit_projection`, saved once and reused every day so that days are
comparable). ``*_resid`` is the norm of what those components do not explain: a new
kind of content mostly lies *outside* the reference subspace, so its PCA coordinates
barely move while its residual grows. ``new_words`` / ``new_hashtags`` count the words
(hashtags) of a clip that no reference clip uses (leave-one-out for the reference's own
clips, so both sides hold the same statistic): a trend arrives with its own hashtag and
catch phrase, ordinary days reuse the vocabulary.

**What is compared.** The reference is the training split (``reference_splits``: what the
model was trained on); the traffic is cut into UTC days (:func:`drift_timeline`), and a
day is compared with the reference *minus its own clips*. On the generated corpus the
days before the trend hold the train/val/test clips (split by template, ~70/15/15 on
every day) and the days from the trend on the ``traffic`` clips, of templates of all
three splits in the same mix (62-79% of a day's clips are of train templates before the
trend, 73-80% after it; seeds 0-2), so every day is the same kind of traffic as the
reference and only the trend differs. A day's training clips are left out of its
reference so that no clip is judged against itself. (The val and test clips of the six
ordinary days pooled, ~206 clips all of templates the reference lacks, gave shares 0,
0.11 and 0.06 on seeds 0-2: a population made only of unseen templates is new content at
the margin; real days mix them with known ones, before and after the trend alike.)

**Why these defaults** (:class:`~clipguard.config.DriftConfig`), measured on the
generated corpus (``clipguard data synth --seed S``, default size: 103-135 clips a day,
trend on day 6 of 8 with ~30% of the day's clips; ``clipguard monitoring drift``):

* **The distance threshold sits above sampling noise at this window size.** Normed
  Wasserstein (``stattest_threshold``) is an effect size in reference standard
  deviations, but its sampling noise grows as 1/sqrt(n): 80 training clips drawn at random
  and compared with the other training clips (100 draws, seeds 0 and 1) gave a median of
  0.10-0.15 and a 99th percentile of 0.25-0.43 per column (0.62 for ``new_words``).
  Evidently's default (0.1) and the former 0.2 vote on noise: with 0.2 and PSI 0.1,
  ordinary days reached a drifted share of 0.33-0.39 and trend days 0.33-0.44 (seed 1:
  0.33 at most before the trend and 0.33 on its day; seed 2: 0.39 on both), so no share
  threshold separated them. 0.5 (a "medium" effect) is above
  the noise: a continuous column votes on a real shift.
* **PSI 0.25** (``discrete_threshold``) is the conventional "significant shift"; a flag
  such as ``has_audio`` reached 0.14-0.21 by chance when a few silent clips fell in a
  window of 80.
* **The trend is seen in text.** With the ``local`` encoders (briefly pretrained, 64-px
  frames, random-init Whisper) the spiral and the whoosh move no embedding column beyond
  noise (``emb_resid`` 0.10-0.23 on trend days, up to 0.36 on ordinary ones); the title
  length and the text-embedding residual move by 0.26-0.42, barely more than ordinary
  days do (up to 0.30). What separates the trend days is what is new: ``hashtag_count``
  (PSI 0.86-1.58 vs at most 0.03 on ordinary days), ``new_hashtags`` (PSI 0.61-1.74 vs at
  most 0.07) and ``new_words`` (1.6-5.1 vs at most 1.3: copies spread an ordinary day's
  rare words too).
* **Drift share 0.1**: with 18 columns (4 components per embedding), a day drifts when two
  columns drift. Ordinary days reached at most one (``new_words``, on 6 of 18 days);
  trend days three or four. The margin is that one column.
* **At least 50 clips per period** (``min_current_rows``): the corpus's days hold 103-135.

The same defaults gave the same decisions on corpora generated with the former
``synth.positive_rate`` 0.05 (71-110 clips a day, seeds 0-2: ordinary days at most 0.056,
trend days 0.167), where they were first chosen (seed 2 and the 0.25 corpora were run
after the thresholds were set).

:func:`drift_report` runs one Evidently report (HTML + JSON written), and reads the
decision back from the report's result dict (``DriftedColumnsCount`` share and the
per-column ``ValueDrift`` tests, found by ``metric_name``). :func:`drift_timeline`
does that for every day of traffic, :func:`feature_timeline` for extracted features
(``clipguard monitoring drift``); the drift-watch pipeline turns the first drifted day
into an alert and a retraining flag.

Evidently is imported inside the functions (it takes seconds to import).
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clipguard.config import DriftConfig
from clipguard.features.store_format import read_clip_features

log = logging.getLogger(__name__)

EMBEDDING_PREFIXES: dict[str, str] = {"clip_embedding": "emb", "text_pooled": "txt"}
"""Embedding columns that :func:`fit_projection` projects, and their feature prefixes."""
TEXT_COLUMNS: tuple[str, ...] = ("title", "ocr", "asr")
AUDIO_COLUMNS: tuple[str, ...] = ("audio_rms", "has_audio")
SCORE_COLUMN = "score"
GROUP_SOURCES: dict[str, tuple[str, ...]] = {
    "visual": ("clip_embedding",),
    "text_embedding": ("text_pooled",),
    "text_stats": TEXT_COLUMNS,
    "text_novelty": TEXT_COLUMNS,
    "audio": AUDIO_COLUMNS,
    "score": (SCORE_COLUMN,),
}
"""Input columns each feature group is derived from."""
REQUIRED_COLUMNS: tuple[str, ...] = ("clip_id", "clip_embedding")
MANIFEST_COLUMNS: tuple[str, ...] = (*TEXT_COLUMNS, "split")
"""Columns :func:`with_manifest` takes from a data root's accepted clip manifest."""
PROJECTION_FORMAT = 1
_HASHTAG = re.compile(r"#\w+")
_WORD = r"#?[^\W\d_]{2,}"
"""A word or hashtag for :func:`_novelty_frames`: letters only, so numbers ("part 28") are never new."""
_PERIODS = {"day": "D", "hour": "h"}


# --------------------------------------------------------------------------- projection


def _embedding_matrix(df: pd.DataFrame, column: str, dim: int | None = None) -> np.ndarray:
    """Stack a list/array column into an ``(n, d)`` float64 matrix; bad rows raise naming clips."""
    values = df[column].tolist()
    if not values:
        raise ValueError(f"{column}: no rows")
    lengths = np.array([np.size(v) if v is not None else 0 for v in values])
    expected = dim if dim is not None else int(np.bincount(lengths).argmax())
    bad = np.flatnonzero(lengths != expected)
    if bad.size:
        got = sorted(set(lengths[bad].tolist()))[:5]
        raise ValueError(f"{column}: {bad.size} rows do not hold {expected} values ({_clip_ids(df, bad)}; got lengths {got})")
    matrix = np.stack([np.asarray(v, dtype=np.float64).reshape(expected) for v in values])
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise ValueError(f"{column}: {bad.size} rows hold NaN/inf ({_clip_ids(df, bad)})")
    return matrix


def _clip_ids(df: pd.DataFrame, rows: np.ndarray, limit: int = 5) -> str:
    """``clip_id ['a', 'b', ...]`` of the first ``limit`` positional ``rows``."""
    ids = df["clip_id"].iloc[rows[:limit]].tolist()
    return f"clip_id {ids}{', ...' if rows.size > limit else ''}"


@dataclass(frozen=True, eq=False)
class PCAComponents:
    """The PCA of one embedding column: ``mean`` (d,), ``components`` (k, d, orthonormal rows)."""

    column: str
    prefix: str
    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def input_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def feature_names(self) -> list[str]:
        """``{prefix}_pc0..`` then ``{prefix}_resid``."""
        return [f"{self.prefix}_pc{i}" for i in range(self.components.shape[0])] + [f"{self.prefix}_resid"]

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """``(n, d)`` embeddings -> ``(n, k + 1)``: PCA coordinates, then the residual norm."""
        centred = matrix - self.mean
        coords = centred @ self.components.T
        resid = np.linalg.norm(centred - coords @ self.components, axis=1)
        return np.column_stack([coords, resid])


@dataclass(frozen=True, eq=False)
class Projection:
    """The fitted projections of the reference embeddings, one :class:`PCAComponents` per column.

    Saved as one ``.npz`` (arrays plus a JSON ``meta`` string; loaded with
    ``allow_pickle=False``), so the same projection is applied every day and reloads
    bit for bit.
    """

    parts: Mapping[str, PCAComponents]
    n_fit: int

    def transform(self, df: pd.DataFrame, column: str) -> pd.DataFrame:
        """Project ``df[column]`` and return its feature columns (``{prefix}_pc*``, ``{prefix}_resid``)."""
        if column not in self.parts:
            raise ValueError(f"the projection has no {column!r} part (fitted: {sorted(self.parts)}); refit it")
        part = self.parts[column]
        values = part.transform(_embedding_matrix(df, column, part.input_dim))
        return pd.DataFrame(values, columns=part.feature_names, index=df.index)

    def save(self, path: str | Path) -> Path:
        """Write the projection to ``path`` (``.npz``) and return it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": PROJECTION_FORMAT,
            "n_fit": self.n_fit,
            "parts": {c: {"prefix": p.prefix, "dims": int(p.components.shape[0])} for c, p in self.parts.items()},
        }
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
        for column, part in self.parts.items():
            arrays[f"{column}.mean"] = part.mean
            arrays[f"{column}.components"] = part.components
            arrays[f"{column}.explained_variance_ratio"] = part.explained_variance_ratio
        with path.open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Projection:
        """Read a projection written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("format") != PROJECTION_FORMAT:
                raise ValueError(f"{path}: unsupported projection format {meta.get('format')!r}")
            parts = {
                column: PCAComponents(
                    column=column,
                    prefix=info["prefix"],
                    mean=npz[f"{column}.mean"],
                    components=npz[f"{column}.components"],
                    explained_variance_ratio=npz[f"{column}.explained_variance_ratio"],
                )
                for column, info in meta["parts"].items()
            }
        return cls(parts=parts, n_fit=int(meta["n_fit"]))


def fit_projection(reference_df: pd.DataFrame, dims: int = 4) -> Projection:
    """Fit a ``dims``-component PCA (scikit-learn) on each embedding column of the reference.

    Projects ``clip_embedding`` (required) and ``text_pooled`` (when present). Fit it on
    the training reference once and :meth:`Projection.save` it: every daily report must
    use the same components.
    """
    from sklearn.decomposition import PCA

    _require(reference_df, REQUIRED_COLUMNS, "reference_df")
    parts: dict[str, PCAComponents] = {}
    for column, prefix in EMBEDDING_PREFIXES.items():
        if column not in reference_df.columns:
            continue
        matrix = _embedding_matrix(reference_df, column)
        if dims > min(matrix.shape):
            raise ValueError(f"{column}: cannot fit {dims} components on {matrix.shape[0]} clips of dimension {matrix.shape[1]}")
        pca = PCA(n_components=dims, svd_solver="covariance_eigh").fit(matrix)  # exact; fast for n >> d
        parts[column] = PCAComponents(
            column=column,
            prefix=prefix,
            mean=pca.mean_.astype(np.float64),
            components=pca.components_.astype(np.float64),
            explained_variance_ratio=pca.explained_variance_ratio_.astype(np.float64),
        )
        log.info(
            "projection %s: %d components explain %.1f%% of the variance",
            column,
            dims,
            100 * float(pca.explained_variance_ratio_.sum()),
        )
    return Projection(parts=parts, n_fit=len(reference_df))


# --------------------------------------------------------------------------- features


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing columns: {missing}")


def _plan_groups(reference_df: pd.DataFrame, current_df: pd.DataFrame, groups: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The input columns each configured group will use; both frames must agree on them."""
    _require(reference_df, REQUIRED_COLUMNS, "reference_df")
    _require(current_df, REQUIRED_COLUMNS, "current_df")
    plan: dict[str, tuple[str, ...]] = {}
    for group in groups:
        if group not in GROUP_SOURCES:
            raise ValueError(f"unknown feature group {group!r} (known: {sorted(GROUP_SOURCES)})")
        in_ref = [c for c in GROUP_SOURCES[group] if c in reference_df.columns]
        in_cur = [c for c in GROUP_SOURCES[group] if c in current_df.columns]
        if set(in_ref) != set(in_cur):
            only_ref = sorted(set(in_ref) - set(in_cur))
            only_cur = sorted(set(in_cur) - set(in_ref))
            raise ValueError(
                f"feature group {group!r}: current_df is missing columns {only_ref}"
                if only_ref
                else f"feature group {group!r}: reference_df is missing columns {only_cur}"
            )
        if in_ref:
            plan[group] = tuple(in_ref)
        else:
            log.info("feature group %r skipped: none of %s present", group, list(GROUP_SOURCES[group]))
    if not plan:
        raise ValueError(f"none of the configured feature groups {list(groups)} has its input columns")
    return plan


def _text(series: pd.Series) -> pd.Series:
    return series.where(series.notna(), "").astype(str)


def _feature_frame(
    df: pd.DataFrame, projection: Projection, plan: Mapping[str, tuple[str, ...]]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric drift features of ``df`` and the group of each feature column."""
    frames: list[pd.DataFrame] = []
    group_of: dict[str, str] = {}

    def add(group: str, frame: pd.DataFrame) -> None:
        frames.append(frame)
        group_of.update(dict.fromkeys(frame.columns, group))

    for group, sources in plan.items():
        if group == "text_novelty":  # relative to the reference: see _novelty_frames
            continue
        if group in ("visual", "text_embedding"):
            add(group, projection.transform(df, sources[0]))
        elif group == "text_stats":
            texts = {c: _text(df[c]) for c in sources}
            stats = {f"{c}_tokens": t.str.split().str.len().astype(float) for c, t in texts.items()}
            hashtags = sum(t.str.count(_HASHTAG.pattern) for t in texts.values()).astype(float)
            tokens = sum(stats.values())
            stats["hashtag_count"] = hashtags
            stats["hashtag_share"] = hashtags / tokens.clip(lower=1.0)
            add(group, pd.DataFrame(stats, index=df.index))
        else:  # audio, score: numeric columns as they are (bools as 0/1)
            add(group, df[list(sources)].apply(pd.to_numeric, errors="coerce").astype(float))
    if not frames:
        return pd.DataFrame(index=df.index), group_of
    features = pd.concat(frames, axis=1).replace([np.inf, -np.inf], np.nan)
    return features, group_of


def _novelty_frames(
    reference_df: pd.DataFrame, current_df: pd.DataFrame, sources: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``new_words`` / ``new_hashtags`` of every clip: distinct words (hashtags) of its text
    that the reference has never used.

    A new trend brings new words (a hashtag, a catch phrase) on a share of the clips,
    while ordinary days reuse the vocabulary. The reference is measured the same way,
    leaving each clip out (a word is new to a reference clip when no *other* reference
    clip uses it), so both frames hold the same statistic and ordinary rare words do
    not look like drift. Tokens: lower-cased words of 2+ letters and ``#hashtags``
    (scikit-learn's ``CountVectorizer``); digits are ignored.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    def texts(df: pd.DataFrame) -> pd.Series:
        return pd.Series([" ".join(parts) for parts in zip(*(_text(df[c]) for c in sources))], index=df.index)

    ref_text, cur_text = texts(reference_df), texts(current_df)
    vectorizer = CountVectorizer(binary=True, token_pattern=_WORD, dtype=np.int32)
    try:
        ref_bag = vectorizer.fit_transform(ref_text)
    except ValueError:  # the reference has no word at all: every word of the current data is new
        ref_bag, vocabulary = None, set()
    else:
        vocabulary = set(vectorizer.vocabulary_)
    analyzer = CountVectorizer(token_pattern=_WORD).build_analyzer()

    def frame(words: list[set[str]], index: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "new_words": [float(len(w)) for w in words],
                "new_hashtags": [float(sum(t.startswith("#") for t in w)) for w in words],
            },
            index=index,
        )

    cur_new = [set(analyzer(t)) - vocabulary for t in cur_text]
    if ref_bag is None:
        ref_new: list[set[str]] = [set() for _ in range(len(ref_text))]
    else:
        names = vectorizer.get_feature_names_out()
        once = np.flatnonzero(np.asarray(ref_bag.sum(axis=0)).ravel() == 1)  # used by one reference clip only
        rows, cols = ref_bag[:, once].nonzero()
        ref_new = [set() for _ in range(len(ref_text))]
        for r, c in zip(rows, cols):
            ref_new[r].add(names[once[c]])
    return frame(ref_new, reference_df.index), frame(cur_new, current_df.index)


def _with_novelty(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    plan: Mapping[str, tuple[str, ...]],
    group_of: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Append the ``text_novelty`` columns (when planned) to prepared feature frames."""
    if "text_novelty" not in plan:
        return reference, current
    ref_new, cur_new = _novelty_frames(reference_df, current_df, plan["text_novelty"])
    group_of.update(dict.fromkeys(ref_new.columns, "text_novelty"))
    return pd.concat([reference, ref_new], axis=1), pd.concat([current, cur_new], axis=1)


# --------------------------------------------------------------------------- inputs


def with_manifest(features_df: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """``features_df`` with the text fields and split of each clip from ``root``'s accepted manifest.

    The feature table holds vectors only; the ``text_stats`` group needs ``title`` /
    ``ocr`` / ``asr`` and :func:`select_reference` needs ``split``. Columns the features
    already have are kept. Raises ``ValueError`` naming clips the manifest lacks (features
    of another data root).
    """
    from clipguard.encoders.inputs import read_accepted

    _require(features_df, ("clip_id",), "features_df")
    manifest = read_accepted(root)
    take = [c for c in MANIFEST_COLUMNS if c in manifest.columns and c not in features_df.columns]
    if not take:
        return features_df
    joined = features_df.merge(manifest[["clip_id", *take]], on="clip_id", how="left", validate="one_to_one")
    unknown = np.flatnonzero(~features_df["clip_id"].isin(manifest["clip_id"]).to_numpy())
    if unknown.size:
        raise ValueError(
            f"{unknown.size} of {len(features_df)} feature rows are not in the accepted manifest of {root} "
            f"({_clip_ids(features_df, unknown)}): features of another data root?"
        )
    return joined


def select_reference(df: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """The rows of ``df`` whose ``split`` is one of ``splits`` (the data the model was trained on).

    Raises ``ValueError`` when ``df`` has no ``split`` column (join it with
    :func:`with_manifest`) or no row is left.
    """
    _require(df, ("split",), "the reference (join the manifest with with_manifest)")
    chosen = df[df["split"].isin(list(splits))]
    if chosen.empty:
        found = sorted(df["split"].dropna().unique().tolist())
        raise ValueError(f"no reference clip in splits {list(splits)} (the data has splits {found})")
    return chosen


def _outside_window(reference_df: pd.DataFrame, window_df: pd.DataFrame, label: str) -> pd.DataFrame:
    """The reference without the clips of the window it is compared with.

    A window is never judged against itself: when the reference and the traffic come from
    the same data root (the corpus's pre-trend days hold training clips), the window's own
    clips are left out of its reference.
    """
    overlap = reference_df["clip_id"].isin(window_df["clip_id"])
    if not overlap.any():
        return reference_df
    rest = reference_df[~overlap]
    log.info("%s: %d of its clips are in the reference and are left out of it", label, int(overlap.sum()))
    if rest.empty:
        raise ValueError(f"{label}: every reference clip is in the window itself; nothing to compare with")
    return rest


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class DriftResult:
    """The decision of one drift report.

    ``drifted`` is ``share_drifted >= drift_share_threshold``; ``share_drifted`` is
    Evidently's share of drifted columns and ``drifted_columns`` its drifted columns,
    most drifted first. ``per_column`` maps each evaluated column to its ``group``,
    ``method``, ``threshold``, ``score`` (distance or p-value) and ``drifted`` flag.
    ``skipped_columns`` names columns left out (no finite value) and why; a period too
    small to evaluate has ``skipped_reason`` set and no report files.
    """

    drifted: bool
    share_drifted: float
    drifted_columns: list[str]
    n_reference: int
    n_current: int
    html_path: str | None
    json_path: str | None
    per_column: dict[str, dict[str, Any]]
    drift_share_threshold: float
    period: str | None = None
    skipped_columns: dict[str, str] = field(default_factory=dict)
    skipped_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what the pipeline logs and passes on)."""
        return asdict(self)


def _metric_class(metric: Mapping[str, Any]) -> str:
    """``"ValueDrift"`` from ``metric_name="ValueDrift(column=x,...)"``."""
    return str(metric.get("metric_name", "")).split("(", 1)[0]


def _severity(score: float, threshold: float) -> float:
    """How far past its threshold a drifted column is (distances: score/threshold; p-values: inverse)."""
    if score >= threshold:
        return score / threshold if threshold > 0 else math.inf
    return threshold / score if score > 0 else math.inf


def _parse_report(report: Mapping[str, Any]) -> tuple[float, int, dict[str, dict[str, Any]]]:
    """Share and count of drifted columns, and per-column results, from ``snapshot.dict()``."""
    metrics = report.get("metrics", [])
    counts = [m for m in metrics if _metric_class(m) == "DriftedColumnsCount"]
    if len(counts) != 1:
        raise ValueError(f"expected one DriftedColumnsCount metric in the report, found {len(counts)}")
    share = float(counts[0]["value"]["share"])
    count = int(counts[0]["value"]["count"])
    status_by_metric = {
        t["metric_config"]["metric_id"]: t["status"]
        for t in report.get("tests", [])
        if t.get("metric_config", {}).get("params", {}).get("type", "").endswith(":ValueDrift")
    }
    per_column: dict[str, dict[str, Any]] = {}
    for m in metrics:
        if _metric_class(m) != "ValueDrift":
            continue
        if m["id"] not in status_by_metric:
            raise ValueError(f"the report has no drift test for {m['metric_name']}")
        per_column[m["config"]["column"]] = {
            "method": m["config"].get("method"),
            "threshold": m["config"].get("threshold"),
            "score": float(m["value"]),
            "drifted": status_by_metric[m["id"]] == "FAIL",
        }
    return share, count, per_column


def _methods(reference: pd.DataFrame, cfg: DriftConfig) -> tuple[dict[str, str], dict[str, float]]:
    """Per-column stat tests: discrete columns get ``discrete_stattest``; config overrides win.

    A column whose test is overridden without a threshold falls back to
    ``stattest_threshold`` (Evidently's numeric threshold), not to the discrete one.
    """
    methods: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for column in reference.columns:
        if reference[column].nunique(dropna=True) <= cfg.discrete_max_values:
            methods[column] = cfg.discrete_stattest
            thresholds[column] = cfg.discrete_threshold
    for column, method in cfg.per_column_stattest.items():
        if column in reference.columns:
            methods[column] = method
            thresholds.pop(column, None)
    thresholds.update({c: t for c, t in cfg.per_column_threshold.items() if c in reference.columns})
    return methods, thresholds


def _evaluate(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    group_of: Mapping[str, str],
    cfg: DriftConfig,
    out_dir: Path,
    name: str,
    period: str | None,
) -> DriftResult:
    """Run the Evidently report on prepared feature frames, write it, and read the decision back."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    skipped: dict[str, str] = {}
    for column in reference.columns:
        if not reference[column].notna().any():
            skipped[column] = "no finite value in the reference"
        elif not current[column].notna().any():
            skipped[column] = "no finite value in the current data"
    columns = [c for c in reference.columns if c not in skipped]
    if not columns:
        raise ValueError(f"no column to compare (skipped: {skipped})")
    reference, current = reference[columns], current[columns]
    methods, thresholds = _methods(reference, cfg)

    definition = DataDefinition(numerical_columns=columns)
    report = Report(
        [
            DataDriftPreset(
                columns=columns,
                drift_share=cfg.drift_share,
                num_method=cfg.stattest,
                num_threshold=cfg.stattest_threshold,
                per_column_method=methods or None,
                per_column_threshold=thresholds or None,
            )
        ],
        include_tests=True,
    )
    with warnings.catch_warnings():
        # Evidently's plots correlate constant columns (numpy: "invalid value encountered").
        warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
        snapshot = report.run(
            current_data=Dataset.from_pandas(current.reset_index(drop=True), data_definition=definition),
            reference_data=Dataset.from_pandas(reference.reset_index(drop=True), data_definition=definition),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / f"{name}.html", out_dir / f"{name}.json"
    snapshot.save_html(str(html_path))
    snapshot.save_json(str(json_path))

    share, count, per_column = _parse_report(snapshot.dict())
    for column, info in per_column.items():
        info["group"] = group_of[column]
    drifted_columns = sorted(
        (c for c, info in per_column.items() if info["drifted"]),
        key=lambda c: -_severity(per_column[c]["score"], per_column[c]["threshold"]),
    )
    if len(drifted_columns) != count:
        log.warning("%s: Evidently counts %d drifted columns but flags %d per column", name, count, len(drifted_columns))
    result = DriftResult(
        drifted=share >= cfg.drift_share,
        share_drifted=share,
        drifted_columns=drifted_columns,
        n_reference=len(reference),
        n_current=len(current),
        html_path=str(html_path),
        json_path=str(json_path),
        per_column=per_column,
        drift_share_threshold=cfg.drift_share,
        period=period,
        skipped_columns=skipped,
    )
    log.info(
        "%s: %s (share %.2f of %d columns, threshold %.2f%s)",
        period or name,
        "DRIFT" if result.drifted else "no drift",
        share,
        len(columns),
        cfg.drift_share,
        f"; drifted: {', '.join(drifted_columns)}" if drifted_columns else "",
    )
    return result


def drift_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    projection: Projection,
    cfg: DriftConfig,
    out_dir: str | Path,
    *,
    name: str = "drift",
    period: str | None = None,
) -> DriftResult:
    """Compare ``current_df`` with ``reference_df`` and write ``<out_dir>/<name>.{html,json}``.

    Both frames are turned into the numeric feature columns of ``cfg.groups`` (a group
    whose input columns are absent from both frames is skipped; present in only one is
    a ``ValueError`` naming them), an Evidently ``Report([DataDriftPreset(...)])`` is run
    with the configured stat tests and thresholds, and the decision is read from the
    report's result dict. Raises ``ValueError`` for missing columns, embeddings of the
    wrong size or with NaN/inf (naming the clips), or an empty frame. Clips of
    ``current_df`` that are also in ``reference_df`` are left out of the reference.
    """
    for label, df in (("reference_df", reference_df), ("current_df", current_df)):
        if df.empty:
            raise ValueError(f"{label} is empty")
    plan = _plan_groups(reference_df, current_df, cfg.groups)
    reference_df = _outside_window(reference_df, current_df, period or name)
    reference, group_of = _feature_frame(reference_df, projection, plan)
    current, _ = _feature_frame(current_df, projection, plan)
    reference, current = _with_novelty(reference, current, reference_df, current_df, plan, group_of)
    return _evaluate(reference, current, group_of, cfg, Path(out_dir), name, period)


def _period_label(start: pd.Timestamp, by: str) -> str:
    return start.strftime("%Y-%m-%d") if by == "day" else start.strftime("%Y-%m-%dT%H-%M")


def window_period(window_df: pd.DataFrame, by: Literal["day", "hour"] = "day") -> str | None:
    """The traffic period a window covers, from its ``event_timestamp`` (UTC): ``"2026-11-05"``,
    or ``"2026-11-04..2026-11-05"`` across periods; ``None`` without timestamps.

    What the drift report and its alert are labelled with (the alert's ``day``), rather than
    the date the check happened to run.
    """
    if "event_timestamp" not in window_df.columns or window_df.empty:
        return None
    stamps = pd.to_datetime(window_df["event_timestamp"], utc=True).dropna()
    if stamps.empty:
        return None
    first, last = (_period_label(t.floor(_PERIODS[by]), by) for t in (stamps.min(), stamps.max()))
    return first if first == last else f"{first}..{last}"


def drift_timeline(
    reference_df: pd.DataFrame,
    traffic_df: pd.DataFrame,
    projection: Projection,
    cfg: DriftConfig,
    out_dir: str | Path,
    *,
    by: Literal["day", "hour"] = "day",
) -> list[DriftResult]:
    """One :func:`drift_report` per ``by`` period (``"day"`` or ``"hour"``, UTC) of ``traffic_df``.

    Reports go to ``<out_dir>/drift_<period>.{html,json}`` and the list of results (in
    time order) to ``<out_dir>/timeline.json``. Periods with fewer than
    ``cfg.min_current_rows`` clips are not evaluated: their result has
    ``drifted=False`` and ``skipped_reason`` set. Requires ``event_timestamp`` in
    ``traffic_df`` (naive timestamps are read as UTC). Each period is compared with the
    reference minus the period's own clips (see :func:`drift_report`), so the traffic may
    come from the same data root as the reference.
    """
    if by not in _PERIODS:
        raise ValueError(f"by must be one of {sorted(_PERIODS)}, got {by!r}")
    _require(traffic_df, ("event_timestamp",), "traffic_df")
    if reference_df.empty:
        raise ValueError("reference_df is empty")
    out = Path(out_dir)
    plan = _plan_groups(reference_df, traffic_df, cfg.groups)
    reference_df = reference_df.reset_index(drop=True)
    reference, group_of = _feature_frame(reference_df, projection, plan)

    stamps = pd.to_datetime(traffic_df["event_timestamp"], utc=True)
    if stamps.isna().any():
        ids = traffic_df.loc[stamps.isna(), "clip_id"].head(5).tolist()
        raise ValueError(f"traffic_df: {int(stamps.isna().sum())} rows have no event_timestamp (clip_id {ids})")
    starts = stamps.dt.floor(_PERIODS[by])
    results: list[DriftResult] = []
    for start, day_df in traffic_df.groupby(starts, sort=True):
        label = _period_label(pd.Timestamp(start), by)
        if len(day_df) < cfg.min_current_rows:
            reason = f"only {len(day_df)} clips (< min_current_rows={cfg.min_current_rows})"
            log.warning("%s: not evaluated, %s", label, reason)
            results.append(
                DriftResult(
                    drifted=False,
                    share_drifted=0.0,
                    drifted_columns=[],
                    n_reference=len(reference),
                    n_current=len(day_df),
                    html_path=None,
                    json_path=None,
                    per_column={},
                    drift_share_threshold=cfg.drift_share,
                    period=label,
                    skipped_reason=reason,
                )
            )
            continue
        current, _ = _feature_frame(day_df, projection, plan)
        outside = _outside_window(reference_df, day_df, label).index
        ref, current = _with_novelty(reference.loc[outside], current, reference_df.loc[outside], day_df, plan, group_of)
        results.append(_evaluate(ref, current, group_of, cfg, out, f"drift_{label}", label))
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return results


@dataclass(frozen=True)
class TimelineRun:
    """What :func:`feature_timeline` compared and decided."""

    results: list[DriftResult]
    timeline_path: str
    projection_path: str
    projection_fitted: bool
    n_reference: int
    reference_splits: list[str] | None
    encoder_version: str | None

    @property
    def first_drift(self) -> DriftResult | None:
        """The first period that drifted (what the drift watch alerts on), if any."""
        return next((r for r in self.results if r.drifted), None)


def _encoder_version(df: pd.DataFrame, name: str) -> str | None:
    if "encoder_version" not in df.columns:
        return None
    versions = sorted(df["encoder_version"].dropna().unique().tolist())
    if len(versions) > 1:
        raise ValueError(f"{name} mixes encoder versions {versions}: compare features of one encoder")
    return versions[0] if versions else None


def feature_timeline(
    reference_features: str | Path,
    cfg: DriftConfig,
    out_dir: str | Path,
    *,
    reference_root: str | Path | None = None,
    current_features: str | Path | None = None,
    current_root: str | Path | None = None,
    projection: str | Path | None = None,
    by: Literal["day", "hour"] = "day",
) -> TimelineRun:
    """:func:`drift_timeline` of extracted features (``clipguard features extract`` folders).

    The reference is ``reference_features`` joined with ``reference_root``'s manifest
    (:func:`with_manifest`) and restricted to ``cfg.reference_splits``; the traffic is
    ``current_features`` joined with ``current_root`` (both default to the reference's:
    a generated corpus holds its training clips and its traffic days in one root). Without
    a reference root, every reference clip is used and the text groups are skipped. The
    projection is loaded from ``projection`` or fitted on the reference and saved to
    ``<out_dir>/projection.npz``. Raises ``ValueError`` when the two feature tables come
    from different encoders.
    """
    out = Path(out_dir)
    joined = reference_root is not None
    if not joined:
        log.warning("no reference data root: every reference clip is the reference, text groups are skipped")
    splits = list(cfg.reference_splits) if joined else None
    reference = load_features(reference_features, reference_root, splits)
    current = load_features(
        reference_features if current_features is None else current_features,
        (reference_root if current_root is None else current_root) if joined else None,
    )
    ref_version = _encoder_version(reference, "the reference features")
    cur_version = _encoder_version(current, "the current features")
    if ref_version and cur_version and ref_version != cur_version:
        raise ValueError(
            f"the reference features are of encoder {ref_version} and the current ones of {cur_version}: "
            "extract the traffic with the reference's encoder"
        )
    if projection is None:
        fitted = fit_projection(reference, cfg.projection_dims)
        projection_path = fitted.save(out / "projection.npz")
    else:
        fitted, projection_path = Projection.load(projection), Path(projection)
    results = drift_timeline(reference, current, fitted, cfg, out, by=by)
    return TimelineRun(
        results=results,
        timeline_path=str(out / "timeline.json"),
        projection_path=str(projection_path),
        projection_fitted=projection is None,
        n_reference=len(reference),
        reference_splits=splits,
        encoder_version=ref_version,
    )


# --------------------------------------------------------------------------- one call per pipeline step

RESULT_FILE = "result.json"
"""``<out_dir>/result.json``: the :class:`DriftResult` of :func:`check_window` (what the alert reads)."""


def load_features(features: str | Path, root: str | Path | None = None, splits: Sequence[str] | None = None) -> pd.DataFrame:
    """The extracted clip features at ``features``, joined with ``root``'s manifest
    (:func:`with_manifest`: split, text, timestamps) and restricted to ``splits``
    (:func:`select_reference`) when given."""
    df = read_clip_features(features)
    if root is not None:
        df = with_manifest(df, root)
        if splits is not None:
            df = select_reference(df, splits)
    return df


def fit_reference_projection(
    reference_features: str | Path, cfg: DriftConfig, reference_root: str | Path | None = None
) -> Projection:
    """The drift projection of a reference: :func:`fit_projection` (``cfg.projection_dims``
    components per embedding column) on its features, restricted to ``cfg.reference_splits``
    of ``reference_root`` when one is given (the ``fit_drift_projection`` step)."""
    splits = cfg.reference_splits if reference_root is not None else None
    return fit_projection(load_features(reference_features, reference_root, splits), dims=cfg.projection_dims)


def check_window(
    reference_features: str | Path,
    current_features: str | Path,
    projection: str | Path | Projection,
    cfg: DriftConfig,
    out_dir: str | Path,
    *,
    reference_root: str | Path | None = None,
    current_root: str | Path | None = None,
) -> DriftResult:
    """:func:`drift_report` of one traffic window against the reference (the ``drift_check``
    step), labelled with the window's period; writes ``<out_dir>/drift.{html,json}`` and
    ``<out_dir>/result.json`` (:data:`RESULT_FILE`).

    With both data roots the reference is restricted to ``cfg.reference_splits`` and the text
    groups are compared too; without them whole feature tables are compared on the vector and
    audio columns only.
    """
    joined = reference_root is not None and current_root is not None
    reference = load_features(reference_features, reference_root if joined else None, cfg.reference_splits if joined else None)
    current = load_features(current_features, current_root if joined else None)
    fitted = projection if isinstance(projection, Projection) else Projection.load(projection)
    out = Path(out_dir)
    result = drift_report(reference, current, fitted, cfg, out, period=window_period(current))
    (out / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2))
    return result
