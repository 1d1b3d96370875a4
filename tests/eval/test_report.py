"""RCI results Markdown from fabricated result JSONs: tables, verdicts, README region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipguard.eval.report import (
    README_END,
    README_START,
    ReportInputError,
    ablation_markdown,
    baselines_markdown,
    build_report,
    directions,
    flops_markdown,
    load_result,
    replace_marked_region,
    write_report,
)

SEEDS = [0, 1, 2]
HELDOUT = ["rotate", "pad_blur"]


def _metrics(ap: float, r: float = 0.5, f1: float = 0.4, heldout_ap: float | None = None) -> dict[str, float]:
    m = {"ap": ap, "r_at_p80": r, "f1": f1, "reason_visual.ap": ap, "reason_audio.ap": ap + 0.05, "reason_text.ap": ap + 0.1}
    if heldout_ap is not None:
        for sub in ("heldout_edit", *[f"heldout_edit/{t}" for t in HELDOUT]):
            m[f"{sub}.ap"], m[f"{sub}.r_at_p80"] = heldout_ap, r
    return m


def fabricated_ablation(kd_gain: float = -0.06) -> dict:
    """Three seeds; KD changes AP by ``kd_gain`` on every seed; V+A+T beats V on two seeds of three."""
    base = {"V": [0.30, 0.40, 0.35], "V+A": [0.32, 0.42, 0.37], "V+T": [0.31, 0.41, 0.36], "V+A+T": [0.40, 0.38, 0.45]}
    runs = []
    for name, aps in base.items():
        runs += [{"name": name, "seed": s, "metrics": _metrics(ap), "train_seconds": 10.0} for s, ap in zip(SEEDS, aps)]
    for s, ap in zip(SEEDS, [0.50, 0.55, 0.60]):
        runs.append({"name": "MatchLite (no KD)", "seed": s, "metrics": _metrics(ap, heldout_ap=0.5), "train_seconds": 20.0})
        kd = ap + kd_gain
        runs.append({"name": "MatchLite + KD", "seed": s, "metrics": _metrics(kd, heldout_ap=0.6), "train_seconds": 21.0})
        runs.append({"name": "KD logits", "seed": s, "metrics": _metrics(kd - 0.01), "train_seconds": 21.0})
        runs.append({"name": "KD embeddings", "seed": s, "metrics": _metrics(kd - 0.02), "train_seconds": 21.0})
        for lam in (0.5, 1.0, 2.0):
            runs.append({"name": f"KD lambda={lam}", "seed": s, "metrics": _metrics(kd - 0.01), "train_seconds": 21.0})
    runs.append({"name": "MatchLM", "seed": 0, "metrics": _metrics(0.70), "train_seconds": 100.0})
    return {
        "data_version": "d1",
        "features_version": "e1",
        "settings": {
            "split": "test",
            "seeds": SEEDS,
            "teacher_seeds": [0],
            "which": ["modality", "teacher", "kd", "lambda"],
            "lambda_default": 1.5,
            "workers": 1,
            "torch_threads": 1,
            "balance": "sampler",
            "profile": "local",
            "epochs": {
                "teacher": 1,
                "student_stage1": 1,
                "student_stage2": 1,
                "shrunk_from": {"teacher": 8, "student_stage1": 8, "student_stage2": 4},
            },
        },
        "variants": {},
        "runs": runs,
        "wall_seconds": 12.0,
        "cpu_seconds": 20.0,
    }


def fabricated_baselines(vpdq_rotate_ap: float = 0.05) -> dict:
    def res(ap: float, r: float, rotate_ap: float) -> dict:
        sub = lambda a, n: {"ap": a, "r_at_p80": r, "f1": 0.2, "n_pos": n}  # noqa: E731
        return {
            "metrics": {"ap": ap, "r_at_p80": r, "f1": 0.2, "n_pos": 11},
            "subsets": {
                "heldout_edit": sub(0.1, 4),
                "heldout_edit/rotate": sub(rotate_ap, 3),
                "heldout_edit/pad_blur": sub(0.05, 1),
                "heldout_edit/emoji_overlay": {"ap": None, "r_at_p80": None, "n_pos": 0},
                "heldout_source": sub(0.2, 6),
            },
            "n_errors": 0,
        }

    return {
        "split": "test",
        "data_version": "d1",
        "heldout_edit_types": [*HELDOUT, "emoji_overlay"],
        "baselines": {"embedding": res(0.15, 0.0, 0.07), "vpdq": res(0.12, 0.0, vpdq_rotate_ap)},
    }


FLOPS = {
    "pair": "two 20-s clips",
    "paper": {"teacher_tflops": 25.4, "student_tflops": 0.86, "reported_reduction": 35},
    "profiles": {
        "gpu": {
            "teacher_tflops": 29.47,
            "student_tflops": 0.00146,
            "student_with_uncached_encoders_tflops": 0.788,
            "ratio_teacher_over_student": 20188.6,
            "ratio_teacher_over_student_with_uncached_encoders": 37.4,
        }
    },
}


def test_ablation_tables_and_a_direction_that_does_not_reproduce() -> None:
    md = ablation_markdown(fabricated_ablation(kd_gain=-0.06))
    for row in (
        "| V | 35.00 ± 5.00 |",
        "| V+A+T | 41.00 ± 3.61 |",
        "| MatchLM (teacher) | 70.00 (1 seed) |",
        "| λ = 1.5 | 49.00 ± 5.00 |",
        "| no KD | 55.00 ± 5.00 |",
    ):
        assert row in md
    assert "KD > no KD (AP): **no** — does not reproduce (−6.00 ± 0.00 AP pts; 0 of 3 seed(s) positive; paper +1.86 AP)" in md
    # V+A+T - V per seed: +10, -2, +10 -> the mean agrees, one seed does not
    assert "V+A+T > V (AP): **not reliably**" in md and "+6.00 ± 6.93 AP pts; 2 of 3 seed(s) positive" in md
    # the teacher (seed 0, the only teacher) against each student seed: 70 - 49/54/59
    assert "MatchLM > MatchLite + KD (AP): **yes** (+21.00 ± 5.00 AP pts" in md
    assert "MatchLite + KD within 4 AP of MatchLM (mean AP 70.00 vs 49.00): **no** (gap +21.00 AP pts" in md


def test_kd_that_helps_on_every_seed_reproduces() -> None:
    found = directions(fabricated_ablation(kd_gain=0.02)["runs"], SEEDS, [0])
    kd = found["kd_vs_no_kd.ap"]
    assert kd["verdict"] == "yes" and kd["n"] == 3 and kd["mean"] == pytest.approx(0.02)
    assert found["kd_vs_no_kd.r_at_p80"]["verdict"] == "no"  # a tie is not an improvement
    assert found["teacher_vs_student.ap"]["values"] == pytest.approx([0.70 - 0.52, 0.70 - 0.57, 0.70 - 0.62])
    assert "va_vs_v.ap" in found and "kd_both_vs_logits.ap" in found


def test_baselines_vs_matchlite_per_heldout_edit_type() -> None:
    md = baselines_markdown(fabricated_baselines(vpdq_rotate_ap=0.05), fabricated_ablation(kd_gain=0.02), level=3)
    assert "| subset | n+ | vPDQ | embedding cosine | MatchLite (MatchLite + KD, 3 seeds) |" in md
    assert "| heldout_edit/rotate | 3 | 5.00 / 0.00 | 7.00 / 0.00 | 60.00 ± 0.00 / 50.00 ± 0.00 |" in md
    assert "No copies in the `test` split for: heldout_edit/emoji_overlay" in md
    assert "- MatchLite (MatchLite + KD, 3 seeds) > vPDQ: **yes** (all 6 higher)" in md
    # a baseline that wins on one held-out type: the verdict names where
    md = baselines_markdown(fabricated_baselines(vpdq_rotate_ap=0.9), fabricated_ablation(kd_gain=0.02))
    assert "> vPDQ: **no** — not higher on 1 of 6: heldout_edit/rotate AP 60.00 ± 0.00 vs 90.00" in md


def test_baselines_on_other_data_are_flagged() -> None:
    other = fabricated_ablation()
    other["data_version"] = "d2"
    assert "**Not the same pairs:**" in baselines_markdown(fabricated_baselines(), other)
    assert "Not the same pairs" not in baselines_markdown(fabricated_baselines(), fabricated_ablation())


def test_flops_verdict_and_missing_sections() -> None:
    assert "**yes** (37.4x;" in flops_markdown(FLOPS)
    low = json.loads(json.dumps(FLOPS))
    low["profiles"]["gpu"]["ratio_teacher_over_student_with_uncached_encoders"] = 20.0
    assert "**no** (20.0x;" in flops_markdown(low)
    md = build_report(flops=FLOPS)
    assert "Not measured yet: run `clipguard rci ablate" in md and "Not measured yet: run `clipguard rci baselines" in md


def test_readme_region_is_replaced_idempotently(tmp_path: Path) -> None:
    text = f"# title\n\nintro\n\n{README_START}\nold table\n{README_END}\n\n## after\n"
    once = replace_marked_region(text, "new body\n")
    assert once == f"# title\n\nintro\n\n{README_START}\nnew body\n{README_END}\n\n## after\n"
    assert replace_marked_region(once, "new body\n") == once
    with pytest.raises(ReportInputError, match="missing marker"):
        replace_marked_region("no markers", "x")
    with pytest.raises(ReportInputError, match="once each"):
        replace_marked_region(f"{README_END}\n{README_START}\n", "x")


def test_load_result_names_the_missing_file_and_the_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `clipguard rci ablate` first"):
        load_result(tmp_path / "nope.json", "ablation")
    (tmp_path / "b.json").write_text(json.dumps(fabricated_baselines()))
    with pytest.raises(ReportInputError, match="does not hold ablation results.*missing settings"):
        load_result(tmp_path / "b.json", "ablation")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ReportInputError, match="not valid JSON"):
        load_result(tmp_path / "bad.json", "flops")
    with pytest.raises(ReportInputError, match="nothing to report"):
        write_report()
