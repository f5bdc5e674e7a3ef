"""Tokenizer for Workflow Definition Language expressions.

The lexer is lazy (one token of look-ahead) because an interpolated segment
``@{...}`` ends at a ``}`` that is followed by free text: lexing past it would
trip over characters such as an apostrophe in ``"@{x} it's"``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..errors import ExpressionError

# Logic Apps limits, "Characters per expression"
# (https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config).
MAX_EXPRESSION_LENGTH = 8192
# Bounds recursion in the parser and evaluator; Logic Apps publishes no number.
MAX_NESTING_DEPTH = 64

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class Kind(enum.Enum):
    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    COMMA = "','"
    DOT = "'.'"
    QUESTION = "'?'"
    RBRACE = "'}'"
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: Any
    start: int
    end: int


_PUNCT = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "[": Kind.LBRACKET,
    "]": Kind.RBRACKET,
    ",": Kind.COMMA,
    ".": Kind.DOT,
    "?": Kind.QUESTION,
    "}": Kind.RBRACE,
}
# After these a value may start, so ".5" and "-1" are numbers rather than a member access.
_OPERAND_FOLLOWS = {None, Kind.LPAREN, Kind.COMMA, Kind.LBRACKET}
_WHITESPACE = " \t\r\n"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _is_property_char(ch: str) -> bool:
    # `.name` may use characters JSON keys commonly carry ("$content", "x-ms-id").
    return ch.isalnum() or ch in "_$-"


class Lexer:
    """Produces tokens on demand from ``source[start:]``.

    ``limit`` is the offset past which the expression is too long; it is
    checked as tokens are produced so a huge unterminated ``@{`` fails fast.
    """

    def __init__(self, source: str, start: int) -> None:
        self.source = source
        self.pos = start
        self.expr_start = start
        self.limit = start + MAX_EXPRESSION_LENGTH
        self._peeked: Token | None = None
        self._last_kind: Kind | None = None

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position=position, expression=self.source)

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def next(self) -> Token:
        token = self.peek()
        self._peeked = None
        return token

    def _lex(self) -> Token:
        src = self.source
        n = len(src)
        pos = self.pos
        while pos < n and src[pos] in _WHITESPACE:
            pos += 1
        if pos > self.limit:
            raise self._too_long()
        if pos >= n:
            self.pos = pos
            return self._emit(Kind.EOF, None, pos, pos)
        ch = src[pos]
        prev = self._last_kind
        if ch == "'":
            return self._lex_string(pos)
        if ch.isdigit() and ch.isascii():
            return self._lex_number(pos)
        if ch in "-." and prev in _OPERAND_FOLLOWS:
            nxt = src[pos + 1] if pos + 1 < n else ""
            nxt2 = src[pos + 2] if pos + 2 < n else ""
            if _ascii_digit(nxt) or (ch == "-" and nxt == "." and _ascii_digit(nxt2)):
                return self._lex_number(pos)
        if prev is Kind.DOT and _is_property_char(ch):
            end = pos
            while end < n and _is_property_char(src[end]):
                end += 1
            return self._emit(Kind.IDENT, src[pos:end], pos, end)
        if ch.isalpha() or ch == "_":
            end = pos
            while end < n and _is_name_char(src[end]):
                end += 1
            return self._emit(Kind.IDENT, src[pos:end], pos, end)
        kind = _PUNCT.get(ch)
        if kind is not None:
            return self._emit(kind, ch, pos, pos + 1)
        if ch == '"':
            raise self.error(
                "string literals use single quotes ('text'), not double quotes (\"text\")", pos
            )
        raise self.error(f"unexpected character {ch!r}", pos)

    def _emit(self, kind: Kind, value: Any, start: int, end: int) -> Token:
        if end > self.limit:
            raise self._too_long()
        self.pos = end
        self._last_kind = kind
        return Token(kind, value, start, end)

    def _too_long(self) -> ExpressionError:
        return self.error(
            f"expression is longer than the {MAX_EXPRESSION_LENGTH:,} characters Logic Apps allows",
            self.expr_start,
        )

    def _lex_string(self, start: int) -> Token:
        src = self.source
        parts: list[str] = []
        pos = start + 1
        while True:
            quote = src.find("'", pos)
            if quote > self.limit or (quote < 0 and len(src) > self.limit):
                raise self._too_long()
            if quote < 0:
                raise self.error("unterminated string literal (missing closing ')", start)
            parts.append(src[pos:quote])
            # '' inside a literal is an escaped single quote.
            if quote + 1 < len(src) and src[quote + 1] == "'":
                parts.append("'")
                pos = quote + 2
                continue
            return self._emit(Kind.STRING, "".join(parts), start, quote + 1)

    def _lex_number(self, start: int) -> Token:
        src = self.source
        n = len(src)
        pos = start
        if src[pos] == "-":
            pos += 1
        int_start = pos
        while pos < n and _ascii_digit(src[pos]):
            pos += 1
        int_digits = pos - int_start
        is_float = False
        if pos < n and src[pos] == "." and pos + 1 < n and _ascii_digit(src[pos + 1]):
            is_float = True
            pos += 1
            while pos < n and _ascii_digit(src[pos]):
                pos += 1
        if pos < n and src[pos] in "eE":
            exp = pos + 1
            if exp < n and src[exp] in "+-":
                exp += 1
            if exp < n and _ascii_digit(src[exp]):
                is_float = True
                pos = exp
                while pos < n and _ascii_digit(src[pos]):
                    pos += 1
        if pos < n and _is_name_char(src[pos]):
            raise self.error(f"invalid number {src[start : pos + 1]!r}", start)
        text = src[start:pos]
        if is_float:
            value: int | float = float(text)
            if value in (float("inf"), float("-inf")):
                raise self.error(f"number {text!r} is out of range", start)
        else:
            # Checked before int() so a 5,000-digit literal never reaches the converter.
            if int_digits > 19 or not _INT64_MIN <= int(text) <= _INT64_MAX:
                raise self.error(f"integer {text!r} is out of the 64-bit range", start)
            value = int(text)
        return self._emit(Kind.NUMBER, value, start, pos)


def _ascii_digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"
