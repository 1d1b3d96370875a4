"""``make demo``: the whole loop on a synthetic corpus, on this machine, in one command.

::

    python -m pipelines.demo [--out runs/demo] [--seed 0] [--set key=value ...]
    clipguard --profile demo demo [--out DIR]          # the same, through the CLI

Steps (every pipeline runs with ``kfp.local``, see :mod:`pipelines.run_local`):

1. **corpus**: :func:`clipguard.synth.generate_corpus` into ``<out>/corpus/<fingerprint>``
   (kept between runs: the generator is idempotent; another seed or synth config gets its
   own folder), sized by the profile (``clipguard/configs/demo.yaml``).
2. **day slices** (:func:`clipguard.data.days.slice_days`): the days before the watched
   ones (the training data), each watched day alone (a drift-watch window) and the days up
   to each watched day (what retraining on that day sees). The watched days are the last
   ordinary day before the trend and the trend day.
3. **training** pipeline on the training days: encoders, features, Feast, teacher, student,
   index, evaluation, registry, gate (``clipguard/registry/policy.yaml`` as committed), and on a
   pass promotion and the bento.
4. **a degraded challenger**: the trained student with its weights zeroed (a no-skill scorer:
   every pair gets the same score), really evaluated on the same test split, registered and
   gated: the gate must refuse it and the champion must not move.
5. **drift_watch** pipeline for each watched day: the day vs the training reference; on
   drift, an alert and the retraining steps (re-gated against the champion, re-evaluated
   on the new test set). Unless ``alerts.webhook_url`` is configured, the alerts go to an
   Alertmanager-webhook receiver the demo runs on 127.0.0.1
   (:func:`clipguard.monitoring.alerts.local_receiver`), which keeps them in
   ``<out>/state/alerts.jsonl``.
6. **summary**: champions per family, every gate decision with its reasons, the drift
   timeline, where the MLflow database, reports and bento are, step times; printed and
   written to ``<out>/demo_summary.json``.

Everything the pipelines write (MLflow database and artifacts, Feast, caches, the bento
store, task outputs) goes under ``<out>/state``, which a run starts from empty; the corpus
is reused. Nothing is served in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEMO_PROFILE = "demo"
FAMILY = "student"
SUMMARY_FILE = "demo_summary.json"


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    """Which days the demo trains on and watches."""

    train_days: tuple[int, ...]
    watch_days: tuple[int, ...]
    trend_day: int

    @classmethod
    def for_corpus(cls, days: int, trend_day: int, watch_before_trend: int = 1) -> DemoPlan:
        """Watch ``watch_before_trend`` ordinary days before the trend and the trend day; train on
        the days before them (at least one)."""
        first = max(1, trend_day - watch_before_trend)
        if not 0 < trend_day < days:
            raise ValueError(f"the trend day {trend_day} must lie within the corpus's {days} days")
        return cls(tuple(range(first)), tuple(range(first, trend_day + 1)), trend_day)


class _Timer:
    """Wall time per demo step, printed as it goes."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.steps: dict[str, float] = {}
        self.t0 = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = round(time.perf_counter() - t0, 1)
            self.console.print(f"[dim]{name}: {self.steps[name]:.1f} s[/dim]")

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 1)


@contextmanager
def _output_to(log: Path | None) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors 1 and 2, so the pipeline tasks'
    subprocesses too) to ``log`` while the block runs; ``None``: leave them alone."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _run_logged(
    name: str, params: dict[str, Any], pipeline_root: Path, work_dir: Path, log: Path | None, *, alert_on_failure: bool = False
) -> Any:
    """:func:`pipelines.run_local.run_pipeline` with its output in ``log``; a failure's
    message ends with the end of that log."""
    from pipelines.run_local import run_pipeline

    try:
        with _output_to(log):
            return run_pipeline(name, params, pipeline_root=pipeline_root, work_dir=work_dir, alert_on_failure=alert_on_failure)
    except RuntimeError as e:
        if log is None:
            raise
        tail = log.read_text(errors="replace")[-6000:]
        raise RuntimeError(f"{e}\n--- the end of {log} ---\n{tail}") from e


def _run_dir(pipeline_root: Path) -> Path:
    """The one run folder ``kfp.local`` made under ``pipeline_root``."""
    runs = [p for p in pipeline_root.iterdir() if p.is_dir()]
    if len(runs) != 1:
        raise RuntimeError(f"expected one pipeline run under {pipeline_root}, found {len(runs)}")
    return runs[0]


