"""The overview: a period's verdicts by day, reasons, carriers, sites, drivers, agreement between
the pipelines, turnaround and plate accuracy, with charts drawn by plotly.js in the browser."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from compliance.dashboard.filters import read_filters
from compliance.dashboard.language import current_language, gettext, message_language
from compliance.dashboard.security import SignedIn
from compliance.dashboard.templating import judgment_word, outcome_word, render, words
from compliance.messages import message
from compliance.reports.overview import Overview, overview
from compliance.store.registry import list_carriers

router = APIRouter()

DEFAULT_DAYS = 30
COLOURS = {"PASS": "#2e7d32", "FAIL": "#c62828", "REVIEW": "#e0a100", "pending": "#9e9e9e"}


@router.get("/")
def overview_page(request: Request, viewer: SignedIn) -> Response:
    zone = request.app.state.report_zone
    with request.app.state.read_sessions() as s:
        filters = read_filters(request.query_params, viewer, s, zone, default_days=DEFAULT_DAYS)
        carriers = list_carriers(s) if viewer.all_carriers else []
        if filters.errors or filters.where.since is None or filters.where.until is None:
            if not filters.errors:
                filters.errors.append(gettext("give both since and until, or neither"))
            return render(
                request,
                "overview.html",
                {"filters": filters, "carriers": carriers, "report": None, "charts": "{}"},
                status_code=400,
            )
    report = overview(
        request.app.state.read_sessions,
        zone,
        since=filters.where.since,
        until=filters.where.until,
        carrier_id=filters.where.carrier_id,
    )
    return render(
        request,
        "overview.html",
        {"filters": filters, "carriers": carriers, "report": report, "charts": script_json(charts(report))},
    )


def script_json(value: object) -> str:
    """JSON to put inside a <script> element: no text in it can close the element or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}, "x": 0.01},
        "margin": {"l": 48, "r": 16, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.15},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        **extra,
    }


def _days_axis(days: list[str]) -> dict[str, Any]:
    # Whole days: a tick per day while there are few, never a time of day; "12月5日" in Chinese.
    tickformat = "%-m月%-d日" if current_language() == "zh-CN" else "%b %-d"
    axis: dict[str, Any] = {"type": "date", "tickformat": tickformat, "hoverformat": "%Y-%m-%d"}
    if len(days) <= 14:
        axis["dtick"] = 86_400_000
    return axis


def _counts_axis(most: int) -> dict[str, Any]:
    # Counts are whole: no 0.5 ticks when they are small.
    return {"rangemode": "tozero", "tickformat": ",d", **({"dtick": 1} if most <= 8 else {})}


def charts(report: Overview) -> dict[str, dict[str, Any]]:
    """Plotly figures as plain JSON (data + layout), one per chart on the page."""
    days = [d.day for d in report.days]
    by_outcome = {
        "PASS": [d.counts.passed for d in report.days],
        "FAIL": [d.counts.failed for d in report.days],
        "REVIEW": [d.counts.review for d in report.days],
        "pending": [d.counts.pending for d in report.days],
    }
    figures: dict[str, dict[str, Any]] = {
        "chart-verdicts": {
            "data": [
                {"type": "bar", "name": outcome_word(name), "x": days, "y": values, "marker": {"color": COLOURS[name]}}
                for name, values in by_outcome.items()
                if any(values)
            ],
            "layout": _layout(
                gettext("Submissions per day, by verdict"),
                barmode="stack",
                xaxis=_days_axis(days),
                yaxis={"title": {"text": gettext("submissions")}},
            ),
        },
        "chart-rates": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers" if len(days) < 40 else "lines",
                    "name": outcome_word(name),
                    "x": days,
                    "y": [
                        round(v / d.counts.decided * 100, 2) if d.counts.decided else None
                        for v, d in zip(by_outcome[name], report.days, strict=True)
                    ],
                    "line": {"color": COLOURS[name], "width": 2},
                    "hovertemplate": "%{y:.1f}%<extra>" + outcome_word(name) + "</extra>",
                }
                for name in ("PASS", "FAIL", "REVIEW")
            ],
            "layout": _layout(
                gettext("Verdict rates by day, as shares of the decided"),
                xaxis=_days_axis(days),
                yaxis={"ticksuffix": "%", "rangemode": "tozero", "title": {"text": gettext("share of decided")}},
            ),
        },
        "chart-reasons": {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "x": [n for _, n in reversed(report.reasons)],
                    "y": [r for r, _ in reversed(report.reasons)],
                    # The code on the axis (stable, short); what it means on hover.
                    "text": [message(r, message_language()) for r, _ in reversed(report.reasons)],
                    "hovertemplate": "%{y}: %{x}<br>%{text}<extra></extra>",
                    "textposition": "none",
                    "marker": {"color": "#5c6bc0"},
                }
            ],
            "layout": _layout(
                gettext("Top reason codes"),
                margin={"l": 230, "r": 16, "t": 40, "b": 40},
                xaxis={
                    **_counts_axis(max((n for _, n in report.reasons), default=0)),
                    "title": {"text": gettext("submissions")},
                },
            ),
        },
    }
    if report.agreement.compared:
        fields = list(report.agreement.disagreements)
        figures["chart-agreement"] = {
            "data": [
                {
                    "type": "bar",
                    "x": [judgment_word(f) for f in fields],
                    "y": [report.agreement.disagreements[f] for f in fields],
                    "marker": {"color": "#8e24aa"},
                }
            ],
            "layout": _layout(
                gettext("Disagreements between the MLLM and the baseline, by field"),
                yaxis={
                    **_counts_axis(max(report.agreement.disagreements.values(), default=0)),
                    "title": {"text": gettext("disagreements")},
                },
            ),
        }
    if report.plates.overall.read:
        rows = report.plates.by_colour
        figures["chart-plates"] = {
            "data": [
                {
                    "type": "bar",
                    "x": [words(a.key) for a in rows],
                    "y": [round((a.rate or 0) * 100, 1) for a in rows],
                    "text": [f"{a.correct}/{a.read}" for a in rows],
                    "marker": {"color": "#00897b"},
                    "hovertemplate": "%{x}: %{y:.1f}% (%{text})<extra></extra>",
                }
            ],
            "layout": _layout(
                gettext("Plate readings right, by plate colour (reviewed)"),
                yaxis={"ticksuffix": "%", "range": [0, 100], "title": {"text": gettext("right")}},
            ),
        }
    return figures
