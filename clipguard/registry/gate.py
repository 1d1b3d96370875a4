"""The promotion gate: a candidate model version becomes ``challenger`` only if it passes.

The policy (``clipguard/registry/policy.yaml``, see its README) gives, per model family, rules
per metric:

``threshold``
    absolute floor (ceiling when ``greater_is_better: false``, e.g. ``p99_ms``);
``max_regression`` / ``max_relative_regression``
    how much worse than the current ``champion`` the candidate may be, absolutely or as
    a fraction of the champion's magnitude (both must hold when both are set);
``min_absolute_change`` / ``min_relative_change``
    MLflow's own semantics: the candidate must *beat* the champion by at least this much.
``min_over_baseline``
    the candidate must beat a reference method scored on the *same* test pairs by at least
    this much: the evaluation step writes that method's value as ``baseline_<metric>``
    (for the student: clip-embedding cosine, :func:`clipguard.eval.evaluate.evaluate_student`).
    Unlike an absolute floor it follows the test set's difficulty and positive share; it
    applies with or without a champion, and a missing ``baseline_<metric>`` fails.

Every comparison is made by ``mlflow.validate_evaluation_results`` on ``EvaluationResult``
objects built from metric dicts, one threshold at a time so that each failure is
attributed to its metric and rule; a ``ModelValidationFailedException`` becomes a
failed :class:`GateCheck` and a reason in the :class:`GateDecision`.

Fail closed: a metric the policy names but the candidate lacks (or is NaN) fails; a
family without a policy cannot be gated. Without a champion only the floors and the
baseline rules apply (the decision says so). A champion whose metrics come from another test set (its
``data_version`` tag differs) is not compared as registered: the champion is re-evaluated
on the candidate's test set (``reevaluate_champion``, see :mod:`clipguard.registry.champion`;
the pipelines' gate step does this), or the caller passes ``champion_metrics``; with
neither the decision fails and says why.

:func:`gate_version` records the decision on the version (tags ``gate``,
``gate.reasons``, ...) and, only when it passed, sets the ``challenger`` alias.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clipguard.config import Config, load_config
from clipguard.core.tracking import Lineage, RegistryError, numeric_leaves
from clipguard.eval.evaluate import BASELINE_PREFIX
from clipguard.registry.versions import get_model_version, model_aliases, model_metrics, registered_model_name, registry_client

if TYPE_CHECKING:
    from mlflow import MlflowClient

ALIAS_CHAMPION = "champion"
ALIAS_CHALLENGER = "challenger"

TAG_GATE = "gate"
"""Version tag: ``passed`` or ``failed`` (promotion requires ``passed``)."""
TAG_REASONS = "gate.reasons"
"""Version tag: the decision's reasons (JSON list)."""
TAG_METRICS = "gate.metrics"
"""Version tag: the metrics the version was judged on (JSON)."""
TAG_CHAMPION = "gate.champion_version"
"""Version tag: the champion it was judged against ("" when there was none)."""

GATE_PASSED = "passed"
GATE_FAILED = "failed"

CheckKind = Literal["present", "floor", "over_baseline", "no_regression", "improvement", "same_test_set"]


class PolicyError(RegistryError, ValueError):
    """The gate policy file is missing, malformed, or has no rules for a family."""


