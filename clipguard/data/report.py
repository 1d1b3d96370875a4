"""Human-readable views of a validation report (the dict written to ``validated/report.json``).

* :func:`render_html` — a standalone HTML page: counts, reasons, Great Expectations
  results, the first quarantined rows with their messages, inputs, config and timings.
* :func:`print_summary` — a short terminal summary with ``rich``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.table import Table

from clipguard.data.schema import REASONS

_SUMMARY_EXAMPLES = 3
"""quarantined rows per manifest whose message the terminal summary shows"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #17643a; } .bad { color: #a61b1b; font-weight: 600; }
code, pre { font-size: .85rem; } pre { background: #f7f7f7; padding: .75rem; overflow-x: auto; }
.meta { color: #666; }
"""


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "bad"}">{"pass" if value else "fail"}</td>'
    if isinstance(value, (int, float)):
        return f'<td class="n">{value}</td>'
    if isinstance(value, (list, tuple)):
        return f"<td>{escape(', '.join(map(str, value)))}</td>"
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p class='meta'>none</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _reason_description(reason: str) -> str:
    return REASONS.get(reason.split(":", 1)[0], "")


def _manifest_html(name: str, section: dict[str, Any]) -> str:
    preview = section["quarantine_preview"]
    shown = f"first {len(preview)} of {section['quarantined']}" if preview else ""
    parts = [
        f"<h2>{escape(name)}</h2>",
        f"<p class='meta'>input: <code>{escape(section['input'])}</code></p>",
        "<h3>Quarantine reasons</h3>",
        _table(
            ["reason", "meaning", "rows"],
            [[r, _reason_description(r), n] for r, n in section["reasons"].items()],
        ),
    ]
    if section["flags"]:
        parts += ["<h3>Flags on accepted rows</h3>", _table(["flag", "rows"], [[f, n] for f, n in section["flags"].items()])]
    parts += [
        "<h3>Great Expectations</h3>",
        _table(
            ["frame", "expectation", "column", "reason", "result", "unexpected"],
            [
                [e["frame"], e["expectation"], e["column"], e["reason"], e["success"], e["unexpected_count"]]
                for e in section["expectations"]
            ],
        ),
        f"<h3>Quarantined rows <span class='meta'>{escape(shown)}</span></h3>",
        _table(
            ["row", "id", "reasons", "message"],
            [[q["row_index"], q["id"], q["reasons"], q["message"]] for q in preview],
        ),
    ]
    return "\n".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """A standalone HTML page for a validation report."""
    manifests = {k: v for k, v in report["manifests"].items() if v is not None}
    counts = _table(
        ["manifest", "in", "accepted", "quarantined"],
        [[k, v["rows_in"], v["accepted"], v["quarantined"]] for k, v in manifests.items()],
    )
    inputs = _table(
        ["input", "path", "sha256"],
        [[k, v["path"], v["sha256"]] for k, v in report["inputs"].items() if v is not None],
    )
    timings = _table(["step", "seconds"], [[k, v] for k, v in report["timings_s"].items()])
    body = [
        "<h1>clipguard data validation</h1>",
        f"<p class='meta'>root <code>{escape(report['root'])}</code> · {escape(report['created_at'])} · "
        f"clipguard {escape(report['clipguard_version'])} · fingerprint <code>{escape(report['fingerprint'][:16])}</code></p>",
        "<h2>Counts</h2>",
        counts,
        *(_manifest_html(k, v) for k, v in manifests.items()),
        "<h2>Inputs</h2>",
        inputs,
        "<h2>Configuration</h2>",
        f"<pre>{escape(json.dumps(report['config'], indent=2))}</pre>",
        "<h2>Timings</h2>",
        timings,
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>clipguard validation: {escape(report['root'])}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _counts_line(counts: dict[str, int]) -> str:
    return " · ".join(f"{escape_markup(key)} {n}" for key, n in counts.items())


def print_summary(console: Console, report: dict[str, Any], reused: bool) -> None:
    """Counts per manifest, reasons and flags, and a few quarantine messages."""
    if reused:
        console.print(
            f"[bold]validate[/]: {report['out_dir']} is up to date (fingerprint {report['fingerprint'][:12]}); nothing to do"
        )
    manifests = {k: v for k, v in report["manifests"].items() if v is not None}
    table = Table(title=None if reused else f"validation of {report['root']}", show_edge=False)
    table.add_column("manifest")
    for header in ("in", "accepted", "quarantined"):
        table.add_column(header, justify="right")
    for name, section in manifests.items():
        quarantined = f"[red]{section['quarantined']}[/]" if section["quarantined"] else "0"
        table.add_row(name, str(section["rows_in"]), str(section["accepted"]), quarantined)
    console.print(table)
    for name, section in manifests.items():
        if section["reasons"]:
            console.print(f"{name} reasons: {_counts_line(section['reasons'])}", highlight=False)
        if section["flags"]:
            console.print(f"{name} flags: {_counts_line(section['flags'])}", highlight=False)
    for section in manifests.values():
        for row in section["quarantine_preview"][:_SUMMARY_EXAMPLES]:
            console.print(f"  [red]quarantined[/] {escape_markup(row['message'])}", highlight=False)
    if not reused:
        console.print(f"outputs in {report['out_dir']} ({report['timings_s']['total']:.1f} s)")
