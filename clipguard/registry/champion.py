"""Re-evaluating a registered student on another test set: the gate's champion comparison.

The gate compares a candidate with the champion only on the same test set. After
retraining on new days the candidate's data version differs from the one the champion
was evaluated on, so its registered metrics are not comparable. :func:`champion_reevaluator`
returns the callable :func:`clipguard.registry.gate.gate_version` calls then: it downloads
the champion from the registry and evaluates it with
:func:`clipguard.eval.evaluate.evaluate_student` on the candidate's data root and features
(same split, same threshold rule), logging the evaluation to MLflow like any other.

The features must come from the encoder the champion was trained on (students score
token matrices of one encoder version): with refreshed encoders the champion is not
comparable and :class:`ChampionNotComparableError` says so (the gate then fails closed).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipguard.config import Config, load_config
from clipguard.core.tracking import RegistryError, configure_tracking, numeric_leaves
from clipguard.registry.versions import get_model_version, registered_model_name, registry_client

log = logging.getLogger(__name__)


class ChampionNotComparableError(RegistryError):
    """The champion cannot be evaluated on the candidate's test set (e.g. another encoder)."""


def download_model_dir(family: str, version: str | int, dst: str | Path, *, cfg: Config | None = None) -> Path:
    """Download registered ``version`` of ``family`` and return its model directory
    (``config.json``, ``model.safetensors``, extra files: what ``from_pretrained`` loads).

    Raises:
        UnknownFamilyError / UnknownVersionError: no such registered version.
    """
    import mlflow
    from mlflow.models import Model

    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    get_model_version(registry_client(cfg), name, version)  # a clear error for a missing version
    configure_tracking(cfg)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))
    return local / Model.load(str(local)).flavors["python_function"].get("data", "")


def evaluate_registered_student(
    family: str,
    version: str | int,
    root: str | Path,
    features_dir: str | Path,
    *,
    cfg: Config | None = None,
    split: str = "test",
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate registered student ``version`` on ``split`` of ``root`` with ``features_dir``;
    returns the evaluation report (``metrics``, ``data_version``, files in ``out_dir``).

    Raises:
        ChampionNotComparableError: the features were extracted with another encoder than
            the one the version was trained on (its ``encoder_version`` tag).
        UnknownFamilyError / UnknownVersionError: no such registered version.
    """
    from clipguard.eval.evaluate import evaluate_student
    from clipguard.training.student import features_version

    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    mv = get_model_version(registry_client(cfg), name, version)
    theirs = (mv.tags or {}).get("encoder_version")
    ours = features_version(features_dir)
    if theirs and theirs != ours:
        raise ChampionNotComparableError(
            f"{name} v{version} was trained on encoder {theirs}, the candidate's features come from "
            f"encoder {ours}: it cannot be scored on them (re-extract the test set with encoder {theirs})"
        )
    with tempfile.TemporaryDirectory(prefix="clipguard-reeval-") as tmp:
        model_dir = download_model_dir(family, version, tmp, cfg=cfg)
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "eval"
        report = evaluate_student(model_dir, features_dir, root, split=split, cfg=cfg, out_dir=out)
    report["registered_model"] = name
    report["registry_version"] = str(mv.version)
    return report


def champion_reevaluator(
    family: str,
    root: str | Path,
    features_dir: str | Path,
    *,
    cfg: Config | None = None,
    split: str = "test",
    out_dir: str | Path | None = None,
) -> Callable[[str], dict[str, float]]:
    """The ``reevaluate_champion`` callable of :func:`~clipguard.registry.gate.gate_version`:
    champion version -> its metrics on the candidate's ``split`` (``root`` + ``features_dir``).

    Reports go to ``<out_dir>/champion-v<version>/`` (default: a temporary folder).
    """
    cfg = cfg or load_config()

    def reevaluate(version: str) -> dict[str, float]:
        target = Path(out_dir) / f"champion-v{version}" if out_dir is not None else None
        report = evaluate_registered_student(family, version, root, features_dir, cfg=cfg, split=split, out_dir=target)
        metrics = numeric_leaves(report["metrics"])
        log.info(
            "champion v%s re-evaluated on %s of data %s: %s",
            version,
            split,
            report["data_version"],
            ", ".join(f"{k}={metrics[k]:.4g}" for k in ("ap", "r_at_p80", "f1") if k in metrics),
        )
        return metrics

    return reevaluate