class MetricRule(BaseModel):
    """The gate's rules for one metric (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    greater_is_better: bool = True
    threshold: float | None = Field(None, description="absolute floor (ceiling if lower is better)")
    max_regression: float | None = Field(None, ge=0, description="allowed absolute loss vs the champion")
    max_relative_regression: float | None = Field(
        None, ge=0, le=1, description="allowed loss vs the champion, as a fraction of its magnitude"
    )
    min_absolute_change: float | None = Field(None, gt=0, description="required absolute gain vs the champion")
    min_relative_change: float | None = Field(None, ge=0, le=1, description="required relative gain vs the champion")
    min_over_baseline: float | None = Field(
        None, gt=0, description="required absolute gain over baseline_<metric> (a reference method on the same test pairs)"
    )
    description: str | None = None

    @property
    def compares_champion(self) -> bool:
        return any(
            v is not None
            for v in (
                self.max_regression,
                self.max_relative_regression,
                self.min_absolute_change,
                self.min_relative_change,
            )
        )


class FamilyPolicy(BaseModel):
    """The rules of one model family: ``metrics`` maps a metric name to its rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    metrics: dict[str, MetricRule] = Field(min_length=1)

    def digest(self) -> str:
        """Short SHA-256 of the rules (recorded with each decision)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class GatePolicy(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    families: dict[str, FamilyPolicy]

    def family(self, family: str) -> FamilyPolicy:
        """The rules of ``family``.

        Raises:
            PolicyError: the policy has no rules for it (gating fails closed).
        """
        if family not in self.families:
            raise PolicyError(
                f"the gate policy has no rules for family {family!r} "
                f"(it has: {', '.join(self.families) or 'none'}); refusing to gate"
            )
        return self.families[family]


PACKAGED_POLICY = Path(__file__).resolve().with_name("policy.yaml")
"""The gate policy that ships with the package (``registry.policy_path`` unset)."""


def policy_path(cfg: Config | None = None) -> Path:
    """``registry.policy_path`` (a relative path is read from the current directory), else the
    packaged :data:`PACKAGED_POLICY`.

    Raises:
        PolicyError: the configured file does not exist.
    """
    configured = (cfg or load_config()).registry.policy_path
    if configured is None:
        return PACKAGED_POLICY
    path = Path(configured) if Path(configured).is_absolute() else Path.cwd() / configured
    if not path.is_file():
        raise PolicyError(f"gate policy {configured} not found (registry.policy_path; looked at {path})")
    return path


def load_policy(path: str | Path | None = None, *, cfg: Config | None = None) -> GatePolicy:
    """Read and validate the gate policy (default: :func:`policy_path`).

    Raises:
        PolicyError: missing file, invalid YAML or invalid rules (the message names the file).
    """
    path = Path(path) if path is not None else policy_path(cfg)
    try:
        raw = yaml.safe_load(path.read_text())
        return GatePolicy.model_validate(raw)
    except FileNotFoundError as e:
        raise PolicyError(f"gate policy {path} not found") from e
    except (yaml.YAMLError, ValidationError) as e:
        raise PolicyError(f"invalid gate policy {path}: {e}") from e


def read_metrics_json(path: str | Path, section: str | None = None) -> dict[str, float]:
    """The numeric leaves of a JSON file (e.g. a benchmark result), nested keys joined with ``.``.

    ``section``: only that top-level object, keys relative to it — e.g. ``"metrics"`` of an
    evaluation report (``metrics_<split>.json`` of :func:`clipguard.eval.evaluate.evaluate_student`:
    ``ap``, ``r_at_p80``, ..., and the measured ``pairs_per_s`` / ``p99_ms`` the student
    policy requires), which is what the register step attaches to the model version.
    """
    data = json.loads(Path(path).read_text())
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object of metrics")
    if section is not None:
        data = data.get(section)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: no {section!r} object of metrics")
    return numeric_leaves(data)


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """One comparison of the gate."""

    metric: str
    kind: CheckKind
    passed: bool
    message: str
    value: float | None = None
    bound: float | None = None
    """The value the candidate had to reach (floor, or champion ± tolerance)."""
    baseline: float | None = None
    """The champion's value for checks against the champion; the reference method's for ``over_baseline``."""


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """The outcome of gating one candidate.

    ``reasons`` lists the failed checks first (each names the metric, its value and the
    threshold or champion value), then notes (no champion, skipped comparisons); a
    passing decision ends with a one-line summary.
    """

    family: str
    passed: bool
    reasons: list[str]
    candidate_version: str | None
    champion_version: str | None
    metrics: dict[str, float]
    champion_metrics: dict[str, float]
    checks: list[GateCheck]
    policy_digest: str
    model_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for KFP outputs and the CLI)."""
        return dataclasses.asdict(self)


