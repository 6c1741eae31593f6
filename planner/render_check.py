"""Output formats of `planner check`: rich table, GitHub workflow commands, JUnit XML. Builders only."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from rich.console import Group
from rich.table import Table
from rich.text import Text

from planner.check import percent
from planner.schemas.check import CheckReport, PlanError, PlanReport

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Text from a plan (its name, a path, a message quoting them) made safe for a terminal and for XML: control
    characters (ESC, NUL, ...; XML 1.0 cannot hold most of them even escaped) become visible escapes like \\x1b.
    Newlines and tabs too: every format here keeps one finding per line or attribute."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "fraction":
        return percent(value)
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def table(report: CheckReport) -> Group:
    """The checked plans; plans that could not be checked are the CLI's `error:` line on stderr."""
    parts = []
    for plan in report.checked:
        t = Table(title=Text(f"{clean(plan.file)}: {clean(plan.name)} — {plan.status.upper()}"),
                  title_justify="left")
        for col in ("check", "result", "value", "limit", "reason"):
            t.add_column(col, no_wrap=col in ("check", "result"))
        for c in plan.checks:
            t.add_row(c.name, Text(c.status, style=STYLE[c.status]), _num(c.value, c.unit), _num(c.limit, c.unit),
                      Text(clean(c.reason)))
        parts.append(t)
        parts.append(Text(f"law {clean(plan.law)} (sha256 {plan.law_sha256[:16]}…)"
                          + (f", {plan.confidence:.0%} bound" if plan.confidence else "")))
        parts.extend(Text(f"note: {clean(note)}") for note in plan.notes)
        parts.extend(Text(f"warning: {clean(warning)}", style="yellow") for warning in plan.warnings)
        if plan.changes:
            parts.append(changes(plan))
    return Group(*parts)


def changes(plan: PlanReport) -> Table:
    t = Table(title="Changes against the baseline", title_justify="left")
    for col in ("metric", "baseline", "now", "delta"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for ch in plan.changes or []:
        rel = "" if ch.relative is None else f" ({ch.relative:+.1%})"
        delta = "—" if ch.delta is None else f"{ch.delta:+,.4g}{rel}"
        t.add_row(ch.metric, _num(ch.baseline, ""), _num(ch.current, ""), delta)
    return t


def _escape_data(text: str) -> str:
    return clean(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(report: CheckReport) -> str:
    """GitHub Actions workflow commands: ::error/::warning file=…,line=…,title=…::message (one per finding)."""
    lines = []
    for plan in report.plans:
        if isinstance(plan, PlanError):
            lines.append(_github_error(plan))
            continue
        for c in plan.checks:
            level = {"fail": "error", "warn": "error" if report.strict else "warning"}.get(c.status)
            if level is None:
                continue
            where = f"file={_escape_property(plan.file)}" + (f",line={c.line}" if c.line else "")
            title = _escape_property(f"planner check: {c.name}")
            lines.append(f"::{level} {where},title={title}::{_escape_data(f'{plan.name}: {c.reason}')}")
        for level, texts in (("notice", plan.notes), ("warning", plan.warnings)):
            title = _escape_property(f"planner check: baseline {level}")
            lines.extend(f"::{level} file={_escape_property(plan.file)},title={title}::"
                         f"{_escape_data(f'{plan.name}: {text}')}" for text in texts)
        for ch in plan.changes or []:
            if ch.delta:
                rel = "" if ch.relative is None else f" ({ch.relative:+.1%})"
                text = f"{plan.name}: {ch.metric} {ch.baseline:.4g} -> {ch.current:.4g}{rel}"
                lines.append(f"::notice file={_escape_property(plan.file)},title={_escape_property('planner check: change')}::{_escape_data(text)}")
        counts = {s: sum(c.status == s for c in plan.checks) for s in ("pass", "warn", "fail")}
        summary = f"{plan.name}: {plan.status} ({counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail)"
        lines.append(f"::notice file={_escape_property(plan.file)},title=planner check::{_escape_data(summary)}")
    return "\n".join(lines) + "\n"


def _github_error(plan: PlanError) -> str:
    where = f"file={_escape_property(plan.file)}" + (f",line={plan.line}" if plan.line else "")
    title = _escape_property("planner check: error")
    return f"::error {where},title={title}::{_escape_data(f'{plan.error} (hint: {plan.hint})')}"


def junit(report: CheckReport) -> str:
    """JUnit XML: one <testsuite> per plan, one <testcase> per check (skips as <skipped/>).

    A plan that could not be checked is a suite named after its file with one <error> testcase. Notes and
    warnings (a plan new since the baseline, a baseline that could not be read) are the suite's <system-out>.
    Every text is clean(): XML 1.0 cannot hold control characters.
    """
    suites = ET.Element("testsuites", name="planner check")
    total = fails = 0
    for plan in report.plans:
        if isinstance(plan, PlanError):
            _junit_error(suites, plan)
            total += 1
            continue
        name, file = clean(plan.name), clean(plan.file)
        failures = sum(c.status == "fail" or (report.strict and c.status == "warn") for c in plan.checks)
        skipped = sum(c.status == "skip" for c in plan.checks)
        suite = ET.SubElement(suites, "testsuite", name=name, file=file, tests=str(len(plan.checks)),
                              failures=str(failures), errors="0", skipped=str(skipped))
        for c in plan.checks:
            case = ET.SubElement(suite, "testcase", classname=name, name=c.name, file=file, line=str(c.line or 0))
            if c.status == "fail" or (report.strict and c.status == "warn"):
                ET.SubElement(case, "failure", message=clean(c.reason), type=c.status).text = (
                    f"value {c.value} limit {c.limit} {c.unit} (key {c.key})")
            elif c.status == "skip":
                ET.SubElement(case, "skipped", message=clean(c.reason))
            elif c.status == "warn":
                ET.SubElement(case, "system-out").text = f"warning: {clean(c.reason)}"
        extra = [f"note: {clean(n)}" for n in plan.notes] + [f"warning: {clean(w)}" for w in plan.warnings]
        if extra:
            ET.SubElement(suite, "system-out").text = "\n".join(extra)
        total += len(plan.checks)
        fails += failures
    suites.set("tests", str(total))
    suites.set("failures", str(fails))
    if report.errors:
        suites.set("errors", str(len(report.errors)))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _junit_error(suites: ET.Element, plan: PlanError) -> None:
    file = clean(plan.file)
    suite = ET.SubElement(suites, "testsuite", name=file, file=file, tests="1", failures="0", errors="1",
                          skipped="0")
    case = ET.SubElement(suite, "testcase", classname=file, name="plan", file=file, line=str(plan.line or 0))
    ET.SubElement(case, "error", message=clean(plan.error), type="error").text = f"hint: {clean(plan.hint)}"
