"""numerai-sandbox's in-container harness: load the model pickle and run it the way Numerai does.

This file is copied alone into every image and runs there under Python 3.10+, with
the standard library and the image's pandas only: it imports nothing of
numerai-sandbox. It reports facts, never verdicts: the phase it reached, what the
pickle turned out to be, the exception and traceback, what the function returned
and the predictions as CSV. The host decides the verdict and re-checks the CSV.

Its order is numerai-predict's predict.py's: load the pickle with pandas.read_pickle
(nothing else in memory but pandas, as on Numerai), count parameters with
inspect.signature, read live.parquet, read the benchmark models for functions of
more than one parameter, call, apply the in-image checks, write the CSV with its
index. A pre-started sandbox (--ahead) has read the data before the pickle arrives;
everything else is the same. Where predict.py logs a line, the harness logs the same
words and reports them (`numerai_log`): what Numerai's log would show.

Reports go to the host as frames on a private copy of the container's stdout:
    NSBX1 <kind> <length>\\n<length bytes>
while the model's own stdout and stderr both go to the container's stderr.

A sandbox without mounts (the process sandbox) passes --input-dir: the inputs are read from
there, and the log still names them /input/..., as a container's log does.

For `numerai-sandbox shell` it has two more modes: --hold, the container's own process,
which only waits for the host's hold on stdin to go; and --shell, run beside it on a
terminal, which loads the pickle and the data the same way and opens an interactive Python.
"""

import argparse
import faulthandler
import inspect
import json
import os
import resource
import sys
import time
import traceback
import types

# The report channel's words, defined here, once: the host reads them from this module
# (runner/sandbox/protocol.py parses the frames into types).
PROTOCOL = "NSBX1"
FRAME_KINDS = ("hello", "phase", "model", "data", "error", "result", "predictions", "done", "ready", "go")
PHASES = ("starting", "loading", "reading_data", "reading_benchmarks", "predicting", "checking", "writing")  # in order
ERROR_KINDS = ("load_error", "bad_signature", "data_error", "model_exception", "harness_error")
LOG_PREFIX = "numerai-sandbox harness: "  # the harness's own lines in the model's log
EXIT_CHANNEL_LOST = 86  # the report channel was closed or replaced (by the model): nothing more can be said
EXIT_HARNESS_ERROR = 70  # the harness itself failed; its error frame says how
MAX_TEXT = 16_000
MAX_FRAMES = 80
MAX_CHAIN = 4
INPUT = "/input"  # where a container mounts the inputs
MODEL = f"{INPUT}/model.pkl"


class ChannelLost(Exception):
    """Writing a frame failed: the model closed or replaced the channel's file descriptor."""


class Channel:
    """The report channel: the original stdout, out of the model's way."""

    def __init__(self):
        self.fd = os.dup(1)
        os.set_inheritable(self.fd, False)  # a subprocess of the model does not get it
        os.dup2(2, 1)  # from here on, the model's stdout is the container's stderr
        self.pid = os.getpid()
        self.phase = None

    def send(self, kind, payload):
        if os.getpid() != self.pid:
            return  # a process the model forked runs this code too: only the harness itself reports
        if not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload, default=_safe_str).encode("utf-8")
        data = memoryview(f"{PROTOCOL} {kind} {len(payload)}\n".encode("ascii") + bytes(payload))
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError as exc:
            raise ChannelLost(f"the report channel (fd {self.fd}) is gone: {exc}") from None


def _safe_str(value, limit=MAX_TEXT):
    """str() of model-made objects, which may misbehave."""
    try:
        text = str(value)
    except BaseException as exc:  # noqa: BLE001 - a broken __str__ is the model's
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def write_stderr(text):
    """Straight to fd 2: works even when the model replaced or closed sys.stderr."""
    data = text.encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data):]
    except OSError:
        pass


def log(message):
    """A line in the model's log, in the spirit of numerai-predict's log lines."""
    write_stderr(f"{LOG_PREFIX}{message}\n")