@contextlib.contextmanager
def _quiet_mlflow_validation() -> Iterator[None]:
    """MLflow logs two INFO lines per validation call; the gate makes one call per rule."""
    logger = logging.getLogger("mlflow.models.evaluation.validation")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _holds(metric: str, threshold: Any, value: float, baseline: float | None = None) -> bool:
    """Whether ``mlflow.validate_evaluation_results`` accepts ``value`` under one threshold."""
    import mlflow
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    candidate = EvaluationResult(metrics={metric: value}, artifacts={}, run_id=None)
    reference = None if baseline is None else EvaluationResult(metrics={metric: baseline}, artifacts={}, run_id=None)
    try:
        mlflow.validate_evaluation_results(
            validation_thresholds={metric: threshold},
            candidate_result=candidate,
            baseline_result=reference,
        )
    except ModelValidationFailedException:
        return False
    return True


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _baseline_check(metric: str, rule: MetricRule, value: float, baseline_value: float | None) -> GateCheck:
    """``metric`` must beat ``baseline_<metric>`` by ``rule.min_over_baseline`` (MLflow's min_absolute_change)."""
    from mlflow.models import MetricThreshold

    if rule.min_over_baseline is None:
        raise ValueError(f"{metric}: the over-baseline check needs a rule with min_over_baseline")
    margin = float(rule.min_over_baseline)
    key = BASELINE_PREFIX + metric
    if baseline_value is None or not math.isfinite(baseline_value):
        return GateCheck(
            metric,
            "over_baseline",
            False,
            f"{metric}: no finite {key} in the candidate's metrics (min_over_baseline {margin} needs the "
            "reference method scored on the same test pairs)",
            value,
        )
    gib = rule.greater_is_better
    threshold = MetricThreshold(min_absolute_change=margin, greater_is_better=gib)
    ok = _holds(metric, threshold, value, baseline_value)
    bound = baseline_value + margin if gib else baseline_value - margin
    msg = (
        f"{metric} = {_fmt(value)} vs baseline {_fmt(baseline_value)}: "
        + ("beats it" if ok else "does not beat it")
        + f" by the required {margin} (must be {'>=' if gib else '<='} {_fmt(bound)})"
    )
    return GateCheck(metric, "over_baseline", ok, msg, value, bound, baseline_value)


def _metric_checks(
    metric: str,
    rule: MetricRule,
    value: float,
    champion_value: float | None,
    champion_label: str,
    baseline_value: float | None = None,
) -> list[GateCheck]:
    from mlflow.models import MetricThreshold

    gib = rule.greater_is_better
    better, worse = (">=", "<") if gib else ("<=", ">")
    checks = []
    if rule.threshold is not None:
        ok = _holds(metric, MetricThreshold(threshold=float(rule.threshold), greater_is_better=gib), value)
        kind_word = "floor" if gib else "ceiling"
        msg = (
            f"{metric} = {_fmt(value)} {better} {kind_word} {_fmt(rule.threshold)}"
            if ok
            else f"{metric} = {_fmt(value)} {worse} {kind_word} {_fmt(rule.threshold)}"
        )
        checks.append(GateCheck(metric, "floor", ok, msg, value, rule.threshold))
    if rule.min_over_baseline is not None:
        checks.append(_baseline_check(metric, rule, value, baseline_value))
    if champion_value is None:
        return checks

    tolerances = []
    if rule.max_regression is not None:
        tolerances.append(rule.max_regression)
    if rule.max_relative_regression is not None:
        tolerances.append(rule.max_relative_regression * abs(champion_value))
    if tolerances:
        tol = min(tolerances)
        bound = champion_value - tol if gib else champion_value + tol
        ok = _holds(metric, MetricThreshold(threshold=float(bound), greater_is_better=gib), value)
        allowed = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("max_regression", rule.max_regression),
                ("max_relative_regression", rule.max_relative_regression),
            )
            if v is not None
        )
        msg = (
            f"{metric} = {_fmt(value)} vs {champion_label} {_fmt(champion_value)}: "
            + ("within" if ok else "regressed beyond")
            + f" the tolerance (must be {better} {_fmt(bound)}; {allowed})"
        )
        checks.append(GateCheck(metric, "no_regression", ok, msg, value, bound, champion_value))

    if rule.min_absolute_change is not None or rule.min_relative_change is not None:
        threshold = MetricThreshold(
            min_absolute_change=rule.min_absolute_change,
            min_relative_change=rule.min_relative_change,
            greater_is_better=gib,
        )
        ok = _holds(metric, threshold, value, champion_value)
        required = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("min_absolute_change", rule.min_absolute_change),
                ("min_relative_change", rule.min_relative_change),
            )
            if v is not None
        )
        msg = (
            f"{metric} = {_fmt(value)} vs {champion_label} {_fmt(champion_value)}: "
            + ("improves" if ok else "does not improve")
            + f" by the required margin ({required})"
        )
        checks.append(GateCheck(metric, "improvement", ok, msg, value, None, champion_value))
    return checks


