"""Keeping callback signatures out of logs, whoever writes the log line.

A callback URL's ``sig=`` is the whole credential of that URL. Scrubbing it in one request log
function is not enough: ``jupyterhub-singleuser`` replaces the server's log function with
JupyterHub's (which scrubs ``token``, ``auth``, ``key``, ``code``, ``state`` but not ``sig``),
tornado logs refused requests with their full URI through its own loggers, and the Hub logs the
callbacks that reach it while a user's server is stopped. So the scrubbing is a
:class:`logging.Filter` on the log *handlers*: every record that reaches them (the access log,
tornado's warnings, tracebacks that quote a URL) is rewritten before it is written.
"""

from __future__ import annotations

import logging
import re

# ``sig=<value>`` after ``?``, ``&`` or ``;``, also percent-encoded (a callback URL inside a
# logged, URL-encoded form body or query).
_SIGNATURE = re.compile(r"((?:[?&;]|%3[Ff]|%26)sig(?:=|%3[Dd]))[^&\s\"'#<>;,)]+")
SCRUBBED = "[secret]"


def scrub(text: str) -> str:
    """``text`` with the value of every ``sig=`` query parameter replaced by ``[secret]``."""
    if "sig" not in text:
        return text
    return _SIGNATURE.sub(rf"\g<1>{SCRUBBED}", text)


class ScrubSignatures(logging.Filter):
    """A handler filter that rewrites records carrying a callback signature.

    Usable from a logging dict config: ``{"()": "hooknb.server.log_scrub.ScrubSignatures"}``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as it would
            return True
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            # Tracebacks are formatted after filters run; format this one now if it quotes a
            # signature (exception messages of HTTP clients often include the URL).
            text = logging.Formatter().formatException(record.exc_info)
            if scrub(text) != text:
                record.exc_text = scrub(text)
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Add the filter to every handler of ``logger`` (once each).

    Handler filters see the records of child loggers that propagate to ``logger`` too, which
    is how Jupyter servers and JupyterHub route tornado's access and error logs.
    """
    for handler in logger.handlers:
        if not any(isinstance(f, ScrubSignatures) for f in handler.filters):
            handler.addFilter(ScrubSignatures())