def task_seconds(run: Path, started: float) -> dict[str, float]:
    """Approximate wall seconds of each task of a ``kfp.local`` run that began at ``started``
    (``time.time()``): the local runner runs tasks one at a time, so a task took from the
    previous task's last write to its own last write."""
    ends = {}
    for task in (p for p in run.iterdir() if p.is_dir()):
        stamps = [f.stat().st_mtime for f in task.rglob("*")] + [task.stat().st_mtime]
        ends[task.name] = max(stamps)
    out, last = {}, started
    for name, end in sorted(ends.items(), key=lambda kv: kv[1]):
        out[name] = round(max(0.0, end - last), 1)
        last = end
    return out


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _drift_day(run: Path, day: int, date: str) -> dict[str, Any]:
    """What one drift_watch run decided and did, read from its task outputs."""
    result = _json(run / "drift-check" / "result" / "result.json") or {}
    alert = _json(run / "send-alert" / "outcome")
    gates = sorted(run.glob("**/gate-model*/decision"))
    decision = _json(gates[0]) if gates else None
    builds = sorted(run.glob("**/package-bento*/bento/build.json"))
    return {
        "day": day,
        "date": date,
        "drifted": bool(result.get("drifted")),
        "share_drifted": result.get("share_drifted"),
        "drifted_columns": result.get("drifted_columns", []),
        "n_reference": result.get("n_reference"),
        "n_current": result.get("n_current"),
        "report": str(run / "drift-check" / "report"),
        "alert": None if alert is None else {k: alert.get(k) for k in ("delivered", "reason", "attempts") if k in alert},
        "retrained": decision is not None,
        "retrain_gate": None
        if decision is None
        else {"version": decision["candidate_version"], "passed": decision["passed"], "reasons": decision["reasons"]},
        "bento": (_json(builds[0]) or {}).get("tag") if builds else None,
    }


def _watch_days(
    plan: DemoPlan,
    windows: dict[int, Any],
    upto: dict[int, Any],
    reference: dict[str, str],
    common: dict[str, Any],
    state: Path,
    timer: _Timer,
    tasks: dict[str, dict[str, float]],
    log: Any,
) -> list[dict[str, Any]]:
    """Run drift_watch for each watched day; the drift timeline."""
    timeline = []
    for day in plan.watch_days:
        with timer.step(f"drift_watch day {day}"):
            started = time.time()
            params = {
                "current_root": str(windows[day].root),
                "encoder_uri": reference["encoder"],
                "reference_features_uri": reference["features"],
                "projection_uri": reference["projection"],
                "reference_root_uri": reference["root"],
                "retrain_data_root": str(upto[day].root),
                **common,
            }
            # as a cluster runs it: inside the exit handler that pages on-call if the run fails
            _run_logged(
                "drift_watch", params, state / "kfp" / f"drift-day-{day}", state, log(f"drift-day-{day}"), alert_on_failure=True
            )
            run = _run_dir(state / "kfp" / f"drift-day-{day}")
            entry = _drift_day(run, day, windows[day].dates[0])
            tasks[f"drift_watch day {day}"] = task_seconds(run, started)
            entry["trend_day"] = day == plan.trend_day
            timeline.append(entry)
    return timeline


