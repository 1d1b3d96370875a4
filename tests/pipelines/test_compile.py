"""The committed IR YAML is current, and the compiled DAGs have every step and condition."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import PIPELINES
from pipelines.compile import COMPILED_DIR


def _normalised(text: str) -> list[str]:
    """The YAML without the line naming the kfp version that compiled it."""
    return [line for line in text.splitlines() if not line.startswith("sdkVersion:")]


def _doc(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _tasks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of the pipeline, nested condition / sub-pipeline DAGs included: name -> spec."""
    comps = doc.get("components", {})
    found: dict[str, dict[str, Any]] = {}

    def walk(dag: dict[str, Any]) -> None:
        for key, task in dag.get("tasks", {}).items():
            found[task.get("taskInfo", {}).get("name", key)] = task
            sub = comps.get(task.get("componentRef", {}).get("name", ""), {})
            if "dag" in sub:
                walk(sub["dag"])

    walk(doc["root"]["dag"])
    return found


def _dag_with(doc: dict[str, Any], task_name: str) -> dict[str, dict[str, Any]]:
    """The tasks (by key) of the DAG, root or nested, that holds the task named ``task_name``."""
    dags = [doc["root"]["dag"], *(c["dag"] for c in doc.get("components", {}).values() if "dag" in c)]
    for dag in dags:
        if any(t.get("taskInfo", {}).get("name") == task_name for t in dag.get("tasks", {}).values()):
            return dag["tasks"]
    raise KeyError(task_name)


def _base(task_name: str) -> str:
    """A task name without the ``-2``, ``-3`` suffix kfp adds to repeated components."""
    return re.sub(r"-\d+$", "", task_name)


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_compiled_yaml_is_current(fresh_compiled: Path, target: str) -> None:
    sub = "" if target == "cpu" else target
    committed = sorted(p.name for p in (COMPILED_DIR / sub).glob("*.yaml"))
    assert committed == sorted(f"{name}.yaml" for name in PIPELINES), "run `make compile`"
    for name in PIPELINES:
        fresh = _normalised((fresh_compiled / sub / f"{name}.yaml").read_text())
        old = _normalised((COMPILED_DIR / sub / f"{name}.yaml").read_text())
        assert fresh == old, (
            f"pipelines/compiled/{sub + '/' if sub else ''}{name}.yaml is stale: run `make compile` and commit it"
        )


TRAINING_STEPS = {
    "data-root",
    "validate-data",
    "assemble-root",
    "pretrain-encoders",
    "feature-shards",
    "extract-shards",
    "extract-features",
    "merge-features",
    "materialize-features",
    "training-set",
    "fit-drift-projection",
    "teacher-sft",
    "teacher-cache",
    "student-distill",
    "build-index",
    "evaluate-student",
    "register-model",
    "gate-model",
    "gate-passed",
    "promote-champion",
    "promote-model",
    "package-bento",
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data_prep", {"synth-corpus", "validate-data", "assemble-root"}),
        ("training", TRAINING_STEPS),
        ("retraining", (TRAINING_STEPS - {"pretrain-encoders"}) | {"refresh-encoders", "reuse-encoders", "encoder"}),
        (
            "drift_watch",
            {
                "data-root",
                "validate-data",
                "assemble-root",
                "encoder",
                "reference-features",
                "drift-projection",
                "reference-root",
                "extract-features",
                "drift-check",
                "drifted",
                "send-alert",
                "retrain",
                "refresh-encoders",
                "reuse-encoders",
                "teacher-sft",
                "teacher-cache",
                "student-distill",
                "evaluate-student",
                "register-model",
                "gate-model",
                "gate-passed",
                "promote-model",
                "package-bento",
            },
        ),
    ],
)
def test_every_step_is_in_the_dag(fresh_compiled: Path, name: str, expected: set[str]) -> None:
    tasks = _tasks(_doc(fresh_compiled / f"{name}.yaml"))
    missing = expected - set(tasks)
    assert not missing, f"{name} lacks {sorted(missing)}"