def exception_line(exc):
    """The line Python's traceback of `exc` ends with ("KeyError: 'x'"): what numerai-predict's log shows
    last when it logs an exception with logging.exception, or dies of one it does not catch."""
    try:
        text = traceback.format_exception_only(type(exc), exc)[0].strip()
    except BaseException:  # noqa: BLE001 - a model-made exception may misbehave
        text = f"{type(exc).__name__}: {_safe_str(exc)}"
    return _safe_str(text.splitlines()[0] if text else type(exc).__name__, 1000)


def load_error_line(exc, python):
    """numerai-predict's line for an exception pandas.read_pickle raised: the three it catches, in its
    order, else the traceback it dies with."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return f"Invalid pickle - {_safe_str(exc)}"
    if isinstance(exc, TypeError):
        return f"Pickle incompatible with {python}"
    if isinstance(exc, ModuleNotFoundError):
        return f"Import error reading pickle - {_safe_str(exc)}"
    return exception_line(exc)


def model_error_line(exc):
    """numerai-predict's line for an exception of the model's call or its checks: a TypeError is "Pickle
    function is invalid - ..."; another Exception is logged with its traceback; SystemExit ends the process
    without a word (None); any other BaseException is not caught, and its traceback ends the log."""
    if isinstance(exc, TypeError):
        return f"Pickle function is invalid - {_safe_str(exc)}"
    if isinstance(exc, SystemExit):
        return None
    return exception_line(exc)


def _facts_of(exc, max_frames=MAX_FRAMES):
    """An exception as plain data: class, message, frames and the attributes that name a cause."""
    frames = []
    try:
        extracted = traceback.extract_tb(exc.__traceback__)[-max_frames:]
    except BaseException:  # noqa: BLE001 - a model-made traceback may be odd
        extracted = []
    for frame in extracted:
        frames.append({"file": _safe_str(frame.filename, 500), "line": frame.lineno,
                       "function": _safe_str(frame.name, 200), "code": _safe_str(frame.line or "", 300)})
    kind = type(exc)
    info = {
        "type": _safe_str(getattr(kind, "__name__", "?"), 200),
        "module": _safe_str(getattr(kind, "__module__", "?"), 200),
        "mro": [_safe_str(f"{c.__module__}.{c.__qualname__}", 300) for c in kind.__mro__][:12],
        "message": _safe_str(exc),
        "frames": frames,
    }
    for attribute in ("name", "errno", "code", "filename"):
        try:
            value = getattr(exc, attribute, None)
        except BaseException:  # noqa: BLE001
            value = None
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            info[attribute] = value if isinstance(value, int) else _safe_str(value, 500)
    if isinstance(exc, AttributeError):  # Python 3.10+: the object that lacks the attribute
        try:
            owner = type(exc.obj) if getattr(exc, "obj", None) is not None else None
        except BaseException:  # noqa: BLE001
            owner = None
        if owner is not None:
            info["obj_type"] = _safe_str(f"{owner.__module__}.{owner.__qualname__}", 300)
    return info


def describe_exception(exc):
    info = _facts_of(exc)
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # noqa: BLE001
        text = f"{info['type']}: {info['message']}"
    info["text"] = text[-3 * MAX_TEXT:]
    # The exceptions this one arose from, oldest first: pandas.read_pickle retries a failed
    # pickle.load with its compatibility unpickler, whose own error hides the real one.
    chain, seen, current = [], {id(exc)}, exc
    while len(chain) < MAX_CHAIN:
        current = current.__cause__ or current.__context__
        if current is None or id(current) in seen:
            break
        seen.add(id(current))
        chain.append(_facts_of(current, 30))
    if chain:
        info["chain"] = chain[::-1]
    return info


def describe_callable(obj):
    """What the unpickled object is, without calling it."""
    if isinstance(obj, types.FunctionType):
        kind = "lambda" if obj.__name__ == "<lambda>" else "function"
    elif isinstance(obj, types.MethodType):
        kind = "method"
    elif isinstance(obj, type):
        kind = "class"
    elif isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        kind = "builtin"
    elif type(obj).__name__ == "partial":
        kind = "partial"
    elif callable(obj):
        kind = "callable instance"
    else:
        kind = "not callable"
    name = obj.__dict__.get("__qualname__") if isinstance(obj, types.FunctionType) else None
    return {"kind": kind, "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
            "name": name or getattr(type(obj), "__qualname__", None)}


def in_image_check(pd, result):
    """numerai-predict's checks, in its order: (rule, its log line) of the first failure, or (None, None)."""
    if result is None:
        return "returned_none", "Pickle function is invalid - returned None"
    if type(result) is not pd.DataFrame:
        return "not_dataframe", f"Pickle function is invalid - returned {type(result)} instead of pd.DataFrame"
    if len(result) == 0:
        return "empty", "Pickle function returned 0 predictions"
    try:
        if result.isna().any().any():
            return "nan", "Pickle function returned at least 1 NaN prediction"
        if not result.iloc[:, 0].between(0, 1).all().all():
            return "out_of_range", ("Pickle function returned invalid predictions. "
                                    "Ensure values are between 0 and 1.")
    except BaseException as exc:  # noqa: BLE001 - values whose comparisons misbehave are the model's
        return "not_numeric", model_error_line(exc)
    return None, None


