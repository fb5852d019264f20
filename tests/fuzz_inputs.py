"""What the fuzzers feed numerai-sandbox: seed inputs and the mutations that break them.

Three families, each from real seeds, bent in the ways an attacker or chance bends bytes:
- pickles of every protocol 0-5 (plain objects, numpy and pandas values, cloudpickled functions, and the
  example pickles when they were built), mutated byte by byte (truncations, flips, splices) and opcode
  by opcode (wrong and huge declared lengths, unknown opcodes, deep nesting, memo abuse, early and missing
  STOP, strange globals, out-of-band buffers);
- the framed stream a container's harness writes (`NSBX1 <kind> <length>\\n<payload>`): a real run's
  frames whose JSON is given the wrong shape, whose payload is not UTF-8, whose headers lie about their
  length, cut anywhere, with garbage between them;
- the predictions CSV: valid predictions for the live ids, then invalid UTF-8, NUL bytes, huge fields,
  extra columns, parquet or gzip bytes instead of CSV.

Every mutation draws from a `random.Random`, which hypothesis seeds (tests/fuzz_campaign.py): a run of the
same seed tries the same inputs.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import pickletools
import random
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = tuple(range(pickle.HIGHEST_PROTOCOL + 1))  # 0-5
OPCODES = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
UNKNOWN_OPCODES = bytes(b for b in range(256) if b not in OPCODES)
HUGE = (0, 1, 2**7, 2**8 - 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**64 - 1)
DEPTHS = (64, 1000, 10_000, 100_000, 1_000_000)


# ---------------------------------------------------------------- pickle seeds

def _predict_by_name(live_features):
    """A model as users write them: selects columns by name, returns a DataFrame (never run here)."""
    import pandas as pd

    features = ["feature_honoured_observational_balaamite", "feature_polaroid_vadose_quinze"]
    return pd.DataFrame({"prediction": live_features[features].mean(axis=1).rank(pct=True)},
                        index=live_features.index)


class _Reduced:
    """Unpickles as a call (REDUCE): what every pickle that runs code at load time does."""

    def __reduce__(self):
        return (print, ("loaded",))


def plain_objects() -> dict[str, object]:
    """Values that exercise every kind of opcode a protocol has."""
    import collections
    import datetime
    import decimal

    return {
        "scalars": [None, True, False, 0, 1, -1, 255, 65535, 2**31, -(2**63), 2**200, 1.5, float("inf"),
                    float("nan"), 3 + 4j, "", "text", "ünïcödé ✓", b"", b"\x00\xff" * 40, bytearray(b"ab")],
        "containers": {"list": [1, [2, [3, [4]]]], "tuple": (1, (2, 3)), "set": {1, 2, 3},
                       "frozenset": frozenset({"a"}), "dict": {"k": {"n": [1, 2]}}},
        "shared": (lambda x: [x, x, {"again": x}])(["memo", "me"]),
        "stdlib": [collections.OrderedDict(a=1), datetime.date(2026, 1, 2), decimal.Decimal("1.25"),
                   collections.Counter("abca"), range(3), slice(1, 5, 2)],
        "long_text": "x" * 70_000,
        "reduce": _Reduced(),
    }


def pickle_seeds(include_examples: bool = True) -> dict[str, tuple[int, bytes]]:
    """{name: (protocol, bytes)}: every protocol 0-5 over plain values, numpy and pandas values and
    cloudpickled functions, plus the example pickles (examples/build) and committed findings."""
    import cloudpickle
    import numpy as np
    import pandas as pd

    seeds: dict[str, tuple[int, bytes]] = {}
    frame = pd.DataFrame({"feature_a": np.arange(6, dtype=np.int8), "prediction": np.linspace(0, 1, 6)},
                         index=pd.Index([f"id{i}" for i in range(6)], name="id"))
    values = dict(plain_objects(), numpy=np.arange(12, dtype=np.float32).reshape(3, 4), dataframe=frame)
    for protocol in PROTOCOLS:
        for name, value in values.items():
            seeds[f"{name}-p{protocol}"] = (protocol, pickle.dumps(value, protocol=protocol))
        if protocol >= 2:  # cloudpickle needs protocol 2 for functions by value
            seeds[f"cloudpickle-function-p{protocol}"] = (protocol, cloudpickle.dumps(_predict_by_name,
                                                                                      protocol=protocol))
            seeds[f"cloudpickle-lambda-p{protocol}"] = (protocol, cloudpickle.dumps(
                lambda live_features, live_benchmark_models: live_features.iloc[:, :1], protocol=protocol))
    seeds["out-of-band-p5"] = (5, pickle.dumps(pickle.PickleBuffer(b"oob"), protocol=5))
    if include_examples:
        for path in sorted((ROOT / "examples" / "build").glob("py3.*/*.pkl")):
            data = path.read_bytes()
            seeds[f"example-{path.parent.name}-{path.stem}"] = (protocol_of(data), data)
    return seeds


def protocol_of(data: bytes) -> int:
    """The protocol a pickle declares (PROTO opcode), 0 or 1 for the text and early binary protocols."""
    if len(data) >= 2 and data[0] == 0x80:
        return data[1] if data[1] <= 5 else -1
    return 1 if any(b in data[:64] for b in b"]}J") else 0


# ---------------------------------------------------------------- byte-level mutations

def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data))] if data else data


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 8, 64))):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def overwrite_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.choice((1, 2, 4, 8, 32))) + data[at + 1:]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.choice((1, 4, 16, 256))) + data[at:]


def delete_span(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randrange(1, min(len(data) - at, 512) + 1):]


def duplicate_span(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    span = data[at:at + rng.randrange(1, 256)]
    return data[:at] + span * rng.choice((2, 3, 50)) + data[at + len(span):]


BYTE_MUTATIONS = (truncate, flip_bits, overwrite_bytes, insert_bytes, delete_span, duplicate_span)


# ---------------------------------------------------------------- opcode-level mutations

@dataclass(frozen=True)
class Op:
    code: int  # the opcode byte
    start: int  # where the opcode byte is
    end: int  # where the next opcode starts


_OPS_SEEN: dict[bytes, list[Op]] = {}
MAX_OPS = 4096  # a mutation needs a place, not every place: deep nesting makes a million opcodes


def opcodes_of(data: bytes) -> list[Op]:
    """The first opcodes of the pickle in `data`, as far as pickletools can read them (remembered: seeds are
    mutated again and again)."""
    known = _OPS_SEEN.get(data)
    if known is not None:
        return known
    codes: list[int] = []
    starts: list[int] = []
    end = None
    try:
        warnings.simplefilter("ignore", DeprecationWarning)  # genops' complaint about a mutated STRING's escapes
        for op, _arg, pos in pickletools.genops(io.BytesIO(data)):
            if len(starts) == MAX_OPS:
                end = pos
                break
            codes.append(op.code.encode("latin-1")[0])
            starts.append(pos)
            if op.name == "STOP":
                end = pos + 1
    except Exception:  # noqa: BLE001 - a broken pickle: the opcodes before the break
        pass
    ops = [Op(c, s, e) for c, s, e in zip(codes, starts, starts[1:] + [end if end is not None else len(data)])]
    if len(_OPS_SEEN) > 256:
        _OPS_SEEN.clear()
    _OPS_SEEN[data] = ops
    return ops


def _boundary(rng: random.Random, data: bytes) -> int:
    ops = opcodes_of(data)
    return rng.choice(ops).start if ops else rng.randrange(len(data) + 1)


def _insert(rng: random.Random, data: bytes, piece: bytes) -> bytes:
    at = _boundary(rng, data)
    return data[:at] + piece + data[at:]


_LENGTH_WIDTH = {-2: 1, -3: 4, -4: 4, -5: 8}


def wrong_length(rng: random.Random, data: bytes) -> bytes:
    """A length-prefixed argument (strings, bytes, LONG1/4, FRAME) declaring another size: 0, one off, huge."""
    sized = [op for op in opcodes_of(data) if (OPCODES[op.code].arg is not None
                                                and (OPCODES[op.code].arg.n in _LENGTH_WIDTH
                                                     or OPCODES[op.code].name == "FRAME"))]
    if not sized:
        return insert_bytes(rng, data)
    op = rng.choice(sized)
    arg = OPCODES[op.code].arg
    width = 8 if OPCODES[op.code].name == "FRAME" else _LENGTH_WIDTH[arg.n]
    declared = int.from_bytes(data[op.start + 1:op.start + 1 + width], "little")
    value = rng.choice(HUGE + (max(declared - 1, 0), declared + 1, declared * 2))
    return (data[:op.start + 1] + (value % 256**width).to_bytes(width, "little")
            + data[op.start + 1 + width:])


def unknown_opcode(rng: random.Random, data: bytes) -> bytes:
    ops = opcodes_of(data)
    if not ops:
        return overwrite_bytes(rng, data)
    op = rng.choice(ops)
    return data[:op.start] + bytes([rng.choice(UNKNOWN_OPCODES)]) + data[op.start + 1:]


def other_opcode(rng: random.Random, data: bytes) -> bytes:
    ops = opcodes_of(data)
    if not ops:
        return overwrite_bytes(rng, data)
    op = rng.choice(ops)
    return data[:op.start] + bytes([rng.choice(list(OPCODES))]) + data[op.start + 1:]


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    """Deep structures: MARKs without end, lists in lists, tuples of tuples, dicts in dicts."""
    n = rng.choice(DEPTHS)
    piece = rng.choice((b"(" * n, b"]" * n, b"}" * n, b"(" * n + b"t" * n, b"]" * n + b"a" * (n - 1),
                        b")" + b"\x85" * n, b"(" * n + b"l" * n, b"N" * n))
    return _insert(rng, data, piece)


def memo_abuse(rng: random.Random, data: bytes) -> bytes:
    """GETs of what was never memoised, PUTs at huge or negative indices, memoising without end."""
    piece = rng.choice((b"h\xff", b"j" + struct.pack("<I", 2**32 - 1), b"g99999999999999999999\n", b"g-1\n",
                        b"gnot a number\n", b"r" + struct.pack("<I", 2**32 - 1), b"p-5\n", b"p1e9\n",
                        b"\x94" * rng.choice(DEPTHS), b"N\x94h\x00" * 1000, b"q\x00" * 10_000))
    return _insert(rng, data, piece)


def stop_where_it_should_not(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.5:
        return _insert(rng, data, b".")
    return data.rstrip(b".") if data.endswith(b".") else data + b"."


def strange_global(rng: random.Random, data: bytes) -> bytes:
    """GLOBAL, INST and STACK_GLOBAL naming what no module has, or what a hostile pickle wants."""
    module = rng.choice((b"os", b"builtins", b"__main__", b"", b"\xff\xfe", b"a" * 100_000, b"a.b.c.d.e",
                         b"numpy.core.multiarray", b"sklearn.ensemble._forest", b"..", b"os\x00x"))
    name = rng.choice((b"system", b"eval", b"getattr", b"", b"\x00", b"x" * 10_000, b"a.b", b"__reduce__"))
    piece = rng.choice((b"c" + module + b"\n" + name + b"\n",
                        b"i" + module + b"\n" + name + b"\n",
                        b"\x8c" + bytes([min(len(module), 255)]) + module[:255]
                        + b"\x8c" + bytes([min(len(name), 255)]) + name[:255] + b"\x93",
                        b"\x93", b"N\x93", b"NN\x93R"))
    return _insert(rng, data, piece)


def protocol_header(rng: random.Random, data: bytes) -> bytes:
    header = b"\x80" + bytes([rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 255))])
    return header + (data[2:] if data[:1] == b"\x80" else data)


def text_numbers(rng: random.Random, data: bytes) -> bytes:
    """Protocol 0's decimal numbers at their limits: thousands of digits, not digits, floats nobody writes."""
    digits = b"9" * rng.choice((20, 4301, 100_000))
    piece = rng.choice((b"I" + digits + b"\n", b"L" + digits + b"L\n", b"I01\n", b"I00\n", b"Inan\n",
                        b"F" + digits + b"e99999\n", b"Fnan\n", b"F-inf\n", b"F1e\n", b"I\n", b"L\n",
                        b"S'unterminated\n", b"S\"a'\n", b"V\\u12\n", b"V\\U0011ffff\n"))
    return _insert(rng, data, piece)


