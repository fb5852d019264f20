"""The callable Numerai would call, read from the pickle's result: its kind (function, lambda, method,
callable instance, class, partial, a mere reference, not callable), name and parameters."""

from __future__ import annotations

from typing import Any

from .facts import PickleFacts, is_class, is_function, key_of, name_of
from .pickle_ops import Blob, Call, Global, Opaque, SDict, SList, describe
from .report import CallableInfo
from .rules import short_name

NEW_OBJECT = {"copyreg.__newobj__", "copyreg.__newobj_ex__", "copy_reg.__newobj__"}
RECONSTRUCTOR = {"copyreg._reconstructor", "copy_reg._reconstructor"}
NOT_CALLABLE_LIBRARIES = ("sklearn.", "lightgbm.", "xgboost.", "catboost.", "pandas.", "numpy.", "scipy.",
                          "builtins.", "collections.", "torch.", "polars.", "pyarrow.")


def describe_callable(facts: PickleFacts) -> CallableInfo:
    """What the pickle's result is, as something to call."""
    if not facts.walk.complete:
        return CallableInfo("unknown", notes=["the pickle could not be read to its end"])
    return describe_value(facts, facts.walk.result, 0)


def describe_value(facts: PickleFacts, obj: Any, depth: int) -> CallableInfo:
    if depth > 4:
        return CallableInfo("unknown", notes=["nested too deeply to follow"])
    if is_function(obj):
        return describe_function(facts, obj)
    if is_class(obj):
        return describe_class(facts, obj)
    if isinstance(obj, Global):
        return describe_reference(obj.dotted)
    if isinstance(obj, Call):
        func = name_of(obj.func)
        named = name_of(obj)
        if named is not None:  # getattr(module, "f"), subimport("m"): a reference, not an object
            return describe_reference(named)
        if func == "types.MethodType" and isinstance(obj.args, tuple) and len(obj.args) == 2:
            inner = describe_value(facts, obj.args[0], depth + 1)
            params = inner.params[1:] if inner.params else inner.params
            owner = class_name(facts, obj.args[1])
            return CallableInfo("method", inner.name, inner.qualname, params,
                                len(params) if params is not None else None,
                                notes=[f"bound to an instance of {owner}" if owner else "a bound method"])
        if func == "functools.partial":
            return describe_partial(facts, obj, depth)
        cls = instance_class(obj)
        if cls is not None:
            return describe_instance(facts, cls, depth)
        if func is not None and func.startswith(NOT_CALLABLE_LIBRARIES):
            return CallableInfo("not callable", short_name(func), func,
                                notes=[f"an object built by {func}: Numerai calls the pickle, so it must be "
                                       "a function (wrap the model: def predict(live_features): ...)"])
        return CallableInfo("unknown", notes=[f"the result of calling {describe(obj.func)} while loading"])
    kind = {SDict: "dict", SList: "list", tuple: "tuple", str: "str", bytes: "bytes", Blob: "data"}.get(
        type(obj), type(obj).__name__)
    if isinstance(obj, Opaque):
        return CallableInfo("unknown", notes=[f"the pickle's result is {obj.what}"])
    return CallableInfo("not callable", notes=[f"the pickle holds a {kind}, not a function"])


def describe_function(facts: PickleFacts, fn: Call) -> CallableInfo:
    finding, state = facts.function_parts(fn)
    name = key_of(state, "__name__") or (finding.name if finding else None)
    if name is None and isinstance(fn.args, tuple) and len(fn.args) > 2 and isinstance(fn.args[2], str):
        name = fn.args[2]
    qualname = key_of(state, "__qualname__") or name
    kind = "lambda" if name == "<lambda>" else "function"
    notes = []
    if isinstance(qualname, str) and "<locals>" in qualname:
        notes.append(f"defined inside {qualname.split('.<locals>')[0]}()")
    closure = fn.args[4] if isinstance(fn.args, tuple) and len(fn.args) > 4 else None
    if isinstance(closure, tuple) and closure:
        notes.append(f"a closure over {len(closure)} variable{'s' if len(closure) > 1 else ''}")
    module = key_of(state, "__module__")
    if isinstance(module, str) and module != "__main__":
        notes.append(f"from module {module} (pickled by value)")
    if finding is None:
        notes.append("its code object could not be read")
    return CallableInfo(kind, name if isinstance(name, str) else None,
                        qualname if isinstance(qualname, str) else None,
                        finding.params if finding else None, finding.n_params if finding else None, notes)


def class_dict(facts: PickleFacts, cls: Call) -> Any:
    state = facts.class_state.get(id(cls))
    if isinstance(state, dict):
        return state
    if isinstance(cls.args, tuple) and len(cls.args) > 5:  # older cloudpickle: class dict in the call
        return cls.args[5] if isinstance(cls.args[5], dict) else None
    return None


