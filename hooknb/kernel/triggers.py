"""The triggers of a workflow: HTTP Webhook (the hub subscribes), Request, Recurrence."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..wdl.definitions import Recurrence
from .action import Secure, secure_properties
from .placeholders import from_template, literal_callback_url_hint, to_template

if TYPE_CHECKING:
    from ..wdl.definitions import Definition


class HttpWebhookTrigger:
    """The HTTP Webhook trigger: ``enable()`` subscribes with the callback URL, ``disable()``
    unsubscribes; every POST to the callback URL starts a run.

    ``subscribe``/``unsubscribe`` are Logic Apps HTTP request objects (``method``, ``uri``,
    ``headers``, ``body``, ``queries``, ``authentication``, ``retryPolicy``), taken literally:
    put ``hooknb.CALLBACK_URL`` where the service expects the callback URL, and
    ``hooknb.expr(...)`` where an expression should be evaluated (see
    :mod:`hooknb.kernel.placeholders`). ``access_key_type`` (``"Secondary"``) chooses the key
    that signs the callback URL; ``verify`` requires a sender signature on every callback
    (``{"type": "standard-webhooks" | "github" | "stripe", "secret": ...}``). The callbacks'
    ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` headers are left out of the
    trigger outputs unless ``include_authorization_headers`` (Logic Apps'
    ``IncludeAuthorizationHeadersInOutputs``). ``secure`` (``"inputs"``, ``"outputs"`` or
    both, as on steps; Logic Apps' ``runtimeConfiguration.secureData``) hides the subscribe
    and unsubscribe requests (inputs), and their responses and every callback's headers, query
    and body (outputs), wherever the hub and the kernel show them; runs get them as usual.
    """

    type = "HttpWebhook"

    def __init__(
        self,
        subscribe: Mapping[str, Any],
        unsubscribe: Mapping[str, Any] | None = None,
        *,
        name: str = "HTTP_Webhook",
        access_key_type: str | None = None,
        verify: Mapping[str, Any] | None = None,
        include_authorization_headers: bool = False,
        secure: Secure = (),
    ) -> None:
        if not isinstance(subscribe, Mapping) or not (subscribe.get("uri") or subscribe.get("url")):
            raise ValueError("subscribe must be an HTTP request object with a 'uri'")
        if unsubscribe is not None and not isinstance(unsubscribe, Mapping):
            raise ValueError("unsubscribe must be an HTTP request object (or {} / None)")
        if hint := literal_callback_url_hint(subscribe):
            warnings.warn(f"hooknb: {hint}", UserWarning, stacklevel=2)
        self.subscribe = dict(subscribe)
        self.unsubscribe = dict(unsubscribe) if unsubscribe else None
        self.name = name
        # Logic Apps' inputs.accessKeyType: which key signs the callback URL (a hub that
        # does not know access keys ignores it).
        self.access_key_type = access_key_type
        self.verify = dict(verify) if verify else None
        self.include_authorization_headers = bool(include_authorization_headers)
        #: The parts the hub's and the kernel's views hide (``"inputs"``, ``"outputs"``).
        self.secure = secure_properties(secure)

    @classmethod
    def from_template(
        cls,
        subscribe: Mapping[str, Any],
        unsubscribe: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> HttpWebhookTrigger:
        """The trigger of a Logic Apps template (a definition's or a magic's JSON), whose
        strings are expressions (``@{listCallbackUrl()}``...), as Logic Apps reads them."""
        return cls(
            from_template(subscribe),
            from_template(unsubscribe) if unsubscribe else None,
            **options,
        )

    def __repr__(self) -> str:
        uri = self.subscribe.get("uri") or self.subscribe.get("url")
        method = self.subscribe.get("method", "POST")
        return f"HttpWebhookTrigger({self.name!r}, subscribe={method} {uri})"

    def to_definition(self) -> dict[str, Any]:
        """The Logic Apps trigger object (its literal strings escaped, its placeholders as
        expressions)."""
        inputs: dict[str, Any] = {
            "subscribe": to_template(self.subscribe),
            "unsubscribe": to_template(self.unsubscribe or {}),
        }
        if self.access_key_type:
            inputs["accessKeyType"] = self.access_key_type
        trigger: dict[str, Any] = {"type": self.type, "inputs": inputs}
        if self.include_authorization_headers:
            trigger["operationOptions"] = "IncludeAuthorizationHeadersInOutputs"
        if self.secure:
            trigger["runtimeConfiguration"] = {"secureData": {"properties": sorted(self.secure)}}
        return trigger


class RequestTrigger:
    """The Request ("manual") trigger: runs are started with ``workflow.start(body=...)``.

    hooknb has no inbound URL for it (the portal's "Run trigger" is ``start()``); a Response
    action in such a workflow is recorded as ``run.response``. The ``Authorization``,
    ``Proxy-Authorization`` and ``Cookie`` headers given to ``start()`` are left out of the
    trigger outputs unless ``include_authorization_headers``, as for the HTTP Webhook trigger.
    """

    type = "Request"

    def __init__(
        self,
        name: str = "manual",
        *,
        schema: Mapping[str, Any] | None = None,
        include_authorization_headers: bool = False,
    ) -> None:
        self.name = name
        self.schema = dict(schema) if schema is not None else None
        self.include_authorization_headers = bool(include_authorization_headers)

    def __repr__(self) -> str:
        return f"RequestTrigger({self.name!r})"

    def to_definition(self) -> dict[str, Any]:
        """The Logic Apps trigger object."""
        trigger: dict[str, Any] = {
            "type": "Request",
            "kind": "Http",
            "inputs": {"schema": self.schema or {}},
        }
        if self.include_authorization_headers:
            trigger["operationOptions"] = "IncludeAuthorizationHeadersInOutputs"
        return trigger


class RecurrenceTrigger:
    """The Recurrence trigger: while the workflow is enabled, start a run every ``interval``
    ``frequency`` (Second, Minute, Hour, Day, Week, Month, Year) from ``start_time``.

    The schedule runs in this kernel (an asyncio task; ``disable()`` stops it): no runs start
    while the kernel is gone or busy, and ticks missed while busy are skipped rather than
    run in a burst. Times are UTC. With no start time the first run starts at once; with one
    in the past, at its next time on that grid (Logic Apps' rules).
    """

    type = "Recurrence"

    def __init__(
        self,
        frequency: str = "Minute",
        interval: int = 1,
        *,
        start_time: str | datetime | None = None,
        end_time: str | datetime | None = None,
        count: int | None = None,
        name: str = "Recurrence",
    ) -> None:
        from ..wdl.definitions import FREQUENCIES

        canonical = next((f for f in FREQUENCIES if f.lower() == str(frequency).lower()), None)
        if canonical is None:
            raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError("interval must be a whole number of at least 1")
        self.name = name
        self.recurrence = Recurrence(
            canonical, interval, _utc(start_time), _utc(end_time), count or None
        )

    @classmethod
    def _from(cls, name: str, recurrence: Recurrence) -> RecurrenceTrigger:
        trigger = cls.__new__(cls)
        trigger.name = name
        trigger.recurrence = recurrence
        return trigger

    def __repr__(self) -> str:
        rec = self.recurrence
        return f"RecurrenceTrigger({self.name!r}, every {rec.interval} {rec.frequency})"

    def to_definition(self) -> dict[str, Any]:
        """The Logic Apps trigger object."""
        return {"type": "Recurrence", "recurrence": self.recurrence.to_json()}


def _utc(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


#: The triggers a workflow can have (None: runs start only with ``start()``).
Trigger = HttpWebhookTrigger | RequestTrigger | RecurrenceTrigger


def trigger_of(definition: Definition) -> Trigger | None:
    trigger = definition.trigger
    if trigger is None:
        return None
    if trigger.type == "HttpWebhook":
        inputs = dict(trigger.inputs)
        shared = {k: inputs[k] for k in ("retryPolicy", "authentication") if k in inputs}
        subscribe = {**shared, **inputs["subscribe"]}
        unsubscribe = inputs.get("unsubscribe") or None
        if unsubscribe:
            unsubscribe = {**shared, **unsubscribe}
        return HttpWebhookTrigger.from_template(
            subscribe,
            unsubscribe,
            name=trigger.name,
            access_key_type=inputs.get("accessKeyType"),
            include_authorization_headers=trigger.include_authorization_headers,
            secure=trigger.secure,
        )
    if trigger.type == "Request":
        return RequestTrigger(
            trigger.name,
            schema=trigger.inputs.get("schema"),
            include_authorization_headers=trigger.include_authorization_headers,
        )
    assert trigger.recurrence is not None
    return RecurrenceTrigger._from(trigger.name, trigger.recurrence)
