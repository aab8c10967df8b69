"""Rendering verdicts and evaluation reports for a terminal (rich). Nothing here decides anything."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from compliance.evaluation.metrics import OUTCOMES
from compliance.evaluation.runner import Agreement, CascadeShare, PipelineReport
from compliance.evaluation.spoof import LIVE, SPOOF_LABELS, SpoofReport
from compliance.evaluation.submissions import SubmissionReport
from compliance.verdicts import Outcome, Verdict

OUTCOME_STYLE = {Outcome.PASS: "bold green", Outcome.FAIL: "bold red", Outcome.REVIEW: "bold yellow"}


def verdict_panel(verdict: Verdict, title: str) -> Panel:
    j = verdict.judgments
    checks = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    checks.add_column("check")
    checks.add_column("outcome")
    checks.add_column("reason")
    checks.add_column("detail", overflow="fold")
    for r in verdict.results:
        checks.add_row(r.check, Text(r.outcome.value, OUTCOME_STYLE[r.outcome]), r.reason or "", r.detail)
    seen = Table(show_header=False, box=None, pad_edge=False)
    seen.add_column(style="dim")
    seen.add_column()
    seen.add_row("person", f"{j.person.present} (count {j.person.count if j.person.count is not None else '?'})")
    seen.add_row("vehicle", f"{j.vehicle.present} ({j.vehicle.kind})")
    plate = j.plate
    conf = f"{plate.confidence:.2f}" if plate.confidence is not None else "?"
    seen.add_row("plate", f"{plate.text or '—'}  colour {plate.color}  rows {plate.rows or '?'}  confidence {conf}")
    sim = f"{j.face.similarity:.3f}" if j.face.similarity is not None else "?"
    seen.add_row(
        "face", f"scene {j.face.scene_face}, licence {j.face.licence_face}, similarity {sim}, same {j.face.same_person}"
    )
    seen.add_row(
        "quality", f"blur {j.quality.blur}, brightness {j.quality.brightness}, {j.quality.width}x{j.quality.height}"
    )
    used = f" ({', '.join(j.provenance.pipelines)})" if j.provenance.pipelines else ""
    if j.provenance.fallback is not None:
        used = f" (instead of {j.provenance.fallback.pipeline})"
    seen.add_row("pipeline", f"{j.provenance.pipeline}{used}, {sum(j.provenance.latency_ms.values()):.0f} ms")
    if j.provenance.cascade is not None:
        seen.add_row("cascade", f"{j.provenance.cascade.path}: {j.provenance.cascade.reason}")
    head = Text.assemble(("verdict ", "bold"), (verdict.outcome.value, OUTCOME_STYLE[verdict.outcome]))
    if verdict.reasons:
        head.append("  " + ", ".join(verdict.reasons))
    return Panel(Group(head, checks, Text(""), seen), title=title, title_align="left")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f} ms"


def _by_pipeline(title: str, names: list[str]) -> Table:
    """A table of metrics, one column per pipeline."""
    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    return table


def _outcome_table(title: str, first: str, counts: dict[str, dict[str, int]]) -> Table:
    """Rows of counts by outcome, PASS / REVIEW / FAIL."""
    table = Table(title=title, header_style="bold")
    table.add_column(first)
    for outcome in OUTCOMES:
        table.add_column(outcome.value, justify="right")
    for label, cells in counts.items():
        table.add_row(label, *[str(cells[o.value]) for o in OUTCOMES])
    return table


def print_eval(console: Console, reports: dict[str, PipelineReport]) -> None:
    names = list(reports)
    summary = _by_pipeline("compliance eval", names)

    def row(label: str, values: list[str]) -> None:
        summary.add_row(label, *values)

    r = reports
    row("plates read exactly", [f"{_pct(r[n].plate_exact)} of {r[n].n['plates']}" for n in names])
    colors = sorted({c for n in names for c in r[n].plate_exact_by_color})
    for c in colors:
        row(f"  {c}", [_pct(r[n].plate_exact_by_color.get(c)) for n in names])
    row("plate colour correct", [_pct(r[n].plate_color_acc) for n in names])
    row("plate check correct", [f"{_pct(r[n].plate_check_acc)} of {r[n].n['plate_check_cases']}" for n in names])
    row("face TAR at threshold", [_pct(r[n].face_tar) for n in names])
    row("face FAR at threshold", [_pct(r[n].face_far) for n in names])
    row("face undecided (REVIEW)", [_pct(r[n].face_unknown_rate) for n in names])
    row("face TAR at FAR 1%", [_pct(r[n].face_tar_at_far_1pct) for n in names])
    row("face TAR at FAR 0.1%", [_pct(r[n].face_tar_at_far_0_1pct) for n in names])
    row(
        "  undecided, same / different",
        [f"{_pct(r[n].face_unknown_same)} / {_pct(r[n].face_unknown_diff)}" for n in names],
    )
    for look in sorted({k for n in names for k in r[n].licence_faces}, key=lambda k: int(k.split()[0])):
        got = {n: r[n].licence_faces.get(look) for n in names}
        row(f"licence faces ({look})", ["" for _ in names])
        row("  TAR / FAR at threshold", [f"{_pct(f.tar)} / {_pct(f.far)}" if f else "—" for f in got.values()])
        row(
            "  undecided, same / different",
            [f"{_pct(f.unknown_same)} / {_pct(f.unknown_diff)}" if f else "—" for f in got.values()],
        )
        row("  TAR at FAR 1%", [_pct(f.tar_at_far_1pct) if f else "—" for f in got.values()])
    row("person presence", [f"{_pct(r[n].person_presence_acc)} of {r[n].n['person']}" for n in names])
    row("vehicle presence", [f"{_pct(r[n].vehicle_presence_acc)} of {r[n].n['vehicle']}" for n in names])
    for kind in sorted({k for n in names for k in r[n].live_faces}):
        got_live = {n: r[n].live_faces.get(kind) for n in names}
        row(
            f"live faces flagged ({kind}: flagged / judged / found)",
            [f"{c['flagged']} / {c['judged']} / {c['faces']}" if c else "—" for c in got_live.values()],
        )
    row("latency median", [_ms(r[n].median_ms) for n in names])
    row("latency p90", [_ms(r[n].p90_ms) for n in names])
    stages = sorted({s for n in names for s in r[n].median_stage_ms})
    for s in stages:
        row(f"  {s} (median)", [_ms(r[n].median_stage_ms.get(s)) for n in names])
    console.print(summary)

    provinces = Table(title="plates read exactly, by province character", header_style="bold")
    provinces.add_column("province")
    for name in names:
        provinces.add_column(name, justify="right")
    for p in sorted({p for n in names for p in r[n].plate_exact_by_province}):
        provinces.add_row(p, *[_pct(r[n].plate_exact_by_province.get(p)) for n in names])
    console.print(provinces)

    for name in names:
        console.print(
            _outcome_table(f"{name}: plate check, expected (rows) vs got", "expected", r[name].plate_check_confusion)
        )
        misses = [o for o in r[name].plates if not o.ok]
        if misses:
            table = Table(title=f"{name}: plates not read exactly", header_style="bold")
            for col in ("file", "expected", "read", "colour expected", "colour read"):
                table.add_column(col)
            for o in misses:
                table.add_row(o.file, o.expected, o.read or "—", o.expected_color or "", o.read_color)
            console.print(table)


def print_agreement(console: Console, agreement: Agreement) -> None:
    a, b = agreement.pipelines
    table = Table(title=f"agreement: {a} vs {b} (under both, a disagreement is a REVIEW)", header_style="bold")
    for col in ("field", "compared", "agree", "agreement", "agreed and right"):
        table.add_column(col, justify="left" if col == "field" else "right")
    for name, f in agreement.fields.items():
        table.add_row(name, str(f.compared), str(f.agree), _pct(f.rate), _pct(f.agree_correct))
    table.add_row("photos: person, vehicle and plate", "", "", _pct(agreement.photos_all_agree), "")
    console.print(table)


def print_cascade_share(console: Console, share: CascadeShare) -> None:
    table = Table(title="cascade: what reached the MLLM (the baseline was unsure)", header_style="bold")
    for col in ("", "reached the MLLM", "of", "share"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("photos", str(share.photos_escalated), str(share.photos), _pct(share.escalated))
    for field, n in share.unsure.items():
        table.add_row(
            f"  unsure of {field}", str(n), str(share.photos), _pct(n / share.photos if share.photos else None)
        )
    table.add_row("face pairs", str(share.face_pairs_escalated), str(share.face_pairs), _pct(share.face_escalated))
    console.print(table)


def print_submissions(console: Console, reports: dict[str, SubmissionReport]) -> None:
    names = list(reports)
    summary = _by_pipeline("compliance eval: whole submissions", names)
    r = reports
    summary.add_row("automation (genuine → PASS)", *[_pct(r[n].automation) for n in names])
    summary.add_row("false FAIL (genuine → FAIL)", *[_pct(r[n].false_fail) for n in names])
    summary.add_row("fraud caught (fraud → FAIL)", *[_pct(r[n].fraud_caught) for n in names])
    summary.add_row("false PASS (fraud → PASS)", *[_pct(r[n].false_pass) for n in names])
    summary.add_row(
        "rows (genuine / fraud)", *[f"{r[n].n_expected['PASS']} / {r[n].n_expected['FAIL']}" for n in names]
    )
    if any(r[n].escalated is not None for n in names):
        summary.add_row(
            "reached the MLLM (escalated)",
            *[
                f"{_pct(r[n].escalated)} ({r[n].n_escalated} of {r[n].n})" if r[n].escalated is not None else ""
                for n in names
            ],
        )
    console.print(summary)
    for name in names:
        console.print(_outcome_table(f"{name}: case × outcome", "case", r[name].by_case))
        if r[name].escalated_because:
            why = Table(title=f"{name}: why rows reached the MLLM (the baseline was not sure)", header_style="bold")
            why.add_column("not sure of")
            why.add_column("rows", justify="right")
            for reason, count in (r[name].escalated_because or {}).items():
                why.add_row(reason, str(count))
            console.print(why)
        if r[name].blocking_reasons:
            blocking = Table(title=f"{name}: reasons that kept genuine rows from PASS", header_style="bold")
            blocking.add_column("reason")
            blocking.add_column("rows", justify="right")
            for reason, count in r[name].blocking_reasons.items():
                blocking.add_row(reason, str(count))
            console.print(blocking)
        if r[name].misses:
            misses = Table(title=f"{name}: rows whose verdict is not the expected one", header_style="bold")
            for col in ("row", "case", "photo", "expected", "got", "why"):
                misses.add_column(col, overflow="fold")
            for m in r[name].misses:
                style = OUTCOME_STYLE[Outcome(m.got)]
                misses.add_row(str(m.row), m.case, m.photo, m.expected, Text(m.got, style), "; ".join(m.details))
            console.print(misses)


def print_spoofs(console: Console, reports: dict[str, SpoofReport]) -> None:
    names = list(reports)
    r = reports
    summary = _by_pipeline("compliance eval: faces on a screen or on paper (flagged: FACE_NOT_LIVE)", names)
    for label in SPOOF_LABELS:
        summary.add_row(
            f"{label} flagged", *[f"{_pct(r[n].flagged_by_label[label])} of {r[n].n[label]}" for n in names]
        )
    summary.add_row("live faces flagged", *[f"{_pct(r[n].live_flagged)} of {r[n].n[LIVE]}" for n in names])
    summary.add_row("photos with no face found", *[str(r[n].no_face) for n in names])
    summary.add_row("live_min", *[f"{r[n].live_min:.2f}" for n in names])
    console.print(summary)
    for name in names:
        roc = Table(title=f"{name}: live_min swept (share of spoofs and of live faces scoring under it)")
        for col in ("live_min", "spoofs flagged", "live flagged"):
            roc.add_column(col, justify="right")
        for point in r[name].roc:
            roc.add_row(f"{point.live_min:.2f}", _pct(point.spoofs_flagged), _pct(point.live_flagged))
        console.print(roc)
        photos = Table(title=f"{name}: every photo", header_style="bold")
        for col in ("photo", "label", "live", "score", "flagged"):
            photos.add_column(col)
        for o in r[name].photos:
            score = "—" if o.live_score is None else f"{o.live_score:.3f}"
            photos.add_row(o.file, o.label, o.live, score, "yes" if o.flagged else "")
        console.print(photos)