def result_facts(pd, result):
    """What the function returned, as the host needs it to re-check the CSV."""
    rule, line = in_image_check(pd, result)
    facts = {"returned_type": "NoneType" if result is None
             else f"{type(result).__module__}.{type(result).__qualname__}",
             "exact_dataframe": type(result) is pd.DataFrame,
             "in_image_failed": rule, "in_image_log": line}
    if isinstance(result, pd.DataFrame):
        facts.update(rows=len(result), index_levels=result.index.nlevels,
                     index_names=[_safe_str(n, 200) for n in result.index.names],
                     columns=[_safe_str(c, 200) for c in list(result.columns)[:50]],
                     n_columns=result.shape[1],
                     first_column_dtype=str(result.dtypes.iloc[0]) if result.shape[1] else None)
    return facts


def peak_rss_bytes():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


def read_inputs_from(args, directory):
    """Read every input under /input from `directory` instead (a sandbox without mounts: the process
    sandbox), while the log names each as a container's log would (see shown_path)."""
    args.shown_paths = {}
    for name in ("model", "live", "benchmarks"):
        path = getattr(args, name)
        if path.startswith(INPUT + "/"):
            located = os.path.join(directory, path[len(INPUT) + 1:])
            args.shown_paths[located] = path
            setattr(args, name, located)


def shown_path(args, path):
    """An input's path as the log names it: where a container has it, wherever this process reads it."""
    return getattr(args, "shown_paths", {}).get(path, path)


