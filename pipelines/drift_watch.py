"""``drift_watch``: the current traffic window vs the training reference; on drift, alert and retrain.

DAG::

    importer(current_root) ─ validate-data ─ assemble-root ─┬────────────────────┐
    importer(encoder_uri) ──────────────────────────────────┴─ extract-features ─┤
    importer(reference_features_uri) ────────────────────────────────────────────┤
    importer(reference_root_uri) ────────────────────────────────────────────────┼─ drift-check
    importer(projection_uri) ────────────────────────────────────────────────────┘     │
                                                                      dsl.If(drifted): send-alert
                                                                                       dsl.If(retrain): the retraining steps

The reference is the training run's outputs: its ``extract-features`` features, its
``fit-drift-projection`` projection, its ``pretrain-encoders`` encoder (so the window is
encoded exactly like the reference) and its validated data root (``root``: the manifests
that give the reference's splits and texts; the window's own root gives its texts). ``drift-check`` writes Evidently's HTML report and
returns ``drifted``; the steps of the ``retraining`` pipeline (inlined, see
``pipelines/retraining.py``) run on ``retrain_data_root`` (the data root that now includes
the window) only when the window drifted, after the alert.
"""

from kfp import dsl
from kfp.dsl import Dataset, Model

from components.drift_check.component import drift_check
from components.extract_features.component import extract_features
from components.send_alert.component import send_alert
from pipelines.resources import sized
from pipelines.retraining import add_retraining_steps
from pipelines.training import add_data_steps

DRIFT_CONDITION = "drifted"
RETRAIN_CONDITION = "retrain"


@dsl.pipeline(
    name="clipguard-drift-watch",
    description="Current traffic window vs the training reference (Evidently); on drift: alert + retraining.",
)
def drift_watch(
    current_root: str,
    encoder_uri: str,
    reference_features_uri: str,
    projection_uri: str,
    reference_root_uri: str,
    retrain_data_root: str,
    retrain: bool = True,
    refresh_encoders: bool = False,
    seed: int = 0,
    pretrain_mode: str = "moco_clip",
    family: str = "student",
    promote_champion: bool = True,
    profile: str = "local",
    overrides_json: str = "{}",
):
    """Check one traffic window for drift.

    Args:
        current_root: URI of the window's data root (media + ``manifests/``).
        encoder_uri: the training run's encoder version folder (``encoder/<encoder_version>``).
        reference_features_uri: the training run's features (``features`` output).
        projection_uri: the training run's drift projection (``projection`` output).
        reference_root_uri: the training run's validated data root (``root`` output).
        retrain_data_root: the data root retraining runs on when the window drifted.
        retrain: launch the retraining pipeline on drift (else only alert).
        refresh_encoders: pretrain new encoders when retraining (default: reuse ``encoder_uri``).
        seed / pretrain_mode / family / promote_champion / profile / overrides_json: as in ``training``.
    """
    common = {"profile": profile, "overrides_json": overrides_json}
    root = add_data_steps(current_root, profile, overrides_json).outputs["root"]
    encoder = dsl.importer(artifact_uri=encoder_uri, artifact_class=Model, reimport=False)
    encoder.set_display_name("encoder")
    reference = dsl.importer(artifact_uri=reference_features_uri, artifact_class=Dataset, reimport=False)
    reference.set_display_name("reference-features")
    projection = dsl.importer(artifact_uri=projection_uri, artifact_class=Model, reimport=False)
    projection.set_display_name("drift-projection")
    reference_root = dsl.importer(artifact_uri=reference_root_uri, artifact_class=Dataset, reimport=False)
    reference_root.set_display_name("reference-root")
    current = sized(extract_features(root=root, encoder=encoder.output, **common))
    check = drift_check(
        reference=reference.output,
        current=current.outputs["features"],
        projection=projection.output,
        reference_root=reference_root.output,
        current_root=root,
        **common,
    ).set_caching_options(False)
    with dsl.If(check.outputs["Output"] == True, name=DRIFT_CONDITION):  # noqa: E712 - a KFP condition
        alert = send_alert(drift=check.outputs["result"], **common).set_caching_options(False)
        with dsl.If(retrain == True, name=RETRAIN_CONDITION):  # noqa: E712
            retrain_root = add_data_steps(retrain_data_root, profile, overrides_json)
            retrain_root.after(alert)  # alert first: retraining takes a while
            add_retraining_steps(
                retrain_root.outputs["root"],
                encoder_uri,
                refresh_encoders,
                seed,
                pretrain_mode,
                family,
                promote_champion,
                profile,
                overrides_json,
            )
