"""Validation of the data contract with quarantine (``clipguard data validate``).

:func:`validate_manifests` reads the clip manifest (and the pair manifest when there is
one), checks every row and splits each manifest into accepted rows and quarantined rows:

1. **Schema and types** (ours, row by row): a missing contract column quarantines every
   row (``schema_missing_column:<col>``); each value is coerced to the contract's Arrow
   type (``bad_type:<col>``, ``non_finite:<col>``, ``bad_timestamp``; empty ids become null).
2. **Rules** (Great Expectations 1.x suites on the coerced frame, one ephemeral context per
   run): unique ids, no nulls, known splits, valid windows, text length bounds, labels in
   the taxonomy, timestamps in range; for pairs: labels in {0, 1}, known reasons and no
   self-pairs. Failing rows are found from GX's ``unexpected_index_list`` (the frame's
   index is the row position in the input).
3. **Media** (clips still alive after 1-2): every distinct ``video_uri`` is resolved
   inside the data root and probed once, in a thread pool, with a progress bar.
4. **References**: a pair whose query or candidate is not an *accepted* clip is quarantined.

Each quarantined row keeps its original values (as text) with ``row_index``, machine-
readable ``reasons`` (``code`` or ``code:column``, codes from
:data:`clipguard.data.schema.REASONS`) and a ``message`` naming the item and every reason.
Outputs go to ``<root>/validated/`` (see :data:`OUTPUT_FILES`), are published atomically
(a staging directory renamed into place) and are fingerprinted: a re-run with the same
manifests, media files and configuration returns the stored result without work.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clipguard import __version__
from clipguard.config import Config, ValidationConfig
from clipguard.core.io import pid_alive
from clipguard.data import schema
from clipguard.data.report import print_summary, render_html
from clipguard.media.reader import MediaError, MediaInfo, probe

FORMAT_VERSION = 1
"""Part of the fingerprint: bump it when the checks change so that old outputs are redone."""

WINDOW_TOLERANCE_S = 0.5
"""A clip may end this much after the probed media duration (container rounding)."""

QUARANTINE_PREVIEW_ROWS = 50
"""Quarantined rows per manifest listed in report.json / report.html."""

ADDED_CLIP_COLUMNS = ("duration_s", "has_audio", "variable_frame_rate", "flags")
QUARANTINE_COLUMNS = ("row_index", "reasons", "message")
FINGERPRINT_FILE = "_fingerprint.json"
REPORT_FILE = "report.json"
HTML_FILE = "report.html"
OUTPUT_FILES = frozenset(
    {
        "clips.parquet",
        "clips_quarantine.parquet",
        "pairs.parquet",
        "pairs_quarantine.parquet",
        REPORT_FILE,
        HTML_FILE,
        FINGERPRINT_FILE,
        schema.DATA_VERSION_FILE,
    }
)

_ID_COLUMNS = frozenset({"clip_id", "video_uri", "pair_id", "query_clip_id", "candidate_clip_id"})
"""String columns where surrounding blanks are stripped and an empty value counts as null."""
_TEXT_LIMITS = {"title": "max_title_chars", "ocr": "max_ocr_chars", "asr": "max_asr_chars"}
_FLAG_TEXT = {"no_audio": "has no audio track", "variable_frame_rate": "has a variable frame rate"}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ManifestCounts:
    """Counts of one manifest: ``rows_in == accepted + quarantined`` always holds."""

    rows_in: int
    accepted: int
    quarantined: int
    reasons: dict[str, int]
    """quarantined rows per reason (``code`` or ``code:column``)"""
    flags: dict[str, int]
    """accepted rows per flag (clips only: ``no_audio``, ``variable_frame_rate``)"""

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> ManifestCounts:
        return cls(
            rows_in=section["rows_in"],
            accepted=section["accepted"],
            quarantined=section["quarantined"],
            reasons=dict(section["reasons"]),
            flags=dict(section["flags"]),
        )


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_manifests` produced (or found up to date, ``reused=True``)."""

    out_dir: Path
    clips: ManifestCounts
    pairs: ManifestCounts | None
    fingerprint: str
    reused: bool
    report: dict[str, Any] = field(repr=False)
    """the content of report.json"""

    @property
    def clips_path(self) -> Path:
        return self.out_dir / "clips.parquet"

    @property
    def clips_quarantine_path(self) -> Path:
        return self.out_dir / "clips_quarantine.parquet"

    @property
    def pairs_path(self) -> Path | None:
        return self.out_dir / "pairs.parquet" if self.pairs is not None else None

    @property
    def pairs_quarantine_path(self) -> Path | None:
        return self.out_dir / "pairs_quarantine.parquet" if self.pairs is not None else None

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_FILE

    @property
    def data_version(self) -> str:
        """The version of the accepted manifests (``validated/data_version``, written with them)."""
        return schema.validated_data_version(self.out_dir)

    @property
    def html_path(self) -> Path:
        return self.out_dir / HTML_FILE

    @classmethod
    def from_report(cls, out_dir: Path, report: dict[str, Any], reused: bool) -> ValidationResult:
        pairs = report["manifests"]["pairs"]
        return cls(
            out_dir=out_dir,
            clips=ManifestCounts.from_section(report["manifests"]["clips"]),
            pairs=ManifestCounts.from_section(pairs) if pairs is not None else None,
            fingerprint=report["fingerprint"],
            reused=reused,
            report=report,
        )


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class _Kind:
    """One manifest type of the contract."""

    name: str
    noun: str
    id_column: str
    columns: tuple[schema.Column, ...]

    @property
    def names(self) -> list[str]:
        return schema.column_names(self.columns)


