"""The bad-media campaign: every case of :mod:`clipguard.reliability.badmedia` through every stage.

Stages, each given **every** file (so each stage is shown to cope on its own, not only
behind the one before it):

1. ``ingest`` — :func:`clipguard.data.ingest.ingest_videos` over the suite's folder.
2. ``validate`` — :func:`clipguard.data.validate.validate_manifests` on a clip manifest that
   holds the windows ingest planned, and one ``[0, 20)`` window for each file it refused.
3. ``extract`` — :func:`clipguard.features.extract.extract_features` on a root whose
   *accepted* manifest is that same unvalidated manifest (what if validation missed it?).
4. ``rci_score`` — :func:`clipguard.rci.score.score_pairs` with each file as the query of a
   pair whose candidate is a good control video, media confined to the suite's root.
5. ``service`` — the running BentoML service's upload API (``POST /rci/score_media``) with
   each file's bytes as the query.

Each (case, stage) gets an observed outcome in the vocabulary of
:attr:`clipguard.reliability.badmedia.MediaCase.expect` — ``accepted``,
``flagged:<flags>``, ``quarantined:<reason>`` — or ``crash:<error>`` / ``hang`` when the
stage raised or overran its time limit, and the report checks it against the case's
defined outcome. Each stage's counts must add up (``in == accepted + quarantined``) and no
item may be lost.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clipguard.config import Config
from clipguard.reliability.badmedia import CASES, DECODE_STAGES, PROBE_STAGES, MediaCase, build_suite, good_video

log = logging.getLogger(__name__)

STAGES = (*PROBE_STAGES, *DECODE_STAGES)
MEDIA_DIR = "media"
CONTROL = "control.mp4"
"""the good video every pair is scored against (outside the media folder, inside the root)"""
_UPLOAD_REASON = re.compile(r"not a decodable video: (\w+)")


@dataclass(frozen=True)
class CaseOutcome:
    """What one stage did with one case."""

    case: str
    stage: str
    expected: str
    outcome: str
    items: int
    """clip windows (files for ingest and the service) of this case the stage received"""
    detail: str = ""

    @property
    def defined(self) -> bool:
        """The outcome is the case's defined one (no crash, no hang, the expected verdict)."""
        return self.outcome == self.expected


@dataclass(frozen=True)
class StageCounts:
    """One stage's books: every item it received is accepted or quarantined, once."""

    stage: str
    items_in: int
    accepted: int
    quarantined: int
    lost: int
    """items received that appear in neither output (must be 0)"""
    seconds: float
    crashed: str = ""

    @property
    def balanced(self) -> bool:
        return not self.crashed and self.lost == 0 and self.items_in == self.accepted + self.quarantined


@dataclass
class CampaignReport:
    """The outcome of every (case, stage) and every stage's counts."""

    cases: list[CaseOutcome] = field(default_factory=list)
    stages: list[StageCounts] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    one_hour: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    """:class:`clipguard.reliability.faults.FaultReport` as a dict (empty: not run)"""

    @property
    def undefined(self) -> list[CaseOutcome]:
        return [c for c in self.cases if not c.defined]

    @property
    def ok(self) -> bool:
        return not self.undefined and all(s.balanced for s in self.stages) and self.faults.get("ok", True)

    def to_dict(self) -> dict[str, Any]:
        crashes = sum(c.outcome.startswith("crash") for c in self.cases) + sum(bool(s.crashed) for s in self.stages)
        return {
            "ok": self.ok,
            "summary": {
                "cases": len({c.case for c in self.cases}),
                "case_stage_outcomes": len(self.cases),
                "defined": sum(c.defined for c in self.cases),
                "crashes": crashes,
                "hangs": sum(c.outcome == "hang" for c in self.cases),
                "stages_balanced": sum(s.balanced for s in self.stages),
                "stages": len(self.stages),
                "items_lost": sum(s.lost for s in self.stages),
            },
            "settings": self.settings,
            "stages": [{**asdict(s), "balanced": s.balanced} for s in self.stages],
            "cases": [{**asdict(c), "defined": c.defined} for c in self.cases],
            "one_hour": self.one_hour,
            "faults": self.faults,
        }


def _verdict(outcomes: list[str]) -> str:
    """One case's outcome from the outcomes of its items (all alike, else ``mixed:...``)."""
    distinct = sorted(set(outcomes))
    if not distinct:
        return "lost"
    return distinct[0] if len(distinct) == 1 else "mixed:" + "|".join(distinct)


