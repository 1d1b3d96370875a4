"""`clipguard rci baselines` for real on the hash fixtures (val + test pairs, one held-out edit
type), then `clipguard rci report` on the JSON it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from clipguard.cli import app
from clipguard.data.schema import VALIDATED_DIR

runner = CliRunner()


def _with_val_and_heldout_edit(root: Path) -> Path:
    """The hash root's test pairs, repeated as val pairs; the flipped copy is a held-out edit type."""
    path = root / VALIDATED_DIR / "pairs.parquet"
    test = pd.read_parquet(path)
    val = test.assign(pair_id="val-" + test["pair_id"], split="val")
    pairs = pd.concat([val, test], ignore_index=True)
    flip = pairs["query_clip_id"] == "flip"
    pairs["edit_types"] = [
        "hflip" if f else ("reencode" if q == "reencode" else "") for f, q in zip(flip, pairs["query_clip_id"])
    ]
    pairs["heldout_edit"] = flip.to_numpy()
    pairs.to_parquet(path, index=False)
    (root / "corpus.json").write_text(json.dumps({"edit_types": {"train": ["reencode"], "heldout": ["hflip"]}}))
    return root


def test_rci_baselines_writes_json_per_subset_and_report_reads_it(hash_root, cfg, tmp_path):
    root = _with_val_and_heldout_edit(hash_root)
    work = ["--set", f"work_dir={cfg.work_dir}"]
    r = runner.invoke(app, [*work, "rci", "baselines", str(root), "--methods", "vpdq,pdq", "--out", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["json"] == str(tmp_path / "eval" / "baselines_test.json")
    report = json.loads((tmp_path / "eval" / "baselines_test.json").read_text())
    assert set(report["baselines"]) == {"vpdq", "pdq"} and report["heldout_edit_types"] == ["hflip"]
    vpdq = report["baselines"]["vpdq"]
    assert vpdq["metrics"]["n_pos"] == 3 and vpdq["n_errors"] == 4  # gone + corrupt, in val and in test
    assert vpdq["subsets"]["heldout_edit/hflip"]["n_pos"] == 1
    assert vpdq["subsets"]["reason_visual"]["n_pos"] == 3
    scores = pd.read_parquet(tmp_path / "eval" / "baseline_scores_test.parquet")
    assert len(scores) == 2 * 2 * 5  # methods x splits x pairs

    r = runner.invoke(app, [*work, "rci", "baselines", str(root)])
    assert r.exit_code == 2 and "needs --features" in " ".join(r.output.split())
    r = runner.invoke(app, [*work, "rci", "baselines", str(root), "--methods", "vpdq,md5"])
    assert r.exit_code == 2 and "md5" in r.output

    r = runner.invoke(app, [*work, "rci", "report", "--baselines", str(tmp_path / "eval" / "baselines_test.json")])
    assert r.exit_code == 0, r.output
    assert "| vPDQ |" in r.stdout and "| heldout_edit/hflip | 1 |" in r.stdout