def class_name(facts: PickleFacts, value: Any) -> str | None:
    cls = instance_class(value) if isinstance(value, Call) else None
    if isinstance(cls, Global):
        return cls.dotted
    if isinstance(cls, Call) and isinstance(cls.args, tuple) and len(cls.args) > 1 and isinstance(cls.args[1], str):
        return cls.args[1]
    return None


def describe_class(facts: PickleFacts, cls: Call) -> CallableInfo:
    name = cls.args[1] if isinstance(cls.args, tuple) and len(cls.args) > 1 and isinstance(cls.args[1], str) \
        else None
    init = key_of(class_dict(facts, cls), "__init__")
    params = None
    notes = ["calling a class builds an instance: Numerai would get an object back, not predictions"]
    if is_function(init):
        info = describe_function(facts, init)
        params = info.params[1:] if info.params else info.params
    else:
        notes.append("no __init__ of its own: its parameters come from a base class")
    return CallableInfo("class", name, name, params, len(params) if params is not None else None, notes)


def instance_class(obj: Call) -> Any:
    """The class of an object built by NEWOBJ / copyreg.__newobj__ / copyreg._reconstructor, else None."""
    func = name_of(obj.func)
    if obj.kind in ("newobj", "obj", "inst") and (is_class(obj.func) or isinstance(obj.func, Global)):
        return obj.func
    if (func in NEW_OBJECT or func in RECONSTRUCTOR) and isinstance(obj.args, tuple) and obj.args:
        return obj.args[0]
    if is_class(obj.func):
        return obj.func
    return None


def describe_instance(facts: PickleFacts, cls: Any, depth: int) -> CallableInfo:
    if isinstance(cls, Global):
        if cls.dotted.startswith(NOT_CALLABLE_LIBRARIES):
            return CallableInfo("not callable", cls.name, cls.dotted,
                                notes=[f"an instance of {cls.dotted}: Numerai calls the pickle, so it must be a "
                                       "function (wrap the model: def predict(live_features): ...)"])
        return CallableInfo("unknown", cls.name, cls.dotted,
                            notes=[f"an instance of {cls.dotted}, a class the pickle only names: whether it "
                                   "has __call__ cannot be told without importing it"])
    if is_class(cls):
        name = cls.args[1] if isinstance(cls.args, tuple) and len(cls.args) > 1 else None
        call = key_of(class_dict(facts, cls), "__call__")
        if is_function(call):
            info = describe_function(facts, call)
            params = info.params[1:] if info.params else info.params
            return CallableInfo("callable instance", name if isinstance(name, str) else None,
                                info.qualname, params, len(params) if params is not None else None,
                                [f"an instance of {name}, called through its __call__"])
        bases = cls.args[2] if isinstance(cls.args, tuple) and len(cls.args) > 2 else ()
        named_bases = [name_of(b) for b in bases if name_of(b) not in (None, "builtins.object")] \
            if isinstance(bases, tuple) else []
        if named_bases:
            return CallableInfo("unknown", name if isinstance(name, str) else None,
                                notes=[f"an instance of {name} without __call__ of its own; its bases "
                                       f"({', '.join(named_bases)}) may define one"])
        return CallableInfo("not callable", name if isinstance(name, str) else None,
                            notes=[f"an instance of {name}, a class without __call__"])
    return CallableInfo("unknown", notes=["an object whose class could not be followed"])


def describe_partial(facts: PickleFacts, obj: Call, depth: int) -> CallableInfo:
    state = obj.states[0] if obj.states else None
    func = state[0] if isinstance(state, tuple) and state else (obj.args[0] if obj.args else None)
    bound = state[1] if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], tuple) else ()
    keywords = state[2] if isinstance(state, tuple) and len(state) > 2 and isinstance(state[2], dict) else {}
    inner = describe_value(facts, func, depth + 1)
    params = None
    if inner.params is not None:
        params = [p for p in inner.params[len(bound):] if p.lstrip("*") not in keywords]
    return CallableInfo("partial", inner.name, inner.qualname, params, len(params) if params is not None
                        else None, [f"functools.partial of a {inner.kind} with {len(bound)} argument(s) bound"])


def describe_reference(dotted: str) -> CallableInfo:
    module, _, name = dotted.rpartition(".")
    notes = [f"the pickle holds only the name {dotted}: loading imports it from {module or '?'}"]
    if module == "__main__":
        notes.append("__main__ in the image is Numerai's own script, which has no such name")
    kind = "class" if name[:1].isupper() else "function"
    return CallableInfo(kind, name, dotted, None, None, notes)