def run(args, channel, ahead=None):
    """One model, start to predictions, in numerai-predict's order. `ahead` holds what a pre-started sandbox
    prepared before the pickle arrived (pandas, the live data): the same work, done earlier."""
    durations = dict(ahead["durations"]) if ahead else {}
    shown = getattr(args, "shown_model", None) or shown_path(args, args.model)  # as the log names the pickle

    def phase(name):
        channel.phase = name
        channel.send("phase", {"phase": name, "at": time.time()})
        return time.perf_counter()

    def fail(phase_name, kind, exc=None, numerai_log=None, said=None, **extra):
        """Report the run's end: `numerai_log` is numerai-predict's line for it (None: it logs nothing),
        `said` the harness's own words when Numerai would have none."""
        if numerai_log or said:
            log(numerai_log or said)
        body = {"phase": phase_name, "kind": kind, "numerai_log": numerai_log, **extra}
        if exc is not None:
            body["exception"] = describe_exception(exc)
            if args.debug:
                write_stderr(body["exception"]["text"])
        channel.send("error", body)
        channel.send("done", {"durations": durations, "peak_rss_bytes": peak_rss_bytes()})
        return 0

    def unreadable(phase_name, exc):  # our data, not the model's fault: not a line of Numerai's
        return fail(phase_name, "data_error", exc, None, f"Could not read the live data - {_safe_str(exc)}")

    def read_parquet(phase_name, path):
        """(the frame, None), or (None, the run's end) when the file cannot be read."""
        error = ahead.get(f"{phase_name}_error") if ahead else None
        if ahead:
            return (ahead.pop(phase_name), None) if error is None else (None, unreadable(phase_name, error))
        started = phase(phase_name)
        log(f"Using local {shown_path(args, path)} for live data")
        log(f"Loading live features {shown_path(args, path)}")
        try:
            frame = pd.read_parquet(path)
        except BaseException as exc:  # noqa: BLE001
            return None, unreadable(phase_name, exc)
        durations[phase_name] = time.perf_counter() - started
        return frame, None

    if ahead:
        pd = ahead["pd"]
    else:
        started = phase("starting")
        import pandas as pd  # imported here so its cost is counted in the "starting" phase

        durations["starting"] = time.perf_counter() - started

    # 1. Load the pickle exactly as numerai-predict does: before any data is read.
    started = phase("loading")
    log(f"Loading model {shown}")
    try:
        model = pd.read_pickle(args.model)
    except BaseException as exc:  # noqa: BLE001 - every failure here is the pickle's
        return fail("loading", "load_error", exc, load_error_line(exc, ".".join(map(str, sys.version_info[:2]))))
    durations["loading"] = time.perf_counter() - started

    # 2. Count parameters the way numerai-predict does (outside any try there: it dies of a failure).
    info = describe_callable(model)
    try:
        parameters = list(inspect.signature(model).parameters.values())
    except BaseException as exc:  # noqa: BLE001
        return fail("loading", "bad_signature", exc, exception_line(exc), model=info)
    info["parameters"] = [{"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty}
                          for p in parameters]
    info["n_parameters"] = len(parameters)
    channel.send("model", info)

    # 3. The live data, then the benchmark models for more than one parameter (as numerai-predict does, for a
    # function of 3 too); a pre-started sandbox read both ahead and lets a 1-parameter model's go.
    live, failed = read_parquet("reading_data", args.live)
    if live is None:
        return failed
    bench = None
    if len(parameters) > 1:
        bench, failed = read_parquet("reading_benchmarks", args.benchmarks)
        if bench is None:
            return failed
    elif ahead:
        ahead.pop("reading_benchmarks", None)  # a 1-parameter model never holds the benchmarks, as cold
    channel.send("data", {"rows": len(live), "columns": live.shape[1],
                          "benchmark_columns": None if bench is None else bench.shape[1]})

    # 4. Call the model.
    log(f"Predicting on {len(live)} rows of live features")
    started = phase("predicting")
    if len(parameters) not in (1, 2):
        return fail("predicting", "bad_signature", None,
                    f"Invalid pickle function - {shown} must have 1 or 2 arguments", model=info)
    try:
        result = model(live) if bench is None else model(live, bench)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the model's too
        durations["predicting"] = time.perf_counter() - started
        return fail("predicting", "model_exception", exc, model_error_line(exc))
    durations["predicting"] = time.perf_counter() - started

    # 5. numerai-predict's in-image checks, then the CSV with its index.
    started = phase("checking")
    facts = result_facts(pd, result)
    rule = facts["in_image_failed"]
    if rule and facts["in_image_log"]:
        log(facts["in_image_log"])
    durations["checking"] = time.perf_counter() - started
    payload = None
    if isinstance(result, pd.DataFrame):
        if not rule:
            log(f"Generated {len(result)} predictions")
        started = phase("writing")
        try:
            payload = result.to_csv(index=True).encode("utf-8")
        except BaseException as exc:  # noqa: BLE001
            facts["unwritable"] = describe_exception(exc)
            facts["numerai_log"] = exception_line(exc)  # Numerai's upload writes the same CSV, and dies of it
        durations["writing"] = time.perf_counter() - started
        if payload is not None and len(payload) > args.max_output_bytes:
            facts["output_too_large"] = len(payload)
            payload = None
    channel.send("result", facts)
    if payload is not None:
        channel.send("predictions", payload)
    channel.send("done", {"durations": durations, "peak_rss_bytes": peak_rss_bytes()})
    return 0


def describe_environment():
    """The image's Python and installed distributions, for the build's self-check."""
    from importlib import metadata

    dists = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            dists[name.lower().replace("_", "-")] = dist.version
    return {"python": ".".join(map(str, sys.version_info[:3])), "implementation": sys.implementation.name,
            "executable": sys.executable, "distributions": dict(sorted(dists.items()))}


def verify(lock_path):
    """Exit non-zero unless the installed distributions are exactly the lock (the build's self-check)."""
    wanted = {}
    with open(lock_path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                wanted[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
    have = {name.replace(".", "-"): v for name, v in describe_environment()["distributions"].items()}
    problems = [f"{n}: want {v}, have {have.get(n, 'nothing')}" for n, v in wanted.items() if have.get(n) != v]
    problems += [f"{n}: installed but not in the lock" for n in have if n not in wanted]
    for problem in problems:
        print(f"lock mismatch: {problem}", file=sys.stderr)
    print(json.dumps(describe_environment()))
    return 1 if problems else 0


def prepare_ahead(args, channel):
    """A pre-started sandbox: Python, pandas, the live data (and the modules the next pickle needs, as
    the host read them from it) ready before the pickle arrives. The model's own work is not begun:
    everything here would happen in a cold run anyway, only later."""
    durations = {}
    channel.phase = "starting"
    channel.send("phase", {"phase": "starting", "at": time.time(), "ahead": True})
    started = time.perf_counter()
    import pandas as pd

    durations["starting"] = time.perf_counter() - started
    channel.phase = "reading_data"
    channel.send("phase", {"phase": "reading_data", "at": time.time(), "ahead": True})
    started = time.perf_counter()
    ahead = {"pd": pd, "durations": durations}
    for name, path in (("reading_data", args.live), ("reading_benchmarks", args.benchmarks)):
        try:
            ahead[name] = pd.read_parquet(path)
        except BaseException as exc:  # noqa: BLE001 - reported when a model would have read it
            ahead[f"{name}_error"] = exc
    durations["reading_data"] = time.perf_counter() - started
    preloaded = []
    for name in filter(None, (args.preload or "").split(",")):
        try:
            __import__(name)
            preloaded.append(name)
        except BaseException:  # noqa: BLE001 - unpickling will meet the same failure and report it
            pass
    channel.phase = None
    channel.send("ready", {"preloaded": preloaded, "at": time.time()})
    return ahead


def wait_for_the_pickle(args):
    """Block until the host hands over a pickle (a JSON line on stdin), or give up when idle.

    Once started, the host sends a heartbeat byte every second; when they stop (the runner was
    killed), this process ends itself: a sandbox never outlives the run it serves."""
    import select
    import threading

    line = b""
    deadline = time.monotonic() + args.idle_seconds
    while b"\n" not in line:  # heartbeats may already follow the line when we first read
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([0], [], [], remaining)[0]:
            log(f"idle for {args.idle_seconds:g} s with no pickle: exiting")
            return None
        chunk = os.read(0, 4096)
        if not chunk:
            return None
        line += chunk
    command, _, rest = line.partition(b"\n")
    request = json.loads(command.decode("utf-8"))
    last_beat = [time.monotonic()]

    def heartbeat():
        while True:
            ready = select.select([0], [], [], 1.0)[0]
            if ready:
                try:
                    if not os.read(0, 4096):
                        break
                except OSError:
                    break
                last_beat[0] = time.monotonic()
            elif time.monotonic() - last_beat[0] > 30 * args.heartbeat_seconds:  # slack for a loaded host
                break
        os.kill(os.getpid(), 9)

    threading.Thread(target=heartbeat, daemon=True, name="host-heartbeat").start()
    return request


def hold():
    """A shell's container process: wait until the host's hold on stdin goes, then exit.

    The host keeps our stdin open for as long as its session lasts; when it ends, or the
    runner is killed outright, the engine closes it (StdinOnce), this returns, and the
    container stops with everything in it, the interactive shell included.
    """
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    return 0


def shell(args):
    """An interactive Python with predict, live_features and live_benchmark_models loaded as run loads them.

    A pickle that does not load is shown with its traceback, and the console still opens
    (predict is None, load_error holds the exception) so it can be investigated.
    """
    import code
    import signal

    faulthandler.enable(file=sys.stderr, all_threads=True)
    # Ctrl-Z would stop this process where no job control can resume it: the session would hang.
    for name in ("SIGTSTP", "SIGTTIN", "SIGTTOU"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    print("loading the pickle as Numerai does (pandas.read_pickle)...", flush=True)
    import pandas as pd

    namespace = {"__name__": "__console__", "__doc__": None, "pd": pd, "predict": None, "load_error": None,
                 "live_features": None, "live_benchmark_models": None}
    lines = [args.banner] if args.banner else []
    try:
        namespace["predict"] = pd.read_pickle(args.model)
    except BaseException as exc:  # noqa: BLE001 - what the user came to look at
        namespace["load_error"] = exc
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        lines.append(f"predict: None - the pickle did not load ({type(exc).__name__}: {_safe_str(exc, 300)}); "
                     "the exception is in load_error")
        first = "load_error"
    else:
        described, first = _describe_predict(namespace["predict"])
        lines.append("predict: " + described)
    for name, path in (("live_features", args.live), ("live_benchmark_models", args.benchmarks)):
        try:
            frame = namespace[name] = pd.read_parquet(path)
        except BaseException as exc:  # noqa: BLE001
            lines.append(f"{name}: None - {path} could not be read ({type(exc).__name__}: {_safe_str(exc, 300)})")
            continue
        lines.append(f"{name}: DataFrame, {len(frame):,} rows x {frame.shape[1]:,} columns, index "
                     f"{frame.index.name or 'unnamed'}")
    namespace["predict_as_numerai"] = _predict_as_numerai(pd, namespace)
    lines += ["helpers: pd (pandas); predict_as_numerai() calls predict with 1 or 2 arguments as Numerai does and "
              "applies numerai-predict's checks to what it returns",
              f"try: {first}",
              "exit() or Ctrl-D ends the session and removes the container; Ctrl-C interrupts what is running"]
    try:
        import readline
        import rlcompleter

        readline.set_completer(rlcompleter.Completer(namespace).complete)
        readline.parse_and_bind("tab: complete")
    except ImportError:
        pass  # a base without readline: no line editing, the console still works
    code.interact(banner="\n".join(lines), local=namespace, exitmsg="")
    return 0


def _describe_predict(model):
    """(what predict is, as a banner line; the call to try first)."""
    info = describe_callable(model)
    what = f"{info['kind']} {_safe_str(getattr(model, '__name__', None) or info['type'], 200)}"
    try:
        parameters = list(inspect.signature(model).parameters)
    except BaseException as exc:  # noqa: BLE001
        return f"{what}, no signature ({type(exc).__name__}): Numerai cannot call it", "predict"
    if len(parameters) not in (1, 2):
        return f"{what}({', '.join(parameters)}): {len(parameters)} parameters, Numerai needs 1 or 2", "predict"
    given = "live_features" if len(parameters) == 1 else "live_features, live_benchmark_models"
    return f"{what}({', '.join(parameters)}): Numerai calls it with ({given})", f"predict({given}).shape"


def _predict_as_numerai(pd, namespace):
    def predict_as_numerai():
        """Call predict as Numerai does and apply numerai-predict's checks; returns what predict returned."""
        model = namespace.get("predict")
        if model is None:
            raise RuntimeError("predict is None: the pickle did not load (see load_error)")
        count = len(inspect.signature(model).parameters)
        if count not in (1, 2):
            raise TypeError(f"Invalid pickle function - must have 1 or 2 arguments, has {count}")
        result = (model(namespace["live_features"]) if count == 1
                  else model(namespace["live_features"], namespace["live_benchmark_models"]))
        rule, line = in_image_check(pd, result)
        print(line if rule else f"numerai-predict's checks pass ({len(result):,} rows); `numerai-sandbox run` "
              "also applies Numerai's upload checks")
        return result

    return predict_as_numerai


def exit_when_host_leaves():
    """Stop everything if the host runner goes away (its hold on our stdin closes).

    A best effort on top of the host's sweep: a runner killed outright does not leave
    the model running until its time limit.
    """
    def watch():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), 9)

    import threading

    threading.Thread(target=watch, daemon=True, name="host-watch").start()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--live", default="/input/live.parquet")
    parser.add_argument("--benchmarks", default="/input/live_benchmark_models.parquet")
    parser.add_argument("--input-dir", help=f"read the inputs from here instead of {INPUT} (logged as {INPUT}/...)")
    parser.add_argument("--max-output-bytes", type=int, default=256 * 1024 * 1024)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when the host runner goes away")
    parser.add_argument("--describe", action="store_true", help="print the environment as JSON and exit")
    parser.add_argument("--verify", metavar="LOCK", help="check the installed distributions against LOCK")
    parser.add_argument("--ahead", action="store_true",
                        help="a pre-started sandbox: prepare, then wait on stdin for the pickle")
    parser.add_argument("--idle-seconds", type=float, default=600, help="--ahead: give up after this long idle")
    parser.add_argument("--heartbeat-seconds", type=float, default=1, help="--ahead: the host's heartbeat period")
    parser.add_argument("--preload", default="", help="--ahead: modules to import before the pickle arrives")

    parser.add_argument("--hold", action="store_true", help="a shell's container: wait until stdin closes")
    parser.add_argument("--shell", action="store_true", help="an interactive Python with the model and data loaded")
    parser.add_argument("--banner", default="", help="--shell: the host's lines for the banner")
    args = parser.parse_args(argv)
    if args.input_dir:
        read_inputs_from(args, args.input_dir)
    if args.verify:
        return verify(args.verify)
    if args.hold:
        return hold()
    if args.shell:
        return shell(args)
    if args.describe:
        print(json.dumps(describe_environment(), indent=1))
        return 0
    channel = Channel()
    if args.exit_on_stdin_eof and not args.ahead:
        exit_when_host_leaves()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    try:
        channel.send("hello", {"protocol": PROTOCOL, "python": ".".join(map(str, sys.version_info[:3])),
                               "pid": os.getpid(), "uid": os.getuid()})
        if not args.ahead:
            return run(args, channel)
        ahead = prepare_ahead(args, channel)
        request = wait_for_the_pickle(args)
        if request is None:
            return 0
        args.shown_model = MODEL  # as a cold run names it: the same log lines wherever the pickle was put
        args.model = request.get("model", args.model)
        args.debug = bool(request.get("debug"))
        args.max_output_bytes = int(request.get("max_output_bytes", args.max_output_bytes))
        channel.send("go", {"at": time.time()})
        return run(args, channel, ahead)
    except ChannelLost as exc:
        log(f"stopping: {exc} (the model closed or replaced it)")
        return EXIT_CHANNEL_LOST
    except BaseException as exc:  # noqa: BLE001 - a failure of ours: reported, never a bare traceback
        log(f"internal failure while {channel.phase or 'starting'}: {type(exc).__name__}: {_safe_str(exc, 300)}")
        try:
            channel.send("error", {"phase": channel.phase, "kind": "harness_error",
                                   "exception": describe_exception(exc)})
        except BaseException:  # noqa: BLE001
            pass
        return EXIT_HARNESS_ERROR


def exit_unless_something_waits(code):
    """End the process at once, as a normal exit would end it, when nothing would make it wait.

    A normal exit tears down every module the model imported (pandas, scikit-learn, LightGBM: about
    0.2 s). Everything the host needs has been sent by now, so that costs the run time and tells
    nothing, except when the model left something a normal exit waits for, which on Numerai keeps the
    process alive: a non-daemon thread, or a non-daemon multiprocessing child (joined at exit). Then
    the process exits normally, and waits, as Numerai's would.
    """
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    if "multiprocessing" in sys.modules:
        try:
            if any(not child.daemon for child in sys.modules["multiprocessing"].active_children()):
                return
        except BaseException:  # noqa: BLE001 - when unsure, exit the normal way
            return
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a stream the model closed or replaced
            pass
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    status = main()
    exit_unless_something_waits(status or 0)
    sys.exit(status)
