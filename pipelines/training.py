"""``training``: data root → validated root → encoders → features (Feast) → teacher → student → index → eval → registry → bento.

DAG (data dependencies; independent branches run in parallel on a cluster)::

    importer(data_root) ─ validate-data ─ assemble-root ─┬─ pretrain-encoders ─ extract-features ─┬─ materialize-features ─ training-set
                                                         │                                        ├─ fit-drift-projection
                                                         │                                        ├─ build-index ──────────────┐
                                                         └─ teacher-sft ─ teacher-cache ──────────┴─ student-distill ─ evaluate-student ─ register-model ─ gate-model
                                                                                                                         dsl.If(gate passed):
                                                                                                                           dsl.If(promote_champion): promote-model ─ package-bento

``extract-features`` runs as a ``dsl.ParallelFor`` (``extract-shards``) over the shard list
of ``feature-shards`` (``features.extract_shards`` of the run's config), one task per
disjoint clip subset, and ``merge-features`` joins them into the one feature version every
later step reads (:func:`add_extract_steps`).
``gate-model`` sets the ``challenger`` alias when the candidate passes the policy
(``clipguard/registry/policy.yaml``), after re-evaluating the champion on the candidate's test
set when the champion was evaluated on another data version; ``promote-model`` then moves
``champion`` to it and ``package-bento`` builds the service's bento labelled with it.
:func:`add_model_steps` is shared with the retraining pipeline.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Model

from components.assemble_root.component import assemble_root
from components.build_index.component import build_index
from components.evaluate_student.component import evaluate_student
from components.extract_features.component import extract_features
from components.feature_shards.component import feature_shards
from components.fit_drift_projection.component import fit_drift_projection
from components.gate_model.component import gate_model
from components.materialize_features.component import materialize_features
from components.merge_features.component import merge_features
from components.package_bento.component import package_bento
from components.pretrain_encoders.component import pretrain_encoders
from components.promote_model.component import promote_model
from components.register_model.component import register_model
from components.student_distill.component import student_distill
from components.teacher_cache.component import teacher_cache
from components.teacher_sft.component import teacher_sft
from components.training_set.component import training_set
from components.validate_data.component import validate_data
from pipelines.resources import service_step, sized

GATE_CONDITION = "gate-passed"
EXTRACT_LOOP = "extract-shards"
PROMOTE_CONDITION = "promote-champion"


def add_data_steps(data_root, profile, overrides_json) -> dsl.PipelineTask:
    """Import the data root, validate it, and join media + accepted manifests; returns the root task."""
    raw = dsl.importer(artifact_uri=data_root, artifact_class=Dataset, reimport=False)
    raw.set_display_name("data-root")
    validate = validate_data(raw=raw.output, profile=profile, overrides_json=overrides_json)
    return assemble_root(raw=raw.output, validated=validate.outputs["validated"])


def add_teacher_steps(root, seed, profile, overrides_json) -> dsl.PipelineTask:
    """Teacher SFT and its cached outputs; returns the cache task."""
    teacher = sized(teacher_sft(root=root, seed=seed, profile=profile, overrides_json=overrides_json))
    cache = teacher_cache(root=root, teacher=teacher.outputs["teacher"], profile=profile, overrides_json=overrides_json)
    return sized(cache)


def add_extract_steps(root, encoder, profile, overrides_json) -> dsl.PipelineTask:
    """Feature extraction as a ``ParallelFor`` over ``features.extract_shards`` disjoint clip
    subsets, joined into one feature version; returns the merge task (outputs as one
    ``extract_features`` task's: ``features``, ``Output``)."""
    common = {"profile": profile, "overrides_json": overrides_json}
    shards = feature_shards(**common)
    with dsl.ParallelFor(items=shards.output, name=EXTRACT_LOOP) as shard:
        part = sized(extract_features(root=root, encoder=encoder, shard=shard, **common))
    return merge_features(root=root, parts=dsl.Collected(part.outputs["features"]))


def add_model_steps(root, encoder, teacher_outputs, seed, family, promote_champion, profile, overrides_json) -> dict:
    """Everything downstream of an encoder: features, Feast, drift reference, student, index,
    evaluation, registration, the gate and (if it passes) promotion and the bento. Returns the tasks by name
    (``promote`` and ``package`` are conditional)."""
    common = {"profile": profile, "overrides_json": overrides_json}
    extract = add_extract_steps(root, encoder, profile, overrides_json)
    features = extract.outputs["features"]
    materialize = service_step(materialize_features(features=features, **common))
    pairs = service_step(training_set(root=root, features=features, feast_store=materialize.outputs["feast_store"], **common))
    projection = fit_drift_projection(reference=features, root=root, **common)
    student = sized(student_distill(root=root, features=features, teacher_outputs=teacher_outputs, seed=seed, **common))
    index = sized(build_index(features=features, **common))
    evaluation = sized(evaluate_student(root=root, features=features, student=student.outputs["student"], **common))
    register = service_step(
        register_model(
            model=student.outputs["student"],
            evaluation=evaluation.outputs["evaluation"],
            encoder=encoder,
            family=family,
            index_version=index.outputs["Output"],
            **common,
        )
    )
    gate = service_step(gate_model(version=register.output, root=root, features=features, family=family, **common))
    tasks = {
        "extract": extract,
        "materialize": materialize,
        "training_set": pairs,
        "projection": projection,
        "student": student,
        "index": index,
        "evaluation": evaluation,
        "register": register,
        "gate": gate,
    }
    with dsl.If(gate.outputs["Output"] == True, name=GATE_CONDITION):  # noqa: E712 - a KFP condition, not a Python test
        with dsl.If(promote_champion == True, name=PROMOTE_CONDITION):  # noqa: E712
            promote = service_step(promote_model(version=register.output, family=family, **common))
            tasks["promote"] = promote
            tasks["package"] = service_step(package_bento(version=promote.outputs["Output"], family=family, **common))
    return tasks


@dsl.pipeline(
    name="clipguard-training",
    description="Validated data -> MoCo+CLIP encoders -> Feast features -> MatchLM teacher -> MatchLite student (KD) "
    "-> FAISS index -> offline evaluation -> MLflow registry, gated promotion -> bento.",
)
def training(
    data_root: str,
    seed: int = 0,
    pretrain_mode: str = "moco_clip",
    family: str = "student",
    promote_champion: bool = True,
    profile: str = "local",
    overrides_json: str = "{}",
) -> NamedTuple("TrainingOutputs", encoder=Model, features=Dataset, projection=Model, root=Dataset):
    """Train every model of a data root and gate the student.

    Returns the drift watch's reference: the encoder (its version folder is
    ``<encoder>/<encoder_version>``), the features, the drift projection and the validated
    data root (its manifests give the drift check the reference's splits and texts).

    Args:
        data_root: URI of a data root (media + ``manifests/``): a local path for local runs,
            ``s3://`` / ``gs://`` / ``minio://`` on a cluster.
        seed: seed of pretraining, teacher and student.
        pretrain_mode: ``moco_clip`` (default) or ``moco``.
        family: the registry family the student is registered under.
        promote_champion: after a passed gate, move ``champion`` (else stop at ``challenger``).
        profile / overrides_json: the configuration (``clipguard/configs/<profile>.yaml`` + dotted overrides).
    """
    root_task = add_data_steps(data_root, profile, overrides_json)
    root = root_task.outputs["root"]
    pretrain = sized(pretrain_encoders(root=root, mode=pretrain_mode, seed=seed, profile=profile, overrides_json=overrides_json))
    cache = add_teacher_steps(root, seed, profile, overrides_json)
    tasks = add_model_steps(
        root, pretrain.outputs["encoder"], cache.outputs["outputs"], seed, family, promote_champion, profile, overrides_json
    )
    outputs = NamedTuple("TrainingOutputs", encoder=Model, features=Dataset, projection=Model, root=Dataset)
    return outputs(
        encoder=pretrain.outputs["encoder"],
        features=tasks["extract"].outputs["features"],
        projection=tasks["projection"].outputs["projection"],
        root=root,
    )
