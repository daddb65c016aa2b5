"""Validates the instance table's filter-expression box (dash-table's filter language, kept for the box).

The box's text is **never evaluated as code** (neither here nor anywhere in Python): it is split
into tokens by a whitelist tokenizer, checked by a small recursive-descent parser, and
only then rewritten as a canonical query string, which the server turns into a pandas
mask (:mod:`dashboard.views.instance_table.boxquery`, over the same tokens). Anything else
is refused with a one-line message naming the problem and showing a valid example. The
language stayed that of dash-table's ``filter_query`` when the table moved to dash-ag-grid
(issue 13), so the chips, saved habits and shared expressions keep working.

The grammar is the subset of dash-table's query language (dash 4.4.1,
``dash-table/syntax-tree``) that makes sense for the instance table::

    query      := or_expr
    or_expr    := and_expr (("||" | "or") and_expr)*
    and_expr   := not_expr (("&&" | "and") not_expr)*
    not_expr   := "!" not_expr | "(" query ")" | condition
    condition  := column relop operand | column "is" test
    column     := "{" name "}" | name              (a bare name only when it is a column)
    operand    := column | number | 'text' | "text" | word
    relop      := [i|s]( = | eq | != | ne | < | lt | <= | le | > | gt | >= | ge | contains )
                  (the i/s case flag as the column filter cells write it: s> ieq icontains)
    test       := nil | blank | num | str | bool | even | odd | prime

dash-table's lexer has two positional rules kept here: ``!`` must be followed by
``(`` (or another ``!``) and may not follow ``(``. Its quirks are smoothed out in the
rewrite: text values are always quoted (``{label} != 3`` would otherwise compare the
text "3" with the number 3 and match every row), ``contains`` on a numeric column
gets a quoted value (it only matches text), and ``and``/``or`` become ``&&``/``||``.
``datestartswith`` exists in the language but the table has no date column.

"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["EXAMPLE", "MAX_LENGTH", "ColumnSpec", "FilterError", "FilterResult", "Token", "tokenize", "validate"]

EXAMPLE = "{domain} = target && {target_loss} > 2"
MAX_LENGTH = 400


@dataclass(frozen=True)
class ColumnSpec:
    """A filterable column: its id, ``"text"`` or ``"numeric"``, the values an ``=``/``!=``
    may name (None: any), and other names users may type for it."""

    id: str
    kind: str = "text"
    values: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FilterResult:
    ok: bool
    query: str = ""      #: canonical filter_query ("" clears the filter)
    message: str = ""    #: one line: what was refused, or what was applied


class FilterError(ValueError):
    """A refused expression; the message names the problem (the example is appended later)."""


# --- tokens ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str     # LPAREN RPAREN AND OR NOT RELOP TEST FIELD STRING NUMBER WORD
    text: str     # normalised text (operator without prefix, field name, string content...)
    pos: int
    prefix: str = ""  # "i" / "s" case flag of a relational operator


_RELOPS = {"=": "=", "eq": "=", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", "<=": "<=", "le": "<=",
           ">": ">", "gt": ">", ">=": ">=", "ge": ">=", "contains": "contains", "datestartswith": "datestartswith"}
_WORD_OF = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "contains": "contains"}
_TESTS = ("nil", "blank", "num", "str", "bool", "even", "odd", "prime")

_SYMBOL_OP = re.compile(r"(>=|<=|!=|=|<|>)")
_FIELD = re.compile(r"\{([^{}]*)\}")
#: characters allowed inside quotes: a literal to compare, never code or markup
_STRING_OK = re.compile(r"[\w \-.,:+/#%@()]*$", re.UNICODE)

#: Python (or shell) words that have no place in a filter; named in the refusal
_PYTHON_WORDS = {"import", "lambda", "eval", "exec", "def", "class", "return", "yield", "global", "nonlocal",
                 "assert", "del", "await", "async", "raise", "compile", "getattr", "setattr", "delattr",
                 "globals", "locals", "subprocess", "popen", "system", "builtins", "print", "open"}


def _scan_outside_quotes(text: str) -> str:
    """``text`` with the content of well-formed quoted strings blanked out (for the pre-scan)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                out.append(text[i:])
                break
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _prescan(text: str) -> None:
    """Names the usual code-injection shapes before tokenizing (clearer than 'unexpected X')."""
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is too long: {len(text):,} characters, the limit is {MAX_LENGTH}")
    if any(ord(c) < 32 for c in text):
        raise FilterError("control characters and line breaks are not allowed")
    # markup and template shapes are refused anywhere, quoted or not
    for pattern, message in (
        (r"`", "backticks are not allowed (quote text with ' or \")"),
        (r"\$\{", "template syntax ${...} is not allowed"),
        # a tag's shape (<b>, </x>, <!--, <img src=x onerror=...>), not a bare '<' comparison such as {split} <val
        (r"<\s*[/!?]|<[A-Za-z][\w-]*(?:\s+[\w-]+(?:=\S*)?)*\s*/?>", "HTML or script tags are not allowed"),
        (r"\\", "backslashes are not allowed"),
        (r";", "';' is not part of the filter language (no statements)"),
    ):
        if re.search(pattern, text):
            raise FilterError(message)
    # the rest only outside quotes: a quoted literal may hold "a.b" or "x (y)"
    bare = _scan_outside_quotes(text)
    for pattern, message in (
        (r"==", "'==' is Python: the filter language writes = (or eq)"),
        (r"(?<![&|])[&|](?![&|])", "single & or | is not an operator: write && (and) or || (or)"),
        (r"\[|\]", "brackets [ ] are not part of the filter language"),
    ):
        if re.search(pattern, bare):
            raise FilterError(message)
    m = re.search(r"([A-Za-z_]\w*)\s*\(", bare)
    if m and m.group(1).lower() not in ("and", "or", "in", "not"):
        raise FilterError(f"function calls such as '{m.group(1)}(' are not allowed")
    # a name, call, quote or field before the dot; not a number (1.e3 is a number)
    m = re.search(r"(?:\b[A-Za-z_]\w*|[)'\"}])\s*\.\s*([A-Za-z_]\w*)", bare)
    if m:
        raise FilterError(f"attribute access '.{m.group(1)}' is not allowed")
    for w in re.findall(r"[A-Za-z_]\w*", bare):
        low = w.lower()
        if low.startswith("__") or low in _PYTHON_WORDS:
            raise FilterError(f"'{w}' looks like Python; expressions are never run as code")
        if low == "not":
            raise FilterError("'not' is Python: negate with !( ... ) around a condition")
        if low == "in":
            raise FilterError("'in' is not an operator here: combine conditions with ||")