def out_of_band(rng: random.Random, data: bytes) -> bytes:
    return _insert(rng, data, rng.choice((b"\x97", b"\x98", b"\x97\x98", b"C\x03abc\x98")))


def huge_frame(rng: random.Random, data: bytes) -> bytes:
    """A protocol 4+ FRAME declaring more than the file holds."""
    frame = b"\x95" + struct.pack("<Q", rng.choice(HUGE))
    start = 2 if data[:1] == b"\x80" else 0
    return data[:start] + frame + data[start:]


def drop_or_repeat_opcode(rng: random.Random, data: bytes) -> bytes:
    ops = opcodes_of(data)
    if not ops:
        return delete_span(rng, data)
    op = rng.choice(ops)
    body = data[op.start:op.end]
    return data[:op.start] + (b"" if rng.random() < 0.5 else body * rng.choice((2, 3, 100))) + data[op.end:]


OPCODE_MUTATIONS = (wrong_length, unknown_opcode, other_opcode, deep_nesting, memo_abuse, stop_where_it_should_not,
                    strange_global, protocol_header, text_numbers, out_of_band, huge_frame, drop_or_repeat_opcode)


def splice(rng: random.Random, data: bytes, other: bytes) -> bytes:
    """The head of one pickle and the tail of another, cut at opcode boundaries."""
    a, b = _boundary(rng, data), _boundary(rng, other)
    return data[:a] + other[b:]


