"""Recursive-descent parser: JSON string value -> literal / expression / interpolation.

Grammar of one expression (WDL has no operators, only calls and member access)::

    expr     := primary accessor*
    primary  := NUMBER | STRING | 'true' | 'false' | 'null' | NAME '(' [expr (',' expr)*] ')'
    accessor := ['?'] ( '.' NAME | '[' expr ']' )

Function names are validated (and their argument counts checked) here, at parse
time, the way Logic Apps rejects a definition with an unknown function on save.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ..errors import ExpressionError
from ._functions import FUNCTIONS
from ._lexer import (
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING_DEPTH,
    Kind,
    Lexer,
    Token,
)


@dataclass(frozen=True, slots=True)
class Const:
    value: Any
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # as written
    key: str  # lower-cased registry key
    args: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Step:
    key: Node
    null_safe: bool
    dotted: bool  # `.name` rather than `[expr]`, only for messages
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Access:
    # A flat chain (not nested nodes) so `a.b.c...` thousands long never recurses.
    target: Node
    steps: tuple[Step, ...]
    start: int
    end: int


Node: TypeAlias = Const | Call | Access
Part: TypeAlias = str | Node
TemplateKind = Literal["literal", "expression", "interpolation"]

_KEYWORDS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class Parsed:
    kind: TemplateKind
    parts: tuple[Part, ...]  # literal: (text,), expression: (node,), interpolation: mixed
    functions: frozenset[str]


def parse_value(value: str) -> Parsed:
    """Split one JSON string value into its literal text and expressions.

    https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language#expressions
    """
    if not value.startswith("@"):
        if "@{" not in value:
            return Parsed("literal", (value,), frozenset())
        return _parse_interpolation(value)
    if value.startswith("@@"):
        # "@@" escapes a leading "@": the rest is literal text.
        return Parsed("literal", (value[1:],), frozenset())
    if value.startswith("@{"):
        return _parse_interpolation(value)
    if len(value) - 1 > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is longer than the {MAX_EXPRESSION_LENGTH:,} characters Logic Apps allows",
            position=1,
            expression=value,
        )
    parser = _Parser(value, 1)
    node = parser.expression(0)
    tail = parser.lexer.next()
    if tail.kind is not Kind.EOF:
        raise parser.unexpected(tail, "end of expression")
    return Parsed("expression", (node,), _functions_in((node,)))


def _parse_interpolation(value: str) -> Parsed:
    parts: list[Part] = []
    text: list[str] = []
    pos = 0
    n = len(value)
    while pos < n:
        at = value.find("@", pos)
        if at < 0:
            text.append(value[pos:])
            break
        text.append(value[pos:at])
        if value.startswith("@@{", at):
            # "@@{" stands for a literal "@{" (WDL: "My age is @@{parameters('myAge')}").
            text.append("@{")
            pos = at + 3
        elif value.startswith("@{", at):
            if text:
                parts.append("".join(text))
                text = []
            parser = _Parser(value, at + 2)
            node = parser.expression(0)
            close = parser.lexer.next()
            if close.kind is not Kind.RBRACE:
                raise parser.unexpected(close, "'}' to close '@{'")
            parts.append(node)
            pos = close.end
        else:
            text.append("@")
            pos = at + 1
    if text:
        joined = "".join(text)
        if joined:
            parts.append(joined)
    nodes = tuple(p for p in parts if not isinstance(p, str))
    if not nodes:
        return Parsed("literal", ("".join(p for p in parts if isinstance(p, str)),), frozenset())
    return Parsed("interpolation", tuple(parts), _functions_in(nodes))


def _functions_in(nodes: tuple[Node, ...]) -> frozenset[str]:
    found: set[str] = set()
    stack: list[Node] = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, Call):
            found.add(node.key)
            stack.extend(node.args)
        elif isinstance(node, Access):
            stack.append(node.target)
            stack.extend(step.key for step in node.steps)
    return frozenset(found)


class _Parser:
    def __init__(self, source: str, start: int) -> None:
        self.source = source
        self.lexer = Lexer(source, start)

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position=position, expression=self.source)

    def unexpected(self, token: Token, wanted: str) -> ExpressionError:
        found = token.kind.value if token.kind is not Kind.IDENT else f"'{token.value}'"
        if token.kind is Kind.STRING:
            found = f"string '{token.value}'"
        elif token.kind is Kind.NUMBER:
            found = f"number {token.value}"
        return self.error(f"expected {wanted}, found {found}", token.start)

    def expression(self, depth: int) -> Node:
        if depth >= MAX_NESTING_DEPTH:
            raise self.error(
                f"expression is nested more than {MAX_NESTING_DEPTH} levels deep",
                self.lexer.peek().start,
            )
        target = self.primary(depth)
        steps: list[Step] = []
        lexer = self.lexer
        while True:
            token = lexer.peek()
            null_safe = False
            start = token.start
            if token.kind is Kind.QUESTION:
                lexer.next()
                null_safe = True
                token = lexer.peek()
                if token.kind not in (Kind.DOT, Kind.LBRACKET):
                    raise self.unexpected(token, "'.' or '[' after '?'")
            if token.kind is Kind.DOT:
                lexer.next()
                name = lexer.next()
                if name.kind is not Kind.IDENT:
                    raise self.unexpected(name, "a property name after '.'")
                key = Const(name.value, name.start, name.end)
                steps.append(Step(key, null_safe, True, start, name.end))
            elif token.kind is Kind.LBRACKET:
                lexer.next()
                key_node = self.expression(depth + 1)
                close = lexer.next()
                if close.kind is not Kind.RBRACKET:
                    raise self.unexpected(close, "']'")
                steps.append(Step(key_node, null_safe, False, start, close.end))
            else:
                break
        if not steps:
            return target
        return Access(target, tuple(steps), target.start, steps[-1].end)

    def primary(self, depth: int) -> Node:
        token = self.lexer.next()
        if token.kind in (Kind.NUMBER, Kind.STRING):
            return Const(token.value, token.start, token.end)
        if token.kind is not Kind.IDENT:
            raise self.unexpected(token, "an expression")
        name: str = token.value
        key = name.lower()
        if self.lexer.peek().kind is not Kind.LPAREN:
            if key in _KEYWORDS:
                return Const(_KEYWORDS[key], token.start, token.end)
            raise self.error(
                f"'{name}' is not a value; call functions with parentheses, e.g. '{name}()', "
                "and quote text as 'text'",
                token.start,
            )
        self.lexer.next()
        args: list[Node] = []
        if self.lexer.peek().kind is Kind.RPAREN:
            close = self.lexer.next()
        else:
            while True:
                args.append(self.expression(depth + 1))
                sep = self.lexer.next()
                if sep.kind is Kind.RPAREN:
                    close = sep
                    break
                if sep.kind is not Kind.COMMA:
                    raise self.unexpected(sep, f"',' or ')' in the arguments of {name}()")
        self._check_call(name, key, len(args), token.start)
        return Call(name, key, tuple(args), token.start, close.end)

    def _check_call(self, name: str, key: str, count: int, position: int) -> None:
        spec = FUNCTIONS.get(key)
        if spec is None:
            message = f"unknown function '{name}'"
            close = difflib.get_close_matches(key, FUNCTIONS.keys(), n=1)
            if close:
                message += f"; did you mean '{FUNCTIONS[close[0]].name}'?"
            raise self.error(message, position)
        low, high = spec.min_args, spec.max_args
        if low <= count and (high is None or count <= high):
            return
        if high is None:
            wanted = f"at least {_plural(low)}"
        elif low == high:
            wanted = _plural(low)
        else:
            wanted = f"{low} to {high} arguments"
        raise self.error(f"{spec.name}() expects {wanted}, got {count}", position)


def _plural(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"
