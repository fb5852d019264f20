"""The HTML report and what feeds it: memory samples, phase times, the predictions' summary, the page.

Pure logic is tested directly; the page itself is opened in Debian's Chromium (driven by
selenium and Debian's chromedriver, never a downloaded browser) for real runs, offline: every
request but the file's own is blocked and any attempt fails the test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


# ---------------------------------------------------------------- memory samples

def test_memory_samples_stay_bounded_even_and_keep_the_largest():
    from runner.sandbox.backend import MemorySamples

    series = MemorySamples(limit=100)
    for tick in range(3001):
        series.add(tick * 0.2, 10_000 + tick + (5_000_000 if tick == 1337 else 0))  # one spike, off any stride
    points = series.points()
    assert 50 <= len(points) <= 101
    assert [round(1337 * 0.2, 3), 5_000_000 + 10_000 + 1337] in points
    assert series.largest == 5_000_000 + 10_000 + 1337
    assert points[0] == [0.0, 10_000] and points == sorted(points)
    gaps = {round(b[0] - a[0], 3) for a, b in zip(points, points[1:])
            if round(1337 * 0.2, 3) not in (a[0], b[0])}
    assert len(gaps) == 1  # evenly spread, apart from the kept spike
    assert series.latest == [600.0, 13_000]


def test_memory_samples_can_be_read_while_they_grow():
    from runner.sandbox.backend import MemorySamples

    series = MemorySamples(limit=64)
    stop = threading.Event()

    def grow():
        tick = 0
        while not stop.is_set():
            series.add(tick * 0.2, tick)
            tick += 1

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        for _ in range(2000):
            points = series.points()
            assert len(points) <= 64 and points == sorted(points)
    finally:
        stop.set()
        writer.join()


# ---------------------------------------------------------------- phase times

def _frame(kind: str, body) -> bytes:
    payload = json.dumps(body).encode()
    return f"NSBX1 {kind} {len(payload)}\n".encode() + payload


def test_phase_times_are_seconds_since_the_container_started():
    from runner.sandbox.protocol import FrameParser, read_frames

    parser = FrameParser(max_predictions=1024)
    start = 1_800_000_000.0
    parser.feed(b"".join([
        _frame("phase", {"phase": "starting", "at": start + 0.05}),
        _frame("phase", {"phase": "loading", "at": start + 0.5}),
        _frame("phase", {"phase": "reading_data", "at": "not a time"}),  # a forged frame is skipped
        _frame("phase", {"phase": "predicting", "at": start + 2.0}),
        _frame("phase", {"phase": "writing", "at": start + 999.0}),  # clamped into the container's life
        _frame("done", {"durations": {"starting": 0.4, "loading": 5.0, "predicting": 1.0}}),
    ]))
    times = read_frames(parser).phase_times(start, start + 4.0)
    assert times == [
        {"phase": "starting", "start": 0.05, "end": 0.45},  # measured duration
        {"phase": "loading", "start": 0.5, "end": 2.0},  # measured 5 s, but the next phase began at 2 s
        {"phase": "predicting", "start": 2.0, "end": 3.0},
        {"phase": "writing", "start": 4.0, "end": 4.0},
    ]


# ---------------------------------------------------------------- the predictions' summary

def test_summary_counts_nan_ties_range_and_bins():
    import numpy as np
    import pandas as pd

    from runner.verdict.validate import HISTOGRAM_BINS, summarize

    values = pd.Series([0.5, 0.5, 0.5, 0.1, np.nan, 1.5, -0.5, np.inf], name="prediction")
    summary = summarize(values, "prediction")
    assert summary["count"] == 8 and summary["nan"] == 1 and summary["infinite"] == 1
    assert summary["tied_rows"] == 3 and summary["distinct"] == 5 and summary["outside_0_1"] == 3
    assert (summary["min"], summary["max"]) == (-0.5, 1.5)
    histogram = summary["histogram"]
    assert len(histogram["counts"]) == HISTOGRAM_BINS and sum(histogram["counts"]) == 6
    assert histogram["edges"][0] == -0.5 and histogram["edges"][-1] == 1.5
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, no numpy values

    ranks = summarize(pd.Series(np.linspace(0, 1, 1000)), "prediction")["histogram"]
    assert (ranks["edges"][0], ranks["edges"][-1]) == (0.0, 1.0) and sum(ranks["counts"]) == 1000
    assert summarize(pd.Series(["a", "b", "a"]), "prediction") == {
        "column": "prediction", "count": 3, "nan": 0, "numeric": False, "distinct": 2}


def test_failed_rules_carry_their_rows():
    import pandas as pd

    from runner.sandbox.protocol import Returned
    from runner.verdict.validate import validate

    csv = b"id,prediction\nn1,0.1\nn2,\nn3,0.3\nn4,\n"
    facts = {"returned_type": "pandas.core.frame.DataFrame", "exact_dataframe": True, "index_levels": 1,
             "first_column_dtype": "float64"}
    result = validate(Returned.parse(facts), csv, pd.Series(["n1", "n2", "n3", "n4"]))
    nan = next(c for c in result.checks if c.rule == "nan")
    assert nan.passed is False and nan.rows == [["n2", "NaN"], ["n4", "NaN"]]
    assert result.summary["nan"] == 2 and result.summary["count"] == 4


# ---------------------------------------------------------------- the page, without a browser

def _report(**changes) -> dict:
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    report = Report(Status.FAILED, "invalid_output", "At least one value is NaN.", action="Fill NaN.",
                    subcode="nan", limits={"memory_bytes": 4 * 1024**3, "timeout_seconds": 600.0, "cpus": 1.0},
                    memory_samples=[[0.0, 10 * 1024**2], [0.2, 80 * 1024**2], [0.4, 60 * 1024**2]],
                    phase_times=[{"phase": "starting", "start": 0.01, "end": 0.2},
                                 {"phase": "predicting", "start": 0.2, "end": 0.4}],
                    peak_memory_bytes=90 * 1024**2, model={"path": "/models/m.pkl"},
                    durations={"container_seconds": 0.45, "phases": {"predicting": 0.2}})
    data = report.to_dict()
    data.update(changes)
    return data


def test_page_escapes_what_the_model_controls():
    pytest.importorskip("altair")
    from runner.verdict.html import render

    hostile = "<script>alert('pwned')</script>"
    page = render([_report(message=hostile, logs_tail=hostile + "</pre>", checks=[
        {"rule": "nan", "source": "numerai-predict", "passed": False, "blocking": True, "count": 1,
         "examples": [hostile], "detail": hostile, "rows": [[hostile, "NaN"]]}],
        predictions_summary={"column": hostile, "count": 1, "nan": 1, "numeric": True})])
    assert hostile not in page and "&lt;script&gt;alert(" in page
    assert '<meta http-equiv="Content-Security-Policy"' in page and "default-src &#39;none&#39;" in page
    specs = page[page.index('id="chart-specs">'):]
    assert "</script" not in specs[len('id="chart-specs">'):specs.index("</script>")]


def test_page_shows_the_line_numerais_log_would_show():
    pytest.importorskip("altair")
    from runner.verdict.html import render

    page = render([_report(numerai_log="Pickle function returned at least 1 NaN prediction")])
    assert "<b>Numerai's log:</b> <code>Pickle function returned at least 1 NaN prediction</code>" in page
    killed = render([_report(reason="out_of_memory", subcode=None,
                             numerai_log="Predicting on 6720 rows of live features")])
    assert "Predicting on 6720 rows of live features — its last line: the kernel killed the process" in killed


def test_page_of_many_reports_starts_with_a_linked_table():
    pytest.importorskip("altair")
    from runner.verdict.html import render

    page = render([_report(), _report(status="Success", reason=None, subcode=None, model={"path": "/x/good.pkl"})])
    start = page.index('<table class="models">')
    table = page[start:page.index("</table>", start)]
    assert 'href="#model-1"' in table and 'href="#model-2"' in table and "good.pkl" in table
    assert 'id="model-1"' in page and 'id="model-2"' in page
    assert "2 models: 1 Failed, 1 Success" in page


def test_html_without_the_extra_is_a_usage_error(tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x05N.")
    code = ("import sys; sys.modules['altair'] = None; from runner.cli.main import main; "
            f"sys.argv = ['numerai-sandbox', 'run', {str(model)!r}, '--html', {str(tmp_path / 'r.html')!r}]; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'numerai-sandbox[html]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args,message", [
    (["--html", "{model}"], "is one of the inputs"),
    (["--html", "/nonexistent-dir/r.html"], "does not exist"),
    (["--report", "{out}", "--html", "{out}"], "--report and --html name the same file"),
])
def test_html_path_is_checked_like_the_other_outputs(tmp_path, args, message):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x05N.")
    argv = [a.format(model=model, out=tmp_path / "same") for a in args]
    result = run_cli("run", model, *argv)
    assert result.code == 2 and message in result.stderr, result.stderr
    assert model.read_bytes() == b"\x80\x05N." and not (tmp_path / "same").exists()


# ---------------------------------------------------------------- real runs

def test_plain_run_does_not_import_the_chart_libraries(models):
    code = ("import atexit, sys; from runner.cli.main import main; "
            "atexit.register(lambda: print('LOADED', sorted(m for m in ('altair', 'vl_convert', 'jinja2') "
            "if m in sys.modules), file=sys.stderr)); "
            f"sys.argv = ['numerai-sandbox', 'run', {str(models['good_1arg'])!r}]; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED []" in proc.stderr


RUNS = {"good_1arg": "Success", "allocate_6gb": "out_of_memory", "nan_output": "invalid_output"}


@pytest.fixture(scope="module")
def pages(models, tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    """One real run per verdict the browser test looks at: (its JSON report, its HTML page)."""
    pytest.importorskip("altair")
    out = tmp_path_factory.mktemp("html")
    made = {}
    for name in RUNS:
        page = out / f"{name}.html"
        result = run_cli("run", models[name], "--json", "--html", page)
        assert result.code in (0, 1), result.stderr
        assert f"HTML report: {page}" in result.stderr
        made[name] = (result.report, page)
    return made


def test_reports_hold_the_memory_curve_and_phases(pages):
    report = pages["allocate_6gb"][0]
    samples = report["memory_samples"]
    assert len(samples) > 5 and samples == sorted(samples)
    assert all(0 <= t <= report["durations"]["container_seconds"] + 1 and b > 0 for t, b in samples)
    assert max(b for _, b in samples) > 2 * 1024**3  # the curve climbs towards the 4 GiB limit
    assert report["peak_memory_bytes"] >= max(b for _, b in samples)
    phases = [p["phase"] for p in report["phase_times"]]
    assert phases == ["starting", "loading", "reading_data", "predicting"]  # numerai-predict's order
    assert all(p["start"] <= p["end"] for p in report["phase_times"])
    assert pages["good_1arg"][0]["predictions_summary"]["count"] == pages["good_1arg"][0]["n_predictions"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with networking of its own off, a fresh profile, and every non-file URL blocked."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail("Debian's chromium and chromium-driver are required here (make browser installs them)")
        pytest.skip("no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="numerai-sandbox-test-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions", f"--user-data-dir={profile}",
                 "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                 "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*",
                                                                   "ftp://*", "blob:*"]})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, page: Path) -> None:
    """Load the page, wait for every chart, and fail on any console error or any request but the file."""
    # The browser's own start page (chrome:// resources) may still be loading when a test begins on a
    # busy machine: settle on a blank page first, then forget everything logged before this page.
    driver.get("about:blank")
    driver.get_log("performance")
    driver.get_log("browser")
    url = page.resolve().as_uri()
    driver.get(url)
    drawn = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "window.numeraiSandbox.ready.then(function () { done('drawn'); }, function (e) { done('failed: ' + e); });")
    assert drawn == "drawn"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            requested.append(message["params"].get("request", {}).get("url") or message["params"].get("url"))
    assert requested and all(u == url for u in requested), requested


def chart_points(driver, chart: str, dataset: str, fields: list[str]) -> list[list]:
    """The named dataset a chart was drawn from, read back from Vega's view: one list of `fields` per point."""
    return driver.execute_script(
        "var fields = arguments[2];"
        "return window.numeraiSandbox.views[arguments[0]].data(arguments[1]).map(function (d) {"
        "  return fields.map(function (f) { return d[f]; }); });", chart, dataset, fields)


