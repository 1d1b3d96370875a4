"""MLflow tracking, the model registry, the promotion gate and promotion/rollback.

- :mod:`~clipguard.core.tracking`: :func:`configure_tracking`, :func:`start_run` with
  :class:`Lineage` tags, ``log_*`` helpers, :func:`log_model` (register a safetensors model);
- :mod:`~clipguard.registry.pyfunc`: the no-pickle pyfunc flavor those models load with;
- :mod:`~clipguard.registry.gate`: :func:`gate_version` (policy floors, no-regression vs the
  champion, latency budgets; sets ``challenger`` on success);
- :mod:`~clipguard.registry.promote`: :func:`promote`, :func:`rollback`, :func:`current`, :func:`show`;
- :mod:`~clipguard.registry.champion`: the champion re-evaluated on a candidate's test set (for the gate).

MLflow is imported inside the functions, so importing this package is cheap.
See ``model_registry/README.md`` for the workflow.
"""

from clipguard.core.tracking import (
    Lineage,
    RegistryError,
    RegistryUnavailableError,
    TrackingSetup,
    configure_tracking,
    log_json,
    log_markdown_table,
    log_metrics,
    log_png,
    start_run,
)
from clipguard.registry.gate import (
    GateCheck,
    GateDecision,
    GatePolicy,
    PolicyError,
    evaluate_gate,
    gate_version,
    load_policy,
    read_metrics_json,
)
from clipguard.registry.promote import (
    PromotionRefusedError,
    RegistryState,
    RollbackError,
    current,
    promote,
    rollback,
    show,
)
from clipguard.registry.pyfunc import ModelPackageError
from clipguard.registry.versions import UnknownFamilyError, UnknownVersionError, log_model, registered_model_name

__all__ = [
    "GateCheck",
    "GateDecision",
    "GatePolicy",
    "Lineage",
    "ModelPackageError",
    "PolicyError",
    "PromotionRefusedError",
    "RegistryError",
    "RegistryUnavailableError",
    "RegistryState",
    "RollbackError",
    "TrackingSetup",
    "UnknownFamilyError",
    "UnknownVersionError",
    "configure_tracking",
    "current",
    "evaluate_gate",
    "gate_version",
    "load_policy",
    "log_json",
    "log_markdown_table",
    "log_metrics",
    "log_model",
    "log_png",
    "promote",
    "read_metrics_json",
    "registered_model_name",
    "rollback",
    "show",
    "start_run",
]