def test_training_gate_condition(fresh_compiled: Path) -> None:
    tasks = _tasks(_doc(fresh_compiled / "training.yaml"))
    condition = tasks["gate-passed"]["triggerPolicy"]["condition"]
    assert "gate-model-Output" in condition and condition.replace(" ", "").endswith("==true")
    assert "gate-model" in tasks["gate-passed"]["dependentTasks"]
    assert "promote_champion" in tasks["promote-champion"]["triggerPolicy"]["condition"]
    # the promotion step promotes the version that was registered and gated
    promote = tasks["promote-model"]["inputs"]["parameters"]["version"]
    assert promote["componentInputParameter"] == "pipelinechannel--register-model-Output"


def test_training_order(fresh_compiled: Path) -> None:
    tasks = _tasks(_doc(fresh_compiled / "training.yaml"))
    upstream = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert upstream["assemble-root"] == {"importer", "validate-data"}
    # extraction: a ParallelFor over the config's shard list, joined by merge-features
    assert upstream["extract-shards"] == {"assemble-root", "pretrain-encoders", "feature-shards"}
    assert upstream["merge-features"] == {"assemble-root", _loop_key(tasks, "extract-shards")}
    assert upstream["training-set"] >= {"materialize-features", "merge-features"}
    assert upstream["teacher-cache"] >= {"teacher-sft"}
    assert upstream["student-distill"] >= {"merge-features", "teacher-cache"}
    assert upstream["evaluate-student"] >= {"student-distill"}
    assert upstream["register-model"] >= {"evaluate-student", "build-index"}
    # the gate reads the candidate's root and features to re-evaluate a champion of another data version
    assert upstream["gate-model"] == {"register-model", "assemble-root", "merge-features"}
    # the drift reference is fitted on the root's training splits (the manifest gives the split)
    assert upstream["fit-drift-projection"] == {"assemble-root", "merge-features"}


def _loop_key(tasks: dict[str, dict[str, Any]], name: str) -> str:
    """The DAG key of the control-flow group displayed as ``name`` (KFP keys loops ``for-loop-N``)."""
    return tasks[name]["componentRef"]["name"].removeprefix("comp-")


@pytest.mark.parametrize(("name", "branches"), [("training", 1), ("retraining", 2)])
def test_extraction_fans_out_over_shards_and_merges(fresh_compiled: Path, name: str, branches: int) -> None:
    """In every DAG that extracts (retraining: the reuse and the refresh branch), a ParallelFor
    over ``feature-shards``' list runs ``extract-features`` once per item, and ``merge-features``
    collects the loop's outputs."""
    doc = _doc(fresh_compiled / f"{name}.yaml")
    comps = doc["components"]
    dags = [doc["root"]["dag"], *(c["dag"] for c in comps.values() if "dag" in c)]
    checked = 0
    for dag in dags:
        by_base = {_base(t["taskInfo"]["name"]): (key, t) for key, t in dag.get("tasks", {}).items()}
        if "merge-features" not in by_base:
            continue
        (shards_key, _), (loop_key, loop), (_, merge) = (
            by_base[k] for k in ("feature-shards", "extract-shards", "merge-features")
        )
        iterator = loop["parameterIterator"]
        assert iterator["items"] == {"inputParameter": f"pipelinechannel--{shards_key}-Output"}
        assert shards_key in loop["dependentTasks"]
        (extract,) = comps[loop["componentRef"]["name"]]["dag"]["tasks"].values()
        assert _base(extract["taskInfo"]["name"]) == "extract-features"
        assert extract["inputs"]["parameters"]["shard"] == {"componentInputParameter": iterator["itemInput"]}
        parts = merge["inputs"]["artifacts"]["parts"]["taskOutputArtifact"]
        assert parts["producerTask"] == loop_key and parts["outputArtifactKey"].endswith("-features")
        checked += 1
    assert checked == branches


