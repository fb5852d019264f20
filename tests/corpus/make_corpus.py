"""The broken and hostile pickle corpus, made inside a numerai-sandbox image so versions match it.

    python make_corpus.py --features features.json --out DIR [--host-file PATH] [--marker TEXT]

One file per case, named after it: CASE.pkl. tests/test_corpus.py holds the verdict each
must get. The cases cover every way a pickle fails and every way a hostile one tries to
reach past the sandbox; the hostile ones act only when run, inside a sandbox:
- `--host-file` names a file on the host the "reads host files" cases try to read
  (the test creates it; the sandbox must not show it to the model);
- `--marker` is a unique word the background-process cases put in their command lines,
  so the test can check on the host that none of them outlived its container.

Runs with the image's Python and libraries only (stdlib, numpy, pandas, cloudpickle,
scikit-learn, lightgbm, xgboost). Nothing here runs a case: only pickles are written.
"""

import argparse
import base64
import gzip
import io
import json
import os
import pickle
import pickletools
import sys
import tempfile
import zipfile

import cloudpickle
import numpy as np
import pandas as pd

CASES = {}  # name -> a function returning the bytes of the file


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Reduce:
    """An object that unpickles as `fn(*args)`: how a pickle runs code at load time."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def dumps(obj):
    return cloudpickle.dumps(obj)


def global_ref(module, name):
    """A pickle that is nothing but a reference to `module.name` (protocol 2, GLOBAL opcode)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."


def with_reference(make_fn, module, name):
    """A pickled predict function that also needs `module.name`, as an older/newer library or a
    user's own package would name it in a real pickle. `make_fn(marker)` builds the function
    around a stand-in (fractions.Fraction); the stand-in's reference is then renamed in the
    protocol-3 stream, where GLOBAL opcodes are plain text lines."""
    import fractions

    data = cloudpickle.dumps(make_fn(fractions.Fraction), protocol=3)
    old = b"cfractions\nFraction\n"
    assert data.count(old) == 1, "the stand-in must appear exactly once"
    data = data.replace(old, f"c{module}\n{name}\n".encode())
    pickletools.dis(data, out=io.StringIO())  # still a well-formed opcode stream
    return data


