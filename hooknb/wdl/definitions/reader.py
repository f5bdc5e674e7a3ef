"""Reading definitions: JSON text, files, the code-view wrapper and ARM templates.

:func:`load` reads a whole workflow definition the way people have them and validates it into a
:class:`Definition`. :func:`load_webhook` reads one HttpWebhook trigger or action, as JSON or
YAML, with the same checks, and names the line a mistake is on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ...errors import DefinitionError
from .. import parse
from .endpoints import _check_endpoints, is_arm_expression
from .model import Definition
from .parts import (
    _ACTION_KEYS,
    _TRIGGER_KEYS,
    WebhookDefinition,
    WebhookKind,
    webhook_requests,
)
from .validation import (
    _Builder,
    _canonical_keys,
    _check_strings,
    _is_dynamic,
    _kind,
    _plain_json,
    _PropertyError,
)


def parse_text(text: str) -> Any:
    """Parse JSON text strictly (no NaN, no duplicate keys), reporting line and column.

    A pasted object member (``"name": {...}`` as docs show them) is read as if wrapped in
    braces.

    Raises:
        DefinitionError: with ``line`` and ``column`` for a syntax error.
    """
    text = text.lstrip("\ufeff")
    try:
        return _loads(text)
    except json.JSONDecodeError as first:
        if not text.lstrip().startswith('"'):
            raise _syntax(first) from None
        try:
            return _loads("{" + text + "}")
        except json.JSONDecodeError as wrapped:
            column = wrapped.colno - 1 if wrapped.lineno == 1 else wrapped.colno
            pos = max(wrapped.pos - 1, 0)
            raise DefinitionError(
                f"not valid JSON: {wrapped.msg} (read as an object member, as if wrapped "
                f"in {{ }}){_near(text, pos)}",
                line=wrapped.lineno,
                column=column,
            ) from None
        except _JSONValueError as exc:
            raise DefinitionError(f"not valid JSON: {exc}") from None
    except _JSONValueError as exc:
        raise DefinitionError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise DefinitionError("not valid JSON: nested too deeply") from None


class _JSONValueError(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _JSONValueError(f"{name} is not a JSON value")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JSONValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)


def _syntax(exc: json.JSONDecodeError) -> DefinitionError:
    return DefinitionError(
        f"not valid JSON: {exc.msg}{_near(exc.doc, exc.pos)}", line=exc.lineno, column=exc.colno
    )


def _near(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start : end if end >= 0 else len(text)].strip()
    if not line:
        return ""
    if len(line) > 80:
        line = line[:77] + "..."
    return f" near {line!r}"


def _read(source: Any) -> tuple[Any, str | None]:
    """The JSON document and a suggested name (a file's stem)."""
    if isinstance(source, Mapping):
        return _plain_json(source, "definition"), None
    if isinstance(source, bytes | bytearray):
        try:
            return parse_text(bytes(source).decode("utf-8")), None
        except UnicodeDecodeError as exc:
            raise DefinitionError(f"the definition is not UTF-8 text: {exc}") from None
    if isinstance(source, os.PathLike):
        return _read_file(Path(source))
    if isinstance(source, str):
        stripped = source.strip()
        if not stripped:
            raise DefinitionError("the definition is empty")
        if stripped[0] in '{["' or "\n" in stripped:
            return parse_text(source), None
        path = Path(stripped).expanduser()
        if not path.is_file():
            raise DefinitionError(
                f"{stripped[:200]!r} is neither JSON text nor the path of an existing file"
            )
        return _read_file(path)
    raise DefinitionError(
        "a definition is a dict, JSON text, or the path of a JSON file, "
        f"not {type(source).__name__}"
    )


def _read_file(path: Path) -> tuple[Any, str | None]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DefinitionError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{str(path)!r} is not UTF-8 text: {exc}") from None
    try:
        return parse_text(text), path.stem
    except DefinitionError as exc:
        if exc.line is None:
            raise
        raise DefinitionError(
            exc.message, line=exc.line, column=exc.column, source=path.name
        ) from None


def _unwrap(doc: Any, name: str | None) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(definition, parameter values from the wrapper, suggested name)."""
    if not isinstance(doc, dict):
        raise DefinitionError(f"a workflow definition is a JSON object, not {_kind(doc)}")
    if isinstance(doc.get("resources"), list):
        workflows = [
            r
            for r in doc["resources"]
            if isinstance(r, dict)
            and isinstance(r.get("type"), str)
            and r["type"].lower() == "microsoft.logic/workflows"
        ]
        if not workflows:
            raise DefinitionError(
                "this ARM template has no Microsoft.Logic/workflows resource", location="resources"
            )
        if len(workflows) > 1:
            names = ", ".join(repr(r.get("name")) for r in workflows)
            raise DefinitionError(
                f"this ARM template has {len(workflows)} Microsoft.Logic/workflows resources "
                f"({names}); load one of them (a resources[] item)",
                location="resources",
            )
        return _unwrap(workflows[0], name)
    kind = doc.get("type")
    if isinstance(kind, str) and kind.lower() == "microsoft.logic/workflows":
        props = doc.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("definition"), dict):
            raise DefinitionError(
                "the Microsoft.Logic/workflows resource has no properties.definition object",
                location="properties.definition",
            )
        resource_name = doc.get("name")
        if isinstance(resource_name, str) and not is_arm_expression(resource_name):
            name = resource_name.rsplit("/", 1)[-1]
        values = _wrapper_values(props.get("parameters"), "properties.parameters")
        return props["definition"], values, name
    if "definition" in doc and set(doc) <= {"definition", "parameters", "kind"}:
        if not isinstance(doc["definition"], dict):
            raise DefinitionError("must be a JSON object", location="definition")
        return doc["definition"], _wrapper_values(doc.get("parameters"), "parameters"), name
    return doc, {}, name


def _wrapper_values(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DefinitionError('must be an object of {"value": ...} entries', location=where)
    out = {}
    for key, entry in value.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise DefinitionError(
                'a parameter value here is written {"value": ...}', location=f"{where}.{key}"
            )
        out[key] = entry["value"]
    return out


def load(
    source: Any,
    parameters: Mapping[str, Any] | None = None,
    *,
    endpoints: Mapping[str, str] | None = None,
) -> Definition:
    """Read and validate a workflow definition.

    ``source`` is a definition dict, JSON text, a file path, the code-view wrapper
    ``{"definition": ..., "parameters": {"p": {"value": ...}}}``, an ARM template or its
    ``Microsoft.Logic/workflows`` resource. ``parameters`` are plain values by name; they
    win over the wrapper's values, which win over ``defaultValue``. ``endpoints`` rewrites
    request URIs at run time (see :mod:`hooknb.wdl.definitions`).

    Raises:
        DefinitionError: for anything that is not a definition hooknb can run; the message
            gives the JSON line and column, or the location in the definition.
    """
    doc, name = _read(source)
    definition, wrapper_values, name = _unwrap(doc, name)
    values = dict(wrapper_values)
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise DefinitionError("parameter values are a mapping of name to value")
        values.update(_plain_json(dict(parameters), "parameters"))
    result = _Builder().build(definition, values, into=Definition())
    result.endpoints = _check_endpoints(endpoints)
    result.name = name
    return result


# -------------------------------------------------------------------------------- one webhook

_EXAMPLE = '{"type": "HttpWebhook", "inputs": {"subscribe": {...}, "unsubscribe": {...}}}'
# Expressions in a request are evaluated at run time. A stricter check of the request sees
# these stand-ins for the fields every request needs; other fields holding one are left out.
_STAND_INS = {"method": "POST", "uri": "https://expression.invalid/"}
_STAND_INS["url"] = _STAND_INS["uri"]


class RequestCheck(Protocol):
    """A stricter check of one HTTP request, such as the hub's ``normalize_request``.

    It raises ``ValueError("<what>.<field>: <what is wrong>")`` for a request it refuses.
    """

    def __call__(self, spec: Mapping[str, Any], *, what: str) -> object: ...


def load_webhook(
    source: str,
    kind: WebhookKind,
    *,
    first_line: int = 1,
    check_request: RequestCheck | None = None,
) -> WebhookDefinition:
    """Read and check one HttpWebhook trigger or action, as Logic Apps' code view shows it.

    ``source`` is JSON or YAML text: the whole object (``{"type": "HttpWebhook", "inputs":
    {"subscribe": ..., "unsubscribe": ...}}``, an action perhaps with ``limit.timeout``) or just
    its ``inputs``. The checks are those :func:`load` makes for an HttpWebhook trigger or action
    in a definition, and every expression must parse; ``parameters()`` is left to run time (a
    lone trigger or action declares no parameters), and so is a ``limit.timeout`` expression,
    which is therefore refused. ``check_request`` adds a stricter check of the subscribe and
    unsubscribe requests.

    Raises:
        DefinitionError: naming the line of ``source`` (counted from ``first_line``: a notebook
            cell's body starts on line 2, after its ``%%`` line) and, for a syntax error, the
            column, or else the field: ``line 4: inputs.subscribe.uri: missing: the URL to
            call``. The field's location is relative to what ``source`` holds.
    """
    lines = _Lines(source, first_line)
    try:
        return _webhook(_json_or_yaml(source, kind), kind, check_request)
    except DefinitionError as exc:
        raise lines.place(exc) from None


def _webhook(doc: Any, kind: WebhookKind, check: RequestCheck | None) -> WebhookDefinition:
    # The builder's locations start with "." here (its objects sit at the root of ``doc``);
    # _Lines.place removes it.
    if doc is None:  # YAML with nothing but comments
        raise _empty(kind)
    if not isinstance(doc, dict):
        raise DefinitionError(
            f"expected the HttpWebhook {kind} as an object ({_EXAMPLE}) or its inputs "
            f'({{"subscribe": ..., "unsubscribe": ...}}), not {_kind(doc)}'
        )
    doc = _plain_json(doc, "")
    trigger = kind == "trigger"
    builder = _Builder()
    keys = {key.lower() for key in doc}
    timeout = None
    if keys & {"type", "inputs"}:
        what = "a trigger" if trigger else "an action"
        spec = _canonical_keys(doc, _TRIGGER_KEYS if trigger else _ACTION_KEYS, "", what)
        kind_type = spec.get("type")
        if kind_type is None:
            raise DefinitionError('missing: "HttpWebhook"', location="type")
        if not isinstance(kind_type, str) or kind_type.lower() != "httpwebhook":
            raise DefinitionError(f'expected "HttpWebhook", not {kind_type!r}', location="type")
        if trigger:
            raw = builder._trigger(kind, spec, "").raw
        else:
            step = builder._action(kind, spec, "", depth=1, parent=None)
            raw, timeout = step.raw, step.timeout
            if _is_dynamic(timeout):
                raise DefinitionError(
                    "an expression is not evaluated here: give an ISO 8601 duration such as PT10M",
                    location="limit.timeout",
                )
        inputs, where = raw["inputs"], "inputs"
        if raw.get("conditions"):
            _check_strings(raw["conditions"], "conditions", webhook=False, result=None)
    elif keys & {"subscribe", "unsubscribe"}:
        inputs, where = builder._webhook_inputs(doc, "", trigger=trigger), ""
    elif doc:
        first = next(iter(doc))
        raise _PropertyError(
            f"unknown property {first!r}: give the HttpWebhook {kind} ({_EXAMPLE}) or its "
            "inputs (subscribe, unsubscribe)",
            location="",
            key=first,
        )
    else:
        raise _empty(kind)
    _check_strings(inputs, where, webhook=True, result=None)
    subscribe, unsubscribe = webhook_requests(inputs)
    if check is not None:
        prefix = f"{where}." if where else ""
        _check_request(subscribe, f"{prefix}subscribe", check)
        if unsubscribe is not None:
            _check_request(unsubscribe, f"{prefix}unsubscribe", check)
    access = inputs.get("accessKeyType") if trigger else None
    return WebhookDefinition(kind, subscribe, unsubscribe, timeout, access)


def _empty(kind: WebhookKind) -> DefinitionError:
    return DefinitionError(
        f"the definition is empty: give the HttpWebhook {kind} as JSON or YAML ({_EXAMPLE})"
    )


def _check_request(spec: dict[str, Any], what: str, check: RequestCheck) -> None:
    probe = {}
    for key, value in spec.items():
        if not (isinstance(value, str) and "@" in value and parse(value).kind != "literal"):
            probe[key] = value
        elif key in _STAND_INS:
            probe[key] = _STAND_INS[key]
    try:
        check(probe, what=what)
    except ValueError as exc:
        message = str(exc)
        field, colon, rest = message.partition(": ")
        if colon and (field == what or field.startswith(f"{what}.")):
            raise DefinitionError(rest, location=field) from None
        raise DefinitionError(message, location=what) from None


def _json_or_yaml(text: str, kind: WebhookKind) -> Any:
    stripped = text.strip()
    if not stripped:
        raise _empty(kind)
    if stripped[0] not in "{[":
        return _yaml(text)
    try:
        return parse_text(text)
    except DefinitionError as exc:
        json_error = exc
    # YAML's flow style is a superset of JSON (comments, unquoted keys, trailing commas); when
    # even that fails, the JSON message is the one that fits what was written.
    try:
        return _yaml(text)
    except DefinitionError:
        raise json_error from None


def _yaml(text: str) -> Any:
    import yaml  # imported only for text that is not JSON (about 15 ms)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).partition("\n")[0]
        message = f"not valid YAML: {problem}"
        if mark is None:
            raise DefinitionError(message) from None
        raise DefinitionError(message, line=mark.line + 1, column=mark.column + 1) from None
    except RecursionError:
        raise DefinitionError("not valid YAML: nested too deeply") from None


class _Lines:
    """Where a location (``inputs.subscribe.uri``) is written in a JSON or YAML text.

    The text is composed into YAML nodes (JSON is, nearly, YAML) only when an error needs a line.
    """

    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self.offset = first_line - 1

    def place(self, exc: DefinitionError) -> DefinitionError:
        """``exc`` with its line in the text (and its location without a leading ``.``)."""
        location = (exc.location or "").lstrip(".") or None
        if not self.text.strip():  # no line to point at
            return DefinitionError(exc.message, location=location)
        line, column = exc.line, exc.column
        if line is None:
            path = location or ""
            if isinstance(exc, _PropertyError):  # point at the property, not its object
                path = f"{path}.{exc.key}" if path else exc.key
            line = self.line_of(path)
        return DefinitionError(
            exc.message, location=location, line=line + self.offset, column=column
        )

    def line_of(self, location: str) -> int:
        """The line of the deepest part of ``location`` written in the text (else the first
        line with text on it)."""
        if not location:
            return self._first()
        import yaml

        try:
            # Tabs are whitespace to JSON but not always to YAML; a space keeps every position.
            node: Any = yaml.compose(self.text.replace("\t", " "), Loader=yaml.SafeLoader)
        except (yaml.YAMLError, RecursionError):
            return self._search(location)
        found, rest = None, location
        while rest and node is not None:
            if isinstance(node, yaml.MappingNode):
                # The longest key that starts ``rest``: keys may hold dots (``hub.callback``).
                match = max(
                    (
                        (key.value, key, value)
                        for key, value in node.value
                        if isinstance(key.value, str) and _starts(rest, key.value)
                    ),
                    key=lambda item: len(item[0]),
                    default=None,
                )
                if match is None:
                    break
                name, key_node, node = match
                found, rest = key_node.start_mark.line, rest[len(name) :].removeprefix(".")
            elif isinstance(node, yaml.SequenceNode) and (index := _INDEX.match(rest)):
                if int(index[1]) >= len(node.value):
                    break
                node = node.value[int(index[1])]
                found, rest = node.start_mark.line, rest[index.end() :]
            else:
                break
        return found + 1 if found is not None else self._first()

    def _search(self, location: str) -> int:
        # Text that YAML cannot compose: find the keys one after the other.
        position, line = 0, None
        for key in filter(None, re.split(r"\.|\[\d+\]", location)):
            match = re.compile(rf"""(["']?){re.escape(key)}\1\s*:""", re.IGNORECASE).search(
                self.text, position
            )
            if match is None:
                break
            position = match.end()
            line = self.text.count("\n", 0, match.start()) + 1
        return line or self._first()

    def _first(self) -> int:
        for number, text in enumerate(self.text.splitlines(), 1):
            if text.strip():
                return number
        return 1


_INDEX = re.compile(r"\[(\d+)\]\.?")


def _starts(location: str, key: str) -> bool:
    """Whether ``location`` is ``key`` or goes on inside it (property names are
    case-insensitive: the location has the documented spelling, the text the user's)."""
    head = location[: len(key)]
    return head.lower() == key.lower() and location[len(key) : len(key) + 1] in ("", ".", "[")
