"""``clipguard banks ...`` on a SQLite bank database in the test's work_dir (typer's test runner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from clipguard.cli import app

runner = CliRunner()


def banks(work: Path, *args: str) -> tuple[int, Any]:
    r = runner.invoke(app, ["--set", f"work_dir={work}", "banks", *args])
    return r.exit_code, (json.loads(r.stdout) if r.exit_code == 0 else r.output)


def test_banks_commands_change_the_database_and_audit(tmp_path: Path) -> None:
    refs = tmp_path / "refs.csv"
    refs.write_text("ref_id,clip_id,label\nr1,c1,scam\nr2,c2\nr3,c3,weapons\n")
    assert banks(tmp_path, "create", "v", "--kind", "violation", "--actor", "alice")[1]["content_version"] == 0
    code, added = banks(tmp_path, "add", "v", str(refs))
    assert code == 0 and added["counts"] == {"added": 3, "updated": 0, "unchanged": 0}
    assert banks(tmp_path, "add", "v", str(refs))[1]["counts"]["unchanged"] == 3
    assert banks(tmp_path, "disable", "v", "r1", "r2")[1]["counts"] == {"disabled": 2, "unchanged": 0}
    assert banks(tmp_path, "enable", "v", "r2")[1]["content_version"] == 3
    assert banks(tmp_path, "remove", "v", "r3")[1]["counts"] == {"removed": 1, "unchanged": 0}
    assert banks(tmp_path, "rollout", "v", "0.25")[1]["rollout"] == 0.25
    assert banks(tmp_path, "disable", "v")[1]["enabled"] is False
    _, listed = banks(tmp_path, "list")
    assert [(b["name"], b["references"], b["disabled"], b["removed"], b["enabled"]) for b in listed] == [("v", 1, 1, 1, False)]
    _, page = banks(tmp_path, "list", "v", "--removed")
    assert [(r["ref_id"], r["enabled"], r["removed"]) for r in page] == [
        ("r1", False, False),
        ("r2", True, False),
        ("r3", True, True),
    ]
    _, log = banks(tmp_path, "audit", "v", "--limit", "3")
    assert [(a["action"], a["ref_id"]) for a in log] == [("disable_bank", None), ("set_rollout", None), ("remove", "r3")]
    _, created = banks(tmp_path, "audit", "v", "--action", "create_bank")
    assert created[0]["actor"] == "cli:alice"


def test_banks_errors_exit_2_naming_the_problem(tmp_path: Path) -> None:
    code, out = banks(tmp_path, "create", "v", "--kind", "spam")
    assert code == 2 and "unknown kind 'spam'" in str(out)
    code, out = banks(tmp_path, "rollout", "nope", "0.5")
    assert code == 2 and "no bank named 'nope'" in str(out)
    bad = tmp_path / "bad.csv"
    bad.write_text("r1\n")
    banks(tmp_path, "create", "v", "--kind", "trend")
    code, out = banks(tmp_path, "add", "v", str(bad))
    assert code == 2 and "bad.csv:1" in str(out)
    code, out = banks(tmp_path, "rollout", "v", "1.5")
    assert code == 2 and "rollout must be a fraction" in str(out)