# ASCII digits only: the table reads '٣' or '２' as text, so such a "number" would match nothing
_NUM = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)
_NAME = re.compile(r"\w+(?:-\w+)*", re.UNICODE)
_IS = re.compile(r"is\s+([A-Za-z]+)", re.IGNORECASE)
_WORD_OPS = {"eq", "ne", "lt", "le", "gt", "ge", "contains"}
_OPERANDS = ("FIELD", "STRING", "NUMBER", "WORD")


def tokenize(text: str) -> list[Token]:
    """Whitelist tokenizer: every character must belong to one of the language's tokens."""
    toks: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        after_operand = bool(toks) and toks[-1].kind in _OPERANDS
        if c in "()":
            toks.append(Token("LPAREN" if c == "(" else "RPAREN", c, i))
            i += 1
        elif text.startswith("&&", i) or text.startswith("||", i):
            toks.append(Token("AND" if c == "&" else "OR", text[i:i + 2], i))
            i += 2
        elif c == "!" and not text.startswith("!=", i):
            toks.append(Token("NOT", "!", i))
            i += 1
        elif after_operand and c.lower() in "is" and (m := _SYMBOL_OP.match(text, i + 1)):
            # a case flag on a symbolic operator, as the column filter cells write it: s> i=
            toks.append(Token("RELOP", m.group(1), i, prefix=c.lower()))
            i = m.end()
        elif m := _SYMBOL_OP.match(text, i):
            toks.append(Token("RELOP", m.group(1), i))
            i = m.end()
        elif c == "{":
            m = _FIELD.match(text, i)
            if not m:
                raise FilterError(f"unclosed '{{' at character {i + 1}: write a column as {{target_loss}}")
            toks.append(Token("FIELD", m.group(1).strip(), i))
            i = m.end()
        elif c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                raise FilterError(f"unclosed quote {c} at character {i + 1}")
            content = text[i + 1:j]
            bad = [ch for ch in content if not _STRING_OK.match(ch)]
            if bad:
                raise FilterError(f"quoted text may not contain {bad[0]!r} "
                                  "(letters, digits, spaces and _-.,:+/#%@() only)")
            toks.append(Token("STRING", content, i))
            i = j + 1
        elif (m := _NUM.match(text, i)) and not (m.end() < n and (text[m.end()].isalnum() or text[m.end()] in "_.")):
            toks.append(Token("NUMBER", m.group(0), i))
            i = m.end()
        elif m := _NAME.match(text, i):
            word, low = m.group(0), m.group(0).lower()
            if low in ("and", "or"):
                toks.append(Token("AND" if low == "and" else "OR", "&&" if low == "and" else "||", i))
                i = m.end()
            elif after_operand and low == "is":
                t = _IS.match(text, i)
                if t is None or (test := t.group(1).lower()) not in _TESTS:
                    raise FilterError(f"'is' must be followed by one of: {', '.join(_TESTS)}")
                toks.append(Token("TEST", test, i))
                i = t.end()
            elif after_operand and low == "datestartswith":
                toks.append(Token("RELOP", "datestartswith", i))
                i = m.end()
            elif after_operand and (low in _WORD_OPS or (low[:1] in "is" and low[1:] in _WORD_OPS)):
                pre = "" if low in _WORD_OPS else low[0]
                toks.append(Token("RELOP", _RELOPS[low[len(pre):]], i, prefix=pre))
                i = m.end()
            else:
                toks.append(Token("WORD", word, i))
                i = m.end()
        else:
            raise FilterError(f"unexpected character {c!r} at character {i + 1}")
    return toks


