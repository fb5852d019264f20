"""The inspector's rules as data: what a reference could do (risk tables), and how a library version
recorded in a pickle fares against an image's pin (one rule per library, from each library's own
compatibility promises and known breaks)."""

from __future__ import annotations

import re
from typing import Callable

from .version_tables import CLOUDPICKLE_NAMES

# (recorded, pin) -> (status, note); status: same | ok | differs | breaks | unknown
Rule = Callable[[str, str], tuple[str, str]]

# What a reference would do. Exact dotted names first, then prefixes.
RISKY_NAMES = {
    "os.system": "runs a shell command", "posix.system": "runs a shell command",
    "nt.system": "runs a shell command", "os.popen": "runs a shell command",
    "builtins.eval": "evaluates Python source", "builtins.exec": "executes Python source",
    "builtins.compile": "compiles Python source", "builtins.__import__": "imports any module by name",
    "__builtin__.eval": "evaluates Python source", "__builtin__.__import__": "imports any module by name",
    "builtins.open": "opens (and may create or truncate) a file", "io.open": "opens (and may create) a file",
    "_io.open": "opens (and may create) a file", "codecs.open": "opens (and may create) a file",
    "os.open": "opens (and may create) a file", "posix.open": "opens (and may create) a file",
    "io.FileIO": "opens (and may create) a file", "_io.FileIO": "opens (and may create) a file",
    "pathlib.Path.write_text": "writes a file", "pathlib.Path.write_bytes": "writes a file",
    "builtins.setattr": "changes attributes of anything it can reach",
    "builtins.delattr": "deletes attributes of anything it can reach",
    "builtins.breakpoint": "starts a debugger", "builtins.input": "waits for input",
    "importlib.import_module": "imports any module by name", "importlib.__import__": "imports any module by name",
    "pickle.loads": "unpickles nested data", "pickle.load": "unpickles nested data",
    "_pickle.loads": "unpickles nested data", "marshal.loads": "loads raw code objects",
    "shutil.rmtree": "deletes a directory tree", "shutil.move": "moves files", "shutil.copyfile": "writes files",
    "os.remove": "deletes a file", "os.unlink": "deletes a file", "posix.remove": "deletes a file",
    "posix.unlink": "deletes a file", "os.rmdir": "deletes a directory", "os.rename": "renames files",
    "os.kill": "sends signals to processes", "os.fork": "forks the process", "os.putenv": "changes the environment",
    "os.chmod": "changes file permissions", "os.makedirs": "creates directories", "os.mkdir": "creates a directory",
    "code.interact": "starts an interactive interpreter", "pty.spawn": "starts a process",
    "webbrowser.open": "opens a browser", "sys.exit": "exits the process",
}
RISKY_PREFIXES = {
    "subprocess.": "starts processes", "os.exec": "replaces the process", "os.spawn": "starts processes",
    "posix.exec": "replaces the process", "posix.spawn": "starts processes", "nt.spawn": "starts processes",
    "socket.": "opens network connections", "_socket.": "opens network connections", "ssl.": "network (TLS)",
    "urllib.request.": "downloads", "http.client.": "network connections", "requests.": "network requests",
    "ftplib.": "network (FTP)", "smtplib.": "sends mail", "telnetlib.": "network (telnet)",
    "ctypes.": "calls native code directly", "_ctypes.": "calls native code directly", "cffi.": "calls native code",
    "runpy.": "runs other Python code", "multiprocessing.": "starts processes",
    "asyncio.subprocess.": "starts processes",
}
RISKY_MODULES = {"subprocess", "socket", "ctypes", "shutil", "urllib.request", "requests", "http.client",
                 "multiprocessing", "pty", "ftplib", "smtplib"}
RISKY_CODE_NAMES = {"system": "os.system", "popen": "os.popen", "Popen": "subprocess.Popen",
                    "check_output": "subprocess.check_output", "check_call": "subprocess.check_call",
                    "eval": "eval", "exec": "exec", "__import__": "__import__", "urlopen": "urllib urlopen",
                    "rmtree": "shutil.rmtree", "create_connection": "socket.create_connection"}