def as_made_by_sklearn(data, version):
    """Pickle bytes as another scikit-learn would have written them: every estimator's state records
    the writer's version in `_sklearn_version` (same length, so the stream stays well-formed)."""
    import sklearn

    ours = sklearn.__version__.encode()
    assert len(ours) == len(version) < 256
    old, new = b"\x8c" + bytes([len(ours)]) + ours, b"\x8c" + bytes([len(version)]) + version.encode()
    assert data.count(b"_sklearn_version") and data.count(old)
    return data.replace(old, new)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--host-file", default="/nonexistent/numerai-sandbox-host-file")
    parser.add_argument("--marker", default="nsbx-corpus-marker")
    args = parser.parse_args()
    with open(args.features) as handle:
        features = json.load(handle)["feature_sets"]["small"]
    host_file, marker = args.host_file, args.marker

    def score(live):
        return live[features].sum(axis=1).rank(pct=True, method="first")

    def good(live_features):
        return score(live_features).to_frame("prediction")

    good_bytes = dumps(good)

    # ------------------------------------------------------------ invalid_pickle: not a pickle at all

    @case
    def invalid_empty():
        return b""

    @case
    def invalid_truncated():
        return good_bytes[: len(good_bytes) // 2]

    @case
    def invalid_corrupted():  # one opcode in the middle overwritten
        positions = [pos for _, _, pos in pickletools.genops(good_bytes)]
        at = positions[len(positions) // 2]
        return good_bytes[:at] + b"\xff" + good_bytes[at + 1:]

    @case
    def invalid_csv_predictions():
        return b"id,prediction\nn0001,0.5\nn0002,0.25\n"

    @case
    def invalid_zip():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("model.pkl", good_bytes)
        return buffer.getvalue()

    @case
    def invalid_gzip():
        return gzip.compress(good_bytes, mtime=0)

    @case
    def invalid_html_error_page():
        return b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>Access denied</body></html>\n"

    @case
    def invalid_json():
        return json.dumps({"model": "lgbm", "params": {"n_estimators": 2000}}).encode()

    @case
    def invalid_parquet():
        buffer = io.BytesIO()
        pd.DataFrame({"prediction": [0.1, 0.9]}, index=pd.Index(["a", "b"], name="id")).to_parquet(buffer)
        return buffer.getvalue()

    @case
    def invalid_git_lfs_pointer():
        return (b"version https://git-lfs.github.com/spec/v1\n"
                b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")

    @case
    def invalid_base64_text():
        return base64.b64encode(good_bytes) + b"\n"

    @case
    def invalid_lightgbm_text_model():
        import lightgbm

        rng = np.random.default_rng(0)
        booster = lightgbm.train({"verbose": -1, "num_leaves": 4}, lightgbm.Dataset(rng.random((50, 3)),
                                                                                    rng.random(50)), 2)
        return booster.model_to_string().encode()

    @case
    def invalid_random_bytes():
        return bytes((i * 7919 + 13) % 251 for i in range(4096))

    # ------------------------------------------------------------ missing_module

    @case
    def missing_local_module():
        # `from mymodels import predict`, pickled by reference as cloudpickle does for importable modules.
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "mymodels.py"), "w") as handle:
            handle.write("def predict(live_features):\n    return live_features.iloc[:, :1]\n")
        sys.path.insert(0, folder)
        import mymodels

        return dumps(mymodels.predict)

    @case
    def missing_local_package_class():
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m), "numerai_utils.models", "Ensemble")

    @case
    def missing_main_by_reference():
        # plain pickle (or joblib) keeps functions from the running script by name only
        return global_ref("__main__", "predict")

    @case
    def missing_torch():
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m(live_features)),
                              "torch._utils", "_rebuild_tensor_v2")

    @case
    def missing_dill():
        # what a dill pickle of a function needs first
        return global_ref("dill._dill", "_create_function")

    @case
    def missing_in_this_python_only():
        # psutil is in Numerai's image for Python 3.10, not in 3.11's
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m), "psutil", "Process")

    # ------------------------------------------------------------ library_mismatch

    @case
    def library_sklearn_removed_module():
        # GradientBoosting pickled by scikit-learn < 1.4 names its loss from this module (removed in 1.4)
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m), "sklearn.ensemble._gb_losses",
                              "LeastSquaresError")

    @case
    def library_sklearn_renamed_class():
        # k-nearest-neighbours pickled by scikit-learn < 1.2 (renamed to EuclideanDistance64 since)
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m), "sklearn.metrics._dist_metrics",
                              "EuclideanDistance")

    @case
    def library_sklearn_cython_state():
        # a decision tree as scikit-learn < 1.3 pickled it: its node records lack `missing_go_to_left`,
        # and scikit-learn's own Cython __setstate__ refuses them
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.default_rng(0)
        tree = DecisionTreeRegressor(max_depth=3).fit(rng.random((60, 3)), rng.random(60))
        state = tree.tree_.__getstate__()
        nodes = state["nodes"]
        old = np.zeros(nodes.shape, dtype=[(n, nodes.dtype[n]) for n in nodes.dtype.names
                                           if n != "missing_go_to_left"])
        for name in old.dtype.names:
            old[name] = nodes[name]

        tree_cls, tree_args = tree.tree_.__reduce__()[:2]

        class OldTree:
            def __reduce__(self):  # as Tree.__reduce__ does: the state goes through pickle's BUILD
                return tree_cls, tree_args, dict(state, nodes=old)

        tree.tree_ = OldTree()
        return as_made_by_sklearn(dumps(lambda live_features, _t=tree: _t.predict(live_features.iloc[:, :3])),
                                  "1.2.2")

    @case
    def library_sklearn_missing_attribute():
        # a forest pickled by scikit-learn 1.3: its trees lack `monotonic_cst`, which 1.4+ reads in predict
        from sklearn.ensemble import RandomForestRegressor

        rng = np.random.default_rng(0)
        n = len(features)
        forest = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0).fit(
            rng.integers(0, 5, (200, n)).astype(float), rng.random(200))
        for estimator in [forest, *forest.estimators_]:
            estimator.__dict__.pop("monotonic_cst", None)

        def predict(live_features):
            values = forest.predict(live_features[features].to_numpy(dtype=float))
            return pd.Series(values, index=live_features.index).rank(pct=True).to_frame("prediction")

        return as_made_by_sklearn(dumps(predict), "1.3.2")

    @case
    def library_numpy_internal():
        # a reference into numpy internals that this numpy does not have
        return with_reference(lambda ref: (lambda live_features, _m=ref: _m), "numpy._core.multiarray",
                              "_reconstruct_v3")

    @case
    def library_old_cloudpickle():
        # cloudpickle < 3 rebuilt functions with _make_skel_func, which cloudpickle 3 no longer has
        return global_ref("cloudpickle.cloudpickle", "_make_skel_func")

    # ------------------------------------------------------------ bad_signature

    @case
    def signature_zero_args():
        return dumps(lambda: None)

    @case
    def signature_three_args():
        return dumps(lambda live_features, live_benchmark_models, era: None)

    @case
    def signature_dict():
        return pickle.dumps({"weights": [0.1, 0.2], "features": features[:2]})

    @case
    def signature_keyword_only():
        def predict(*, live_features):
            return good(live_features)
        return dumps(predict)

    @case
    def signature_fitted_estimator():
        # the model itself instead of a predict function
        from sklearn.linear_model import Ridge

        rng = np.random.default_rng(0)
        return dumps(Ridge().fit(rng.random((20, 3)), rng.random(20)))

    @case
    def signature_ufunc():
        return dumps(np.sin)  # callable, but without a signature inspect can read

    @case
    def signature_pickled_twice():
        return dumps(good_bytes)

    # ------------------------------------------------------------ model_exception

    @case
    def exception_wrong_feature():
        def predict(live_features):
            return live_features["feature_that_does_not_exist"].rank(pct=True).to_frame("prediction")
        return dumps(predict)

    @case
    def exception_at_load():
        def fail_to_load():
            raise ValueError("this model refuses to load")
        return dumps(Reduce(fail_to_load))

    @case
    def exception_system_exit():
        def predict(live_features):
            sys.exit(0)
        return dumps(predict)

    @case
    def exception_recursion():
        def predict(live_features, depth=0):
            return predict(live_features, depth + 1)
        return dumps(lambda live_features: predict(live_features))

    @case
    def exception_unprintable():
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no text for you")

        def predict(live_features):
            raise Weird()
        return dumps(predict)

    @case
    def exception_lightgbm_wrong_features():
        import lightgbm

        rng = np.random.default_rng(0)
        booster = lightgbm.train({"verbose": -1, "num_leaves": 4}, lightgbm.Dataset(rng.random((100, 7)),
                                                                                    rng.random(100)), 3)

        def predict(live_features):
            values = booster.predict(live_features[features].to_numpy(dtype=float))
            return pd.Series(values, index=live_features.index).rank(pct=True).to_frame("prediction")
        return dumps(predict)

    # network: blocked, reported as the model's exception with a message that says so

    @case
    def network_socket():
        def predict(live_features):
            import socket

            socket.create_connection(("1.1.1.1", 443), timeout=5)
            return good(live_features)
        return dumps(predict)

    @case
    def network_dns():
        def predict(live_features):
            import socket

            socket.getaddrinfo("api-tournament.numer.ai", 443)
            return good(live_features)
        return dumps(predict)

    @case
    def network_urllib():
        def predict(live_features):
            import urllib.request

            with urllib.request.urlopen("https://numer.ai/", timeout=5) as response:
                response.read()
            return good(live_features)
        return dumps(predict)

    @case
    def network_at_load():
        import urllib.request

        return dumps(Reduce(urllib.request.urlopen, "http://example.com/weights.bin"))

    @case
    def network_localhost():
        def predict(live_features):
            import socket

            socket.create_connection(("127.0.0.1", 8080), timeout=5)
            return good(live_features)
        return dumps(predict)

    # the host: files, the Docker socket, root

    @case
    def hostile_read_host_file():
        def predict(live_features):
            with open(host_file) as handle:  # a file on the host: not in the sandbox
                handle.read()
            return good(live_features)
        return dumps(predict)

    @case
    def hostile_write_outside_tmp():
        def predict(live_features):
            import site

            errors = []
            for path in ("/input/model.pkl", "/opt/numerai-sandbox/harness.py",
                         os.path.join(site.getsitepackages()[0], "sitecustomize.py"), "/etc/profile.d/x.sh",
                         "/evil", os.path.expanduser("~/.bashrc") + ".d/x"):
                try:
                    with open(path, "a") as handle:
                        handle.write("\n# hostile\n")
                except OSError as exc:
                    errors.append(exc)
            if len(errors) < 5:
                return good(live_features)  # wrote somewhere it should not: the test fails on Success
            raise errors[0]
        return dumps(predict)

    @case
    def hostile_docker_socket():
        def predict(live_features):
            import socket

            client = socket.socket(socket.AF_UNIX)
            client.connect("/var/run/docker.sock")
            return good(live_features)
        return dumps(predict)

    @case
    def hostile_become_root():
        def predict(live_features):
            os.setuid(0)
            return good(live_features)
        return dumps(predict)

    @case
    def hostile_fork_bomb():
        def predict(live_features):
            import time

            original = os.getpid()
            while True:  # every process forks again and again; the pids limit stops them all
                try:
                    os.fork()
                except OSError:
                    if os.getpid() == original:
                        raise  # the bomb's first process reports the refusal
                    while True:  # its copies hold on to their process slots
                        time.sleep(60)
        return dumps(predict)

    @case
    def hostile_thread_bomb():
        def predict(live_features):
            import threading
            import time

            while True:
                threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        return dumps(predict)

    @case
    def hostile_open_files():
        def predict(live_features):
            handles = []
            while True:
                handles.append(open("/dev/null"))
        return dumps(predict)

    @case
    def hostile_disk_filler():
        def predict(live_features):
            block = b"\0" * (16 * 1024 * 1024)
            for folder in ("/", "/var/tmp", "/tmp"):  # only /tmp is writable, and capped
                try:
                    with open(os.path.join(folder, "filler.bin"), "wb") as handle:
                        while True:
                            handle.write(block)
                            handle.flush()
                except OSError as exc:
                    error = exc
            raise error
        return dumps(predict)

    @case
    def hostile_shell_at_load_fails():
        import subprocess

        return dumps(Reduce(subprocess.check_call, ["sh", "-c", f"cat {host_file}; exit 3"]))

    @case
    def hostile_tamper_harness():
        # patches the in-image checks to pass, then returns NaN: the host's own checks still catch it
        def predict(live_features):
            harness = sys.modules["__main__"]
            harness.in_image_check = lambda pd_module, result: (None, None)
            out = good(live_features)
            out.iloc[::7, 0] = float("nan")
            return out
        return dumps(predict)

    # ------------------------------------------------------------ crashed

    @case
    def crash_segfault_ctypes():
        def predict(live_features):
            import ctypes

            ctypes.string_at(0)
        return dumps(predict)

    @case
    def crash_segfault_at_load():
        import ctypes

        return dumps(Reduce(ctypes.string_at, 0))

    @case
    def crash_abort():
        def predict(live_features):
            os.abort()
        return dumps(predict)

    @case
    def crash_illegal_instruction():
        def predict(live_features):
            import ctypes
            import mmap
            import platform
            import signal

            code = b"\x0f\x0b" if platform.machine() in ("x86_64", "AMD64", "i686") else b"\x00\x00\x00\x00"
            try:
                page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
                page.write(code)
                address = ctypes.addressof(ctypes.c_char.from_buffer(page))
                ctypes.CFUNCTYPE(None)(address)()  # executes ud2
            except OSError:
                os.kill(os.getpid(), signal.SIGILL)  # no executable memory: the signal itself
        return dumps(predict)

    @case
    def crash_bus_error():
        def predict(live_features):
            import ctypes
            import mmap

            with open("/tmp/shrinking", "wb") as handle:
                handle.write(b"\0" * mmap.PAGESIZE * 2)
            with open("/tmp/shrinking", "r+b") as handle:
                view = mmap.mmap(handle.fileno(), mmap.PAGESIZE * 2)
                handle.truncate(0)
                ctypes.string_at(ctypes.addressof(ctypes.c_char.from_buffer(view)) + mmap.PAGESIZE, 1)
        return dumps(predict)

    @case
    def crash_stack_overflow():
        def predict(live_features):
            import threading

            sys.setrecursionlimit(10**7)
            threading.stack_size(256 * 1024)

            def deeper(n):  # through map(), a C function: every level takes C stack
                return list(map(deeper, [n + 1]))

            thread = threading.Thread(target=deeper, args=(0,))
            thread.start()
            thread.join()
        return dumps(predict)

    @case
    def crash_kill_self():
        def predict(live_features):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return dumps(predict)

    # ------------------------------------------------------------ out_of_memory

    @case
    def memory_numpy_6gb():  # under the default 4 GB limit
        def predict(live_features):
            blocks = []
            for _ in range(48):  # 48 x 128 MiB, every page touched
                blocks.append(np.ones(128 * 1024 * 1024 // 8))
            return good(live_features)
        return dumps(predict)

    @case
    def memory_python_objects():
        def predict(live_features):
            hoard = []
            while True:
                hoard.append(bytearray(1024 * 1024))
                hoard[-1][::4096] = b"\1" * len(hoard[-1][::4096])
        return dumps(predict)

    @case
    def memory_at_load():
        import operator

        return dumps(Reduce(operator.mul, b"x", 16 * 1024**3))

    @case
    def memory_error_raised():
        def predict(live_features):
            np.empty((1 << 22, 1 << 22))  # 128 TiB: refused at once with MemoryError
        return dumps(predict)

    @case
    def memory_tmp_filler():
        def predict(live_features):
            block = b"\1" * (32 * 1024 * 1024)
            with open("/tmp/filler.bin", "wb") as handle:  # /tmp is RAM: it counts against the limit
                for _ in range(64):
                    handle.write(block)
            return good(live_features)
        return dumps(predict)

    # ------------------------------------------------------------ timeout

    @case
    def timeout_busy_loop():
        def predict(live_features):
            while True:
                pass
        return dumps(predict)

    @case
    def timeout_sleep_at_load():
        import time

        return dumps(Reduce(time.sleep, 3600))

    @case
    def timeout_lingering_thread():
        # returns its predictions, but a non-daemon thread keeps the process from exiting
        def predict(live_features):
            import threading
            import time

            threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
            return good(live_features)
        return dumps(predict)

    # ------------------------------------------------------------ no_output

    @case
    def exit_os_exit_0():
        def predict(live_features):
            os._exit(0)
        return dumps(predict)

    @case
    def exit_os_exit_1_at_load():
        return dumps(Reduce(os._exit, 1))

    @case
    def exit_exec_other_program():
        def predict(live_features):
            os.execv("/bin/true", ["true"])
        return dumps(predict)

    @case
    def exit_closes_all_fds():
        def predict(live_features):
            out = good(live_features)
            os.closerange(3, 4096)  # the harness's report channel goes with them
            return out
        return dumps(predict)

    @case
    def exit_garbage_on_channel():
        def predict(live_features):
            for fd in range(3, 64):
                try:
                    os.write(fd, b"NSBX1 done 2\n{}NSBX1 result 999999\n")
                except OSError:
                    pass
            os._exit(0)
        return dumps(predict)

    # ------------------------------------------------------------ invalid_output, one per rule

    def output_case(name, make):
        CASES[name] = lambda: dumps(make)

    output_case("output_none", lambda live_features: None)
    output_case("output_series", lambda live_features: score(live_features))
    output_case("output_empty", lambda live_features: good(live_features).iloc[:0])
    output_case("output_nan", lambda live_features: good(live_features).where(
        np.arange(len(live_features))[:, None] % 10 != 0))
    output_case("output_out_of_range", lambda live_features: (good(live_features) * 3 - 1))
    output_case("output_strings", lambda live_features: good(live_features).astype(str))
    output_case("output_missing_ids", lambda live_features: good(live_features).iloc[: len(live_features) // 2])
    output_case("output_duplicate_ids", lambda live_features: pd.concat(
        [good(live_features), good(live_features).iloc[:7]]))
    output_case("output_wrong_header", lambda live_features: score(live_features).to_frame("pred"))
    output_case("output_constant", lambda live_features: pd.DataFrame({"prediction": 0.5},
                                                                      index=live_features.index))

    def subclass_output(live_features):
        class Predictions(pd.DataFrame):
            pass
        return Predictions(good(live_features))

    output_case("output_dataframe_subclass", subclass_output)

    def unwritable(live_features):
        class BadId:
            def __str__(self):
                raise RuntimeError("no text for this id")
            __repr__ = __format__ = __str__

        out = good(live_features)
        out.index = pd.Index([BadId() for _ in range(len(out))], dtype=object, name="id")
        return out

    output_case("output_unwritable", unwritable)

    # ------------------------------------------------------------ hostile but contained: these succeed

    @case
    def contained_background_process():
        def predict(live_features):
            import subprocess

            subprocess.Popen(["sh", "-c", f"exec -a {marker}-child sleep 3600"], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return good(live_features)
        return dumps(predict)

    @case
    def contained_daemon():
        def predict(live_features):
            if os.fork() == 0:  # a classic daemon: double fork, new session, stdio kept
                os.setsid()
                if os.fork() == 0:
                    os.execv("/bin/sh", ["sh", "-c", f"exec -a {marker}-daemon sleep 3600"])
                os._exit(0)
            os.wait()
            return good(live_features)
        return dumps(predict)

    @case
    def contained_shell_at_load():
        # a trojan: its __reduce__ runs a shell command at load time, then hands over a working model
        def run_then(command, model):
            import subprocess

            subprocess.run(["sh", "-c", command], check=False)
            return model
        command = (f"echo trojan ran as $(id -u); cat {host_file} 2>&1; echo pwned >> {host_file} 2>&1; "
                   "echo pwned > /input/model.pkl 2>&1; (exec 3<>/dev/tcp/1.1.1.1/80) 2>&1; true")
        return dumps(Reduce(run_then, command, good))

    @case
    def contained_log_flood():
        def predict(live_features):
            line = "x" * 1023 + "\n"
            for _ in range(32 * 1024):  # 32 MiB on stdout, 32 MiB on stderr
                sys.stdout.write(line)
                sys.stderr.write(line)
            return good(live_features)
        return dumps(predict)

    @case
    def contained_kill_init():
        def predict(live_features):
            import signal

            try:
                os.kill(1, signal.SIGKILL)  # the container's init ignores it
            except OSError:
                pass
            return good(live_features)
        return dumps(predict)

    @case
    def contained_good():  # the control: the corpus's own good model succeeds
        return good_bytes

    os.makedirs(args.out, exist_ok=True)
    for name, make in CASES.items():
        data = make()
        with open(os.path.join(args.out, f"{name}.pkl"), "wb") as handle:
            handle.write(data)
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()