def marks(driver, chart: str, name: str) -> int:
    """How many SVG elements the named mark drew in the chart."""
    return driver.execute_script(
        "var g = document.querySelector('#' + arguments[0] + ' svg g.' + arguments[1] + '_marks');"
        "return g ? g.children.length : 0;", chart, name)


@pytest.mark.parametrize("name", list(RUNS))
def test_page_in_a_real_browser(pages, browser, name):
    report, page = pages[name]
    open_page(browser, page)
    # The memory chart: its data points are the report's samples, and the limit line is drawn where 4 GiB is.
    assert chart_points(browser, "model-1-memory", "memory", ["seconds", "bytes"]) == report["memory_samples"]
    assert marks(browser, "model-1-memory", "memory_curve") == 1
    assert marks(browser, "model-1-memory", "limit_line") == 1
    limit_y = browser.execute_script(
        "return window.numeraiSandbox.views['model-1-memory'].scale('y')(arguments[0] / 1048576);",
        report["limits"]["memory_bytes"])
    line = browser.find_element("css selector", "#model-1-memory g.limit_line_marks line").get_attribute("transform")
    assert math.isclose(float(line.split(",")[1].rstrip(")")), limit_y, abs_tol=0.01)
    assert marks(browser, "model-1-time", "timeout_line") == 1
    phases = chart_points(browser, "model-1-time", "phases", ["start", "end"])
    assert phases == [[p["start"], p["end"]] for p in report["phase_times"]]
    text = browser.find_element("tag name", "body").text
    assert report["status"] in text and report["message"] in text
    summary = report["predictions_summary"]
    if summary:
        assert marks(browser, "model-1-histogram", "histogram_bars") == len(summary["histogram"]["counts"])
        counts = [c for (c,) in chart_points(browser, "model-1-histogram", "histogram", ["count"])]
        assert counts == summary["histogram"]["counts"]
    if report["reason"]:
        assert report["reason"] in text and report["action"] in text
    if report["reason"] == "invalid_output":
        nan = next(c for c in report["checks"] if c["rule"] == "nan")
        for row_id, _ in nan["rows"]:
            assert row_id in text


def test_one_page_for_many_runs_in_a_real_browser(pages, browser, tmp_path):
    from runner.verdict import html

    page = html.write(tmp_path / "all.html", [report for report, _ in pages.values()])
    open_page(browser, page)
    links = browser.find_elements("css selector", "table.models a")
    assert [a.text for a in links] == [f"{name}.pkl" for name in RUNS]
    for number, (report, _) in enumerate(pages.values(), start=1):
        assert links[number - 1].get_attribute("href").endswith(f"#model-{number}")
        assert chart_points(browser, f"model-{number}-memory", "memory", ["seconds", "bytes"]) == report["memory_samples"]


def test_the_offline_guard_catches_a_request(browser, tmp_path):
    """The guard itself: a page that reaches for the network fails open_page."""
    page = tmp_path / "leaky.html"
    page.write_text("<!DOCTYPE html><html><head><script>window.numeraiSandbox = {ready: Promise.resolve()};"
                    "</script></head><body><img src='https://example.com/pixel.png' alt=''></body></html>")
    with pytest.raises(AssertionError, match="example.com"):
        open_page(browser, page)
