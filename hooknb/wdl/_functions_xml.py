"""XML and form-data functions: ``xml``, ``xpath``, ``formDataValue``, ``formDataMultiValues``,
``triggerFormDataValue``, ``triggerFormDataMultiValues``; and the XML <-> JSON conversions
``json(xml(...))`` and ``xml(json(...))``.

XML values are Logic Apps' ``{"$content-type": "application/xml;charset=utf-8", "$content":
"<base64>"}`` objects (:mod:`.content`), so they are plain JSON data: stored, replayed and
shown like any other value.

XML comes from outside (trigger bodies), so it is parsed with lxml set to refuse what makes
XML dangerous: no DTD (a ``<!DOCTYPE`` is refused: no entity expansion, "billion laughs" or
external entities), no network, at most :data:`MAX_XML_BYTES` bytes, :data:`MAX_XML_NODES`
nodes and libxml2's default depth limit (256). XPath 1.0 (what Logic Apps runs, .NET's
XPathNavigator) is lxml's; an expression whose predicates scan the whole document for every
node (an absolute path, or a following/preceding axis, inside ``[...]``) is refused, so that
evaluation stays near-linear in the document.

The conversions follow Json.NET's ``SerializeXmlNode`` / ``DeserializeXmlNode``, which Logic
Apps uses: attributes become ``@name``, text beside attributes or elements ``#text``, an element
repeated under one parent an array (a single one stays an object, the known Logic Apps
behaviour), an empty element null, the XML declaration ``?xml``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from ._functions_core import (
    MAX_ARRAY_LENGTH,
    Invocation,
    arg_str,
    check_items,
    check_length,
    describe,
    function,
    parse_json_text,
)
from ._functions_workflow import _member, _outputs, _trigger
from .content import (
    CONTENT_TYPE,
    envelope_bytes,
    form_values,
    is_envelope,
    is_xml_media,
)

XML_CONTENT_TYPE = "application/xml;charset=utf-8"
MAX_XML_BYTES = 16 * 1024 * 1024
MAX_XML_NODES = 100_000
_JSON_NS = "http://james.newtonking.com/projects/json"

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
    remove_comments=False,
    strip_cdata=True,
)


class XmlError(ValueError):
    """XML that cannot be used; the message says why."""


def xml_envelope(data: bytes) -> dict[str, str]:
    """An XML value as Logic Apps keeps it."""
    return {CONTENT_TYPE: XML_CONTENT_TYPE, "$content": base64.b64encode(data).decode("ascii")}


def parse_xml(data: bytes) -> Any:
    """An lxml document from untrusted bytes, or XmlError."""
    if len(data) > MAX_XML_BYTES:
        raise XmlError(f"the XML has {len(data):,} bytes, more than the {MAX_XML_BYTES:,} allowed")
    if data.count(b"<") > MAX_XML_NODES:  # a cheap upper bound of the nodes, before parsing
        raise XmlError(f"the XML has more than {MAX_XML_NODES:,} nodes")
    if b"<!DOCTYPE" in data or b"<!doctype" in data or b"<!ENTITY" in data:
        raise XmlError("XML with a DOCTYPE or entity declarations is refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:
        raise XmlError("XML with a DOCTYPE or entity declarations is refused")
    for count, _ in enumerate(tree.iter(), 1):
        if count > MAX_XML_NODES:
            raise XmlError(f"the XML has more than {MAX_XML_NODES:,} nodes")
    return tree


def _xml_bytes(call: Invocation, value: Any) -> bytes:
    """The XML text of an xml()/xpath() argument: XML text, an XML ``$content`` object, or a
    JSON object (converted)."""
    if is_envelope(value):
        data = envelope_bytes(value)
        if data is None:
            call.fail("argument 1 has a $content that is not base64", 0)
        if is_xml_media(str(value[CONTENT_TYPE])) or data.lstrip()[:1] == b"<":
            return data
        value = data.decode("utf-8", errors="replace")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        text = value.lstrip()
        if text.startswith("<"):
            return value.encode("utf-8")
        if text.startswith("{"):
            value = parse_json_text(call, value)
        else:
            call.fail(f"argument 1 must be XML or a JSON object, got {describe(value)}", 0)
    if isinstance(value, Mapping):
        try:
            return json_to_xml(value)
        except XmlError as exc:
            call.fail(str(exc), 0)
    call.fail(f"argument 1 must be XML or a JSON object, got {describe(value)}", 0)


@function("xml", 1)
def _xml(call: Invocation, args: list[Any]) -> dict[str, str]:
    data = _xml_bytes(call, args[0])
    try:
        parse_xml(data)  # well-formed and within bounds; the content is kept as it came
    except XmlError as exc:
        call.fail(str(exc), 0)
    check_length(len(data) * 4 // 3)
    return xml_envelope(data)


# -- XPath ---------------------------------------------------------------------------------

_COSTLY = re.compile(r"(?:^|[\[(,=<>|!+\s])/|following|preceding")


def _check_xpath(call: Invocation, expression: str) -> None:
    """Refuse predicates that scan the document for every node (see the module docs)."""
    depth = 0
    start = 0
    quote = ""
    for index, char in enumerate(expression):
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
            if depth == 1:
                start = index + 1
        elif char == "]" and depth:
            depth -= 1
            if depth == 0 and _COSTLY.search(expression[start:index]):
                call.fail(
                    "argument 2 has a predicate that reads the whole document for each node "
                    "(an absolute path or a following/preceding axis inside [...]): use a "
                    "relative path there",
                    1,
                )


def _xpath_value(item: Any) -> Any:
    if isinstance(item, bool):
        return item
    if isinstance(item, float):
        if math.isnan(item) or math.isinf(item):
            return None
        return int(item) if item.is_integer() and abs(item) < 2**53 else item
    if isinstance(item, str):
        return str(item)
    if isinstance(item, etree._Element):
        if isinstance(item, etree._Comment | etree._ProcessingInstruction):
            return etree.tostring(item, encoding="unicode", with_tail=False)
        return xml_envelope(etree.tostring(item, encoding="utf-8", with_tail=False))
    return str(item)


@function("xpath", 2)
def _xpath(call: Invocation, args: list[Any]) -> Any:
    # "Check XML for nodes or values that match an XPath expression, and return the matching
    # nodes or values." Node sets are arrays (elements as XML objects, text and attributes as
    # strings); numbers, strings and booleans are returned as they are.
    data = _xml_bytes(call, args[0])
    expression = arg_str(call, args, 1)
    _check_xpath(call, expression)
    try:
        tree = parse_xml(data)
        result = tree.xpath(expression, smart_strings=False)
    except XmlError as exc:
        call.fail(str(exc), 0)
    except etree.XPathError as exc:
        call.fail(f"argument 2 is not a valid XPath expression: {exc}", 1)
    if isinstance(result, list):
        check_items(len(result))
        return [_xpath_value(item) for item in result]
    return _xpath_value(result)


# -- XML -> JSON (Json.NET SerializeXmlNode) ------------------------------------------------


def _qname(node: Any) -> str:
    qname = etree.QName(node)
    prefix = node.prefix
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _attr_name(element: Any, key: str) -> str:
    if key.startswith("{"):
        namespace, _, local = key[1:].partition("}")
        prefix = next((p for p, ns in element.nsmap.items() if ns == namespace and p), None)
        return f"{prefix}:{local}" if prefix else local
    return key


def _namespace_declarations(element: Any) -> dict[str, str]:
    parent = element.getparent()
    inherited = parent.nsmap if parent is not None else {}
    out = {}
    for prefix, uri in element.nsmap.items():
        if inherited.get(prefix) != uri:
            out["@xmlns" if prefix is None else f"@xmlns:{prefix}"] = uri
    return out


def _element_value(element: Any) -> Any:
    value: dict[str, Any] = dict(_namespace_declarations(element))
    forced: set[str] = set()
    for key, attr in element.attrib.items():
        if key == f"{{{_JSON_NS}}}Array":
            continue
        value[f"@{_attr_name(element, key)}"] = attr
    texts: list[str] = []
    if element.text and element.text.strip():
        texts.append(element.text)
    children: dict[str, list[Any]] = {}
    for child in element:
        if isinstance(child, etree._Comment):
            children.setdefault("#comment", []).append(child.text or "")
        elif isinstance(child, etree._ProcessingInstruction):
            children.setdefault(f"?{child.target!s}", []).append(child.text or "")
        else:
            name = _qname(child)
            children.setdefault(name, []).append(_element_value(child))
            if child.get(f"{{{_JSON_NS}}}Array", "").lower() == "true":
                forced.add(name)
        if child.tail and child.tail.strip():
            texts.append(child.tail)
    if not value and not children:
        if not texts:
            return None
        return texts[0] if len(texts) == 1 else texts
    if texts:
        value["#text"] = texts[0] if len(texts) == 1 else texts
    for name, items in children.items():
        value[name] = items if len(items) > 1 or name in forced else items[0]
    return value


_DECLARATION = re.compile(rb"\s*<\?xml\s([^?]*)\?>")
_PSEUDO_ATTRIBUTE = re.compile(rb"""([A-Za-z]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def xml_to_json(tree: Any, data: bytes = b"") -> dict[str, Any]:
    """An XML document (parsed from ``data``) as Json.NET's SerializeXmlNode makes it."""
    out: dict[str, Any] = {}
    declared = _DECLARATION.match(data)
    if declared:
        # The declaration as written: its pseudo-attributes in order.
        out["?xml"] = {
            f"@{m.group(1).decode()}": (m.group(2) or m.group(3) or b"").decode("utf-8", "replace")
            for m in _PSEUDO_ATTRIBUTE.finditer(declared.group(1))
        }
    root = tree.getroot()
    for sibling in reversed(list(root.itersiblings(preceding=True))):
        out.setdefault("#comment", sibling.text or "")
    out[_qname(root)] = _element_value(root)
    return out


# -- JSON -> XML (Json.NET DeserializeXmlNode) ----------------------------------------------


def json_to_xml(value: Mapping[str, Any]) -> bytes:
    """A JSON object with one root property as XML (Json.NET's DeserializeXmlNode)."""
    names = [k for k in value if k != "?xml" and not str(k).startswith("#")]
    if len(names) != 1:
        raise XmlError(
            f"a JSON object converted to XML needs exactly one root property, not {len(names)}"
        )
    (name,) = names
    root = _json_value(name, value[name], None, [0])
    if isinstance(root, list):
        raise XmlError("the root property of a JSON object converted to XML cannot be an array")
    return etree.tostring(root, encoding="utf-8")


def _make(name: str, parent: Any) -> Any:
    try:
        return etree.Element(name) if parent is None else etree.SubElement(parent, name)
    except ValueError:
        raise XmlError(f"{name!r} is not a valid XML element name") from None


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)