def evaluate_gate(
    family: str,
    policy: FamilyPolicy,
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    *,
    candidate_version: str | None = None,
    champion_version: str | None = None,
    model_name: str | None = None,
    extra_checks: Sequence[GateCheck] = (),
) -> GateDecision:
    """Decide on a candidate from metric dicts alone (no registry access).

    Args:
        family: the model family (for messages).
        policy: the family's rules.
        candidate_metrics: the candidate's metrics on the test set (plus benchmark metrics).
        champion_metrics: the champion's metrics on the same test set; ``None`` when there
            is no champion, or none comparable (then only floors apply, and a note says so).
        candidate_version / champion_version / model_name: recorded in the decision.
        extra_checks: checks made by the caller, counted in the decision (listed first).
    """
    champion_label = f"champion v{champion_version}" if champion_version else "champion"
    checks: list[GateCheck] = list(extra_checks)
    notes: list[str] = []
    if champion_metrics is None:
        compared = [m for m, r in policy.metrics.items() if r.compares_champion]
        what = (
            f"no champion for {model_name or family}"
            if champion_version is None
            else f"no comparable metrics of {champion_label}"
        )
        notes.append(
            f"{what}: "
            + (f"champion comparisons skipped for {', '.join(compared)}; " if compared else "")
            + "only the floors and baseline rules apply"
        )
    with _quiet_mlflow_validation():
        for metric, rule in policy.metrics.items():
            raw = candidate_metrics.get(metric)
            if raw is None:
                checks.append(
                    GateCheck(
                        metric,
                        "present",
                        False,
                        f"{metric}: missing from the candidate's metrics (required by the {family} policy)",
                    )
                )
                continue
            value = float(raw)
            if not math.isfinite(value):
                checks.append(GateCheck(metric, "present", False, f"{metric} = {raw}: not a finite number", value))
                continue
            champion_value = None
            if champion_metrics is not None and rule.compares_champion:
                champ_raw = champion_metrics.get(metric)
                if champ_raw is None or not math.isfinite(float(champ_raw)):
                    notes.append(f"{champion_label} has no finite {metric}: champion comparison skipped for it")
                else:
                    champion_value = float(champ_raw)
            baseline_raw = candidate_metrics.get(BASELINE_PREFIX + metric)
            baseline_value = None if baseline_raw is None else float(baseline_raw)
            checks.extend(_metric_checks(metric, rule, value, champion_value, champion_label, baseline_value))

    failed = [c.message for c in checks if not c.passed]
    passed = not failed
    summary = [f"passed {len(checks)} checks on {', '.join(policy.metrics)}"] if passed else []
    return GateDecision(
        family=family,
        passed=passed,
        reasons=failed + notes + summary,
        candidate_version=candidate_version,
        champion_version=champion_version,
        metrics={k: float(v) for k, v in candidate_metrics.items()},
        champion_metrics={k: float(v) for k, v in (champion_metrics or {}).items()},
        checks=checks,
        policy_digest=policy.digest(),
        model_name=model_name,
    )