CLIPS = _Kind("clips", "clip", "clip_id", schema.CLIP_COLUMNS)
PAIRS = _Kind("pairs", "pair", "pair_id", schema.PAIR_COLUMNS)


class _Issues:
    """Quarantine reasons found per row, and the cells our own coercion rejected."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[tuple[str, str]]] = {}
        self.bad_cells: set[tuple[int, str]] = set()

    def add(self, row: int, reason: str, detail: str) -> None:
        self.by_row.setdefault(row, []).append((reason, detail))

    def reject_cell(self, row: int, column: str, reason: str, detail: str) -> None:
        self.bad_cells.add((row, column))
        self.add(row, reason, detail)

    def reasons(self, row: int) -> list[str]:
        return list(dict.fromkeys(reason for reason, _ in self.by_row.get(row, [])))


@dataclass
class _Manifest:
    """One manifest being validated: raw input, coerced frame, issues, GX summary."""

    kind: _Kind
    path: Path
    raw: pa.Table
    frame: pd.DataFrame
    """contract columns coerced to their types; index = row position in the input"""
    issues: _Issues
    expectations: list[dict[str, Any]] = field(default_factory=list)
    added: dict[str, pa.Array] = field(default_factory=dict)
    """columns appended to the accepted rows (in accepted-row order)"""
    flags: Counter[str] = field(default_factory=Counter)

    @property
    def present(self) -> set[str]:
        return set(self.raw.column_names)

    def alive(self) -> list[int]:
        return [i for i in range(len(self.frame)) if i not in self.issues.by_row]

    def quarantined(self) -> list[int]:
        return sorted(self.issues.by_row)

    def label(self, row: int) -> str:
        item = self.frame.at[row, self.kind.id_column]
        return f"{self.kind.noun} {item} (row {row})" if isinstance(item, str) else f"{self.kind.noun} at row {row}"

    def message(self, row: int) -> str:
        return f"{self.label(row)}: " + "; ".join(f"{r}: {d}" for r, d in self.issues.by_row.get(row, []))


def _read_manifest(path: Path) -> pa.Table:
    """A manifest as an Arrow table: Parquet as stored, CSV with every column as text."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"{path}: unsupported manifest format {suffix!r} (expected .parquet or .csv)")
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read manifest: {e}") from e


# --------------------------------------------------------------------------- 1. types


class _CellError(Exception):
    """A value that does not convert to its column's type."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _bad_type(name: str, value: Any, expected: str) -> _CellError:
    return _CellError(f"bad_type:{name}", f"{name}={value!r} is not {expected}")


def _to_string(value: Any, name: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _bad_type(name, value, "a string")
    if name in _ID_COLUMNS:
        return value.strip() or None
    return value


def _to_float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal, str)):
        raise _bad_type(name, value, "a number")
    text = value.strip() if isinstance(value, str) else value
    if text == "":
        return None
    try:
        number = float(text)
    except (ValueError, OverflowError) as e:
        raise _bad_type(name, value, "a number") from e
    if not math.isfinite(number):
        raise _CellError(f"non_finite:{name}", f"{name}={number} is not finite")
    return number


def _to_int(value: Any, name: str) -> int | None:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number: float | int | None = int(value)
    else:
        number = _to_float(value, name)
        if number is not None and not number.is_integer():
            raise _bad_type(name, value, "an integer")
    if number is None:
        return None
    if not -(2**63) <= number < 2**63:
        raise _bad_type(name, value, "a 64-bit integer")
    return int(number)


def _to_labels(value: Any, name: str) -> list[str] | None:
    """A list of strings, from a list/array or a JSON list / ``a|b`` string (CSV)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as e:
                raise _bad_type(name, value, "a JSON list of strings") from e
            if not isinstance(items, list):
                raise _bad_type(name, value, "a JSON list of strings")
        else:
            items = [part for part in text.split("|") if part.strip()]
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    else:
        raise _bad_type(name, value, "a list of strings")
    if not all(isinstance(item, str) for item in items):
        raise _bad_type(name, value, "a list of strings")
    return [item.strip() for item in items]


