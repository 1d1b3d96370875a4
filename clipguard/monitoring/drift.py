"""Data-drift watch: Evidently ``DataDriftPreset`` on projected embeddings and clip statistics.

Inputs are per-clip tables (pandas) with ``clip_id``, ``event_timestamp``,
``clip_embedding`` (a 128-float list/array per clip) and, when present, ``text_pooled``
(384 floats), the text fields ``title`` / ``ocr`` / ``asr``, audio statistics
(``audio_rms``, ``has_audio``) and the student's ``score``. Each clip becomes a few
numeric columns, in groups chosen by :class:`~clipguard.config.DriftConfig.groups`:

=================  ==========================================================
group              columns
=================  ==========================================================
``visual``         ``emb_pc0..emb_pc{k-1}``, ``emb_resid``
``text_embedding`` ``txt_pc0..txt_pc{k-1}``, ``txt_resid``
``text_stats``     ``{title,ocr,asr}_tokens``, ``hashtag_count``, ``hashtag_share``
``audio``          ``audio_rms``, ``has_audio``
``score``          ``score``
=================  ==========================================================

``*_pc*`` are the coordinates on the top ``k`` principal components of the **training
reference** (:func:`fit_projection`, saved once and reused every day so that days are
comparable). ``*_resid`` is the norm of what those components do not explain: a new
kind of content (a new visual pattern, a new phrase) mostly lies *outside* the
reference subspace, so its PCA coordinates barely move while its residual jumps. This
column is what makes a handful of components enough.

Why these defaults (see :class:`~clipguard.config.DriftConfig`), measured with the
synthetic traffic of ``tests/monitoring/synth.py`` (6 worlds x 6 ordinary days of 300
clips with a day-to-day topic mix, and 2 trend days where 30% of the clips show a new
visual cluster, a new hashtag phrase and a louder sound):

* **Few components** (4 per embedding): the decision is a *share* of drifted columns, so
  every column is a vote, and leading components follow the day's topic mix. With 8
  components ordinary days reached a drifted share of 0.35 (a false alert); with 4,
  at most 0.17, while trend days stayed at 0.5 or more.
* **Normed Wasserstein distance, threshold 0.2**: an effect size in units of the
  reference standard deviation. It does not shrink with the number of clips the way a
  K-S p-value does, so a busy day of ordinary traffic does not alert just because it is
  large. Evidently's default (0.1) is below the noise of a few hundred clips: sampling
  alone gave up to 0.15-0.2 on skewed columns (score, loudness), and a shifting topic
  mix up to 0.3 on the residuals. A pattern on 30% of the clips gave 0.24 to over 1 on
  the columns it touches.
* **PSI for discrete columns** (at most ``discrete_max_values`` distinct reference
  values: flags such as ``has_audio``, counts that are constant in the reference): a
  distance normed by a near-zero spread explodes on a single odd clip, while PSI
  weighs the share of clips that moved.
* **Drift share 0.3**: a day drifts when at least 30% of the columns drift. A new
  content trend moves several groups at once (residuals, hashtags, title length,
  loudness, score), while noise that crosses a column threshold does so alone.
* **At least 100 clips per period** (``min_current_rows``): the noise of a distance
  grows as 1/sqrt(n); with 100 clips ordinary days already reached a share of 0.28.

:func:`drift_report` runs one Evidently report (HTML + JSON written), and reads the
decision back from the report's result dict (``DriftedColumnsCount`` share and the
per-column ``ValueDrift`` tests, found by ``metric_name``). :func:`drift_timeline`
does that for every day of traffic; the drift-watch pipeline turns the first drifted
day into an alert and a retraining flag.

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
    "audio": AUDIO_COLUMNS,
    "score": (SCORE_COLUMN,),
}
"""Input columns each feature group is derived from."""
REQUIRED_COLUMNS: tuple[str, ...] = ("clip_id", "clip_embedding")
PROJECTION_FORMAT = 1
_HASHTAG = re.compile(r"#\w+")
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
        raise ValueError(
            f"{column}: {bad.size} rows do not hold {expected} values ({_clip_ids(df, bad)}; got lengths {got})"
        )
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
            raise ValueError(
                f"{column}: cannot fit {dims} components on {matrix.shape[0]} clips of dimension {matrix.shape[1]}"
            )
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


def _plan_groups(
    reference_df: pd.DataFrame, current_df: pd.DataFrame, groups: Sequence[str]
) -> dict[str, tuple[str, ...]]:
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
    features = pd.concat(frames, axis=1).replace([np.inf, -np.inf], np.nan)
    return features, group_of


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
        log.warning(
            "%s: Evidently counts %d drifted columns but flags %d per column", name, count, len(drifted_columns)
        )
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
    wrong size or with NaN/inf (naming the clips), or an empty frame.
    """
    for label, df in (("reference_df", reference_df), ("current_df", current_df)):
        if df.empty:
            raise ValueError(f"{label} is empty")
    plan = _plan_groups(reference_df, current_df, cfg.groups)
    reference, group_of = _feature_frame(reference_df, projection, plan)
    current, _ = _feature_frame(current_df, projection, plan)
    return _evaluate(reference, current, group_of, cfg, Path(out_dir), name, period)


def _period_label(start: pd.Timestamp, by: str) -> str:
    return start.strftime("%Y-%m-%d") if by == "day" else start.strftime("%Y-%m-%dT%H-%M")


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
    ``traffic_df`` (naive timestamps are read as UTC).
    """
    if by not in _PERIODS:
        raise ValueError(f"by must be one of {sorted(_PERIODS)}, got {by!r}")
    _require(traffic_df, ("event_timestamp",), "traffic_df")
    if reference_df.empty:
        raise ValueError("reference_df is empty")
    out = Path(out_dir)
    plan = _plan_groups(reference_df, traffic_df, cfg.groups)
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
        results.append(_evaluate(reference, current, group_of, cfg, out, f"drift_{label}", label))
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return results