@dataclass
class Mutated:
    data: bytes
    seed: str
    protocol: int
    steps: list[str] = field(default_factory=list)


def mutate_pickle(rng: random.Random, seeds: dict[str, tuple[int, bytes]]) -> Mutated:
    """One input: random bytes, or a seed bent by one to four mutations (byte or opcode level)."""
    if rng.random() < 0.05:
        prefix = rng.choice((b"", b"\x80\x05", b"\x80\x02", b"\x80\x04\x95"))
        return Mutated(prefix + rng.randbytes(rng.choice((0, 1, 7, 64, 1024, 8192))), "random", -1, ["random"])
    name = rng.choice(sorted(seeds))
    protocol, data = seeds[name]
    out = Mutated(data, name, protocol)
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        roll = rng.random()
        if roll < 0.1:
            other = rng.choice(sorted(seeds))
            out.data = splice(rng, out.data, seeds[other][1])
            out.steps.append(f"splice:{other}")
        elif roll < 0.5:
            step = rng.choice(BYTE_MUTATIONS)
            out.data = step(rng, out.data)
            out.steps.append(step.__name__)
        else:
            step = rng.choice(OPCODE_MUTATIONS)
            out.data = step(rng, out.data)
            out.steps.append(step.__name__)
    return out


# ---------------------------------------------------------------- the framed stream