def _to_timestamp(value: Any, name: str) -> pd.Timestamp | None:
    """A UTC timestamp from a datetime or an ISO 8601 string (naive times are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError as e:
            raise _CellError("bad_timestamp", f"{name}={value!r} is not an ISO 8601 timestamp") from e
    if not isinstance(value, (dt.date, np.datetime64)):
        raise _CellError("bad_timestamp", f"{name}={value!r} is not a timestamp")
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _config_timestamp(text: str) -> pd.Timestamp:
    """A timestamp bound of the validation config, in UTC."""
    try:
        stamp = _to_timestamp(text, "validation timestamp bound")
    except _CellError as e:
        raise ValueError(e.detail) from e
    if stamp is None:
        raise ValueError("validation.min_timestamp / max_timestamp must not be empty")
    return stamp


def _converter(column: schema.Column) -> tuple[Callable[[Any, str], Any], str]:
    """The cell converter of a contract column and the pandas dtype of its coerced values."""
    t = column.type
    if pa.types.is_string(t):
        return _to_string, "object"
    if pa.types.is_floating(t):
        return _to_float, "float64"
    if pa.types.is_integer(t):
        return _to_int, "Int64"
    if pa.types.is_list(t):
        return _to_labels, "object"
    if pa.types.is_timestamp(t):
        return _to_timestamp, f"datetime64[{t.unit}, {t.tz}]"
    raise TypeError(f"no converter for contract column {column.name} of type {t}")


def _coerce(kind: _Kind, raw: pa.Table) -> tuple[pd.DataFrame, _Issues]:
    """Coerce the contract columns of ``raw`` (row by row) and record what does not convert."""
    issues = _Issues()
    n = raw.num_rows
    columns: dict[str, pd.Series] = {}
    for column in kind.columns:
        convert, dtype = _converter(column)
        if column.name not in raw.column_names:
            for row in range(n):
                issues.add(row, f"schema_missing_column:{column.name}", f"the manifest has no {column.name!r} column")
            columns[column.name] = pd.Series([None] * n, dtype=dtype)
            continue
        values: list[Any] = []
        for row, value in enumerate(raw.column(column.name).to_pylist()):
            try:
                values.append(convert(value, column.name))
            except _CellError as e:
                issues.reject_cell(row, column.name, e.reason, e.detail)
                values.append(None)
        columns[column.name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(n)), issues


# --------------------------------------------------------------------------- 2. rules (GX)


@dataclass(frozen=True)
class _Rule:
    """One expectation and the quarantine reason its failing rows get."""

    reason: str
    expectation: Any
    describe: Callable[[Any], str]
    """GX's unexpected value of a row -> the detail in the row's message"""
    column: str | None = None
    """a cell already rejected by our coercion in this column is not reported again"""


def _expectation_columns(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return None


def _gx_error(info: dict[str, Any]) -> str | None:
    """The error of an expectation GX could not evaluate; ``exception_info`` is either one
    ``{raised_exception, exception_message, ...}`` dict or such dicts keyed by metric."""
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = [str(e.get("exception_message")) for e in entries if isinstance(e, dict) and e.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


class _Expectations:
    """One ephemeral Great Expectations context per run; one dataframe asset + suite per frame."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self._gx = gx
        self._context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            ),
        )
        self._source = self._context.data_sources.add_pandas("clipguard")

    def check(self, name: str, frame: pd.DataFrame, rules: Sequence[_Rule], m: _Manifest) -> None:
        """Run ``rules`` on ``frame`` (indexed by input row) and record failing rows in ``m``."""
        for i, outcome in enumerate(self._run(name, frame, rules)):
            rule = rules[i]
            rows = outcome.result.get("unexpected_index_list", [])
            values = outcome.result.get("unexpected_list", [])
            for row, value in zip(rows, values, strict=True):
                if (int(row), rule.column) not in m.issues.bad_cells:
                    m.issues.add(int(row), rule.reason, rule.describe(value))
            m.expectations.append(
                {
                    "frame": name,
                    "expectation": rule.expectation.expectation_type,
                    "column": _expectation_columns(rule.expectation.configuration.kwargs),
                    "reason": rule.reason,
                    "success": bool(outcome.success),
                    "unexpected_count": int(outcome.result.get("unexpected_count", 0)),
                }
            )

    def _run(self, name: str, frame: pd.DataFrame, rules: Sequence[_Rule]) -> list[Any]:
        """The GX validation results of ``rules`` on ``frame``, in the order of ``rules``."""
        gx = self._gx
        batch = self._source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        for i, rule in enumerate(rules):
            rule.expectation.meta = {"rule": i, "reason": rule.reason}
        suite = self._context.suites.add(gx.ExpectationSuite(name=name, expectations=[r.expectation for r in rules]))
        definition = self._context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        outcomes: dict[int, Any] = {}
        for outcome in result.results:
            config = outcome.expectation_config
            if config is None:
                raise RuntimeError(f"{name}: a Great Expectations result without its expectation")
            error = _gx_error(outcome.exception_info or {})
            if error is not None:
                raise RuntimeError(f"{name}: {config.type} on {config.kwargs} failed to run: {error}")
            outcomes[config.meta["rule"]] = outcome
        return [outcomes[i] for i in range(len(rules))]


