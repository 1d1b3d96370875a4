"""Promotion and rollback with registered-model aliases.

Aliases of each family's registered model:

``challenger``   the last version that passed the gate (set by :func:`~clipguard.registry.gate.gate_version`)
``champion``     the version the service loads (``models:/<name>@champion``)
``previous``     the champion before the current one (what :func:`rollback` restores)
``rolled_back``  the last champion a rollback demoted

The champion's history is a registered-model tag ``champion_history`` (JSON list of
versions, oldest first, the current champion last), so repeated rollbacks walk back
one champion at a time. A ``champion`` alias moved by hand in the MLflow UI is picked up:
the next promote or rollback appends it to the history first.

Only versions tagged ``gate=passed`` are promoted; ``force=True`` overrides this with a
warning and tags the version ``promoted_with_force=true``. Promoting the current
champion again changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import warnings
from typing import TYPE_CHECKING, Any

from clipguard.config import Config, load_config
from clipguard.core.tracking import RegistryError
from clipguard.registry.gate import ALIAS_CHALLENGER, ALIAS_CHAMPION, GATE_PASSED, TAG_GATE, TAG_REASONS
from clipguard.registry.versions import get_model_version, model_aliases, registered_model_name, registry_client

if TYPE_CHECKING:
    from mlflow import MlflowClient

_log = logging.getLogger(__name__)

ALIAS_PREVIOUS = "previous"
ALIAS_ROLLED_BACK = "rolled_back"
HISTORY_TAG = "champion_history"
HISTORY_MAX = 200
"""Oldest entries beyond this many are dropped from the history tag."""


class PromotionRefusedError(RegistryError):
    """The version did not pass the gate (and ``force`` was not given), or there is nothing to promote."""


class RollbackError(RegistryError):
    """There is no earlier champion to roll back to."""


@dataclasses.dataclass(frozen=True)
class RegistryState:
    """Where a family's aliases point.

    ``versions`` holds the tags of every aliased version (gate decision, lineage, ...);
    ``history`` the champions, oldest first.
    """

    family: str
    model_name: str
    exists: bool
    aliases: dict[str, str]
    versions: dict[str, dict[str, str]]
    history: list[str]

    @property
    def champion(self) -> str | None:
        return self.aliases.get(ALIAS_CHAMPION)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _history(client: MlflowClient, name: str, champion: str | None) -> list[str]:
    """The stored history, reconciled with the live ``champion`` alias."""
    raw = client.get_registered_model(name).tags.get(HISTORY_TAG)
    history = [str(v) for v in json.loads(raw)] if raw else []
    if champion is not None and (not history or history[-1] != champion):
        history.append(champion)  # moved outside clipguard (e.g. in the MLflow UI)
    return history


def _apply(client: MlflowClient, name: str, history: list[str]) -> None:
    """Point ``champion``/``previous`` at the last two history entries and store the history."""
    client.set_registered_model_alias(name, ALIAS_CHAMPION, history[-1])
    if len(history) >= 2:
        client.set_registered_model_alias(name, ALIAS_PREVIOUS, history[-2])
    elif ALIAS_PREVIOUS in model_aliases(client, name):
        client.delete_registered_model_alias(name, ALIAS_PREVIOUS)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-HISTORY_MAX:]))


def _state(client: MlflowClient, family: str, name: str) -> RegistryState:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return RegistryState(family, name, False, {}, {}, [])
        raise
    aliases = {alias: str(v) for alias, v in sorted(model.aliases.items())}
    versions = {v: dict(sorted(get_model_version(client, name, v).tags.items())) for v in sorted(set(aliases.values()), key=int)}
    raw = model.tags.get(HISTORY_TAG)
    return RegistryState(family, name, True, aliases, versions, [str(v) for v in json.loads(raw)] if raw else [])


def current(family: str, *, cfg: Config | None = None) -> RegistryState:
    """The aliases of ``family``'s registered model and the tags of the versions they point at.

    Raises:
        UnknownFamilyError: ``family`` is not configured.
    """
    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    return _state(registry_client(cfg), family, name)


def show(*, cfg: Config | None = None) -> dict[str, RegistryState]:
    """:func:`current` of every configured family."""
    cfg = cfg or load_config()
    client = registry_client(cfg)
    return {family: _state(client, family, name) for family, name in cfg.registry.models.items()}


def promote(
    family: str,
    version: str | int | None = None,
    *,
    force: bool = False,
    cfg: Config | None = None,
) -> RegistryState:
    """Make ``version`` (default: the current ``challenger``) the ``champion``.

    The outgoing champion becomes ``previous`` and the history grows by one; the
    ``challenger`` alias is removed when it pointed at the promoted version. Promoting
    the current champion is a no-op.

    Raises:
        UnknownFamilyError / UnknownVersionError: no such family or version.
        PromotionRefusedError: no version given and no challenger, or the version's
            ``gate`` tag is not ``passed`` and ``force`` is false.
    """
    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    client = registry_client(cfg)
    aliases = model_aliases(client, name)
    if version is None:
        if ALIAS_CHALLENGER not in aliases:
            raise PromotionRefusedError(f"{name} has no {ALIAS_CHALLENGER}: gate a version first or pass a version")
        version = aliases[ALIAS_CHALLENGER]
    target = get_model_version(client, name, version)
    version = str(target.version)
    champion = aliases.get(ALIAS_CHAMPION)
    if champion == version:
        _log.info("%s: v%s is already the champion", name, version)
        return _state(client, family, name)

    gate = target.tags.get(TAG_GATE)
    if gate != GATE_PASSED:
        detail = f"{name} v{version} has gate={gate or 'unset'}"
        reasons = target.tags.get(TAG_REASONS)
        if reasons:
            detail += f" ({'; '.join(json.loads(reasons))})"
        if not force:
            raise PromotionRefusedError(f"{detail}: refusing to promote (use force=True to override)")
        warnings.warn(f"{detail}: promoting anyway because force=True", stacklevel=2)
        _log.warning("%s: promoting anyway because force=True", detail)
        client.set_model_version_tag(name, version, "promoted_with_force", "true")

    history = _history(client, name, champion)
    history.append(version)
    _apply(client, name, history)
    client.set_model_version_tag(name, version, "promoted_at", _now())
    if aliases.get(ALIAS_CHALLENGER) == version:
        client.delete_registered_model_alias(name, ALIAS_CHALLENGER)
    _log.info("%s: champion v%s -> v%s", name, champion, version)
    return _state(client, family, name)


def rollback(family: str, *, cfg: Config | None = None) -> RegistryState:
    """Restore the previous champion: ``champion`` goes back one step in the history.

    The demoted version gets the alias ``rolled_back`` (and a ``rolled_back_at`` tag);
    ``previous`` moves one step back too (removed when the history is exhausted). Each
    call walks back one more champion.

    Raises:
        UnknownFamilyError: ``family`` is not configured.
        RollbackError: no champion, or no earlier champion.
    """
    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    client = registry_client(cfg)
    champion = model_aliases(client, name).get(ALIAS_CHAMPION)
    if champion is None:
        raise RollbackError(f"{name} has no {ALIAS_CHAMPION} to roll back")
    history = _history(client, name, champion)
    if len(history) < 2:
        raise RollbackError(f"{name} v{champion} is the first champion: there is no earlier one to restore")
    demoted = history.pop()
    get_model_version(client, name, history[-1])  # fails clearly if it was deleted
    _apply(client, name, history)
    client.set_registered_model_alias(name, ALIAS_ROLLED_BACK, demoted)
    client.set_model_version_tag(name, demoted, "rolled_back_at", _now())
    _log.warning("%s: rolled back champion v%s -> v%s", name, demoted, history[-1])
    return _state(client, family, name)
