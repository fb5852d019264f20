"""The HTML report: one self-contained page for one run or many (`run --html`, later `check --html`).

The page holds the verdict as the terminal gives it, the memory and time charts, the
predictions' histogram and summary with the rows that broke a rule, the inspection, the
image, the limits and the data. Charts are Vega-Lite (made with altair) drawn by Vega's
JavaScript, inlined once per page (~0.9 MB), so the page opens offline; a Content Security
Policy forbids it any network request and runs only the page's own scripts.

Everything shown comes from the JSON report (`Report.to_dict()`), so a saved report renders
the same page. The model controls some of those strings (its output, its ids): all of them
are escaped by the template engine, and the chart data sits in a JSON script element.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..support.paths import cache_dir
from . import numerai_log
from .report import Report, human_bytes

PIP_HINT = "pip install 'numerai-sandbox[html]'"
NEEDS = ("altair", "vl_convert", "jinja2")


class HtmlUnavailable(Exception):
    """The optional `html` extra (altair, vl-convert-python) is not installed."""


def check_available() -> None:
    """Raise HtmlUnavailable, naming the pip command, unless the html extra can be imported."""
    missing = []
    for name in NEEDS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise HtmlUnavailable(f"--html needs the html extra ({', '.join(missing)} not installed): {PIP_HINT}")


def write(path: Path, reports: Sequence[Report | dict[str, Any]]) -> Path:
    """Render the reports into one page at `path` (written whole or not at all)."""
    page = render(reports)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def render(reports: Sequence[Report | dict[str, Any]]) -> str:
    """The page: with several reports, a table of models first, each row linking to its section."""
    import jinja2
    import vl_convert

    from . import charts

    dicts = [json.loads(json.dumps(r.to_dict() if isinstance(r, Report) else r, default=str)) for r in reports]
    sections, specs = [], {}
    for number, report in enumerate(dicts, start=1):
        section = _section(report, number)
        for kind, make in (("memory", charts.memory_chart), ("time", charts.time_chart),
                           ("histogram", charts.histogram_chart)):
            spec = make(report)
            if spec is not None:
                specs[f"{section['anchor']}-{kind}"] = spec
        section["charts"] = {kind for kind in ("memory", "time", "histogram") if f"{section['anchor']}-{kind}" in specs}
        sections.append(section)
    vega = _vega_script()
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    environment.filters.update(size=_size, seconds=_seconds)
    return environment.from_string(PAGE).render(
        sections=sections, version=__version__, vega_script=vega, main_script=MAIN_SCRIPT,
        csp=_policy([vega, MAIN_SCRIPT]), charts_json=_script_json(specs),
        vega_lite_version=_vega_lite_version(), vl_convert_version=vl_convert.__version__,
        made=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        title=_title(sections))


# ---------------------------------------------------------------- the page's contents

def _section(report: dict[str, Any], number: int) -> dict[str, Any]:
    """What the template shows for one report, worked out in Python rather than in the template."""
    model = report.get("model") or {}
    limits = report.get("limits") or {}
    durations = report.get("durations") or {}
    phases = durations.get("phases") or {}
    peak, limit = report.get("peak_memory_bytes"), limits.get("memory_bytes")
    code = (report.get("reason") or "") + (f"/{report['subcode']}" if report.get("subcode") else "")
    checks = report.get("checks") or []
    facts = [("predictions", f"{report['n_predictions']:,}" if report.get("n_predictions") is not None else "—"),
             ("predict", _seconds(phases.get("predicting"))),
             ("peak memory", f"{human_bytes(peak)}" + (f" · {peak / limit:.0%} of {human_bytes(limit)}"
                                                        if peak and limit else "") if peak else "—"),
             ("container", f"{_seconds(durations.get('container_seconds'))} of {_seconds(limits.get('timeout_seconds'))}"
              if durations.get("container_seconds") is not None else "—"),
             ("total", _seconds(durations.get("total")))]
    frames = (report.get("evidence") or {}).get("traceback") or []
    return {
        "anchor": f"model-{number}", "report": report, "name": Path(str(model.get("path") or "model")).name,
        "status": report.get("status") or "?", "code": code, "facts": facts,
        "numerai_log": numerai_log.shown(report.get("reason"), report.get("numerai_log")),
        "failed": [c for c in checks if c.get("passed") is False],
        "phase_rows": [(p.get("phase"), p.get("start"), p.get("end")) for p in report.get("phase_times") or []],
        "frames": frames, "python": report.get("python") or "—", "peak": peak,
        "predict": phases.get("predicting"), "modules": _modules(report), "libraries": _libraries(report),
        "phase_names": _phase_names(),
    }


def _modules(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The pickle's packages, each with what the run's image (and every other standard image) has."""
    rows = []
    for use in (report.get("pickle") or {}).get("modules") or []:
        cells = []
        for python, profiles in sorted((use.get("images") or {}).items()):
            cell = (profiles or {}).get("standard") or {}
            present = cell.get("present")
            mark = "✓" if present else "✗" if present is False else "?"
            cells.append((python, mark + (f" {cell['version']}" if present and cell.get("version") else ""),
                          python == report.get("python")))
        rows.append({"package": use.get("package"), "kind": use.get("kind"), "names": use.get("names") or [],
                     "cells": cells})
    return rows