def _says(template: str) -> Callable[[Any], str]:
    """A row detail: ``template`` formatted with GX's unexpected value of the row as ``v``."""

    def describe(value: Any) -> str:
        return template.format(v=value)

    return describe


def _too_long(column: str, limit: str, bound: int) -> Callable[[Any], str]:
    def describe(value: Any) -> str:
        return f"{column} has {len(value)} characters > {limit}={bound}"

    return describe


def _common_rules(kind: _Kind, present: set[str], vcfg: ValidationConfig) -> list[_Rule]:
    """Rules shared by both manifests: unique ids, no nulls, known splits, timestamp range."""
    import great_expectations.expectations as gxe

    rules: list[_Rule] = []
    if kind.id_column in present:
        rules.append(
            _Rule(
                f"duplicate_id:{kind.id_column}",
                gxe.ExpectColumnValuesToBeUnique(column=kind.id_column),
                _says(f"{kind.id_column} {{v!r}} appears more than once"),
            )
        )
    for name in kind.names:
        if name in present:
            rules.append(
                _Rule(
                    f"null_value:{name}",
                    gxe.ExpectColumnValuesToNotBeNull(column=name),
                    _says(f"{name} is null or empty"),
                    column=name,
                )
            )
    if "split" in present:
        rules.append(
            _Rule(
                "unknown_split",
                gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(schema.SPLITS)),
                _says(f"split {{v!r}} is not one of {', '.join(schema.SPLITS)}"),
            )
        )
    if "event_timestamp" in present:
        lo, hi = _config_timestamp(vcfg.min_timestamp), _config_timestamp(vcfg.max_timestamp)
        rules.append(
            _Rule(
                "bad_timestamp",
                gxe.ExpectColumnValuesToBeBetween(
                    column="event_timestamp", min_value=lo.to_pydatetime(), max_value=hi.to_pydatetime()
                ),
                _says(f"event_timestamp {{v}} is outside [{lo}, {hi}]"),
            )
        )
    return rules


def _clip_rules(present: set[str], vcfg: ValidationConfig) -> list[_Rule]:
    import great_expectations.expectations as gxe

    rules = _common_rules(CLIPS, present, vcfg)
    if "start_s" in present:
        rules.append(
            _Rule(
                "bad_window",
                gxe.ExpectColumnValuesToBeBetween(column="start_s", min_value=0.0),
                _says("start_s={v} is negative"),
            )
        )
    if {"start_s", "end_s"} <= present:
        rules.append(
            _Rule(
                "bad_window",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="end_s", column_B="start_s", or_equal=False, ignore_row_if="either_value_is_missing"
                ),
                _says("end_s={v[0]} is not after start_s={v[1]}"),
            )
        )
    for name, limit in _TEXT_LIMITS.items():
        if name in present:
            bound = getattr(vcfg, limit)
            rules.append(
                _Rule(
                    f"text_too_long:{name}",
                    gxe.ExpectColumnValueLengthsToBeBetween(column=name, max_value=bound),
                    _too_long(name, limit, bound),
                )
            )
    return rules


def _label_rules(policies: Sequence[str]) -> list[_Rule]:
    import great_expectations.expectations as gxe

    return [
        _Rule(
            "unknown_label",
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(policies)),
            _says(f"label {{v!r}} is not in the policy taxonomy ({', '.join(policies)})"),
        )
    ]


def _pair_rules(present: set[str], vcfg: ValidationConfig) -> list[_Rule]:
    import great_expectations.expectations as gxe

    rules = _common_rules(PAIRS, present, vcfg)
    if "label" in present:
        rules.append(
            _Rule(
                "bad_label",
                gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
                _says("label={v} is not 0 or 1"),
            )
        )
    if "reason" in present:
        rules.append(
            _Rule(
                "unknown_reason",
                gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=list(schema.PAIR_REASONS)),
                _says(f"reason {{v!r}} is not one of {', '.join(schema.PAIR_REASONS)}"),
            )
        )
    if {"query_clip_id", "candidate_clip_id"} <= present:
        rules.append(
            _Rule(
                "self_pair",
                gxe.ExpectSelectColumnValuesToBeUniqueWithinRecord(column_list=["query_clip_id", "candidate_clip_id"]),
                _says("query_clip_id and candidate_clip_id are both {v[query_clip_id]!r}"),
            )
        )
    return rules