def _by_case(case_of: Mapping[str, str], items: list[tuple[str, str, str]]) -> dict[str, tuple[str, int, str]]:
    """Per case, from ``(clip_id, outcome, detail)`` of its windows: the verdict, the window
    count and the first detail."""
    per_case: dict[str, list[tuple[str, str]]] = {}
    for clip_id, outcome, detail in items:
        per_case.setdefault(case_of[str(clip_id)], []).append((outcome, detail))
    return {name: (_verdict([o for o, _ in v]), len(v), next((d for _, d in v if d), "")) for name, v in per_case.items()}


def _reason(reasons: Any) -> str:
    """The first reason code of a quarantine row's reasons (a list of ``code[:column]``, or a
    ``code: message`` string)."""
    first = reasons[0] if not isinstance(reasons, str) and len(reasons) else reasons
    return str(first).split(":")[0].strip()


def _bounded(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` in a worker thread; :class:`TimeoutError` past ``timeout_s`` (the stage hung)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="campaign-stage")
    try:
        return pool.submit(fn).result(timeout=timeout_s)
    except FutureTimeout as e:
        raise TimeoutError(f"still running after {timeout_s:.0f} s") from e
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class _Campaign:
    def __init__(self, work: Path, cfg: Config, cases: tuple[MediaCase, ...], stage_timeout_s: float) -> None:
        self.work = work
        self.root = work / "root"
        self.cfg = cfg
        self.cases = cases
        self.stage_timeout_s = stage_timeout_s
        self.report = CampaignReport()
        self.files: dict[str, Path] = {}
        self.windows: pd.DataFrame | None = None  # the manifest validation and extraction receive
        self.features_dir: Path | None = None

    def uri(self, case: MediaCase) -> str:
        return f"{MEDIA_DIR}/{case.filename}"

    def run_stage(self, stage: str, fn: Callable[[], tuple[dict[str, tuple[str, int, str]], StageCounts]]) -> None:
        """Run one stage under the time limit; record its per-case outcomes and counts."""
        t0 = time.perf_counter()
        try:
            observed, counts = _bounded(fn, self.stage_timeout_s)
        except TimeoutError as e:
            observed, counts = (
                {},
                StageCounts(stage, len(self.cases), 0, 0, len(self.cases), time.perf_counter() - t0, f"hang: {e}"),
            )
        except Exception as e:  # noqa: BLE001 - a crashed stage is what the campaign reports
            log.exception("stage %s crashed", stage)
            observed = {}
            counts = StageCounts(stage, len(self.cases), 0, 0, 0, time.perf_counter() - t0, f"{type(e).__name__}: {e}")
        failed = "hang" if counts.crashed.startswith("hang") else f"crash:{counts.crashed.split(':')[0]}"
        for case in self.cases:
            outcome, items, detail = observed.get(case.name, (failed if counts.crashed else "lost", 0, counts.crashed))
            self.report.cases.append(CaseOutcome(case.name, stage, case.expected(stage), outcome, items, detail[:300]))
        self.report.stages.append(counts)

    # ------------------------------------------------------------------ stages

    def ingest(self) -> tuple[dict[str, tuple[str, int, str]], StageCounts]:
        from clipguard.data.ingest import ingest_videos

        t0 = time.perf_counter()
        res = ingest_videos(
            self.root, self.cfg, videos_dir=MEDIA_DIR, out=self.root / "manifests" / "ingested.parquet", progress=False
        )
        clips = pd.read_parquet(res.manifest)
        bad = pd.read_parquet(res.quarantine) if res.quarantine else pd.DataFrame(columns=["video_uri", "reason", "message"])
        observed: dict[str, tuple[str, int, str]] = {}
        rows = []
        for case in self.cases:
            uri = self.uri(case)
            mine, refused = clips[clips["video_uri"] == uri], bad[bad["video_uri"] == uri]
            if len(mine):
                observed[case.name] = ("accepted", 1, f"{len(mine)} clip windows")
                rows.extend(mine.to_dict("records"))
            elif len(refused):
                observed[case.name] = (f"quarantined:{refused['reason'].iloc[0]}", 1, str(refused["message"].iloc[0]))
                rows.append(self._window_row(case, 0.0, self.cfg.media.clip_seconds))
        self.windows = pd.DataFrame(rows)
        seen = {u for u in clips["video_uri"]} | {u for u in bad["video_uri"]}
        lost = sum(self.uri(c) not in seen for c in self.cases)
        counts = StageCounts("ingest", res.files_in, res.files_ingested, res.files_quarantined, lost, time.perf_counter() - t0)
        return observed, counts

    def _window_row(self, case: MediaCase, start: float, end: float) -> dict[str, Any]:
        return {
            "clip_id": f"{case.name}@{start:g}",
            "video_uri": self.uri(case),
            "start_s": start,
            "end_s": end,
            "title": case.description,
            "ocr": "",
            "asr": "",
            "labels": [],
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
            "source": "upload",
            "split": "traffic",
        }

    def _write_manifest(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from clipguard.data.schema import CLIP_COLUMNS, arrow_schema, column_names

        assert self.windows is not None
        df = self.windows[column_names(CLIP_COLUMNS)]
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(df, schema=arrow_schema(CLIP_COLUMNS), preserve_index=False), path)

    def _case_of_clip(self) -> dict[str, str]:
        assert self.windows is not None
        by_uri = {self.uri(c): c.name for c in self.cases}
        return {cid: by_uri[uri] for cid, uri in zip(self.windows["clip_id"], self.windows["video_uri"])}

    def validate(self) -> tuple[dict[str, tuple[str, int, str]], StageCounts]:
        from clipguard.data.schema import CLIPS_FILE
        from clipguard.data.validate import validate_manifests

        t0 = time.perf_counter()
        self._write_manifest(self.root / CLIPS_FILE)
        res = validate_manifests(self.root, self.cfg, force=True, progress=False)
        accepted = pd.read_parquet(res.clips_path)
        refused = pd.read_parquet(res.clips_quarantine_path) if res.clips_quarantine_path.is_file() else pd.DataFrame()
        items = []
        for row in accepted.to_dict("records"):
            flags = sorted(row["flags"]) if row.get("flags") is not None else []
            items.append((row["clip_id"], "flagged:" + ":".join(flags) if flags else "accepted", ""))
        items += [(r["clip_id"], f"quarantined:{_reason(r['reasons'])}", str(r["message"])) for r in refused.to_dict("records")]
        observed = _by_case(self._case_of_clip(), items)
        n_in = len(self.windows) if self.windows is not None else 0
        lost = n_in - len(accepted) - len(refused)
        c = res.clips
        return observed, StageCounts("validate", c.rows_in, c.accepted, c.quarantined, lost, time.perf_counter() - t0)

    def extract(self, encoder_dir: Path) -> tuple[dict[str, tuple[str, int, str]], StageCounts]:
        from clipguard.core.io import link_or_copy
        from clipguard.data.schema import VALIDATED_DIR
        from clipguard.features.extract import extract_features
        from clipguard.features.store_format import FEATURES_FILE, QUARANTINE_FILE

        t0 = time.perf_counter()
        unchecked = self.work / "unchecked"
        if unchecked.exists():
            shutil.rmtree(unchecked)
        # the same files (links kept as links), every window "accepted" without validation
        shutil.copytree(self.root / MEDIA_DIR, unchecked / MEDIA_DIR, symlinks=True, copy_function=link_or_copy)
        self._write_manifest(unchecked / VALIDATED_DIR / "clips.parquet")
        res = extract_features(unchecked, self.cfg, encoder_dir, self.work / "features", progress=False)
        self.features_dir = res.features_dir
        done = pd.read_parquet(res.features_dir / FEATURES_FILE, columns=["clip_id"])
        qpath = res.features_dir / QUARANTINE_FILE
        refused = pd.read_parquet(qpath) if qpath.is_file() else pd.DataFrame(columns=["clip_id", "reason", "message"])
        case_of = self._case_of_clip()
        items = [(cid, "accepted", "") for cid in done["clip_id"]]
        items += [(r["clip_id"], f"quarantined:{r['reason']}", str(r["message"])) for r in refused.to_dict("records")]
        observed = _by_case(case_of, items)
        lost = len(case_of) - len(done) - len(refused)
        counts = StageCounts(
            "extract", res.n_in, res.n_extracted + res.n_skipped, res.n_quarantined, lost, time.perf_counter() - t0
        )
        return observed, counts

    def rci_score(self, student_dir: Path, encoder_dir: Path) -> tuple[dict[str, tuple[str, int, str]], StageCounts]:
        from clipguard.rci.score import score_pairs

        t0 = time.perf_counter()
        pairs = pd.DataFrame(
            {
                "pair_id": [c.name for c in self.cases],
                "query_path": [self.uri(c) for c in self.cases],
                "candidate_path": [CONTROL] * len(self.cases),
            }
        )
        pairs_csv, out_csv = self.work / "pairs.csv", self.work / "scores.csv"
        pairs.to_csv(pairs_csv, index=False)
        res = score_pairs(
            pairs_csv, out_csv, self.cfg, model_uri=student_dir, encoder_dir=encoder_dir, media_root=self.root, progress=False
        )
        scored = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
        observed: dict[str, tuple[str, int, str]] = {}
        for row in scored.to_dict("records"):
            if row["error"]:
                observed[row["pair_id"]] = (f"quarantined:{_reason(row['error'])}", 1, row["error"])
            else:
                observed[row["pair_id"]] = ("accepted", 1, f"score {row['score']}")
        lost = len(self.cases) - len(set(scored["pair_id"]) & {c.name for c in self.cases})
        return observed, StageCounts("rci_score", len(pairs), res.n_scored, res.n_errors, lost, time.perf_counter() - t0)

    def service(self, url: str, request_timeout_s: float) -> tuple[dict[str, tuple[str, int, str]], StageCounts]:
        import httpx

        t0 = time.perf_counter()
        control = (self.root / CONTROL).read_bytes()
        observed: dict[str, tuple[str, int, str]] = {}
        statuses: Counter[int] = Counter()
        with httpx.Client(timeout=request_timeout_s) as client:
            for case in self.cases:
                body = self.files[case.name].read_bytes()  # an upload is bytes: a link is read through
                try:
                    r = client.post(
                        f"{url}/rci/score_media", files={"query": (case.filename, body), "candidate": (CONTROL, control)}
                    )
                except httpx.TimeoutException:
                    observed[case.name] = ("hang", 1, f"no answer within {request_timeout_s:.0f} s")
                    continue
                statuses[r.status_code] += 1
                text = r.text[:300]
                if r.status_code == 200:
                    observed[case.name] = ("accepted", 1, f"score {r.json().get('score')}")
                elif 400 <= r.status_code < 500:
                    m = _UPLOAD_REASON.search(text)
                    reason = m.group(1) if m else f"http_{r.status_code}"
                    observed[case.name] = (f"quarantined:{reason}", 1, f"{r.status_code}: {text}")
                else:
                    observed[case.name] = (f"crash:http_{r.status_code}", 1, text)
        ok = statuses.get(200, 0)
        refused = sum(n for s, n in statuses.items() if 400 <= s < 500)
        lost = len(self.cases) - sum(statuses.values())
        self.report.settings["service_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
        return observed, StageCounts("service", len(self.cases), ok, refused, lost, time.perf_counter() - t0)


def random_models(
    cfg: Config, out: str | Path, version: str = "ereliability", seeds: tuple[int, ...] = (0, 1)
) -> tuple[Path, list[Path]]:
    """Untrained encoders and random students (one per seed) of ``cfg``'s sizes, fitted to each
    other: ``(encoder_dir, student_dirs)``. Their scores mean nothing, but every step of the
    scoring path (decode, encode, score, errors, versions) is the real one, which is what the
    campaign tests."""
    import torch

    from clipguard.encoders.bundle import EncoderBundle
    from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification

    out = Path(out)
    bundle = EncoderBundle.from_config(cfg, vision_seed=0)
    encoder_dir = bundle.save(out / "encoders" / version, {"version": version})
    dims = {"visual_dim": bundle.vision.token_dim, "audio_dim": bundle.audio.dim, "text_dim": bundle.text.dim}
    models = cfg.models.model_copy(update={"student": cfg.models.student.model_copy(update=dims)})
    students = []
    for seed in seeds:
        torch.manual_seed(seed)
        student_dir = out / f"student-s{seed}"
        MatchLiteForPairClassification(MatchLiteConfig.from_settings(models)).eval().save_pretrained(student_dir)
        (student_dir / "training.json").write_text(json.dumps({"features_version": version, "data_version": "dreliability"}))
        students.append(student_dir)
    return encoder_dir, students


def one_hour_memory(path: Path, cfg: Config, sample_every: int = 10) -> dict[str, Any]:
    """Decode ``path`` clip by clip (:func:`clipguard.media.clipper.iter_clips`) and sample this
    process's resident memory: flat memory means the file is streamed, not loaded."""
    import psutil

    from clipguard.media.clipper import iter_clips

    proc = psutil.Process()
    rss: list[float] = []
    n = 0
    t0 = time.perf_counter()
    for _ in iter_clips(path, cfg.media):
        n += 1
        if n % sample_every == 0 or n == 1:
            rss.append(proc.memory_info().rss / 2**20)
    rss.append(proc.memory_info().rss / 2**20)
    after_first = rss[1] if len(rss) > 2 else rss[0]
    return {
        "file": path.name,
        "clips": n,
        "seconds": round(time.perf_counter() - t0, 2),
        "rss_mb_after_clip_1": round(rss[0], 1),
        "rss_mb_after_clip_10": round(after_first, 1),
        "rss_mb_last": round(rss[-1], 1),
        "rss_mb_max": round(max(rss), 1),
        "growth_mb_after_clip_10": round(max(rss) - after_first, 1),
    }


def run_campaign(
    work: str | Path,
    profile: str = "local",
    overrides: Mapping[str, Any] | None = None,
    quick: bool = False,
    with_service: bool = True,
    faults: bool = True,
    cases: tuple[MediaCase, ...] = CASES,
    stage_timeout_s: float = 900.0,
    request_timeout_s: float = 120.0,
) -> CampaignReport:
    """Build the suite under ``work/root`` and run it through every stage.

    The configuration is ``profile`` with ``overrides`` (dotted keys); its
    ``media.decode_timeout_s`` is the decode time limit the stages run under. The models are
    :func:`random_models` of that configuration. ``with_service`` starts the BentoML service
    (:func:`clipguard.serving.launch.local_server`) on the campaign's features for the upload
    stage and, with ``faults``, runs :func:`clipguard.reliability.faults.service_under_faults`
    on the campaign's features (a worker killed and the champion changed under load). ``work``
    is emptied first.
    """
    from clipguard.config import load_config
    from clipguard.serving.launch import local_server

    work = Path(work).resolve()
    if work.exists():
        shutil.rmtree(work)
    overrides = {"work_dir": str(work / "runs"), **dict(overrides or {})}
    cfg = load_config(profile, overrides)
    encoder_dir, students = random_models(cfg, work / "models")
    student_dir = students[0]
    camp = _Campaign(work, cfg, cases, stage_timeout_s)
    camp.files = build_suite(camp.root / MEDIA_DIR, quick=quick, cases=cases)
    good_video(camp.root / CONTROL)
    camp.report.settings = {
        "profile": profile,
        "quick": quick,
        "decode_timeout_s": cfg.media.decode_timeout_s,
        "clip_seconds": cfg.media.clip_seconds,
        "stage_timeout_s": stage_timeout_s,
        "request_timeout_s": request_timeout_s,
        "cases": {c.name: c.description for c in cases},
    }
    camp.run_stage("ingest", camp.ingest)
    camp.run_stage("validate", camp.validate)
    camp.run_stage("extract", lambda: camp.extract(encoder_dir))
    camp.run_stage("rci_score", lambda: camp.rci_score(student_dir, encoder_dir))
    if with_service and camp.features_dir is not None:
        arguments = {
            "profile": profile,
            **overrides,
            "rci.model_uri": str(student_dir),
            "serving.encoder_dir": str(encoder_dir),
            "serving.features_dir": str(camp.features_dir),
            "serving.workers": 1,
        }
        with local_server(arguments, work / "service.log") as server:
            camp.run_stage("service", lambda: camp.service(server.url, request_timeout_s))
        if faults:
            from clipguard.reliability.faults import service_under_faults

            camp.report.faults = service_under_faults(
                work / "faults", profile, overrides, students, camp.features_dir, encoder_dir.name
            ).to_dict()
    hour = next((c for c in cases if c.name == "one_hour"), None)
    if hour is not None:
        camp.report.one_hour = one_hour_memory(camp.files[hour.name], cfg)
    return camp.report


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report (its :meth:`CampaignReport.to_dict`) as a Markdown table: one row per case,
    one column per stage (the outcome, ``!`` where it is not the defined one), then the counts."""
    stages = [s["stage"] for s in report["stages"]]
    by_case: dict[str, dict[str, dict[str, Any]]] = {}
    for c in report["cases"]:
        by_case.setdefault(c["case"], {})[c["stage"]] = c
    lines = ["| case | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for case, cells in by_case.items():
        shown = []
        for st in stages:
            c = cells.get(st)
            shown.append(
                "—" if c is None else (c["outcome"] if c["defined"] else f"**{c['outcome']}** ! (defined: {c['expected']})")
            )
        lines.append(f"| {case} | " + " | ".join(shown) + " |")
    counts = {s["stage"]: s for s in report["stages"]}
    for key, label in (("items_in", "in"), ("accepted", "accepted"), ("quarantined", "quarantined"), ("lost", "lost")):
        lines.append(f"| *{label}* | " + " | ".join(str(counts[st][key]) for st in stages) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: CampaignReport, out: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """The report as JSON at ``out`` (with ``extra`` keys: the command, the machine)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**(extra or {}), **report.to_dict()}, indent=2, default=str) + "\n")
    return out