MAGIC = b"NSBX1 "


def frame(kind: str, payload: bytes) -> bytes:
    return MAGIC + f"{kind} {len(payload)}\n".encode() + payload


def _json(body) -> bytes:
    return json.dumps(body).encode()


def predictions_csv(ids: list[str], values=None) -> bytes:
    """What the harness sends for a DataFrame indexed by `ids` (to_csv with the index)."""
    rng = random.Random(len(ids))
    values = values if values is not None else [rng.random() for _ in ids]
    return ("id,prediction\n" + "".join(f"{i},{v!r}\n" for i, v in zip(ids, values))).encode()


def run_frames(ids: list[str], ending: str = "success") -> list[tuple[str, bytes]]:
    """The frames a real run's harness writes, in order (see runner/sandbox/harness.py)."""
    t = 1_800_000_000.0
    frames = [("hello", _json({"protocol": 1, "python": "3.11.2", "pid": 7})),
              ("phase", _json({"phase": "starting", "at": t})),
              ("phase", _json({"phase": "loading", "at": t + 0.3}))]
    durations = {"starting": 0.3, "loading": 0.5}
    model = {"kind": "function", "type": "builtins.function", "name": "predict", "module": "__main__",
             "parameters": [{"name": "live_features", "kind": "POSITIONAL_OR_KEYWORD", "default": False}],
             "n_parameters": 1}
    if ending == "load_error":
        error = {"phase": "loading", "kind": "load_error", "numerai_log": "Invalid pickle - truncated",
                 "exception": {"type": "UnpicklingError", "module": "_pickle", "message": "pickle data was truncated",
                               "mro": ["_pickle.UnpicklingError", "builtins.Exception"], "frames": [],
                               "text": "Traceback...\n_pickle.UnpicklingError: pickle data was truncated"}}
        return frames + [("error", _json(error)), ("done", _json({"durations": durations,
                                                                   "peak_rss_bytes": 90_000_000}))]
    frames += [("model", _json(model)), ("phase", _json({"phase": "reading_data", "at": t + 0.8})),
               ("data", _json({"rows": len(ids), "columns": 2790, "benchmark_columns": None})),
               ("phase", _json({"phase": "predicting", "at": t + 1.0}))]
    durations.update(reading_data=0.2, predicting=0.05)
    if ending == "model_exception":
        error = {"phase": "predicting", "kind": "model_exception", "numerai_log": "ValueError: bad",
                 "exception": {"type": "ValueError", "module": "builtins", "message": "bad",
                               "mro": ["builtins.ValueError", "builtins.Exception"],
                               "frames": [{"file": "/work/model.py", "line": 3, "function": "predict",
                                           "code": "raise ValueError('bad')"}], "text": "ValueError: bad"}}
        return frames + [("error", _json(error)), ("done", _json({"durations": durations,
                                                                   "peak_rss_bytes": 200_000_000}))]
    payload = predictions_csv(ids)
    result = {"returned_type": "pandas.core.frame.DataFrame", "exact_dataframe": True, "in_image_failed": None,
              "in_image_log": None, "rows": len(ids), "index_levels": 1, "index_names": ["id"],
              "columns": ["prediction"], "n_columns": 1, "first_column_dtype": "float64"}
    durations.update(checking=0.01, writing=0.02)
    return frames + [("phase", _json({"phase": "checking", "at": t + 1.05})),
                     ("phase", _json({"phase": "writing", "at": t + 1.06})),
                     ("result", _json(result)), ("predictions", payload),
                     ("done", _json({"durations": durations, "peak_rss_bytes": 280_000_000}))]