def _check_clip_references(pairs: _Manifest, accepted: set[str]) -> None:
    """Quarantine pairs whose query or candidate is not an accepted clip (step 4).

    A join between two manifests rather than a rule on one frame: done with ``isin``
    (a GX value set of every accepted id is copied per metric and is quadratic in practice).
    """
    for name in ("query_clip_id", "candidate_clip_id"):
        ids = pairs.frame[name]
        for row, value in ids[ids.notna() & ~ids.isin(accepted)].items():
            pairs.issues.add(int(row), f"unknown_clip:{name}", f"{name} {value!r} is not an accepted clip")


def _label_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (clip, label), indexed by the clip's input row, for the taxonomy check."""
    return frame["labels"].explode().dropna().to_frame("label")


# --------------------------------------------------------------------------- 3. media


@dataclass(frozen=True)
class _MediaCheck:
    """The outcome of checking one media file: its info, or why it cannot be used."""

    info: MediaInfo | None
    reason: str | None = None
    detail: str = ""


def inspect_media(root: Path, uri: str, vcfg: ValidationConfig, timeout_s: float | None) -> MediaInfo:
    """Resolve a manifest's media path under ``root`` (:func:`clipguard.data.schema.resolve_media`)
    and :func:`check_media` it."""
    return check_media(schema.resolve_media(root, uri), uri, vcfg, timeout_s, where=f" under {root}")


def check_media(path: Path, uri: str, vcfg: ValidationConfig, timeout_s: float | None, where: str = "") -> MediaInfo:
    """Stat and probe one media file (``timeout_s``: the probe's time limit) and check it against
    the contract's size and duration bounds; raises :class:`MediaError` naming ``uri`` with a full
    detail. Validation, ingest and the scoring of new media (``rci score``, the service's uploads)
    all check media with it, so a file gets the same verdict everywhere."""
    try:
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise MediaError(uri, "missing_file", f"{uri} {what}{where}")
        size = path.stat().st_size
    except OSError as e:
        raise MediaError(uri, "missing_file", f"{uri} cannot be read ({e})") from e
    if size == 0:
        raise MediaError(uri, "empty_file", f"{uri} is empty (0 bytes)")
    if size > vcfg.max_file_bytes:
        raise MediaError(uri, "oversized_file", f"{uri} has {size} bytes > max_file_bytes={vcfg.max_file_bytes}")
    try:
        info = probe(path, timeout_s=timeout_s)
    except MediaError as e:
        raise MediaError(uri, e.reason, f"{uri}: {e.detail or schema.REASONS.get(e.reason, e.reason)}") from e
    except Exception as e:  # a file the demuxer chokes on in an unforeseen way must not stop the batch
        raise MediaError(uri, "decode_error", f"{uri}: {type(e).__name__}: {e}") from e
    if not vcfg.min_duration_s <= info.duration_s <= vcfg.max_duration_s:
        raise MediaError(
            uri,
            "duration_out_of_range",
            f"{uri} lasts {info.duration_s:.2f} s, outside [{vcfg.min_duration_s}, {vcfg.max_duration_s}] s",
        )
    return info


def _check_media(root: Path, uri: str, vcfg: ValidationConfig, timeout_s: float | None) -> _MediaCheck:
    """:func:`inspect_media` as a value (for the thread pool): the info, or why it is unusable."""
    try:
        return _MediaCheck(inspect_media(root, uri, vcfg, timeout_s))
    except MediaError as e:
        return _MediaCheck(None, e.reason, e.detail)


def _probe_all(
    root: Path, uris: Sequence[str], vcfg: ValidationConfig, timeout_s: float | None, console: Console, progress: bool
) -> dict[str, _MediaCheck]:
    """Check each distinct media file once, ``vcfg.probe_workers`` at a time."""
    checks: dict[str, _MediaCheck] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console, disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=vcfg.probe_workers) as pool,
    ):
        task = bar.add_task("probing media", total=len(uris))
        futures = {pool.submit(_check_media, root, uri, vcfg, timeout_s): uri for uri in uris}
        for future in as_completed(futures):
            checks[futures[future]] = future.result()
            bar.advance(task)
    return checks


