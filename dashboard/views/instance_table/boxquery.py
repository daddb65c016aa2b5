"""Evaluates the filter box's canonical query on the server, as a pandas boolean mask.

The box's text is first checked and rewritten by :func:`filterexpr.validate` (whitelist
tokenizer + parser); only that canonical query reaches :func:`box_mask`, which re-tokenizes
it with the same tokenizer and walks it with a small recursive evaluator over pandas
columns. Nothing is ever ``eval``'d: each condition becomes a vectorised comparison on a
whitelisted column.

The meaning is the one dash-table's interpreter gave the same query in the browser before
the table moved to the server (so links and habits keep working): text compares as text
(case-sensitive unless the ``i`` flag), numbers as numbers, ``contains`` is a substring
test on the cell's text, a comparison with a missing value is false except ``!=``, and
the ``is`` tests follow JavaScript (``odd`` is ``x % 2 == 1``, so negative odd numbers are
not odd, as in dash-table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dashboard.views.instance_table.filterexpr import ColumnSpec, FilterError, Token, tokenize

__all__ = ["box_mask"]


def box_mask(frame: pd.DataFrame, query: str, specs: Mapping[str, ColumnSpec]) -> np.ndarray:
    """Rows of ``frame`` that the canonical box ``query`` keeps ("" keeps every row).

    Raises :class:`FilterError` for a query that is not canonical (one not produced by
    ``filterexpr.validate``), e.g. a junk value sent to the server directly."""
    if not query:
        return np.ones(len(frame), dtype=bool)
    ev = _Eval(tokenize(query), frame, specs)
    mask = ev.or_expr()
    if ev.i != len(ev.toks):
        raise FilterError("the stored query is not canonical: re-apply the filter from the box")
    return mask


class _Eval:
    def __init__(self, toks: list[Token], frame: pd.DataFrame, specs: Mapping[str, ColumnSpec]):
        self.toks, self.i, self.frame, self.specs = toks, 0, frame, specs

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, *kinds: str) -> Token:
        t = self.peek()
        if t is None or (kinds and t.kind not in kinds):
            raise FilterError("the stored query is not canonical: re-apply the filter from the box")
        self.i += 1
        return t

    def or_expr(self) -> np.ndarray:
        m = self.and_expr()
        while (t := self.peek()) is not None and t.kind == "OR":
            self.take()
            m = m | self.and_expr()
        return m

    def and_expr(self) -> np.ndarray:
        m = self.not_expr()
        while (t := self.peek()) is not None and t.kind == "AND":
            self.take()
            m = m & self.not_expr()
        return m

    def not_expr(self) -> np.ndarray:
        t = self.peek()
        if t is not None and t.kind == "NOT":
            self.take()
            return ~self.not_expr()
        if t is not None and t.kind == "LPAREN":
            self.take()
            m = self.or_expr()
            self.take("RPAREN")
            return m
        return self.condition()

    def column(self, t: Token) -> tuple[ColumnSpec, pd.Series]:
        spec = self.specs.get(t.text)
        if spec is None or spec.id not in self.frame:
            raise FilterError(f"unknown column {{{t.text}}} in the stored query: re-apply the filter from the box")
        return spec, self.frame[spec.id]

    def condition(self) -> np.ndarray:
        spec, col = self.column(self.take("FIELD"))
        op = self.take("RELOP", "TEST")
        if op.kind == "TEST":
            return _test(col, spec, op.text)
        right = self.take("FIELD", "STRING", "NUMBER")
        if right.kind == "FIELD":
            _, other = self.column(right)
            return _compare(col, op.text, other, op.prefix, spec.kind)
        if op.text == "contains":
            return _contains(col, right.text, op.prefix)
        if spec.kind == "numeric":
            if right.kind != "NUMBER":
                raise FilterError(f"{{{spec.id}}} holds numbers: the stored query compares it with text")
            return _compare(col, op.text, float(right.text), op.prefix, "numeric")
        return _compare(col, op.text, right.text, op.prefix, "text")


def _fold(values: pd.Series | str, prefix: str) -> pd.Series | str:
    if prefix != "i":
        return values
    return values.casefold() if isinstance(values, str) else values.str.casefold()


def _compare(col: pd.Series, op: str, rhs: pd.Series | float | str, prefix: str, kind: str) -> np.ndarray:
    """``col op rhs`` (a value or another column); a missing side makes it false, except ``!=``."""
    present = col.notna().to_numpy().copy()
    if isinstance(rhs, pd.Series):
        present &= rhs.notna().to_numpy()
    fn = {"=": lambda a, b: a == b, "!=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
          ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}.get(op)
    if fn is None:
        raise FilterError(f"operator {op!r} in the stored query: re-apply the filter from the box")
    out = np.zeros(len(col), dtype=bool)
    if present.any():
        a: Any = col[present]
        b: Any = rhs[present] if isinstance(rhs, pd.Series) else rhs
        if kind == "text":
            a, b = _fold(a.astype(str), prefix), _fold(b.astype(str) if isinstance(b, pd.Series) else str(b), prefix)
        out[present] = np.asarray(fn(a, b.to_numpy() if isinstance(b, pd.Series) else b), dtype=bool)
    return ~out if op == "!=" else out


def _as_text(col: pd.Series) -> pd.Series:
    """The cell's text as the browser showed it: integers without ".0"."""
    if pd.api.types.is_numeric_dtype(col):
        return col.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                       else (str(int(v)) if float(v).is_integer() else repr(float(v))))
    return col.astype(str)


def _contains(col: pd.Series, text: str, prefix: str) -> np.ndarray:
    hay = _as_text(col)
    if prefix == "i":
        hay, text = hay.str.casefold(), text.casefold()
    return (col.notna() & hay.str.contains(text, regex=False)).to_numpy(dtype=bool)


def _is_prime(v: float) -> bool:
    if not float(v).is_integer() or v < 2:
        return False
    n = int(v)
    return all(n % k for k in range(2, math.isqrt(n) + 1))


def _test(col: pd.Series, spec: ColumnSpec, test: str) -> np.ndarray:
    present = col.notna().to_numpy()
    numeric = spec.kind == "numeric"
    if test == "nil":
        return ~present
    if test == "blank":
        return ~present | (col.astype(str) == "").to_numpy() if not numeric else ~present
    if test == "num":
        return present if numeric else np.zeros(len(col), dtype=bool)
    if test == "str":
        return present if not numeric else np.zeros(len(col), dtype=bool)
    if test == "bool" or not numeric:  # no boolean column; even/odd/prime need numbers
        return np.zeros(len(col), dtype=bool)
    vals = col.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        if test == "even":
            return present & (np.fmod(vals, 2) == 0)
        if test == "odd":
            return present & (np.fmod(vals, 2) == 1)  # JavaScript's %: -3 % 2 is -1, not odd
    if test == "prime":
        return np.array([p and _is_prime(v) for p, v in zip(present, vals)], dtype=bool)
    raise FilterError(f"unknown test 'is {test}' in the stored query: re-apply the filter from the box")