def random_json(rng: random.Random, depth: int = 0):
    """Any JSON value, with the shapes a parser does not expect: deep, huge, empty, wrongly typed."""
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 6 else ["null", "int", "str"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice((0, -1, 1, 2**31, 2**63, 10**40, -(10**40), rng.randrange(-1000, 1000)))
    if kind == "float":
        return rng.choice((0.0, -0.0, 1e308, -1e308, 1e-320, 0.5, 2.5, -3.75))
    if kind == "str":
        return rng.choice(("", "predicting", "loading", "x" * 10_000, "\u202e\u0000", "Ω" * 50, "\ud800",
                           "phase", "done", "builtins.MemoryError"))
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.choice((0, 1, 3)))]
    keys = ("phase", "kind", "exception", "durations", "rows", "type", "message", "frames", "mro", "text",
            "numerai_log", "at", "parameters", "name", "unwritable", "output_too_large", "in_image_failed",
            "returned_type", "exact_dataframe", "columns", "index_levels", "peak_rss_bytes", "errno", "cause",
            "context", "module", "file", "line", "function", "code", "n_parameters", "python")
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.choice((0, 1, 2, 4)))}


def _reshape(rng: random.Random, body):
    """The body with one value somewhere replaced by JSON of another shape (or a key dropped)."""
    if not isinstance(body, (dict, list)) or not body or rng.random() < 0.15:
        return random_json(rng)
    if isinstance(body, dict):
        key = rng.choice(sorted(body))
        out = dict(body)
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = _reshape(rng, body[key]) if rng.random() < 0.5 else random_json(rng)
        return out
    out = list(body)
    at = rng.randrange(len(out))
    out[at] = _reshape(rng, out[at]) if rng.random() < 0.5 else random_json(rng)
    return out