def _apply_media(
    m: _Manifest, root: Path, vcfg: ValidationConfig, timeout_s: float | None, console: Console, progress: bool
) -> int:
    """Probe the media of the clips still alive, quarantine or flag them; returns files probed."""
    alive = m.alive()
    uri_of, end_of = m.frame["video_uri"].tolist(), m.frame["end_s"].tolist()
    uris = list(dict.fromkeys(uri_of[row] for row in alive))
    checks = _probe_all(root, uris, vcfg, timeout_s, console, progress)
    infos: dict[int, MediaInfo] = {}
    flags: dict[int, list[str]] = {}
    for row in alive:
        uri, end = uri_of[row], end_of[row]
        info = checks[uri].info
        if info is None:
            m.issues.add(row, str(checks[uri].reason), checks[uri].detail)
            continue
        if end > info.duration_s + WINDOW_TOLERANCE_S:
            m.issues.add(row, "window_beyond_media", f"end_s={end} is after the end of {uri} ({info.duration_s:.2f} s)")
        flags[row] = []
        for flag, mode, present in (
            ("no_audio", vcfg.no_audio, not info.has_audio),
            ("variable_frame_rate", vcfg.variable_frame_rate, info.variable_frame_rate),
        ):
            if present and mode == "quarantine":
                m.issues.add(row, flag, f"{uri} {_FLAG_TEXT[flag]} (validation.{flag}=quarantine)")
            elif present:
                flags[row].append(flag)
        infos[row] = info
    accepted = m.alive()
    m.flags.update(f for row in accepted for f in flags[row])
    m.added = dict(
        zip(
            ADDED_CLIP_COLUMNS,
            (
                pa.array([infos[r].duration_s for r in accepted], pa.float64()),
                pa.array([infos[r].has_audio for r in accepted], pa.bool_()),
                pa.array([infos[r].variable_frame_rate for r in accepted], pa.bool_()),
                pa.array([flags[r] for r in accepted], pa.list_(pa.string())),
            ),
            strict=True,
        )
    )
    return len(uris)


# --------------------------------------------------------------------------- outputs


def _as_text(value: Any) -> str | None:
    """An input value as text for the quarantine file (it may not convert to its type)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value) if isinstance(value, float) else str(value)


def _accepted_table(m: _Manifest) -> pa.Table:
    """Accepted rows: contract columns with their exact types, then extra input columns, then added ones."""
    rows = m.alive()
    table = pa.Table.from_pandas(
        m.frame.loc[rows, m.kind.names], schema=schema.arrow_schema(m.kind.columns), preserve_index=False
    ).replace_schema_metadata(None)
    take = pa.array(rows, pa.int64())
    for name in m.raw.column_names:
        if name not in m.kind.names and name not in m.added:
            table = table.append_column(m.raw.schema.field(name), m.raw.column(name).take(take))
    for name, values in m.added.items():
        table = table.append_column(name, values)
    return table


def _quarantine_table(m: _Manifest) -> pa.Table:
    """Quarantined rows: original values as text, then row_index, reasons and message
    (input columns with those three names are replaced)."""
    rows = m.quarantined()
    take = pa.array(rows, pa.int64())
    data: dict[str, pa.Array] = {
        name: pa.array([_as_text(v) for v in m.raw.column(name).take(take).to_pylist()], pa.string())
        for name in m.raw.column_names
        if name not in QUARANTINE_COLUMNS
    }
    data["row_index"] = pa.array(rows, pa.int64())
    data["reasons"] = pa.array([m.issues.reasons(r) for r in rows], pa.list_(pa.string()))
    data["message"] = pa.array([m.message(r) for r in rows], pa.string())
    return pa.table(data)


def _section(m: _Manifest, accepted: pa.Table, quarantine: pa.Table) -> dict[str, Any]:
    """The report section of one manifest; checks that the counts add up."""
    rows_in = m.raw.num_rows
    if rows_in != accepted.num_rows + quarantine.num_rows:
        raise AssertionError(
            f"{m.kind.name}: {rows_in} rows in != {accepted.num_rows} accepted + {quarantine.num_rows} quarantined"
        )
    rows = m.quarantined()
    reasons = Counter(reason for row in rows for reason in m.issues.reasons(row))
    return {
        "input": str(m.path),
        "rows_in": rows_in,
        "accepted": accepted.num_rows,
        "quarantined": quarantine.num_rows,
        "reasons": dict(reasons.most_common()),
        "flags": dict(m.flags.most_common()),
        "expectations": m.expectations,
        "quarantine_preview": [
            {
                "row_index": row,
                "id": m.frame.at[row, m.kind.id_column],
                "reasons": m.issues.reasons(row),
                "message": m.message(row),
            }
            for row in rows[:QUARANTINE_PREVIEW_ROWS]
        ],
    }


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove staging directories left behind by interrupted runs (their process is gone)."""
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(?:tmp|old)-(\d+)-[0-9a-f]{{8}}-.*")
    for path in out_dir.parent.glob(f".{out_dir.name}.*"):
        match = pattern.fullmatch(path.name)
        if match and path.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _write_data_version(path: Path) -> None:
    """``validated/data_version`` from the accepted manifests already staged beside it."""
    path.write_text(schema.hash_manifests(path.parent) + "\n")


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a directory holding anything but our own outputs."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise NotADirectoryError(f"{out_dir} exists and is not a directory")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUT_FILES)
        if foreign:
            raise FileExistsError(
                f"{out_dir} holds files that validation did not write ({', '.join(foreign[:5])}); choose another out_dir"
            )


