"""The `clipguard` CLI end to end on a tiny data root (typer's test runner)."""

import json

import pandas as pd
from typer.testing import CliRunner

from clipguard.cli import app

runner = CliRunner()


def test_config_show_applies_profile_and_overrides():
    r = runner.invoke(app, ["--profile", "gpu", "--set", "media.fps=2", "config", "show"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["profile"] == "gpu" and cfg["media"]["fps"] == 2.0


def test_bad_override_and_profile_exit_2():
    assert runner.invoke(app, ["--profile", "nope", "config", "show"]).exit_code == 2
    assert runner.invoke(app, ["--set", "media.fps=-1", "config", "show"]).exit_code == 2


def test_data_validate_quarantines_and_strict_fails(tiny_root):
    tiny_root.clips.loc[0, "video_uri"] = "../outside.mp4"
    tiny_root.write()
    r = runner.invoke(app, ["data", "validate", str(tiny_root.path)])
    assert r.exit_code == 0, r.output
    q = pd.read_parquet(tiny_root.path / "validated" / "clips_quarantine.parquet")
    assert list(q["reasons"].iloc[0]) == ["path_outside_root"]
    r = runner.invoke(app, ["data", "validate", str(tiny_root.path), "--strict"])
    assert r.exit_code == 1


def test_data_validate_missing_root_exits_2(tmp_path):
    assert runner.invoke(app, ["data", "validate", str(tmp_path / "nope")]).exit_code == 2


def test_media_probe(tiny_root):
    video = next((tiny_root.path / "videos").glob("*.mp4"))
    r = runner.invoke(app, ["media", "probe", str(video)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["duration_s"] > 0
    (tiny_root.path / "bad.mp4").write_bytes(b"junk")
    assert runner.invoke(app, ["media", "probe", str(tiny_root.path / "bad.mp4")]).exit_code == 1


# --------------------------------------------------------------------------- rci: train / evaluate / ablate / report

from types import SimpleNamespace  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from clipguard.eval.report import README_END, README_START  # noqa: E402
from clipguard.features.store_format import FEATURES_FILE  # noqa: E402
from tests.eval.test_report import FLOPS, fabricated_ablation, fabricated_baselines  # noqa: E402
from tests.training.conftest import rci_world  # noqa: E402,F401  (fixture: a tiny validated root + features)


def _capture(monkeypatch, target: str, result=None, refuse: bool = False) -> list:
    """Replace ``target`` by a recorder returning ``result`` (or failing the test when ``refuse``)."""
    calls: list = []

    def fake(*args, **kwargs):
        if refuse:
            raise AssertionError(f"{target} must not run")
        calls.append((args, kwargs))
        return result

    monkeypatch.setattr(target, fake)
    return calls


def _out(r) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(r.output.split())


def _rci(tmp_path, *args: str):
    return runner.invoke(app, ["--set", f"work_dir={tmp_path / 'runs'}", "rci", *map(str, args)])


def test_rci_train_student_wires_options(rci_world, monkeypatch, tmp_path):
    calls = _capture(
        monkeypatch,
        "clipguard.training.student.train_student",
        SimpleNamespace(to_dict=lambda: {"model_dir": "m", "history": [1]}),
    )
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "index.json").write_text("{}")
    r = _rci(
        tmp_path,
        "train-student",
        rci_world.root,
        "--features",
        rci_world.features_dir,
        "--teacher-cache",
        cache,
        "--seed",
        "3",
        "--distill-mode",
        "logits",
        "--modalities",
        "va",
        "--epochs",
        "1",
        "--distill-epochs",
        "2",
        "--no-track",
    )
    assert r.exit_code == 0, r.output
    (root, features, cfg, out, teacher_cache, seed, stages), kwargs = calls[0]
    assert (root, features, teacher_cache, out, seed, stages) == (rci_world.root, rci_world.features_dir, cache, None, 3, 2)
    assert (cfg.models.distill.mode, cfg.models.student.modalities, cfg.models.student.epochs, cfg.models.distill.epochs) == (
        "logits",
        "va",
        1,
        2,
    )
    assert kwargs == {"progress": True, "track": False}
    assert json.loads(r.stdout) == {"model_dir": "m"}


def test_rci_train_student_refuses_missing_inputs_before_training(rci_world, monkeypatch, tmp_path):
    _capture(monkeypatch, "clipguard.training.student.train_student", refuse=True)
    r = _rci(tmp_path, "train-student", rci_world.root, "--features", rci_world.features_dir)
    assert r.exit_code == 2 and "needs --teacher-cache" in _out(r)
    r = _rci(tmp_path, "train-student", rci_world.root, "--features", rci_world.features_dir, "--teacher-cache", tmp_path)
    assert r.exit_code == 2 and "is not a teacher cache" in _out(r)
    other = tmp_path / "other_features"
    other.mkdir()
    pq.write_table(pa.table({"clip_id": ["zz1", "zz2"], "array_file": ["a", "a"]}), other / FEATURES_FILE)
    r = _rci(tmp_path, "train-student", rci_world.root, "--features", other, "--stages", "1")
    assert r.exit_code == 2 and "hold none of the" in _out(r) and "features extract" in _out(r)
    r = _rci(tmp_path, "train-student", tmp_path / "nowhere", "--features", rci_world.features_dir, "--stages", "1")
    assert r.exit_code == 2 and "is not a folder" in _out(r)


def test_rci_train_teacher_and_cache_teacher_wiring(rci_world, monkeypatch, tmp_path):
    calls = _capture(
        monkeypatch,
        "clipguard.training.teacher.train_teacher",
        SimpleNamespace(to_dict=lambda: {"model_dir": "t", "history": []}),
    )
    r = _rci(tmp_path, "train-teacher", rci_world.root, "--seed", "4", "--epochs", "2", "--no-track")
    assert r.exit_code == 0, r.output
    (root, cfg, out, seed, media_dir), kwargs = calls[0]
    assert root == rci_world.root and seed == 4 and cfg.models.teacher.epochs == 2 and kwargs["track"] is False
    student = tmp_path / "student"
    student.mkdir()
    (student / "training.json").write_text(json.dumps({"kind": "student", "complete": True}))
    _capture(monkeypatch, "clipguard.training.teacher_cache.cache_teacher", refuse=True)
    r = _rci(tmp_path, "cache-teacher", student, "--root", rci_world.root)
    assert r.exit_code == 2 and "is a student, not a teacher" in _out(r)


def test_rci_evaluate_dispatches_on_the_model_kind(rci_world, monkeypatch, tmp_path):
    report = {
        "threshold": 0.5,
        "metrics": {"ap": 0.75},
        "subsets": {"all": {"n": 4, "n_pos": 2, "ap": 0.75, "r_at_p80": 0.5, "f1": 0.5, "fpr": float("nan")}},
        "files": {"json": "metrics_test.json"},
    }
    teacher_calls = _capture(monkeypatch, "clipguard.eval.evaluate.evaluate_teacher", report)
    student_calls = _capture(monkeypatch, "clipguard.eval.evaluate.evaluate_student", report)
    models = {}
    for kind in ("teacher", "student"):
        models[kind] = tmp_path / kind
        models[kind].mkdir()
        (models[kind] / "training.json").write_text(json.dumps({"kind": kind, "complete": True}))
    r = _rci(tmp_path, "evaluate", models["teacher"], "--root", rci_world.root, "--split", "val", "--no-track")
    assert r.exit_code == 0, r.output
    assert teacher_calls[0][0][:3] == (models["teacher"], rci_world.root, "val") and not student_calls
    assert json.loads(r.stdout)["metrics"] == {"ap": 0.75} and "teacher on val" in _out(r)
    r = _rci(tmp_path, "evaluate", models["student"], "--root", rci_world.root)
    assert r.exit_code == 2 and "pass --features" in _out(r)
    r = _rci(tmp_path, "evaluate", models["student"], "--root", rci_world.root, "--features", rci_world.features_dir)
    assert r.exit_code == 0, r.output
    assert student_calls[0][0][:4] == (models["student"], rci_world.features_dir, rci_world.root, "test")
    r = _rci(tmp_path, "evaluate", tmp_path, "--root", rci_world.root)
    assert r.exit_code == 2 and "not a trained model folder" in _out(r)


def test_rci_ablate_wires_seeds_which_and_epochs(rci_world, monkeypatch, tmp_path):
    result = {
        "wall_seconds": 1.0,
        "files": {"json": "a.json", "markdown": "a.md"},
        "directions": {"kd_vs_no_kd.ap": {"verdict": "no"}},
    }
    calls = _capture(monkeypatch, "clipguard.eval.ablation.run_ablations", result)
    r = _rci(
        tmp_path,
        "ablate",
        rci_world.root,
        "--features",
        rci_world.features_dir,
        "--seeds",
        "0,1",
        "--which",
        "kd,lambda",
        "--teacher-seeds",
        "5",
        "--student-epochs",
        "1",
        "--distill-epochs",
        "1",
        "--workers",
        "2",
        "--no-track",
    )
    assert r.exit_code == 0, r.output
    (root, features, out, cfg), kwargs = calls[0]
    assert out == tmp_path / "runs" / "rci" / "ablations"
    assert kwargs["seeds"] == [0, 1] and kwargs["which"] == ["kd", "lambda"] and kwargs["teacher_seeds"] == [5]
    assert (kwargs["teacher_epochs"], kwargs["student_epochs"], kwargs["distill_epochs"], kwargs["workers"], kwargs["track"]) == (
        None,
        1,
        1,
        2,
        False,
    )
    assert json.loads(r.stdout)["directions"] == {"kd_vs_no_kd.ap": "no"}
    r = _rci(tmp_path, "ablate", rci_world.root, "--features", rci_world.features_dir, "--which", "kd,nope")
    assert r.exit_code == 2 and "nope" in _out(r) and len(calls) == 1


def test_rci_report_regenerates_the_readme_region(tmp_path):
    files = {}
    for kind, data in (("ablation", fabricated_ablation(kd_gain=-0.06)), ("baselines", fabricated_baselines()), ("flops", FLOPS)):
        files[kind] = tmp_path / f"{kind}.json"
        files[kind].write_text(json.dumps(data))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n## RCI results\n\n{README_START}\nstale numbers\n{README_END}\n\n## After\n")
    args = [
        "report",
        "--ablation",
        files["ablation"],
        "--baselines",
        files["baselines"],
        "--flops",
        files["flops"],
        "--readme",
        readme,
    ]
    r = _rci(tmp_path, *args, "--out", tmp_path / "rci.md")
    assert r.exit_code == 0, r.output
    text = readme.read_text()
    assert text.startswith("# Project\n\n## RCI results\n\n" + README_START) and text.endswith(README_END + "\n\n## After\n")
    assert "stale numbers" not in text and (tmp_path / "rci.md").read_text().strip() in text
    assert "| V+A+T | 41.00 ± 3.61 |" in text and "| vPDQ |" in text and "**yes** (37.4x;" in text
    assert "KD > no KD (AP): **no** — does not reproduce (−6.00 ± 0.00 AP pts" in text
    r = _rci(tmp_path, *args)
    assert r.exit_code == 0 and "already up to date" in _out(r) and readme.read_text() == text
    r = _rci(tmp_path, "report", "--ablation", tmp_path / "missing.json")
    assert r.exit_code == 2 and "run `clipguard rci ablate` first" in _out(r)
    readme.write_text("# no markers\n")
    r = _rci(tmp_path, *args)
    assert r.exit_code == 2 and "missing marker" in _out(r) and readme.read_text() == "# no markers\n"


def test_rci_report_to_stdout_says_what_was_not_measured(tmp_path):
    (tmp_path / "flops.json").write_text(json.dumps(FLOPS))
    r = _rci(tmp_path, "report", "--flops", tmp_path / "flops.json")
    assert r.exit_code == 0, r.output
    assert "Not measured yet: run `clipguard rci ablate" in r.stdout and "| gpu |" in r.stdout