def gate_version(
    family: str,
    version: str | int,
    *,
    cfg: Config | None = None,
    policy: GatePolicy | None = None,
    candidate_metrics: Mapping[str, float] | None = None,
    extra_metrics: Mapping[str, float] | None = None,
    champion_metrics: Mapping[str, float] | None = None,
    reevaluate_champion: Callable[[str], Mapping[str, float]] | None = None,
) -> GateDecision:
    """Gate a registered version against the policy and the current champion; record the result.

    Args:
        family: model family (``registry.models`` key).
        version: the candidate version number.
        policy: default :func:`load_policy` of the configuration.
        candidate_metrics: the candidate's metrics; default those attached to its logged
            model by :func:`~clipguard.registry.versions.log_model`.
        extra_metrics: merged over the candidate's, e.g. :func:`read_metrics_json` of a
            benchmark result (``pairs_per_s``, ``p99_ms``).
        champion_metrics: the champion's metrics on the candidate's test set. Default: the
            metrics attached to the champion's logged model, used only when the champion
            and the candidate carry the same ``data_version`` tag (else ``reevaluate_champion``
            is asked, and without it the decision fails and says why).
        reevaluate_champion: champion version -> its metrics on the candidate's test set
            (:func:`clipguard.registry.champion.champion_reevaluator`), called only when
            the champion was evaluated on another ``data_version``; a
            :class:`~clipguard.registry.champion.ChampionNotComparableError` it raises
            becomes a failed check with its message.

    Effects: the version gets tags ``gate`` (``passed``/``failed``), ``gate.reasons``
    (JSON list), ``gate.metrics`` (JSON), ``gate.champion_version``,
    ``gate.policy_digest``, ``gate.checked_at``. Passing sets the alias ``challenger``
    on it (unless it is the champion); failing sets no alias and removes ``challenger``
    from it if it held it. Re-gating replaces the previous record.

    Raises:
        UnknownFamilyError, UnknownVersionError, PolicyError.
    """
    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    rules = (policy or load_policy(cfg=cfg)).family(family)
    client = registry_client(cfg)
    candidate = get_model_version(client, name, version)
    version = str(candidate.version)
    aliases = model_aliases(client, name)
    champion_version = aliases.get(ALIAS_CHAMPION)

    metrics = dict(candidate_metrics) if candidate_metrics is not None else model_metrics(client, candidate)
    metrics.update(extra_metrics or {})

    extra: list[GateCheck] = []
    champ_metrics: dict[str, float] | None = None
    if champion_metrics is not None:
        champ_metrics = dict(champion_metrics)
    elif champion_version is not None:
        champion = get_model_version(client, name, champion_version)
        ours = Lineage.from_tags(candidate.tags).data_version
        theirs = Lineage.from_tags(champion.tags).data_version
        if ours == theirs:
            champ_metrics = model_metrics(client, champion)
            shared = f"share data_version {ours}" if ours else "carry no data_version (assumed the same test set)"
            message = f"champion v{champion_version} and the candidate {shared}"
            extra.append(GateCheck("*", "same_test_set", True, message))
        elif reevaluate_champion is not None:
            from clipguard.registry.champion import ChampionNotComparableError

            try:
                champ_metrics = dict(reevaluate_champion(champion_version))
                message = (
                    f"champion v{champion_version} (evaluated on data_version {theirs}) re-evaluated on the "
                    f"candidate's test set, data_version {ours}"
                )
                extra.append(GateCheck("*", "same_test_set", True, message))
            except ChampionNotComparableError as e:
                extra.append(GateCheck("*", "same_test_set", False, f"champion v{champion_version}: {e}"))
        else:
            extra.append(
                GateCheck(
                    "*",
                    "same_test_set",
                    False,
                    f"champion v{champion_version} was evaluated on data_version {theirs}, the candidate "
                    f"on {ours}: evaluate the champion on the candidate's test set and pass champion_metrics",
                )
            )

    decision = evaluate_gate(
        family,
        rules,
        metrics,
        champ_metrics,
        candidate_version=version,
        champion_version=champion_version,
        model_name=name,
        extra_checks=extra,
    )
    _record(client, name, version, decision, aliases)
    return decision


def _record(client: MlflowClient, name: str, version: str, decision: GateDecision, aliases: Mapping[str, str]) -> None:
    tags = {
        TAG_GATE: GATE_PASSED if decision.passed else GATE_FAILED,
        TAG_REASONS: json.dumps(decision.reasons),
        TAG_METRICS: json.dumps(decision.metrics, sort_keys=True),
        TAG_CHAMPION: decision.champion_version or "",
        "gate.policy_digest": decision.policy_digest,
        "gate.checked_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if decision.passed:
        if aliases.get(ALIAS_CHAMPION) != version:
            client.set_registered_model_alias(name, ALIAS_CHALLENGER, version)
    elif aliases.get(ALIAS_CHALLENGER) == version:
        client.delete_registered_model_alias(name, ALIAS_CHALLENGER)


def gate_history(family: str, cfg: Config | None = None) -> list[dict[str, Any]]:
    """Every registered version of ``family``, oldest first, with the gate decision
    :func:`gate_version` recorded on it (``"not gated"`` where none was): its description,
    ``data_version``, the reasons, the metrics it was judged on and the champion it was judged against."""
    cfg = cfg or load_config()
    client = registry_client(cfg)
    name = registered_model_name(family, cfg)
    rows = []
    for mv in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        tags = mv.tags or {}
        rows.append(
            {
                "version": str(mv.version),
                "description": mv.description or "",
                "data_version": tags.get("data_version"),
                "gate": tags.get(TAG_GATE, "not gated"),
                "reasons": json.loads(tags.get(TAG_REASONS, "[]")),
                "metrics": json.loads(tags.get(TAG_METRICS, "{}")),
                "champion_at_gate": tags.get(TAG_CHAMPION) or None,
            }
        )
    return rows