def _json_value(name: str, value: Any, parent: Any, count: list[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_XML_NODES:
        raise XmlError(f"the XML would have more than {MAX_XML_NODES:,} nodes")
    if isinstance(value, list):
        if parent is None:
            return value
        for item in value:
            _json_value(name, item, parent, count)
        return parent
    element = _make(name, parent)
    if isinstance(value, Mapping):
        for key, sub in value.items():
            key = str(key)
            if key.startswith("@"):
                if key.startswith("@xmlns"):
                    continue
                try:
                    element.set(key[1:], _scalar(sub))
                except ValueError:
                    raise XmlError(f"{key[1:]!r} is not a valid XML attribute name") from None
            elif key == "#text":
                text = "".join(_scalar(t) for t in sub) if isinstance(sub, list) else _scalar(sub)
                if len(element):
                    element[-1].tail = (element[-1].tail or "") + text
                else:
                    element.text = (element.text or "") + text
            elif key.startswith("#") or key.startswith("?"):
                continue
            else:
                _json_value(key, sub, element, count)
    else:
        element.text = _scalar(value) or None
    return element


def xml_json(call: Invocation, value: Any) -> Any:
    """``json()`` of an XML value (called by ``json()``)."""
    data = _xml_bytes(call, value)
    try:
        tree = parse_xml(data)
    except XmlError as exc:
        call.fail(str(exc), 0)
    return xml_to_json(tree, data)


# -- form data ------------------------------------------------------------------------------


def _form(call: Invocation, body: Any, key: str) -> list[Any]:
    fields = form_values(body)
    if fields is None:
        call.fail(
            f"the body is not form data (application/x-www-form-urlencoded or "
            f"multipart/form-data), got {describe(body)}"
        )
    values = [v for k, v in fields if k == key]
    check_length(len(values), MAX_ARRAY_LENGTH, "items")
    return values


def _single(call: Invocation, values: list[Any], key: str) -> Any:
    # "If there is more than one match, the function throws an error." (functions reference)
    if len(values) > 1:
        call.fail(
            f"the form data has {len(values)} values for key '{key}': use the MultiValues form"
        )
    return values[0] if values else None


@function("triggerFormDataValue", 1, limit_result=False)
def _trigger_form_value(call: Invocation, args: list[Any]) -> Any:
    key = arg_str(call, args, 0)
    body = _member(_member(_trigger(call), "outputs"), "body")
    return _single(call, _form(call, body, key), key)


@function("triggerFormDataMultiValues", 1)
def _trigger_form_values(call: Invocation, args: list[Any]) -> Any:
    key = arg_str(call, args, 0)
    return _form(call, _member(_member(_trigger(call), "outputs"), "body"), key)


@function("formDataValue", 2, limit_result=False)
def _form_value(call: Invocation, args: list[Any]) -> Any:
    key = arg_str(call, args, 1)
    body = _member(_outputs(call, args), "body")
    return _single(call, _form(call, body, key), key)


@function("formDataMultiValues", 2)
def _form_values(call: Invocation, args: list[Any]) -> Any:
    key = arg_str(call, args, 1)
    return _form(call, _member(_outputs(call, args), "body"), key)