# --- parser ----------------------------------------------------------------------------

def _describe(t: Token | None) -> str:
    if t is None:
        return "the end of the expression"
    shown = {"FIELD": f"{{{t.text}}}", "STRING": f"'{t.text}'", "TEST": f"is {t.text}"}.get(t.kind, t.text)
    return f"'{shown}' at character {t.pos + 1}"


class _Parser:
    """Recursive descent over the tokens; emits the canonical query as it goes."""

    def __init__(self, toks: list[Token], columns: Mapping[str, ColumnSpec]):
        self.toks, self.i = toks, 0
        self.columns = {}
        for spec in columns.values():
            for name in (spec.id, *spec.aliases):
                self.columns[name.lower()] = spec

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise FilterError("the expression ends too early: a condition is a column, an operator and a value")
        self.i += 1
        return t

    def parse(self) -> str:
        out = self.or_expr()
        if (t := self.peek()) is not None:
            hint = " (unbalanced ')')" if t.kind == "RPAREN" else " (join conditions with && or ||)"
            raise FilterError(f"unexpected {_describe(t)}{hint}")
        return out

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while (t := self.peek()) is not None and t.kind == "OR":
            self.take()
            parts.append(self.and_expr())
        return " || ".join(parts)

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while (t := self.peek()) is not None and t.kind == "AND":
            self.take()
            parts.append(self.not_expr())
        return " && ".join(parts)

    def not_expr(self) -> str:
        t = self.peek()
        if t is not None and t.kind == "NOT":
            prev = self.toks[self.i - 1] if self.i else None
            if prev is not None and prev.kind == "LPAREN":
                raise FilterError("the table's language does not allow '!' right after '(': "
                                  "put the ! before the parentheses")
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind not in ("NOT", "LPAREN"):
                raise FilterError("'!' must be followed by parentheses, e.g. !({pred_changed} = yes)")
            return "!" + self.not_expr()
        if t is not None and t.kind == "LPAREN":
            self.take()
            if (t2 := self.peek()) is not None and t2.kind == "RPAREN":
                raise FilterError(f"empty parentheses at character {t.pos + 1}")
            inner = self.or_expr()
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise FilterError(f"the '(' at character {t.pos + 1} is never closed"
                                  if close is None else f"expected ')' but found {_describe(close)}")
            self.take()
            return f"({inner})"
        return self.condition()

    # -- one condition --

    def column(self, t: Token, side: str) -> ColumnSpec:
        spec = self.columns.get(t.text.lower())
        if spec is None:
            shown = f"{{{t.text}}}" if t.kind == "FIELD" else f"'{t.text}'"
            names = ", ".join(sorted({s.id for s in self.columns.values()}))
            raise FilterError(f"unknown column {shown} on the {side} (columns: {names})")
        return spec

    def condition(self) -> str:
        left = self.take()
        if left.kind in ("STRING", "NUMBER"):
            raise FilterError(f"a condition starts with a column, not {_describe(left)}")
        if left.kind not in ("FIELD", "WORD"):
            raise FilterError(f"expected a condition but found {_describe(left)}")
        spec = self.column(left, "left")
        op = self.peek()
        if op is None or op.kind not in ("RELOP", "TEST"):
            raise FilterError(f"expected an operator (=, !=, <, <=, >, >=, contains, is nil...) after "
                              f"{{{spec.id}}} but found {_describe(op)}")
        self.take()
        if op.kind == "TEST":
            return f"{{{spec.id}}} is {op.text}"
        if op.text == "datestartswith":
            raise FilterError("datestartswith needs a date column and this table has none")
        right = self.take()
        if right.kind not in _OPERANDS:
            raise FilterError(f"expected a value after {op.text} but found {_describe(right)}")
        return f"{{{spec.id}}} {self.operator(op)} {self.value(spec, op, right)}"

    @staticmethod
    def operator(op: Token) -> str:
        return op.prefix + _WORD_OF[op.text] if op.prefix else op.text

    def value(self, spec: ColumnSpec, op: Token, t: Token) -> str:
        if t.kind == "FIELD":
            other = self.column(t, "right")
            if op.text == "contains":
                raise FilterError("contains compares a column with a value, not with another column")
            if other.kind != spec.kind:
                raise FilterError(f"{{{spec.id}}} is {spec.kind} but {{{other.id}}} is {other.kind}")
            return f"{{{other.id}}}"
        if t.kind == "WORD" and t.text.lower() in self.columns and not _known_value(spec, t.text, "i"):
            raise FilterError(f"'{t.text}' is a column name: write {{{t.text}}} for the column "
                              f"or '{t.text}' in quotes for the text")
        text = t.text
        if spec.kind == "numeric":
            if op.text == "contains":
                return _quote(text)
            if not _NUM.fullmatch(text.strip()):
                raise FilterError(f"{{{spec.id}}} holds numbers: compare it with a number, e.g. {{{spec.id}}} > 0.5")
            return text.strip()
        if op.text in ("=", "!=") and spec.values is not None and not _known_value(spec, text, op.prefix):
            vals = list(spec.values)
            shown = ", ".join(vals[:12]) + (", ..." if len(vals) > 12 else "")
            raise FilterError(f"{{{spec.id}}} has no value '{text}' (its values: {shown})")
        return _quote(text)


def _known_value(spec: ColumnSpec, text: str, prefix: str) -> bool:
    if spec.values is None:
        return False
    if prefix == "i":
        return text.casefold() in {v.casefold() for v in spec.values}
    return text in spec.values


def _quote(text: str) -> str:
    # quotes, backslashes and braces never reach here (tokenizer whitelist), so no escaping is needed
    return f'"{text}"'


def validate(text: str | None, columns: Mapping[str, ColumnSpec] | Iterable[ColumnSpec]) -> FilterResult:
    """Checks ``text`` and returns the canonical ``filter_query`` (never evaluates anything).

    An empty text is valid and clears the filter.
    """
    cols = columns if isinstance(columns, Mapping) else {c.id: c for c in columns}
    text = (text or "").strip()
    if not text:
        return FilterResult(True, "", "Filter cleared: every instance is shown.")
    try:
        _prescan(text)
        toks = tokenize(text)
        query = _Parser(toks, cols).parse()
    except FilterError as exc:
        return FilterResult(False, "", f"Refused: {exc}. A valid example: {EXAMPLE}")
    return FilterResult(True, query, f"Filter applied: {query}")
