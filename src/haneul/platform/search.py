"""Search expressions over sessions: ``params.lr < 1e-3 and metrics.val_acc > 0.8 and tags.model = "bert"``.

A tokeniser and a recursive-descent parser turn the text into a small tree (:class:`Compare`,
:class:`And`, :class:`Or`, :class:`Not`); :mod:`haneul.platform.service` translates the tree into SQL
over indexed tables, so no session is loaded to be filtered in Python. Grammar::

    expr     := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | "(" expr ")" | compare
    compare  := field op value | field "contains" string
    field    := name | "params." key | "metrics." key | "tags." key
    op       := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
    value    := number | "string" | 'string' | true | false

A key may hold dots, slashes and dashes (``params.opt.lr``, ``metrics.eval/loss``) or be quoted with
backticks (``params.`my key```). Keywords are case-insensitive. Errors name the position (counted from
1) and the token found there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from haneul.errors import InvalidInput

#: session columns a filter may name directly, and whether each holds text or numbers
FIELDS = {"id": "num", "name": "text", "owner": "text", "status": "text", "project": "text", "notes": "text",
          "priority": "num", "exit_code": "num", "created_at": "num", "started_at": "num", "ended_at": "num"}
PREFIXES = ("params", "metrics", "tags")
OPS = ("=", "!=", "<", "<=", ">", ">=", "contains")
MAX_LENGTH = 4000

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|==|=|<|>)
  | (?P<paren>[()])
  | (?P<name>[A-Za-z_][\w]*(?:\.(?:`[^`]+`|[\w][\w./\-]*))?)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, paren, name, keyword, end
    text: str
    pos: int  # 1-based column of the first character


@dataclass(frozen=True)
class Compare:
    scope: str  # "session", "params", "metrics" or "tags"
    key: str  # the session column, or the param / metric / tag key
    op: str
    value: float | str


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Compare | And | Or | Not


def _error(message: str) -> InvalidInput:
    return InvalidInput(f"filter: {message}; write e.g. params.lr < 1e-3 and tags.model = \"bert\"")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None:
            raise _error(f"unexpected {text[at:at + 12]!r} at position {at + 1}")
        kind = m.lastgroup or ""
        if kind != "space":
            word = m.group()
            if kind == "name" and word.lower() in ("and", "or", "not", "contains", "true", "false"):
                kind, word = "keyword", word.lower()
            tokens.append(Token(kind, word, at + 1))
        at = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str) -> InvalidInput:
        tok = self.peek()
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        return _error(f"expected {expected} at position {tok.pos}, found {found}")

    def is_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind == "keyword" and tok.text == word

    def expr(self) -> Node:
        parts = [self.conj()]
        while self.is_keyword("or"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conj(self) -> Node:
        parts = [self.neg()]
        while self.is_keyword("and"):
            self.take()
            parts.append(self.neg())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def neg(self) -> Node:
        if self.is_keyword("not"):
            self.take()
            return Not(self.neg())
        tok = self.peek()
        if tok.kind == "paren" and tok.text == "(":
            self.take()
            inner = self.expr()
            if not (self.peek().kind == "paren" and self.peek().text == ")"):
                raise self.fail("')'")
            self.take()
            return inner
        return self.compare()

    def compare(self) -> Compare:
        tok = self.peek()
        if tok.kind != "name":
            raise self.fail("a field such as params.lr, metrics.loss, tags.model, status or project")
        self.take()
        scope, key = _field(tok)
        op_tok = self.peek()
        if op_tok.kind == "op":
            op = "=" if op_tok.text == "==" else op_tok.text
        elif op_tok.kind == "keyword" and op_tok.text == "contains":
            op = "contains"
        else:
            raise self.fail("a comparison (= != < <= > >= contains)")
        self.take()
        value = self.value()
        if op == "contains" and not isinstance(value, str):
            raise _error(f"'contains' at position {op_tok.pos} takes a quoted string")
        if scope == "metrics" and isinstance(value, str):
            raise _error(f"metrics.{key} at position {tok.pos} holds numbers; compare it with a number")
        if scope == "session" and FIELDS[key] == "num" and isinstance(value, str):
            raise _error(f"{key} at position {tok.pos} holds numbers; compare it with a number")
        return Compare(scope, key, op, value)

    def value(self) -> float | str:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            number = float(tok.text)
            if not math.isfinite(number):
                raise _error(f"number {tok.text!r} at position {tok.pos} is out of range")
            return number
        if tok.kind == "string":
            self.take()
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            self.take()
            return tok.text
        raise self.fail("a number or a quoted string")


def _field(tok: Token) -> tuple[str, str]:
    head, dot, rest = tok.text.partition(".")
    if not dot:
        if head not in FIELDS:
            raise _error(f"unknown field {head!r} at position {tok.pos}; use params.KEY, metrics.KEY, tags.KEY "
                         f"or one of: {', '.join(FIELDS)}")
        return "session", head
    if head not in PREFIXES:
        raise _error(f"unknown field {tok.text!r} at position {tok.pos}; a dotted field starts with "
                     "params., metrics. or tags.")
    key = rest[1:-1] if rest.startswith("`") else rest
    return head, key


def parse(text: str) -> Node | None:
    """The tree of a filter expression, or None for an empty one."""
    if len(text) > MAX_LENGTH:
        raise _error(f"the expression is {len(text)} characters long, over the limit of {MAX_LENGTH}")
    if not text.strip():
        return None
    parser = _Parser(tokenize(text))
    node = parser.expr()
    if parser.peek().kind != "end":
        raise parser.fail("'and', 'or' or the end of the filter")
    return node


__all__ = ["FIELDS", "And", "Compare", "Node", "Not", "Or", "Token", "parse", "tokenize"]
