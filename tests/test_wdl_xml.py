"""XML, form data and content objects in expressions: the functions reference's examples
(https://learn.microsoft.com/azure/logic-apps/expression-functions-reference) and hostile XML."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hooknb.errors import ExpressionError
from hooknb.wdl import Context, evaluate
from hooknb.wdl.content import envelope, kept_as_content

ITEMS = (
    '<?xml version="1.0"?><produce><item><name>Gala</name><type>apple</type><count>20</count>'
    "</item><item><name>Honeycrisp</name><type>apple</type><count>10</count></item></produce>"
)
NS = '<?xml version="1.0"?><file xmlns="https://contoso.com"><location>Paris</location></file>'


def xml_of(text: str) -> dict[str, str]:
    return {
        "$content-type": "application/xml;charset=utf-8",
        "$content": base64.b64encode(text.encode()).decode(),
    }


def run(expression: str, **parameters: Any) -> Any:
    return evaluate(expression, Context(parameters=parameters))


def test_documented_xml_and_json_conversions() -> None:
    # json(): "This example converts this XML to JSON". The reference shows "person" as a
    # one-item array; Logic Apps (Json.NET) makes a lone element an object, the behaviour its
    # users know (a single item is not an array), which is what hooknb does.
    value = run(
        "@json(xml('<?xml version=\"1.0\"?> <root> <person id=''1''> <name>Sophia Owen</name>"
        " <occupation>Engineer</occupation> </person> </root>'))"
    )
    assert value == {
        "?xml": {"@version": "1.0"},
        "root": {"person": {"@id": "1", "name": "Sophia Owen", "occupation": "Engineer"}},
    }
    # xml(): examples 1-3
    assert run("@string(xml('<name>Sophia Owen</name>'))") == "<name>Sophia Owen</name>"
    assert run('@string(xml(json(\'{ "name": "Sophia Owen" }\')))') == ("<name>Sophia Owen</name>")
    assert run(
        '@string(xml(json(\'{"person": {"name": "Sophia Owen", "city": "Seattle"}}\')))'
    ) == ("<person><name>Sophia Owen</name><city>Seattle</city></person>")
    assert run("@xml('<a/>')") == xml_of("<a/>")
    # repeated elements are arrays, attributes @, text beside attributes #text, empty null
    assert run("@json(xml('<r><i k=\"1\">x</i><i/><e/></r>'))") == {
        "r": {"i": [{"@k": "1", "#text": "x"}, None], "e": None}
    }
    # and back: arrays repeat, @ are attributes, null is empty
    assert (
        run('@string(xml(json(\'{"r": {"@k": "v", "i": [1, true, null], "#text": "t"}}\')))')
        == '<r k="v"><i>1</i><i>true</i><i/>t</r>'
    )


def test_documented_xpath_examples() -> None:
    assert run("@xpath(xml(parameters('items')), '/produce/item/name')", items=ITEMS) == [
        xml_of("<name>Gala</name>"),
        xml_of("<name>Honeycrisp</name>"),
    ]
    assert run("@xpath(xml(parameters('items')), 'sum(/produce/item/count)')", items=ITEMS) == 30
    assert run("@xpath(xml(parameters('items')), '/produce/item/name/text()')", items=ITEMS) == [
        "Gala",
        "Honeycrisp",
    ]
    assert (
        run(
            "@xpath(xml(parameters('ns')), 'string(/*[name()=\"file\"]/*[name()=\"location\"])')",
            ns=NS,
        )
        == "Paris"
    )
    assert (
        run(
            "@xpath(xml(parameters('ns')), 'string(/*[local-name()=\"file\" and "
            'namespace-uri()="https://contoso.com"]/*[local-name()="location"])\')',
            ns=NS,
        )
        == "Paris"
    )
    # A node read back as text, and XML content from a body read directly.
    assert run(
        "@string(xpath(xml(parameters('items')), '/produce/item/name')[0])", items=ITEMS
    ) == ("<name>Gala</name>")
    assert run("@xpath(parameters('body'), 'count(//item)')", body=xml_of(ITEMS)) == 2


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("@xml('<!DOCTYPE r [<!ENTITY a \"b\">]><r>&a;</r>')", "DOCTYPE"),
        ("@xml('<!DOCTYPE r SYSTEM \"http://127.0.0.1:9/x.dtd\"><r/>')", "DOCTYPE"),
        ("@xml('<r>')", "not well-formed"),
        ("@xml('plain text')", "must be XML or a JSON object"),
        ('@xml(json(\'{"a": 1, "b": 2}\'))', "exactly one root property"),
        ("@xml(json('{\"a b\": 1}'))", "not a valid XML element name"),
        ("@xpath(xml('<a/>'), '!!')", "not a valid XPath expression"),
        ("@xpath(xml('<a><b/></a>'), '//b[count(//b) > 0]')", "reads the whole document"),
        ("@xpath(xml('<a><b/></a>'), '//b[following-sibling::b]')", "reads the whole document"),
    ],
)
def test_bad_and_hostile_xml_fails_clearly(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        run(expression)


def test_relative_predicates_and_quoted_slashes_are_allowed() -> None:
    doc = "<a><b k='/x'><c/></b><b/></a>"
    assert run("@xpath(xml(parameters('d')), 'count(//b[c])')", d=doc) == 1
    assert run("@xpath(xml(parameters('d')), 'count(//b[@k=\"/x\"])')", d=doc) == 1
    assert run("@xpath(xml(parameters('d')), 'count(/a/b[.//c])')", d=doc) == 1


def test_content_objects_and_base64() -> None:
    assert kept_as_content("application/xml") and kept_as_content("application/octet-stream")
    assert not kept_as_content("text/plain") and not kept_as_content("application/json")
    binary = envelope(b"\x00\xffhi", "application/octet-stream")
    assert binary == {"$content-type": "application/octet-stream", "$content": "AP9oaQ=="}
    # base64() of binary content encodes its bytes, not the object.
    assert run("@base64(parameters('b'))", b=binary) == "AP9oaQ=="
    assert run("@base64ToString(base64(parameters('x')))", x=xml_of("<a>é</a>")) == "<a>é</a>"
    assert run("@string(parameters('x'))", x=xml_of("<a/>")) == "<a/>"
    assert run("@json(parameters('j'))", j=envelope(b'{"a": 1}', "application/x-json-ish")) == {
        "a": 1
    }


FORM = envelope(
    b"name=Sophia+Owen&city=Seattle&tag=a&tag=b&empty=", "application/x-www-form-urlencoded"
)
MULTIPART = envelope(
    b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nSophia\r\n'
    b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XyZ--\r\n",
    "multipart/form-data; boundary=XyZ",
)


def test_form_data_functions() -> None:
    assert FORM["$formdata"][0] == {"key": "name", "value": "Sophia Owen"}
    trigger = {"outputs": {"body": FORM}}
    context = Context(trigger=trigger, actions={"Get": {"outputs": {"body": MULTIPART}}})
    assert evaluate("@triggerFormDataValue('name')", context) == "Sophia Owen"
    assert evaluate("@triggerFormDataValue('empty')", context) == ""
    assert evaluate("@triggerFormDataValue('missing')", context) is None
    assert evaluate("@triggerFormDataMultiValues('tag')", context) == ["a", "b"]
    assert evaluate("@formDataValue('Get', 'name')", context) == "Sophia"
    assert evaluate("@formDataMultiValues('Get', 'file')", context) == [
        {"$content-type": "application/octet-stream", "$content": "AAE="}
    ]
    with pytest.raises(ExpressionError, match="2 values for key 'tag'"):
        evaluate("@triggerFormDataValue('tag')", context)
    with pytest.raises(ExpressionError, match="not form data"):
        evaluate("@triggerFormDataValue('a')", Context(trigger={"outputs": {"body": [1]}}))
