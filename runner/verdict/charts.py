"""The HTML report's charts, as Vega-Lite specs made with altair: memory over time, the time budget, the histogram.

Each chart's data is a named dataset (`memory`, `phases`, `histogram`) holding the
report's own numbers unchanged, so whoever opens the page can read them back from
the chart (Vega's `view.data(name)`) and compare them with the JSON report.
Imported only when an HTML report is written: altair is an optional extra.
"""

from __future__ import annotations

from typing import Any

import altair as alt

from .report import human_bytes

MIB = 1024**2
# The harness's phases in the order they run, with the words the terminal uses and one colour each.
PHASES = {"starting": ("starting Python", "#9e9e9e"), "loading": ("loading the pickle", "#e39c37"),
          "reading_data": ("reading the data", "#5b8fd6"), "reading_benchmarks": ("reading the benchmarks", "#3f6fb0"),
          "predicting": ("predicting", "#4aa564"),
          "checking": ("checking", "#a77bc9"), "writing": ("writing", "#c7617a")}
WIDTH = 820
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _phase_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"phase": PHASES.get(p.get("phase"), (str(p.get("phase")),))[0], "start": p.get("start"),
             "end": p.get("end")} for p in report.get("phase_times") or []]


def _phase_colour(legend: bool = True) -> alt.Color:
    return alt.Color("phase:N", title="phase", sort=[label for label, _ in PHASES.values()],
                     scale=alt.Scale(domain=[label for label, _ in PHASES.values()],
                                     range=[colour for _, colour in PHASES.values()]),
                     legend=alt.Legend(orient="bottom", direction="horizontal", columns=6, symbolOpacity=0.7, title=None)
                     if legend else None)


def _configured(chart: alt.TopLevelMixin) -> dict[str, Any]:
    return chart.configure(font=FONT).configure_view(stroke=None).configure_axis(
        labelFontSize=11, titleFontSize=11, titleFontWeight="normal", titleColor="#555",
        gridColor="#eceff3").to_dict()


def memory_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Memory in use over time against the limit, the phases as bands, the cgroup's peak as a line."""
    samples = report.get("memory_samples") or []
    if not samples:
        return None
    limit = (report.get("limits") or {}).get("memory_bytes")
    peak = report.get("peak_memory_bytes")
    phases = _phase_records(report)
    end = max([samples[-1][0]] + [p["end"] for p in phases if isinstance(p.get("end"), (int, float))])
    top = max([limit or 0, peak or 0] + [b for _, b in samples]) * 1.06 / MIB
    x = alt.X("seconds:Q", title="seconds since the container started", scale=alt.Scale(domain=[0, end], nice=False))
    y = alt.Y("mib:Q", title="memory in use (MiB)", scale=alt.Scale(domain=[0, top], nice=False))

    memory = alt.NamedData("memory")
    curve = alt.Chart(memory).transform_calculate(mib=f"datum.bytes / {MIB}").mark_area(
        line={"color": "#1f5fbf", "strokeWidth": 1.6}, color="#1f5fbf", opacity=0.18, interpolate="linear",
    ).encode(x=x, y=y).properties(name="memory_curve")
    hover = alt.Chart(memory).transform_calculate(mib=f"datum.bytes / {MIB}").mark_point(
        opacity=0, size=60).encode(x=x, y=y, tooltip=[alt.Tooltip("seconds:Q", title="seconds", format=".2f"),
                                                      alt.Tooltip("mib:Q", title="MiB in use", format=",.1f")]
    ).properties(name="memory_points")
    layers = []
    if phases:
        layers.append(alt.Chart(alt.NamedData("phases")).mark_rect(opacity=0.16).encode(
            x=alt.X("start:Q", scale=alt.Scale(domain=[0, end], nice=False)), x2="end:Q", color=_phase_colour(),
            tooltip=["phase:N", alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("end:Q", format=".2f")]))
    layers += [curve, hover.add_params(alt.selection_interval(bind="scales", encodings=["x", "y"]))]
    if limit:
        layers += _level(limit, f"limit {human_bytes(limit)}", "#c62828", dash=None, name="limit")
    if peak:
        near_limit = bool(limit) and abs(limit - peak) < 0.08 * top * MIB
        layers += _level(peak, f"peak {human_bytes(peak)}", "#444", dash=[4, 3], name="peak", below=near_limit)
    chart = alt.layer(*layers).properties(
        width=WIDTH, height=240, datasets={"memory": [{"seconds": t, "bytes": b} for t, b in samples],
                                           "phases": phases})
    return _configured(chart)


