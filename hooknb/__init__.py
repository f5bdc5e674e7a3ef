"""hooknb: Azure Logic Apps-style HTTP Webhook triggers and actions for Jupyter."""

from ._version import __version__

__all__ = ["__version__"]
