"""The walker's handlers for opcodes that build containers and move values on the stack: MARK, tuples,
lists, dicts, sets, POP, DUP.

A mixin of `pickle_ops.Walker`: containers are capped (`Limits.container_cap`), what is dropped is counted.
"""

from __future__ import annotations

from typing import Any

from .symbols import Call, Global, Malformed, Opaque, SDict, SList


class ContainerOps:
    """Containers built symbolically, every one counted against the object budget (`made`)."""

    # ------------------------------------------------------------ containers

    def op_MARK(self, offset: int) -> bool:
        self.floor = len(self.stack)
        self.marks.append(self.floor)
        return False

    def op_EMPTY_TUPLE(self, offset: int) -> bool:
        self.stack.append(())
        return False

    def op_TUPLE(self, offset: int) -> bool:
        self.stack.append(tuple(self.pop_mark()))
        self.made += 1
        return False

    def op_TUPLE1(self, offset: int) -> bool:
        self.stack.append((self.pop(),))
        self.made += 1
        return False

    def op_TUPLE2(self, offset: int) -> bool:
        stack = self.stack
        if len(stack) < self.floor + 2:
            raise Malformed("stack underflow")
        stack[-2:] = [(stack[-2], stack[-1])]
        self.made += 1
        return False

    def op_TUPLE3(self, offset: int) -> bool:
        c = self.pop()
        b = self.pop()
        self.stack.append((self.pop(), b, c))
        self.made += 1
        return False

    def op_EMPTY_LIST(self, offset: int) -> bool:
        self.stack.append(SList())
        self.made += 1
        return False

    def op_LIST(self, offset: int) -> bool:
        self.stack.append(self._capped_list(self.pop_mark(), "list"))
        return False

    def op_APPEND(self, offset: int) -> bool:
        item = self.pop()
        self._extend(self.top(), [item])
        return False

    def op_APPENDS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._extend(self.top(), items)
        return False

    def op_EMPTY_DICT(self, offset: int) -> bool:
        self.stack.append(SDict())
        self.made += 1
        return False

    def op_DICT(self, offset: int) -> bool:
        items = self.pop_mark()
        d = SDict()
        self.made += 1
        self._setitems(d, items)
        self.stack.append(d)
        return False

    def op_SETITEM(self, offset: int) -> bool:
        value = self.pop()
        key = self.pop()
        self._setitems(self.top(), [key, value])
        return False

    def op_SETITEMS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._setitems(self.top(), items)
        return False

    def op_EMPTY_SET(self, offset: int) -> bool:
        self.stack.append(SList(kind="set"))
        self.made += 1
        return False

    def op_ADDITEMS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._extend(self.top(), items)
        return False

    def op_FROZENSET(self, offset: int) -> bool:
        self.stack.append(self._capped_list(self.pop_mark(), "frozenset"))
        return False

    # ------------------------------------------------------------ stack manipulation

    def op_POP(self, offset: int) -> bool:
        if len(self.stack) > self.floor:
            self.stack.pop()
        else:
            self.pop_mark()
        return False

    def op_POP_MARK(self, offset: int) -> bool:
        self.pop_mark()
        return False

    def op_DUP(self, offset: int) -> bool:
        self.stack.append(self.top())
        return False


    # ------------------------------------------------------------ container helpers


    def _capped_list(self, items: list[Any], kind: str) -> SList:
        out = SList(kind=kind)
        self.made += 1
        self._extend(out, items)
        return out

    def _extend(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, SList):
            room = self.limits.container_cap - len(target)
            if room < len(items):
                target.dropped += len(items) - max(room, 0)
                self.walk.dropped_items += len(items) - max(room, 0)
                items = items[:max(room, 0)]
            target.extend(items)
        elif isinstance(target, Call):
            target.extra_items += len(items)
        elif isinstance(target, (Global, Opaque)):
            pass
        else:
            raise Malformed(f"APPEND/ADDITEMS on a {type(target).__name__}")

    def _setitems(self, target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise Malformed("SETITEMS with an odd number of items")
        if isinstance(target, SDict):
            for i in range(0, len(items), 2):
                if len(target) >= self.limits.container_cap:
                    target.dropped += 1
                    self.walk.dropped_items += 1
                    continue
                key = items[i]
                try:
                    target[key] = items[i + 1]
                except TypeError:  # a key unhashable here (a list, a dict): keep it under a stand-in
                    target[("<unhashable key>", id(key))] = items[i + 1]
        elif isinstance(target, Call):
            target.extra_items += len(items) // 2
        elif isinstance(target, (Global, Opaque)):
            pass
        else:
            raise Malformed(f"SETITEM on a {type(target).__name__}")