def _libraries(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(library, version in the image, version recorded in the pickle) for what the pickle recorded."""
    versions = report.get("library_versions") or {}
    rows = []
    for record in (report.get("pickle") or {}).get("recorded_versions") or []:
        library = record.get("library")
        rows.append((library, versions.get(library, "—"), record.get("version")
                     + (" (inferred)" if record.get("inferred") else "")))
    return rows


def _phase_names() -> dict[str, str]:
    from .charts import PHASES

    return {key: label for key, (label, _) in PHASES.items()}


def _title(sections: list[dict[str, Any]]) -> str:
    if len(sections) == 1:
        return f"{sections[0]['name']}: {sections[0]['status']} · numerai-sandbox"
    counts: dict[str, int] = {}
    for section in sections:
        counts[section["status"]] = counts.get(section["status"], 0) + 1
    return f"{len(sections)} models: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " · numerai-sandbox"


def _size(value: Any) -> str:
    return human_bytes(value) if isinstance(value, int) else "—"


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if value < 0.1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min" + (f" {rest} s" if rest else "")


# ---------------------------------------------------------------- scripts, safely inlined

def _vega_script() -> str:
    """Vega, Vega-Lite and vega-embed as one script, bundled by vl-convert (cached: bundling takes seconds)."""
    import vl_convert

    version = _vega_lite_version()
    path = cache_dir() / "html" / f"vega-embed-vl{version}-vlc{vl_convert.__version__}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    script = vl_convert.javascript_bundle(vl_version=version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(script, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only costs the bundling next time
    return script


def _vega_lite_version() -> str:
    """The Vega-Lite release altair writes specs for, as vl-convert names it (v6.4.1 -> 6.4)."""
    import altair

    return ".".join(altair.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def _script_json(value: Any) -> str:
    """JSON that cannot end its <script> element or open another."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _policy(scripts: list[str]) -> str:
    """No network at all; only our own scripts run (by hash); Vega compiles its expressions (unsafe-eval)."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
                      for s in scripts)
    return (f"default-src 'none'; script-src {hashes} 'unsafe-eval'; style-src 'unsafe-inline'; "
            "img-src data:; font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'")


# Draws every chart of the page; window.numeraiSandbox exposes the views (and a promise) to tests.
MAIN_SCRIPT = """
(function () {
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  var views = {};
  var jobs = Object.keys(specs).map(function (id) {
    var element = document.getElementById(id);
    return vegaEmbed(element, specs[id], {renderer: "svg", actions: false}).then(function (result) {
      views[id] = result.view;
    }, function (error) {
      element.textContent = "This chart could not be drawn: " + error;
      throw error;
    });
  });
  window.numeraiSandbox = {views: views, ready: Promise.all(jobs)};
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="numerai-sandbox {{ version }}">
<title>{{ title }}</title>
<style>
  :root { --ink: #1d2330; --muted: #5d6675; --line: #e3e7ee; --soft: #f6f8fb;
          --Success: #1e7d3a; --Failed: #c62828; --Error: #7b1fa2; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
         background: #fff; }
  main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 22px; margin: 0; word-break: break-all; }
  h3 { font-size: 15px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
  .sub { color: var(--muted); font-size: 13px; }
  section.model { margin-top: 28px; padding-top: 20px; border-top: 3px solid var(--line); }
  .head { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
  .badge { display: inline-block; padding: 3px 12px; border-radius: 14px; color: #fff; font-weight: 600;
           font-size: 14px; }
  .badge.Success { background: var(--Success); } .badge.Failed { background: var(--Failed); }
  .badge.Error { background: var(--Error); } .badge.other { background: var(--muted); }
  code, pre, .mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 13px; }
  .verdict { margin: 14px 0 0; padding: 12px 16px; border-left: 4px solid var(--muted); background: var(--soft);
             border-radius: 0 6px 6px 0; }
  .verdict.Success { border-color: var(--Success); } .verdict.Failed { border-color: var(--Failed); }
  .verdict.Error { border-color: var(--Error); }
  .verdict p { margin: 4px 0; }
  .facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 16px 0 0; }
  .fact { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
  .fact b { display: block; font-size: 16px; }
  .fact span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: 12.5px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.cell { white-space: nowrap; } td.here { background: #fffbe6; }
  .pass { color: var(--Success); } .fail { color: var(--Failed); font-weight: 600; } .skip { color: var(--muted); }
  .warn { color: #a15c00; }
  pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
        overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: 6px 0; }
  details { margin: 8px 0; } summary { cursor: pointer; color: var(--muted); }
  .chart { margin: 6px 0 2px; min-height: 40px; }
  .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 28px; }
  @media (max-width: 760px) { .grid2 { grid-template-columns: 1fr; } }
  ul.plain { margin: 4px 0; padding-left: 18px; }
  .vega-embed .vg-tooltip, #vg-tooltip-element { font-size: 12px; }
  footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
</style>
<script>{{ vega_script | safe }}</script>
</head>
<body>
<main>
<h1>numerai-sandbox report</h1>
<div class="sub">{{ sections | length }} model{{ "s" if sections | length != 1 }} run in Numerai's conditions · {{ made }}</div>

{% if sections | length > 1 %}
<h3>Models</h3>
<table class="models">
<tr><th>model</th><th>verdict</th><th>Python</th><th class="num">peak memory</th><th class="num">predict</th></tr>
{% for s in sections %}
<tr><td><a href="#{{ s.anchor }}">{{ s.name }}</a></td>
<td><span class="{{ 'pass' if s.status == 'Success' else 'fail' }}">{{ s.status }}</span>{% if s.code %} <code>{{ s.code }}</code>{% endif %}</td>
<td>{{ s.python }}</td><td class="num">{{ s.peak | size if s.peak else "—" }}</td>
<td class="num">{{ s.predict | seconds }}</td></tr>
{% endfor %}
</table>
{% endif %}

{% for s in sections %}{% set r = s.report %}
<section class="model" id="{{ s.anchor }}">
<div class="head">
  <h2>{{ s.name }}</h2>
  <span class="badge {{ s.status if s.status in ('Success', 'Failed', 'Error') else 'other' }}">{{ s.status }}</span>
  {% if s.code %}<code>{{ s.code }}</code>{% endif %}
</div>
<div class="verdict {{ s.status }}">
  {% if r.message %}<p class="message">{{ r.message }}</p>{% endif %}
  {% if s.status == "Success" and not r.message %}<p class="message">Numerai would accept these predictions.</p>{% endif %}
  {% if r.action %}<p><b>What to do:</b> {{ r.action }}</p>{% endif %}
  {% if s.numerai_log %}<p class="numerai-log"><b>Numerai's log:</b> <code>{{ s.numerai_log }}</code></p>{% endif %}
  {% for note in r.notes %}<p class="sub">note: {{ note }}</p>{% endfor %}
</div>
<div class="facts">
{% for label, value in s.facts %}<div class="fact"><span>{{ label }}</span><b>{{ value }}</b></div>{% endfor %}
</div>

<h3>Memory and time</h3>
{% if "memory" in s.charts %}
<div class="chart" id="{{ s.anchor }}-memory"></div>
<div class="sub">Memory in use by the container (its cgroup), sampled every 0.2 s, against the
{{ r.limits.memory_bytes | size }} limit; the dashed line is the cgroup's own peak, which also sees spikes between
samples. Scroll or drag on the chart to zoom and pan; double-click to reset.</div>
{% else %}
<p class="sub">No memory was sampled: the model did not run in a container.</p>
{% endif %}
{% if "time" in s.charts %}
<div class="chart" id="{{ s.anchor }}-time"></div>
<table class="phases">
<tr><th>phase</th><th class="num">from</th><th class="num">to</th><th class="num">took</th></tr>
{% for name, start, end in s.phase_rows %}
<tr><td>{{ s.phase_names.get(name, name) }}</td><td class="num">{{ start | seconds }}</td><td class="num">{{ end | seconds }}</td>
<td class="num">{{ (end - start) | seconds }}</td></tr>
{% endfor %}
</table>
{% endif %}

<h3>Predictions</h3>
{% set p = r.predictions_summary %}
{% if p %}
{% if "histogram" in s.charts %}<div class="chart" id="{{ s.anchor }}-histogram"></div>
{% if p.nan or p.infinite %}<div class="sub">Not in the histogram: {{ "{:,}".format(p.nan) }} NaN{% if p.infinite %} and {{ "{:,}".format(p.infinite) }} infinite{% endif %} value(s).</div>{% endif %}
{% if p.outside_0_1 %}<div class="sub">The dashed lines mark 0 and 1: Numerai accepts values between them only (bins outside in red).</div>{% endif %}{% else %}
<p class="sub">No histogram: the values are not numbers.</p>{% endif %}
<table class="summary">
<tr><th>column</th><th class="num">rows</th><th class="num">NaN</th><th class="num">min</th><th class="num">max</th>
<th class="num">mean</th><th class="num">std</th><th class="num">distinct</th><th class="num">tied rows</th>
<th class="num">outside [0, 1]</th></tr>
<tr><td><code>{{ p.column }}</code></td><td class="num">{{ "{:,}".format(p.count) }}</td><td class="num">{{ "{:,}".format(p.nan) }}</td>
<td class="num">{{ "%.6g" | format(p.min) if p.min is defined else "—" }}</td>
<td class="num">{{ "%.6g" | format(p.max) if p.max is defined else "—" }}</td>
<td class="num">{{ "%.4f" | format(p.mean) if p.mean is defined else "—" }}</td>
<td class="num">{{ "%.4f" | format(p.std) if p.std is defined else "—" }}</td>
<td class="num">{{ "{:,}".format(p.distinct) if p.distinct is defined else "—" }}</td>
<td class="num">{{ "{:,}".format(p.tied_rows) if p.tied_rows is defined else "—" }}</td>
<td class="num">{{ "{:,}".format(p.outside_0_1) if p.outside_0_1 is defined else "—" }}</td></tr>
</table>
{% else %}
<p class="sub">No predictions came back to look at.</p>
{% endif %}
{% if s.failed %}
<h3>Rules broken</h3>
{% for c in s.failed %}
<div class="rule">
<p><span class="{{ 'fail' if c.blocking else 'warn' }}">✗ {{ c.rule }}</span> <span class="sub">({{ c.source }}{{ ", a warning only" if not c.blocking }})</span>
{{ c.detail }}</p>
{% if c.rows %}
<table class="rows"><tr><th>id</th><th>value</th></tr>
{% for id, value in c.rows %}<tr><td class="mono">{{ id }}</td><td class="mono">{{ value }}</td></tr>{% endfor %}
</table>
{% elif c.examples %}<p class="mono">{{ c.examples | join(", ") }}</p>{% endif %}
</div>
{% endfor %}
{% endif %}
{% if r.checks %}
<details><summary>All of Numerai's rules, in the order it applies them ({{ r.checks | length }})</summary>
<table class="checks"><tr><th>rule</th><th>checked by</th><th>result</th><th>detail</th></tr>
{% for c in r.checks %}
<tr><td><code>{{ c.rule }}</code></td><td>{{ c.source }}</td>
<td class="{{ 'pass' if c.passed else 'skip' if c.passed is none else 'fail' if c.blocking else 'warn' }}">{{ "passed" if c.passed else "not checked" if c.passed is none else "failed" if c.blocking else "warning" }}</td>
<td>{{ c.detail }}</td></tr>
{% endfor %}
</table></details>
{% endif %}

{% if s.frames or r.logs_tail or r.traceback %}
<h3>The model's output</h3>
{% if s.frames %}
<p>Where it failed (your code first, innermost first):</p>
<table class="frames"><tr><th>file</th><th class="num">line</th><th>function</th><th>code</th></tr>
{% for f in s.frames %}<tr><td class="mono">{{ f.file }}</td><td class="num">{{ f.line }}</td><td class="mono">{{ f.function }}</td>
<td class="mono">{{ f.code }}{% if f.library %} <span class="sub">({{ f.library }})</span>{% endif %}</td></tr>{% endfor %}
</table>
{% endif %}
{% if r.traceback %}<details><summary>Full traceback</summary><pre>{{ r.traceback }}</pre></details>{% endif %}
{% if r.logs_tail %}<details{{ " open" if s.status != "Success" }}><summary>Last lines of the model's output{{ " (cut: it wrote more than the log cap)" if r.logs_truncated }}</summary><pre class="logs">{{ r.logs_tail }}</pre></details>{% endif %}
{% endif %}

<h3>The pickle</h3>
{% set k = r.pickle %}
{% if k %}
<table class="pickle">
<tr><th>file</th><td class="mono">{{ r.model.path }} · {{ r.model.size_bytes | size if r.model.size_bytes is not none else "?" }} · sha256 {{ (r.model.sha256 or "?")[:16] }}…</td></tr>
<tr><th>made by</th><td>Python {{ k.python or "unknown" }}{% if not k.python and k.candidates %} (the evidence allows {{ k.candidates | join(", ") }}){% endif %}{% if k.choice %} · <span class="sub">{{ k.choice }}</span>{% endif %}</td></tr>
<tr><th>serializer</th><td>{{ k.serializer }}, protocol {{ k.protocol }}</td></tr>
{% if k.callable %}<tr><th>callable</th><td>{{ k.callable.kind }} <code>{{ k.callable.qualname or k.callable.name or "" }}</code>{% if k.callable.params is not none %}({{ k.callable.params | join(", ") }}){% endif %}</td></tr>{% endif %}
</table>
{% if k.evidence %}<details><summary>How the Python was read from the pickle</summary><ul class="plain">{% for e in k.evidence %}<li>{{ e }}</li>{% endfor %}{% for e in k.unknown_because or [] %}<li>{{ e }}</li>{% endfor %}</ul></details>{% endif %}
{% if s.modules %}
<p>Modules it needs, and which standard image has them (the run's image highlighted):</p>
<table class="modules"><tr><th>package</th><th>kind</th>{% for python, _, _ in s.modules[0].cells %}<th>{{ python }}</th>{% endfor %}<th>names</th></tr>
{% for m in s.modules %}<tr><td><code>{{ m.package }}</code></td><td>{{ m.kind }}</td>
{% for python, cell, here in m.cells %}<td class="cell{{ ' fail' if cell.startswith('✗') }}{{ ' here' if here }}">{{ cell }}</td>{% endfor %}
<td class="mono">{{ m.names[:4] | join(", ") }}{% if m.names | length > 4 %} (+{{ m.names | length - 4 }}){% endif %}</td></tr>{% endfor %}
</table>
{% endif %}
{% if s.libraries %}
<p>Library versions recorded inside the pickle, against the image:</p>
<table class="libraries"><tr><th>library</th><th>in the pickle</th><th>in the image</th></tr>
{% for library, image, recorded in s.libraries %}<tr><td>{{ library }}</td><td>{{ recorded }}</td><td>{{ image }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if k.risky or k.problems %}
<p>Warnings (what the pickle could do or what is wrong with it; not a verdict):</p>
<ul class="plain warnings">{% for w in k.risky %}<li class="warn">{{ w }}</li>{% endfor %}{% for w in k.problems or [] %}<li class="fail">{{ w }}</li>{% endfor %}</ul>
{% endif %}
{% else %}
<p class="sub">The pickle was not inspected.</p>
{% endif %}

<h3>Image, limits and data</h3>
<div class="grid2">
<table class="image">
{% if r.image %}
<tr><th>image</th><td class="mono">{{ r.image.ref }}</td></tr>
<tr><th>Python</th><td>{{ r.python_full or r.python }} · {{ r.image.profile }} profile</td></tr>
<tr><th>image id</th><td class="mono">{{ (r.image.id or "")[:19] }}</td></tr>
{% if r.image.extra_requirements %}<tr><th>extra pins</th><td class="mono">{{ r.image.extra_requirements }}</td></tr>{% endif %}
{% else %}<tr><th>image</th><td>none: the run ended before one was chosen</td></tr>{% endif %}
<tr><th>data</th><td>{{ r.data.description or "—" }}</td></tr>
{% if r.data.live %}<tr><th>live</th><td class="mono">{{ r.data.live }}</td></tr>{% endif %}
{% if r.container.name %}<tr><th>container</th><td class="mono">{{ r.container.name }}{% if r.container.exit_code is not none %} · exit {{ r.container.exit_code }}{% endif %}{% if r.container.oom_killed %} · killed: out of memory{% endif %}{% if r.container.timed_out %} · killed: timeout{% endif %}</td></tr>{% endif %}
</table>
<table class="limits">
<tr><th>memory</th><td>{{ r.limits.memory_bytes | size }}, swap off</td></tr>
<tr><th>CPUs</th><td>{{ r.limits.cpus }}</td></tr>
<tr><th>timeout</th><td>{{ r.limits.timeout_seconds | seconds }}</td></tr>
<tr><th>network</th><td>{{ r.limits.network }}</td></tr>
<tr><th>/tmp</th><td>{{ r.limits.tmp_bytes | size }} (counts against memory)</td></tr>
</table>
</div>
{% if r.library_versions %}
<details><summary>Every library in the image ({{ r.library_versions | length }})</summary>
<table class="versions">{% for name, v in r.library_versions | dictsort %}<tr><td>{{ name }}</td><td class="mono">{{ v }}</td></tr>{% endfor %}</table>
</details>
{% endif %}
{% if r.timeline %}
<details><summary>Statuses</summary>
<table class="timeline">{% for e in r.timeline %}<tr><td>{{ e.status }}</td><td class="num">{{ "%.2f" | format(e.elapsed) }} s</td><td class="sub">{{ e.at }}</td></tr>{% endfor %}</table>
</details>
{% endif %}
</section>
{% endfor %}

<footer>Made by numerai-sandbox {{ version }} on {{ made }}. Charts: Vega-Lite {{ vega_lite_version }} through altair,
with Vega's JavaScript inlined (vl-convert {{ vl_convert_version }}); the page makes no network request.</footer>
</main>
<script type="application/json" id="chart-specs">{{ charts_json | safe }}</script>
<script>{{ main_script | safe }}</script>
</body>
</html>
"""