def _publish(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Write every output into a staging directory, then swap it in for ``out_dir``.

    An interrupted run leaves either the previous complete output or the new one, never a
    mix or a half-written file (staging left by a killed run is removed by the next run).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{tag}-", dir=out_dir.parent))
    stage.chmod(0o755)  # mkdtemp makes it private; the outputs are for everyone who reads the data root
    previous = out_dir.with_name(f".{out_dir.name}.old-{tag}-")
    try:
        for name, write in writers.items():
            write(stage / name)
        if out_dir.exists():
            os.replace(out_dir, previous)
        os.replace(stage, out_dir)
    except BaseException:
        if previous.exists() and not out_dir.exists():
            os.replace(previous, out_dir)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


# --------------------------------------------------------------------------- fingerprint


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _media_stats(root: Path, clips_raw: pa.Table) -> dict[str, list[int] | None]:
    """(size, mtime_ns) of every media file the clip manifest refers to (None: missing/outside)."""
    if "video_uri" not in clips_raw.column_names:
        return {}
    stats: dict[str, list[int] | None] = {}
    for uri in sorted({str(u).strip() for u in clips_raw.column("video_uri").to_pylist() if u is not None}):
        try:
            st = schema.resolve_media(root, uri).stat()
        except (MediaError, OSError):
            stats[uri] = None
        else:
            stats[uri] = [st.st_size, st.st_mtime_ns]
    return stats


def _fingerprint(root: Path, inputs: dict[str, Path | None], clips_raw: pa.Table, cfg: Config) -> tuple[str, dict[str, Any]]:
    """The digest of everything the outputs depend on, and its content."""
    content = {
        "format_version": FORMAT_VERSION,
        "root": str(root),
        "inputs": {k: {"path": str(p), "sha256": _sha256(p)} if p else None for k, p in inputs.items()},
        "media": _media_stats(root, clips_raw),
        "config": {"validation": cfg.validation.model_dump(mode="json"), "policies": list(cfg.policy.policies)},
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return digest, content


def _stored_result(out_dir: Path, digest: str) -> ValidationResult | None:
    """The previous result when ``out_dir`` holds complete outputs of the same fingerprint."""
    try:
        stored = json.loads((out_dir / FINGERPRINT_FILE).read_text())
        report = json.loads((out_dir / REPORT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if stored.get("digest") != digest or report.get("fingerprint") != digest:
        return None
    result = ValidationResult.from_report(out_dir, report, reused=True)
    paths = [result.clips_path, result.clips_quarantine_path, result.pairs_path, result.pairs_quarantine_path]
    return result if all(p.is_file() for p in paths if p is not None) else None


# --------------------------------------------------------------------------- entry point


def _resolve_inputs(root: Path, clips_path: Path | None, pairs_path: Path | None) -> tuple[Path, Path | None]:
    default_clips, default_pairs = schema.manifest_paths(root)
    clips = Path(clips_path) if clips_path is not None else default_clips
    if not clips.is_file():
        raise FileNotFoundError(f"clip manifest not found: {clips}")
    if pairs_path is not None:
        if not Path(pairs_path).is_file():
            raise FileNotFoundError(f"pair manifest not found: {pairs_path}")
        return clips, Path(pairs_path)
    return clips, default_pairs if default_pairs.is_file() else None


class _Timer:
    """Wall-clock seconds per named step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - self._last, 4)
        self._last = now

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self._start, 4)}


@dataclass
class _Run:
    """What the steps of one validation run share."""

    root: Path
    cfg: Config
    console: Console
    progress: bool
    timer: _Timer = field(default_factory=_Timer)


def _validate_clips(run: _Run, gx: _Expectations, raw: pa.Table, path: Path) -> tuple[_Manifest, int]:
    """Steps 1-3 on the clip manifest; returns it and the number of media files probed."""
    frame, issues = _coerce(CLIPS, raw)
    m = _Manifest(CLIPS, path, raw, frame, issues)
    run.timer.lap("coerce")
    gx.check("clips", frame, _clip_rules(m.present, run.cfg.validation), m)
    if "labels" in m.present:
        gx.check("clip_labels", _label_frame(frame), _label_rules(run.cfg.policy.policies), m)
    run.timer.lap("expectations")
    probed = _apply_media(m, run.root, run.cfg.validation, run.cfg.media.decode_timeout_s, run.console, run.progress)
    run.timer.lap("media")
    return m, probed


def _validate_pairs(run: _Run, gx: _Expectations, raw: pa.Table, path: Path, clips: _Manifest) -> _Manifest:
    """Steps 1, 2 and 4 on the pair manifest, against the accepted clips."""
    frame, issues = _coerce(PAIRS, raw)
    m = _Manifest(PAIRS, path, raw, frame, issues)
    run.timer.lap("coerce")
    gx.check("pairs", frame, _pair_rules(m.present, run.cfg.validation), m)
    _check_clip_references(m, set(clips.frame.loc[clips.alive(), "clip_id"]))
    run.timer.lap("expectations")
    return m


def _outputs(manifests: Sequence[_Manifest], probed: int) -> tuple[dict[str, pa.Table], dict[str, dict[str, Any] | None]]:
    """The output tables by file name, and the report section of each manifest."""
    tables: dict[str, pa.Table] = {}
    sections: dict[str, dict[str, Any] | None] = {"clips": None, "pairs": None}
    for m in manifests:
        accepted, quarantine = _accepted_table(m), _quarantine_table(m)
        tables[f"{m.kind.name}.parquet"] = accepted
        tables[f"{m.kind.name}_quarantine.parquet"] = quarantine
        sections[m.kind.name] = _section(m, accepted, quarantine)
    sections["clips"] = {**(sections["clips"] or {}), "media_files_probed": probed}
    return tables, sections


def _write_parquet(table: pa.Table) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pq.write_table(table, path)

    return write


def _write_text(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def validate_manifests(
    root: Path,
    cfg: Config,
    clips_path: Path | None = None,
    pairs_path: Path | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> ValidationResult:
    """Validate the clip (and pair) manifests of a data root; write accepted rows, quarantine, report.

    ``clips_path``/``pairs_path`` default to ``root/manifests/{clips,pairs}.parquet`` (``.csv``
    manifests are accepted too; the pair manifest is optional), ``out_dir`` to
    ``root/validated``. Returns the stored result without work when the fingerprint of the
    inputs, media and validation config is unchanged, unless ``force``. Raises only for
    unusable inputs as a whole (a manifest missing or unreadable, ``out_dir`` not ours);
    bad rows are quarantined.
    """
    run = _Run(Path(root).resolve(), cfg, Console(), progress)
    out_dir = Path(out_dir).absolute() if out_dir is not None else run.root / schema.VALIDATED_DIR
    clips_file, pairs_file = _resolve_inputs(run.root, clips_path, pairs_path)
    _check_out_dir(out_dir)
    _remove_stale_staging(out_dir)

    clips_raw = _read_manifest(clips_file)
    run.timer.lap("read")
    digest, content = _fingerprint(run.root, {"clips": clips_file, "pairs": pairs_file}, clips_raw, cfg)
    run.timer.lap("fingerprint")
    if not force and (stored := _stored_result(out_dir, digest)) is not None:
        print_summary(run.console, stored.report, reused=True)
        return stored

    gx = _Expectations()
    run.timer.lap("gx_setup")
    clips, probed = _validate_clips(run, gx, clips_raw, clips_file)
    manifests = [clips]
    if pairs_file is not None:
        manifests.append(_validate_pairs(run, gx, _read_manifest(pairs_file), pairs_file, clips))
    tables, sections = _outputs(manifests, probed)
    run.timer.lap("tables")
    report = {
        "clipguard_version": __version__,
        "format_version": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "root": str(run.root),
        "out_dir": str(out_dir),
        "fingerprint": digest,
        "inputs": content["inputs"],
        "config": content["config"],
        "manifests": sections,
        "timings_s": run.timer.total(),
    }
    writers = {name: _write_parquet(table) for name, table in tables.items()}
    writers[REPORT_FILE] = _write_text(json.dumps(report, indent=2, default=str))
    writers[HTML_FILE] = _write_text(render_html(report))
    writers[FINGERPRINT_FILE] = _write_text(json.dumps({"digest": digest, **content}, indent=2))
    # after the tables (writers run in order): the data version every later artifact carries
    writers[schema.DATA_VERSION_FILE] = _write_data_version
    _publish(out_dir, writers)
    print_summary(run.console, report, reused=False)
    return ValidationResult.from_report(out_dir, report, reused=False)


__all__ = [
    "ADDED_CLIP_COLUMNS",
    "ManifestCounts",
    "ValidationResult",
    "validate_manifests",
]