def _level(value: int, label: str, colour: str, dash, name: str, below: bool = False) -> list[alt.Chart]:
    """A horizontal line at `value` bytes with its label at the right end (above it, or below)."""
    mib = value / MIB
    rule = alt.Chart().mark_rule(color=colour, strokeWidth=1.5, strokeDash=dash or []).encode(
        y=alt.datum(mib)).properties(name=f"{name}_line")
    text = alt.Chart().mark_text(align="right", baseline="top" if below else "bottom", dx=-4, dy=3 if below else -3,
                                 color=colour, fontSize=11).encode(
        x=alt.value(WIDTH), y=alt.datum(mib), text=alt.value(label)).properties(name=f"{name}_label")
    return [rule, text]


def time_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Where the time went, on an axis that runs to the timeout: how much of the budget the run used."""
    phases = _phase_records(report)
    timeout = (report.get("limits") or {}).get("timeout_seconds")
    ran = (report.get("durations") or {}).get("container_seconds")
    if not phases or not timeout:
        return None
    ran = ran if isinstance(ran, (int, float)) else phases[-1]["end"] or 0
    x = alt.X("start:Q", title=f"seconds, up to the {timeout:g} s timeout",
              scale=alt.Scale(domain=[0, max(timeout, ran)], nice=False))
    bars = alt.Chart(alt.NamedData("phases")).mark_bar(height=18).encode(
        x=x, x2="end:Q", color=_phase_colour(legend=False),
        tooltip=["phase:N", alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("end:Q", format=".2f")])
    limit = alt.Chart().mark_rule(color="#c62828", strokeWidth=1.5).encode(x=alt.datum(timeout)).properties(
        name="timeout_line")
    used = alt.Chart().mark_text(align="left", dx=6, fontSize=11, color="#333").encode(
        x=alt.datum(ran), y=alt.value(13),
        text=alt.value(f"ran {ran:.2f} s: {ran / timeout:.1%} of the {timeout:g} s timeout"))
    if ran > timeout * 0.6:  # the label would run past the end: put it on the left of the bars' end
        used = used.mark_text(align="right", dx=-6, fontSize=11, color="#fff")
    chart = alt.layer(bars, limit, used).properties(width=WIDTH, height=26, datasets={"phases": phases})
    return _configured(chart)


def histogram_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """The predictions' distribution (bins counted on the host); bins outside [0, 1] in red, its ends marked."""
    summary = report.get("predictions_summary") or {}
    histogram = summary.get("histogram")
    if not histogram:
        return None
    edges, counts = histogram["edges"], histogram["counts"]
    bins = [{"from": a, "to": b, "count": c} for a, b, c in zip(edges, edges[1:], counts)]
    x = alt.X("from:Q", title=f"{summary.get('column', 'prediction')} value",
              scale=alt.Scale(domain=[edges[0], edges[-1]], nice=False))
    inside = alt.condition("datum.from >= 0 && datum.to <= 1", alt.value("#4a78c2"), alt.value("#c62828"))
    bars = alt.Chart(alt.NamedData("histogram"), name="histogram_bars").mark_bar(binSpacing=1).encode(
        x=x, x2="to:Q", y=alt.Y("count:Q", title="rows", scale=alt.Scale(zero=True)), y2=alt.datum(0), color=inside,
        tooltip=[alt.Tooltip("from:Q", format=".4f"), alt.Tooltip("to:Q", format=".4f"), "count:Q"])
    layers = [bars]
    if summary.get("outside_0_1"):
        layers += [alt.Chart().mark_rule(color="#222", strokeDash=[4, 3]).encode(x=alt.datum(bound))
                   for bound in (0, 1)]
    chart = alt.layer(*layers).properties(width=WIDTH, height=200, datasets={"histogram": bins})
    return _configured(chart)

