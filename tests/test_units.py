"""Pure logic: the frame parser, the status machine, option parsing, the log buffer, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.verdict import reasons
from runner.usecases.inputs import parse_duration, parse_memory
from runner.verdict.lifecycle import EXIT_CODES, IllegalTransition, Lifecycle, Status
from runner.sandbox.protocol import FrameParser, read_frames
from runner.verdict.report import Report
from runner.run.watch import LogBuffer


def frame(kind: str, payload: bytes | dict) -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"NSBX1 {kind} {len(body)}\n".encode() + body


class TestFrameParser:
    def test_frames_split_across_chunks(self):
        data = frame("hello", {"python": "3.11.2"}) + frame("phase", {"phase": "loading"}) + frame("predictions", b"id,p\n")
        parser = FrameParser(max_predictions=1000)
        for i in range(len(data)):  # one byte at a time
            parser.feed(data[i:i + 1])
        assert [f.kind for f in parser.frames] == ["hello", "phase", "predictions"]
        assert parser.phase == "loading" and parser.last("predictions") == b"id,p\n" and not parser.broken

    def test_garbage_breaks_the_channel_but_keeps_what_came_before(self):
        parser = FrameParser(max_predictions=1000)
        parser.feed(frame("phase", {"phase": "predicting"}) + b"hello world, I am not a frame\n")
        assert parser.broken and parser.phase == "predicting"

    def test_oversized_predictions_are_refused_unread(self):
        parser = FrameParser(max_predictions=10)
        parser.feed(b"NSBX1 predictions 999999999\n")
        assert parser.oversized == 999999999 and not parser.frames

    def test_unknown_kind_and_huge_json_rejected(self):
        assert FrameParser(10).feed(b"NSBX1 verdict 2\n{}") == []
        parser = FrameParser(10)
        parser.feed(b"NSBX1 result 99999999999\n")
        assert parser.broken

    def test_malformed_json_body_reads_as_none(self):
        parser = FrameParser(10)
        parser.feed(b"NSBX1 done 3\n{{{")
        assert read_frames(parser).finished and parser.last("done") is None


class TestLifecycle:
    def test_legal_path_and_timeline(self):
        seen = []
        life = Lifecycle(listeners=[seen.append])
        for status in (Status.PENDING, Status.RUNNING, Status.VALIDATING, Status.SUCCESS):
            life.enter(status)
        assert [e.status for e in seen] == [Status.PENDING, Status.RUNNING, Status.VALIDATING, Status.SUCCESS]
        assert set(life.durations()) == {"Pending", "Running", "Validating", "total"}

    @pytest.mark.parametrize("path", [
        [Status.RUNNING],
        [Status.PENDING, Status.SUCCESS],
        [Status.PENDING, Status.VALIDATING],
        [Status.PENDING, Status.FAILED, Status.ERROR],
        [Status.PENDING, Status.RUNNING, Status.PENDING],
    ])
    def test_illegal_transitions_raise(self, path):
        life = Lifecycle()
        with pytest.raises(IllegalTransition):
            for status in path:
                life.enter(status)

    def test_exit_codes(self):
        assert EXIT_CODES == {Status.SUCCESS: 0, Status.FAILED: 1, Status.ERROR: 3}


class TestParsing:
    @pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("20m", 1200), ("1h", 3600),
                                              ("1h30m", 5400), ("1.5m", 90), ("2.5", 2.5)])
    def test_durations(self, text, seconds):
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "abc", "10x", "-5", "0", "1m 2s", "m"])
    def test_bad_durations(self, text):
        with pytest.raises(ValueError):
            parse_duration(text)

    @pytest.mark.parametrize("text,size", [("4g", 4 * 1024**3), ("512m", 512 * 1024**2), ("4GiB", 4 * 1024**3),
                                           ("2.5g", int(2.5 * 1024**3)), ("134217728", 134217728)])
    def test_memory(self, text, size):
        assert parse_memory(text) == size

    @pytest.mark.parametrize("text", ["4x", "lots", "1m", "", "-1g"])
    def test_bad_memory(self, text):
        with pytest.raises(ValueError):
            parse_memory(text)


def test_log_buffer_keeps_head_and_tail_with_marker():
    logs = LogBuffer(limit=4096)
    for i in range(10_000):
        logs.add(f"line {i}\n".encode())
    text = logs.text()
    assert text.startswith("line 0\n") and text.rstrip().endswith("line 9999")
    assert logs.truncated and "bytes of the model's output dropped here" in text
    assert len(text) < 4096 + 200
    assert logs.last_lines(3).splitlines() == ["line 9997", "line 9998", "line 9999"]


def test_log_buffer_small_output_intact():
    logs = LogBuffer(limit=4096)
    logs.add(b"hello\n")
    logs.add(b"world\n")
    assert logs.text() == "hello\nworld\n" and not logs.truncated


def test_every_reason_has_meaning_and_action():
    for reason in reasons.REASONS.values():
        assert reason.code.isidentifier() and reason.meaning and reason.action
    for rule in reasons.OUTPUT_RULES.values():
        assert rule.source in ("numerai-predict", "numerai-tools", "sandbox") and rule.meaning and rule.action
    required = {"invalid_pickle", "python_version_mismatch", "missing_module", "bad_signature", "model_exception",
                "out_of_memory", "timeout", "invalid_output", "docker_unavailable", "image_unavailable",
                "internal_error", "library_mismatch", "crashed", "no_output", "host_resources"}
    assert required <= set(reasons.REASONS)


def test_report_json_is_stable():
    report = Report(Status.FAILED, "timeout", "ran too long", action="be faster")
    data = json.loads(report.to_json())
    assert data["status"] == "Failed" and data["reason"] == "timeout" and data["exit_code"] == 1
    assert data["schema"] == 1 and data["tool"]["name"] == "numerai-sandbox"


def test_the_host_reads_the_channels_words_from_the_harness():
    """The harness imports nothing of ours; the host imports its words (exit codes, phases, kinds) from it, and
    every phase, frame kind and error kind the harness sends is one of them."""
    import re

    from runner.sandbox import harness, protocol

    assert protocol.EXIT_CHANNEL_LOST is harness.EXIT_CHANNEL_LOST and protocol.PHASES is harness.PHASES
    source = Path(harness.__file__).read_text()
    assert set(re.findall(r'\bphase\("([a-z_]+)"\)', source)) <= set(harness.PHASES)
    assert set(re.findall(r'channel\.send\("([a-z_]+)"', source)) <= set(harness.FRAME_KINDS)
    assert set(re.findall(r'fail\("[a-z_]+", "([a-z_]+)"', source)) <= set(harness.ERROR_KINDS)


def test_data_synth_defaults_match_the_data_module():
    from runner.data import synthetic as data
    from runner.cli import data as cli

    options = {p.name: p.default for p in cli.data_synth.params}
    assert (options["rows"], options["features"], options["seed"]) == (data.DEFAULT_ROWS, data.DEFAULT_FEATURES,
                                                                      data.DEFAULT_SEED)


def test_crash_lines_pick_the_fault_handler_report():
    from runner.verdict.report import crash_lines

    log = ("numerai-sandbox harness: Predicting on 6720 rows\nFatal Python error: Segmentation fault\n\n"
           "Current thread 0x00007f (most recent call first):\n  File \"/ctypes/__init__.py\", line 5 in string_at\n"
           "  File \"train.py\", line 9 in predict\n\nExtension modules: numpy.core, pandas (total: 80)\n")
    picked = crash_lines(log)
    assert picked[0] == "Fatal Python error: Segmentation fault"
    assert any("train.py" in line for line in picked) and not any("Extension" in line for line in picked)
    assert crash_lines("no crash here") == []