def risk_of(dotted: str) -> str | None:
    """What the reference `dotted` could do, or None when it is not known to be risky."""
    if dotted in RISKY_NAMES:
        return RISKY_NAMES[dotted]
    for prefix, why in RISKY_PREFIXES.items():
        if dotted.startswith(prefix):
            return why
    return None


def short_name(name: str | None) -> str:
    """The last part of a dotted name ('' for None)."""
    return (name or "").rsplit(".", 1)[-1]


def cloudpickle_releases(cloud_names: list[str]) -> list[str]:
    """The cloudpickle releases (of those the table knows) that have every helper in `cloud_names`."""
    out = []
    for version, modules in CLOUDPICKLE_NAMES.items():
        if all(short_name(n) in modules.get(n.rsplit(".", 1)[0], ()) for n in cloud_names):
            out.append(version)
    return out


# ---------------------------------------------------------------- comparison rules

def release(text: str) -> tuple[int, ...]:
    """The first three numbers of a version string: (1, 3, 2) for "1.3.2rc1"."""
    parts = re.findall(r"\d+", text)
    return tuple(int(p) for p in parts[:3])


def sklearn_rule(has_tree: bool) -> Rule:
    def rule(recorded: str, pin: str) -> tuple[str, str]:
        if release(recorded) == release(pin):
            return "same", ""
        if has_tree and (release(recorded) < (1, 3)) != (release(pin) < (1, 3)):
            return "breaks", ("scikit-learn 1.3 changed the tree node layout: loading raises \"node array from "
                              "the pickle has an incompatible dtype\"")
        return "differs", ("scikit-learn warns (InconsistentVersionWarning) and does not support loading "
                           "estimators across versions; re-fit or pickle with the image's version")
    return rule


def xgboost_rule(recorded: str, pin: str) -> tuple[str, str]:
    made, image = release(recorded), release(pin)
    if made[:2] == image[:2]:
        return "same", ""
    if made[:2] > image[:2]:
        return "breaks", ("saved by a newer XGBoost than the image's: older releases do not promise to read "
                          "it (an XGBRegressor pickled by 3.0 loads in 1.7.5, then predict raises AttributeError)")
    return "differs", "XGBoost reads models of older releases (with a warning); re-save with the image's version"


def lightgbm_rule(recorded: str, pin: str) -> tuple[str, str]:
    fmt = int(recorded.lstrip("v") or 0)
    major = release(pin)[0] if release(pin) else 0
    if fmt > max(major, 3):
        return "breaks", f"model format {recorded} is newer than LightGBM {pin} writes"
    if fmt < major:
        return "differs", f"model format {recorded} from an older LightGBM; {pin} reads it"
    return "same", ""


def numpy_rule(recorded: str, pin: str) -> tuple[str, str]:
    image_major = release(pin)[0] if release(pin) else 0
    if recorded == ">=2.0" and image_major < 2:
        if release(pin) >= (1, 26):
            return "differs", "pickled with NumPy 2; NumPy 1.26 has a numpy._core alias and usually loads it"
        return "breaks", "pickled with NumPy 2 (numpy._core), which NumPy before 1.26 cannot import"
    if recorded == "<2.0" and image_major >= 2:
        return "differs", "pickled with NumPy 1.x; NumPy 2 still loads numpy.core names (with a warning)"
    return "same", ""


def cloudpickle_rule(names: list[str], releases: list[str]) -> Rule:
    def rule(_recorded: str, pin: str) -> tuple[str, str]:
        if pin not in CLOUDPICKLE_NAMES:
            return "unknown", f"cloudpickle {pin} is not in the table of known releases"
        if pin in releases:
            return "ok", f"cloudpickle {pin} has every helper the pickle names"
        missing = [n for n in names if short_name(n) not in CLOUDPICKLE_NAMES[pin].get(n.rsplit(".", 1)[0], ())]
        return "breaks", (f"cloudpickle {pin} has no {', '.join(missing[:3])}: loading fails with "
                          "\"Can't get attribute\"")
    return rule
