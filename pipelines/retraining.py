"""``retraining``: incremental retraining on a data root that gained new days of traffic.

DAG::

    importer(data_root) ─ validate-data ─ assemble-root ─┬─ teacher-sft ─ teacher-cache ───────────────┐
                                                         ├─ dsl.If(refresh_encoders):                   │
                                                         │     pretrain-encoders ─ <model steps> ◄──────┤
                                                         └─ dsl.Else():                                 │
                                                               importer(encoder_uri) ─ <model steps> ◄──┘

``<model steps>`` are the training pipeline's (:func:`pipelines.training.add_model_steps`):
extract → Feast materialize / training set → drift projection → student KD → index →
evaluation → register → gate → ``dsl.If(gate passed)`` promote.

What is incremental: reusing the encoders skips self-supervised pretraining, keeps the
Feast project (one per encoder version) so ``materialize_incremental`` loads only the new
rows, and keeps the decoded-media cache of ``<work_dir>/rci/media`` valid (only new clips
are decoded). The student is re-gated against the current champion on the new test split.

The drift watch runs the same steps (:func:`add_data_steps` + :func:`add_retraining_steps`)
inside its ``dsl.If(drifted)``. They are inlined rather than called as a nested pipeline:
the local runner passes no artifacts into nested pipelines, and kfp 2.17's compiler names
the components of a nested pipeline non-deterministically, which would make the committed
YAML unreproducible.
"""

from kfp import dsl
from kfp.dsl import Model

from components.pretrain_encoders.component import pretrain_encoders
from pipelines.resources import sized
from pipelines.training import add_data_steps, add_model_steps, add_teacher_steps

REFRESH_CONDITION = "refresh-encoders"
REUSE_CONDITION = "reuse-encoders"


def add_retraining_steps(
    root, encoder_uri, refresh_encoders, seed, pretrain_mode, family, promote_champion, profile, overrides_json
) -> None:
    """Teacher, then (refreshed or reused) encoders and every model step, on a validated root."""
    cache = add_teacher_steps(root, seed, profile, overrides_json).outputs["outputs"]
    with dsl.If(refresh_encoders == True, name=REFRESH_CONDITION):  # noqa: E712 - a KFP condition
        pretrain = sized(
            pretrain_encoders(root=root, mode=pretrain_mode, seed=seed, profile=profile, overrides_json=overrides_json)
        )
        add_model_steps(root, pretrain.outputs["encoder"], cache, seed, family, promote_champion, profile, overrides_json)
    with dsl.Else(name=REUSE_CONDITION):
        encoder = dsl.importer(artifact_uri=encoder_uri, artifact_class=Model, reimport=False)
        encoder.set_display_name("encoder")
        add_model_steps(root, encoder.output, cache, seed, family, promote_champion, profile, overrides_json)


@dsl.pipeline(
    name="clipguard-retraining",
    description="Incremental retraining on new days of data: reuse or refresh the encoders, retrain teacher and "
    "student, re-gate against the champion.",
)
def retraining(
    data_root: str,
    encoder_uri: str = "",
    refresh_encoders: bool = False,
    seed: int = 0,
    pretrain_mode: str = "moco_clip",
    family: str = "student",
    promote_champion: bool = True,
    profile: str = "local",
    overrides_json: str = "{}",
):
    """Retrain on ``data_root`` (the old days plus the new ones).

    Args:
        data_root: URI of the data root with the new days.
        encoder_uri: the encoder version folder to reuse (a training run's
            ``pretrain-encoders`` output ``encoder/<encoder_version>``); required unless
            ``refresh_encoders``.
        refresh_encoders: pretrain new encoders on ``data_root`` instead of reusing them.
        seed / pretrain_mode / family / promote_champion / profile / overrides_json: as in ``training``.
    """
    root = add_data_steps(data_root, profile, overrides_json).outputs["root"]
    add_retraining_steps(
        root, encoder_uri, refresh_encoders, seed, pretrain_mode, family, promote_champion, profile, overrides_json
    )