def wrong_shape(rng: random.Random, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    jsons = [i for i, (kind, _) in enumerate(frames) if kind != "predictions"]
    if not jsons:
        return frames
    i = rng.choice(jsons)
    kind, payload = frames[i]
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        body = None
    return frames[:i] + [(kind, json.dumps(_reshape(rng, body)).encode())] + frames[i + 1:]


def not_utf8(rng: random.Random, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    i = rng.randrange(len(frames))
    kind, payload = frames[i]
    at = rng.randrange(len(payload) + 1)
    bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xfe\xff", b"\x80" * 9))
    return frames[:i] + [(kind, payload[:at] + bad + payload[at:])] + frames[i + 1:]


def not_json(rng: random.Random, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    i = rng.randrange(len(frames))
    kind, payload = frames[i]
    bad = rng.choice((b"", b"{", b"[" * 100_000, b"NaN", b"Infinity", b"1e999", b'{"a": 1}{', b"\x00",
                      b'"' + b"\\" * 3 + b'"', payload[:len(payload) // 2]))
    return frames[:i] + [(kind, bad)] + frames[i + 1:]


def reorder(rng: random.Random, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    out = list(frames)
    roll = rng.random()
    if roll < 0.3 and out:
        del out[rng.randrange(len(out))]
    elif roll < 0.6 and out:
        out.insert(rng.randrange(len(out) + 1), rng.choice(out))
    else:
        rng.shuffle(out)
    return out


def forged_kind(rng: random.Random, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A frame of another kind, or one the host does not know, inserted anywhere."""
    kind = rng.choice(("hello", "phase", "model", "data", "error", "result", "done", "ready", "go", "predictions",
                       "verdict", "", "x" * 200, "PHASE", "done\x00"))
    payload = rng.choice((b"{}", _json(random_json(rng)), b"id,prediction\nx,0.5\n", rng.randbytes(16)))
    at = rng.randrange(len(frames) + 1)
    return frames[:at] + [(kind, payload)] + frames[at:]


FRAME_MUTATIONS = (wrong_shape, wrong_shape, not_utf8, not_json, reorder, forged_kind)


def lying_header(rng: random.Random, stream: bytes) -> bytes:
    """A header whose length is not the payload's: huge, negative, not a number, too long, no newline."""
    length = rng.choice(("0", "1", "99999999999999999999", "-1", "+5", "0x10", "1e3", " 5", "5 ", "١٢",
                         str(2**63), str(256 * 1024**2 + 1), str(4 * 1024**2 + 1), "9" * 200))
    kind = rng.choice(("predictions", "done", "result", "error", "phase", "unknown"))
    header = rng.choice((MAGIC + f"{kind} {length}\n".encode("utf-8"), MAGIC + kind.encode() + b"\n",
                         MAGIC + b"x" * 300, b"NSBX2 done 2\n{}", b"nsbx1 done 2\n{}", MAGIC[:3],
                         MAGIC + f"{kind} {length}".encode("utf-8")))
    at = rng.randrange(len(stream) + 1)
    return stream[:at] + header + stream[at:]


STREAM_MUTATIONS = (lying_header, truncate, flip_bits, overwrite_bytes, insert_bytes, delete_span)


@dataclass
class ContainerOutput:
    """What a container gave the host: its report channel, its log, and what the engine saw of it."""

    stdout: bytes
    cuts: list[int]  # where the stream was cut into the chunks the host received
    stderr: bytes = b""
    exit_code: int | None = 0
    oom_killed: bool = False
    timed_out: bool = False
    peak_memory_bytes: int | None = 300_000_000
    steps: list[str] = field(default_factory=list)

    def chunks(self) -> list[bytes]:
        edges = [0] + sorted(c for c in self.cuts if 0 < c < len(self.stdout)) + [len(self.stdout)]
        return [self.stdout[a:b] for a, b in zip(edges, edges[1:]) if b > a] or [b""]


EXIT_CODES = (0, 0, 0, 0, 1, 2, 70, 86, 137, 139, 143, 255, None)


def mutate_output(rng: random.Random, ids: list[str]) -> ContainerOutput:
    """A run's container output, bent: its frames reshaped, its stream cut and corrupted, its facts varied."""
    ending = rng.choice(("success", "success", "success", "load_error", "model_exception"))
    frames = run_frames(ids, ending)
    steps = [ending]
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        step = rng.choice(FRAME_MUTATIONS)
        frames = step(rng, frames)
        steps.append(step.__name__)
    if any(kind == "predictions" for kind, _ in frames) and rng.random() < 0.3:
        i = next(i for i, (kind, _) in enumerate(frames) if kind == "predictions")
        frames[i] = ("predictions", mutate_predictions(rng, ids))
        steps.append("predictions")
    stream = b"".join(frame(kind, payload) for kind, payload in frames)
    for _ in range(rng.choice((0, 0, 1, 2))):
        step = rng.choice(STREAM_MUTATIONS)
        stream = step(rng, stream)
        steps.append(step.__name__)
    cuts = [rng.randrange(len(stream) + 1) for _ in range(rng.choice((0, 1, 3, 20)))]
    if rng.random() < 0.05:
        cuts = list(range(0, min(len(stream), 4000)))  # byte by byte, the way a slow pipe delivers it
    stderr = rng.choice((b"", b"epoch 1\n", rng.randbytes(64), b"\xff" * 10, b"x" * 100_000))
    exit_code = rng.choice(EXIT_CODES)
    return ContainerOutput(stream, cuts, stderr, exit_code, oom_killed=rng.random() < 0.05,
                           timed_out=rng.random() < 0.05,
                           peak_memory_bytes=rng.choice((None, 0, 300_000_000, 5 * 1024**3)), steps=steps)


# ---------------------------------------------------------------- the predictions CSV

def _parquet_bytes(ids: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"id": ids[:50], "prediction": [0.5] * len(ids[:50])}), sink)
    return sink.getvalue()


def mutate_predictions(rng: random.Random, ids: list[str]) -> bytes:
    """The predictions a model sends: valid ones, ones breaking a rule, and bytes that are no CSV at all."""
    roll = rng.random()
    if roll < 0.08:
        return rng.choice((_parquet_bytes(ids), b"PAR1" + rng.randbytes(200) + b"PAR1",
                           gzip.compress(predictions_csv(ids[:100])), b"", b"\n" * 1000, b"id,prediction",
                           b"\xef\xbb\xbfid,prediction\n" + f"{ids[0]},0.5\n".encode(), rng.randbytes(512)))
    chosen = list(ids)
    values = [rng.random() for _ in chosen]
    if roll < 0.2:
        chosen = chosen[:rng.randrange(len(chosen) + 1)]
        values = values[:len(chosen)]
    elif roll < 0.3:
        values = [rng.choice((float("nan"), -1.0, 2.0, 1e308, 0.5, "x", "", "True", "None")) for _ in chosen]
    elif roll < 0.35:
        values = [0.5] * len(chosen)
    csv = predictions_csv(chosen, values)
    if rng.random() < 0.2:
        header = rng.choice((b"id,prediction,extra\n", b"prediction\n", b",prediction\n", b"id,probability\n",
                             b"id,id\n", b"id," + b",".join(b"c%d" % i for i in range(5000)) + b"\n", b"\n",
                             b'"id","prediction"\n', b"id;prediction\n"))
        csv = header + csv.split(b"\n", 1)[1]
    for _ in range(rng.choice((0, 0, 1, 2))):
        step = rng.choice(BYTE_MUTATIONS + (_bad_text,))
        csv = step(rng, csv)
    return csv


def _bad_text(rng: random.Random, data: bytes) -> bytes:
    piece = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\x00", b'"', b'"unterminated', b"\r", b"\r\n", b"x" * 1_000_000,
                        b"," * 10_000, b"1e999999", b"-0", b"0x1p-2", b"\xed\xa0\x80"))
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


# ---------------------------------------------------------------- a live.parquet that is not one

def mutate_parquet(rng: random.Random, seed: bytes) -> bytes:
    """A live.parquet (or what claims to be one): truncated, flipped, its footer or magic broken."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice((b"", b"PAR1", b"PAR1PAR1", b"PAR1" + rng.randbytes(100) + b"PAR1",
                           b"PAR1" + rng.randbytes(100) + struct.pack("<I", 2**32 - 1) + b"PAR1",
                           seed[:-8] + struct.pack("<I", len(seed) * 10) + b"PAR1", b"id,prediction\nx,1\n"))
    data = seed
    for _ in range(rng.choice((1, 1, 2, 3))):
        data = rng.choice(BYTE_MUTATIONS)(rng, data)
    return data


def live_parquet_seed(rows: int = 200) -> bytes:
    """A small live.parquet as Numerai's are shaped: an `id` index, an era, int8 features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    table = pa.table({"id": [f"n{i:015x}" for i in range(rows)], "era": ["X"] * rows,
                      **{f"feature_{name}": pa.array([i % 5 for i in range(rows)], pa.int8())
                         for name in ("able_bodied_cat", "blue_sky_dog", "calm_red_owl")}})
    pq.write_table(table, sink)
    return sink.getvalue()