@pytest.mark.parametrize("name", ["training", "retraining", "drift_watch"])
def test_bento_is_packaged_for_the_promoted_champion_only(fresh_compiled: Path, name: str) -> None:
    """``package-bento`` runs inside ``promote-champion`` (itself inside ``gate-passed``), on the
    version ``promote-model`` returns, in every pipeline that trains a student."""
    doc = _doc(fresh_compiled / f"{name}.yaml")
    comps = doc["components"]
    promote_conditions = []

    def walk(dag: dict[str, Any], parents: tuple[str, ...]) -> None:
        for task in dag.get("tasks", {}).values():
            label = task["taskInfo"]["name"]
            sub = comps.get(task["componentRef"]["name"], {})
            if label == "promote-champion":
                promote_conditions.append((parents, sub["dag"]["tasks"]))
            if "dag" in sub:
                walk(sub["dag"], (*parents, label))

    walk(doc["root"]["dag"], ())
    assert promote_conditions, f"{name} has no promote-champion condition"
    for parents, inside in promote_conditions:
        assert parents[-1] == "gate-passed", parents
        by_name = {_base(t["taskInfo"]["name"]): t for t in inside.values()}
        assert set(by_name) == {"promote-model", "package-bento"}
        package, promote = by_name["package-bento"], by_name["promote-model"]
        assert package["dependentTasks"] == [promote["taskInfo"]["name"]]
        version = package["inputs"]["parameters"]["version"]["taskOutputParameter"]
        assert version == {"outputParameterKey": "Output", "producerTask": promote["taskInfo"]["name"]}
        assert package["cachingOptions"] == {}  # no caching: it writes to the bento store


def test_drift_condition_launches_alert_and_retraining(fresh_compiled: Path) -> None:
    doc = _doc(fresh_compiled / "drift_watch.yaml")
    tasks = _tasks(doc)
    condition = tasks["drifted"]["triggerPolicy"]["condition"]
    assert "drift-check-Output" in condition and condition.replace(" ", "").endswith("==true")
    assert tasks["drifted"]["dependentTasks"] == ["drift-check"]
    # the drift check reads both validated roots (splits and texts of the reference and the window)
    roots = tasks["drift-check"]["inputs"]["artifacts"]
    key_of = {t["taskInfo"]["name"]: key for key, t in _dag_with(doc, "drift-check").items()}
    assert roots["reference_root"]["taskOutputArtifact"]["producerTask"] == key_of["reference-root"]
    assert roots["current_root"]["taskOutputArtifact"]["producerTask"] == key_of["assemble-root"]
    inside = doc["components"][tasks["drifted"]["componentRef"]["name"]]["dag"]["tasks"]
    assert {t["taskInfo"]["name"] for t in inside.values()} == {"send-alert", "retrain"}
    retrain = next(t for t in inside.values() if t["taskInfo"]["name"] == "retrain")
    assert retrain["dependentTasks"] == ["send-alert"]  # alert before the long retraining
    assert "pipelinechannel--retrain" in retrain["triggerPolicy"]["condition"]
    steps = doc["components"][retrain["componentRef"]["name"]]["dag"]["tasks"]
    assert {"validate-data-2", "assemble-root-2", "teacher-sft", "teacher-cache"} <= set(steps)


def test_retraining_reuses_or_refreshes_encoders(fresh_compiled: Path) -> None:
    tasks = _tasks(_doc(fresh_compiled / "retraining.yaml"))
    assert "refresh_encoders" in tasks["refresh-encoders"]["triggerPolicy"]["condition"]
    assert "refresh_encoders" in tasks["reuse-encoders"]["triggerPolicy"]["condition"]
    assert "!" in tasks["reuse-encoders"]["triggerPolicy"]["condition"]


