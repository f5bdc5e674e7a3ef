"""Reading definitions: JSON text, files, the code-view wrapper and ARM templates.

:func:`load` reads a whole workflow definition the way people have them and validates it into a
:class:`Definition`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import DefinitionError
from .endpoints import _check_endpoints, is_arm_expression
from .model import Definition
from .validation import _Builder, _kind, _plain_json


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