def run_demo(
    out: str | Path | None = None,
    *,
    profile: str = DEMO_PROFILE,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    watch_before_trend: int = 1,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run the demo (see the module docstring) and return its summary (also written to
    ``<out>/demo_summary.json``). ``out`` defaults to ``<work_dir>/demo`` of the profile.
    The pipelines' task logs go to ``<out>/state/logs/<pipeline>.log`` (``verbose``: to the console).

    Raises:
        RuntimeError: a pipeline failed (the message ends with the end of its task log).
    """
    from rich.console import Console

    from clipguard.config import load_config
    from clipguard.data.days import slice_days
    from clipguard.monitoring.alerts import local_receiver, received_alerts
    from clipguard.registry import show
    from clipguard.registry.challenger import gate_degraded_challenger
    from clipguard.registry.gate import gate_history
    from clipguard.synth import fingerprint, generate_corpus
    from pipelines.run_local import describe_outputs

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    overrides = dict(overrides or {})
    if seed is not None:
        overrides["seed"] = seed
    base = load_config(profile, overrides)
    out = Path(out if out is not None else Path(base.work_dir) / "demo").absolute()
    state = out / "state"
    overrides["work_dir"] = str(state)
    cfg = load_config(profile, overrides)
    timer = _Timer(console)
    common = {"profile": profile, "overrides_json": json.dumps(overrides, sort_keys=True), "seed": cfg.seed}

    with timer.step("corpus"):
        corpus_root = out / "corpus" / fingerprint(cfg.seed, cfg)  # one folder per seed and synth config
        corpus = generate_corpus(corpus_root, seed=cfg.seed, cfg=cfg)
        console.print(corpus)
        meta = _json(corpus_root / "corpus.json")
    plan = DemoPlan.for_corpus(meta["days"], meta["trend_day"], watch_before_trend)

    with timer.step("day slices"):
        if state.exists():
            shutil.rmtree(state)  # a fresh registry, stores and task outputs every run
        slices = state / "days"
        train = slice_days(corpus_root, slices / "train", plan.train_days)
        windows = {d: slice_days(corpus_root, slices / f"day-{d}", [d]) for d in plan.watch_days}
        upto = {d: slice_days(corpus_root, slices / f"upto-{d}", range(d + 1)) for d in plan.watch_days}
        console.print(
            f"training on days {list(plan.train_days)} ({train.clips} clips, {train.pairs} pairs); watching days "
            + ", ".join(f"{d} ({windows[d].dates[0]}, {windows[d].clips} clips)" for d in plan.watch_days)
            + f"; the trend starts on day {plan.trend_day}"
        )

    tasks: dict[str, dict[str, float]] = {}

    def log(name: str) -> Path | None:
        path = None if verbose else state / "logs" / f"{name}.log"
        if path is not None:
            console.print(f"task logs: {path}")
        return path

    with timer.step("training pipeline"):
        started = time.time()
        task = _run_logged(
            "training", {"data_root": str(train.root), **common}, state / "kfp" / "training", state, log("training")
        )
        reference = describe_outputs(task)
        training_run = _run_dir(state / "kfp" / "training")
        training_gate = _json(training_run / "gate-model" / "decision")
        tasks["training"] = task_seconds(training_run, started)

    with timer.step("degraded challenger"):
        challenger = gate_degraded_challenger(
            FAMILY,
            training_gate["candidate_version"],
            training_run / "assemble-root" / "root",
            Path(reference["features"]),
            state / "degraded",
            cfg=cfg,
        )
        verdict = "refused" if not challenger["passed"] else "PASSED (unexpected)"
        console.print(
            f"degraded v{challenger['version']} (AP {challenger['metrics']['ap']}): gate {verdict}; champion "
            f"{challenger['champion_before']} -> {challenger['champion_after']}"
        )

    # on-call stand-in: alerts go to a receiver on 127.0.0.1 unless the config names a webhook
    inbox_log = state / "alerts.jsonl"
    own_receiver = cfg.alerts.webhook_url is None
    with contextlib.ExitStack() as stack:
        inbox = stack.enter_context(local_receiver(inbox_log)) if own_receiver else None
        if inbox is not None:
            console.print(f"alerts go to a local Alertmanager-webhook receiver at {inbox.url} (kept in {inbox_log})")
            watch_common = {
                **common,
                "overrides_json": json.dumps({**overrides, "alerts.webhook_url": inbox.url}, sort_keys=True),
            }
        else:
            watch_common = common
        timeline = _watch_days(plan, windows, upto, reference, watch_common, state, timer, tasks, log)
    alerts_received = received_alerts(inbox_log) if own_receiver else None

    from clipguard.serving.package import bentoml_home

    registry = {family: s.to_dict() for family, s in show(cfg=cfg).items()}
    bentos = sorted(str(p) for p in state.glob("kfp/**/package-bento*/bento/*.bento"))
    summary = {
        "profile": profile,
        "out": str(out),
        "corpus": {
            "root": str(corpus_root),
            "seed": cfg.seed,
            "days": meta["days"],
            "trend_day": plan.trend_day,
            "clips": corpus.clips,
            "pairs": corpus.pairs,
            "positives": corpus.positives,
        },
        "train_days": list(plan.train_days),
        "watch_days": list(plan.watch_days),
        "champions": {
            f: {
                "champion": r["aliases"].get("champion"),
                "previous": r["aliases"].get("previous"),
                "challenger": r["aliases"].get("challenger"),
                "history": r["history"],
            }
            for f, r in registry.items()
        },
        "training_gate": {
            "version": training_gate["candidate_version"],
            "passed": training_gate["passed"],
            "reasons": training_gate["reasons"],
        },
        "degraded_challenger": challenger,
        "gate_decisions": gate_history(FAMILY, cfg),
        "drift_timeline": timeline,
        "alerts_received": alerts_received,
        "where": {
            "mlflow_db": str(state / "mlflow.db"),
            "mlflow_ui": f"mlflow ui --backend-store-uri sqlite:///{state / 'mlflow.db'} "
            f"--default-artifact-root {state / 'mlartifacts'}",
            "kfp_runs": str(state / "kfp"),
            "logs": str(state / "logs"),
            "drift_reports": [d["report"] for d in timeline],
            "training_evaluation": str(training_run / "evaluate-student" / "evaluation"),
            "bentoml_home": str(bentoml_home(cfg)),
            "bentos": bentos,
            "score_with_champion": f"clipguard --profile {profile} --set work_dir={state} "
            "rci score --pairs PAIRS.csv --out SCORES.csv",
        },
        "step_seconds": timer.steps,
        "task_seconds": tasks,
        "total_seconds": timer.total,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    print_summary(summary, console)
    return summary


def print_summary(summary: dict[str, Any], console: Any = None) -> None:
    """The demo summary as text (what ``make demo`` ends with)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    console.rule("[bold]clipguard demo: summary")
    c = summary["corpus"]
    console.print(
        f"corpus {c['root']}: {c['clips']} clips, {c['pairs']} pairs ({c['positives']} positive), {c['days']} days, "
        f"trend from day {c['trend_day']}; trained on days {summary['train_days']}, watched {summary['watch_days']}"
    )
    champions = Table("family", "champion", "previous", "challenger", "history", title="champions")
    for family, a in summary["champions"].items():
        champions.add_row(
            family, a["champion"] or "-", a["previous"] or "-", a["challenger"] or "-", " -> ".join(a["history"]) or "-"
        )
    console.print(champions)
    gates = Table("version", "what", "gate", "reasons", title="gate decisions (student)")
    for g in summary["gate_decisions"]:
        gates.add_row(g["version"], g["description"], g["gate"], "\n".join(g["reasons"]))
    console.print(gates)
    d = summary["degraded_challenger"]
    console.print(
        f"degraded challenger v{d['version']} (v{d['source_version']} zeroed): "
        + ("refused" if not d["passed"] else "[red]passed[/red]")
        + f"; champion before {d['champion_before']}, after {d['champion_after']}"
        + (" (unchanged)" if d["champion_unchanged"] else " [red](moved)[/red]")
    )
    drift = Table("day", "date", "drifted", "share drifted", "alert", "retrained", "retrain gate", title="drift timeline")
    for e in summary["drift_timeline"]:
        share = e["share_drifted"]
        gate = e["retrain_gate"]
        drift.add_row(
            f"{e['day']}{' (trend)' if e['trend_day'] else ''}",
            e["date"],
            "yes" if e["drifted"] else "no",
            "-" if share is None else f"{share:.2f} ({len(e['drifted_columns'])} columns)",
            "-"
            if e["alert"] is None
            else str(e["alert"].get("reason") or ("delivered" if e["alert"].get("delivered") else "sent")),
            "yes" if e["retrained"] else "no",
            "-" if gate is None else f"v{gate['version']} {'passed' if gate['passed'] else 'refused'}",
        )
    console.print(drift)
    received = summary.get("alerts_received")
    if received is not None:
        names = ", ".join(f"{a['alertname']} (day {a['day']})" for r in received for a in r["alerts"]) or "none"
        console.print(f"alerts received by the local webhook receiver: {len(received)} request(s): {names}")
    w = summary["where"]
    console.print(f"MLflow database: {w['mlflow_db']}\n  UI: {w['mlflow_ui']}")
    console.print(f"drift reports: {', '.join(w['drift_reports'])}")
    console.print(f"evaluation report: {w['training_evaluation']}")
    console.print(f"bento store: {w['bentoml_home']} ({len(w['bentos'])} exported: {', '.join(w['bentos']) or 'none'})")
    if w.get("score_with_champion"):
        console.print(f"score your own videos with this champion (it carries its encoders): {w['score_with_champion']}")
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in summary["step_seconds"].items())
    console.print(f"steps: {steps}")
    for pipeline, seconds in summary.get("task_seconds", {}).items():
        slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:6]
        console.print(f"  {pipeline}, slowest tasks: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest))
    console.print(f"[bold]total wall time: {summary['total_seconds']:.0f} s ({summary['total_seconds'] / 60:.1f} min)[/bold]")
    console.print(f"summary JSON: {Path(summary['out']) / SUMMARY_FILE}")


def main(argv: list[str] | None = None) -> int:
    from clipguard.config import parse_overrides

    parser = argparse.ArgumentParser(description="clipguard demo: corpus -> training -> gate -> drift -> retraining.")
    parser.add_argument("--out", type=Path, default=None, help="demo folder (default <work_dir>/demo)")
    parser.add_argument("--profile", default=DEMO_PROFILE, help="config profile (default demo)")
    parser.add_argument("--seed", type=int, default=None, help="corpus and training seed (default: the profile's)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override key=value")
    parser.add_argument("--verbose", action="store_true", help="pipeline task logs on the console, not in files")
    args = parser.parse_args(argv)
    run_demo(args.out, profile=args.profile, overrides=parse_overrides(args.sets), seed=args.seed, verbose=args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