def test_components_run_on_the_clipguard_image(fresh_compiled: Path) -> None:
    for name in PIPELINES:  # the cpu target: every step on the CPU image
        executors = _doc(fresh_compiled / f"{name}.yaml")["deploymentSpec"]["executors"]
        for label, spec in executors.items():
            if "container" not in spec:
                continue  # importers
            assert spec["container"]["image"] == "clipguard-cpu:0.1.0", label
            assert "pip install" not in " ".join(spec["container"]["command"]), label


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_run_alerts_when_it_fails(fresh_compiled: Path, name: str) -> None:
    """The compiled pipeline is the pipeline inside a ``dsl.ExitHandler`` whose exit task
    (``alert-on-failure``) runs after it whatever happened, with the run's final status."""
    doc = _doc(fresh_compiled / f"{name}.yaml")
    root = doc["root"]["dag"]["tasks"]
    by_name = {t["taskInfo"]["name"]: (key, t) for key, t in root.items()}
    assert set(by_name) == {"pipeline-run", "alert-on-failure"}
    group_key, group = by_name["pipeline-run"]
    _, exit_task = by_name["alert-on-failure"]
    assert exit_task["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert exit_task["dependentTasks"] == [group_key]
    inputs = exit_task["inputs"]["parameters"]
    assert inputs["status"] == {"taskFinalStatus": {"producerTask": group_key}}
    assert inputs["pipeline"]["runtimeValue"]["constant"] == doc["pipelineInfo"]["name"]
    assert inputs["overrides_json"] == {"componentInputParameter": "overrides_json"}
    assert exit_task["cachingOptions"] == {}  # it always runs
    # the group holds the whole pipeline: every step is inside it
    inside = doc["components"][group["componentRef"]["name"]]["dag"]["tasks"]
    assert len(inside) == 1 and "dag" in doc["components"][next(iter(inside.values()))["componentRef"]["name"]]


def _executors(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Container executors by their step name (``exec-teacher-sft`` -> ``teacher-sft``)."""
    out = {}
    for label, spec in doc["deploymentSpec"]["executors"].items():
        if "container" in spec:
            out[_base(label.removeprefix("exec-"))] = spec["container"]
    return out


@pytest.mark.parametrize("name", ["training", "retraining", "drift_watch"])
def test_heavy_steps_request_resources_and_only_the_gpu_target_asks_for_gpus(fresh_compiled: Path, name: str) -> None:
    from pipelines.resources import STEP_RESOURCES

    for target in ("cpu", "gpu"):
        executors = _executors(_doc(fresh_compiled / ("" if target == "cpu" else "gpu") / f"{name}.yaml"))
        sized = {step: spec for step, spec in executors.items() if step in STEP_RESOURCES}
        assert "extract-features" in sized
        for step, spec in sized.items():
            want, got = STEP_RESOURCES[step], spec["resources"]
            assert (got["resourceCpuRequest"], got["resourceMemoryLimit"]) == (want.cpu, want.memory_limit), step
            gpu = target == "gpu" and want.gpus > 0
            assert ("accelerator" in got) == gpu, (target, step)
            assert spec["image"] == ("clipguard-gpu:0.1.0" if gpu else "clipguard-cpu:0.1.0"), (target, step)
            if gpu:
                assert got["accelerator"]["resourceType"] == "nvidia.com/gpu" and got["accelerator"]["resourceCount"] == "1"
        assert {"teacher-sft", "teacher-cache"} <= set(sized)  # drift_watch: in its nested retraining


@pytest.mark.parametrize("name", ["training", "retraining", "drift_watch"])
def test_steps_that_talk_to_services_retry_with_backoff(fresh_compiled: Path, name: str) -> None:
    tasks = _tasks(_doc(fresh_compiled / f"{name}.yaml"))
    service_steps = {"materialize-features", "training-set", "register-model", "gate-model", "promote-model", "package-bento"}
    found = {n: t for n, t in tasks.items() if _base(n) in service_steps}
    assert {_base(n) for n in found} == service_steps
    for n, task in found.items():
        policy = task["retryPolicy"]
        assert policy["maxRetryCount"] == 3 and policy["backoffDuration"] == "30s", n
        assert task["cachingOptions"] == {}, n
