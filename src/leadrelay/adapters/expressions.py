"""Playbook conditions in CEL (Common Expression Language), compiled once at load.

CEL is a small, safe, side-effect-free language (`fit >= 40 && engagement >= 60`); nothing
here ever reaches Python's `eval`. A condition that fails at run time (a field the lead
does not have, a type mismatch) is simply false: a rule that cannot be decided does not fire.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import cel

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_ERRORS = (RuntimeError, KeyError, TypeError, ValueError, OverflowError)
_ERROR_LINE = re.compile(r"ERROR: <input>:\d+:\d+: (.*)")
# CEL's standard functions (operators are spelled _op_ and are always there)
_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "bool", "type", "dyn", "timestamp", "duration",
    "matches", "contains", "startsWith", "endsWith", "getDate", "getDayOfMonth", "getDayOfWeek",
    "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
})
_MEMBER_ONLY = ("contains", "startsWith", "endsWith")
_MEMO_SAFE = frozenset({"lead", "event", "properties", "stage"})
_MEMO_SIZE = 50_000
_MISSING = object()


class ExpressionError(ValueError):
    """A condition that cannot be compiled, or names something unknown."""


def _accessed_keys(source: str, variable: str) -> frozenset[str] | None:
    """The keys of map `variable` the expression reads, when it only reads them by name
    (`lead.industry`, `properties["path"]`); None when it uses the map as a whole."""
    keys: set[str] = set()
    pattern = re.compile(rf"(?<![\w.]){re.escape(variable)}\b")
    for found in pattern.finditer(source):
        rest = source[found.end():]
        by_name = re.match(r"\s*\.\s*([A-Za-z_]\w*)", rest)
        by_index = re.match(r"""\s*\[\s*(["'])([^"'\\]*)\1\s*\]""", rest)
        if by_name and by_name.group(1) not in _MACROS:
            keys.add(by_name.group(1))
        elif by_index:
            keys.add(by_index.group(2))
        else:
            return None
    return frozenset(keys)


class CelCondition:
    """A compiled condition; calling it with a context mapping answers true or false."""

    __slots__ = ("source", "variables", "_program", "_variables", "_keys", "_memo")

    def __init__(
        self,
        source: str,
        allowed: Iterable[str],
        known_keys: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.source = source
        try:
            self._program = cel.compile(source)
        except ValueError as error:
            found = _ERROR_LINE.search(str(error))
            raise ExpressionError(f"invalid condition {source!r}: {found.group(1) if found else error}") from None
        allowed = tuple(allowed)
        for function in self._program.functions():
            if function not in _FUNCTIONS and not function.startswith(("_", "@", "!")):
                raise ExpressionError(
                    f"unknown function {function!r} in {source!r}{_did_you_mean(function, _FUNCTIONS)}"
                )
        for function in _MEMBER_ONLY:
            if re.search(rf"(?<![.\w]){function}\s*\(", source):
                raise ExpressionError(
                    f"{function} is called on a value in CEL, e.g. lead.title.{function}(\"...\"), in {source!r}"
                )
        variables = tuple(self._program.variables())
        for name in variables:
            if name not in allowed:
                raise ExpressionError(
                    f"unknown name {name!r} in {source!r}{_did_you_mean(name, allowed)}"
                    f" (a condition here can use: {', '.join(allowed)})"
                )
        self._variables = variables
        self.variables = frozenset(variables)
        self._keys = {name: _sorted(_accessed_keys(source, name)) for name in variables}
        # A condition over text-like values only (not scores) gives the same answer for the
        # same inputs: remember recent answers instead of asking CEL again.
        self._memo: dict[Any, bool] | None = {} if self.variables <= _MEMO_SAFE else None
        for name, known in (known_keys or {}).items():
            known = tuple(known)
            for key in sorted(self._keys.get(name) or ()):
                if key not in known:
                    raise ExpressionError(
                        f"unknown field {name}.{key} in {source!r}{_did_you_mean(key, known)}"
                    )

    def __call__(self, context: Mapping[str, Any]) -> bool:
        memo = self._memo
        try:
            if memo is None:
                return self._execute(self._values(context))
            key = self._memo_key(context)
            try:
                return memo[key]
            except KeyError:
                answer = memo[key] = self._execute(self._values(context))
                if len(memo) > _MEMO_SIZE:
                    memo.clear()
                return answer
            except TypeError:  # a list or map inside: not hashable, ask CEL
                return self._execute(self._values(context))
        except KeyError:  # a name this context does not have (e.g. no event): the rule does not fire
            return False

    def _values(self, context: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self._variables:
            value = context[name]
            keys = self._keys[name]
            if keys is not None and isinstance(value, dict):
                value = {key: value[key] for key in keys if key in value}
            values[name] = value
        return values

    def _memo_key(self, context: Mapping[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for name in self._variables:
            value = context[name]
            keys = self._keys[name]
            if keys is None or not isinstance(value, dict):
                parts.append(tuple(value.items()) if isinstance(value, dict) else value)
            else:
                parts.extend([value.get(key, _MISSING) for key in keys])
        return tuple(parts)

    def _execute(self, values: dict[str, Any]) -> bool:
        try:
            return self._program.execute(values) is True
        except _ERRORS:
            return False

    def mistake_on(self, sample: Mapping[str, Any]) -> str | None:
        """Try the condition on a complete sample: mixing types or an answer that is not
        true/false is a mistake in the playbook (such a rule could never fire)."""
        try:
            result = self._program.execute({name: sample[name] for name in self._variables})
        except TypeError as error:
            return f"condition {self.source!r} must be true or false, but cannot be evaluated: {str(error).split('. ')[0]}"
        except RuntimeError as error:
            if "Undefined variable or function" in str(error):  # every variable is in the sample
                return f"condition {self.source!r} calls a function CEL does not have in that form: {str(error).split('. ')[0]}"
            return None
        except _ERRORS:
            return None  # depends on the values (e.g. a key an event may not have): fine
        if isinstance(result, bool):
            return None
        return f"condition {self.source!r} must be true or false, but gives {type(result).__name__} ({result!r})"

    def __repr__(self) -> str:
        return f"CelCondition({self.source!r})"


def _sorted(keys: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if keys is None else tuple(sorted(keys))


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
