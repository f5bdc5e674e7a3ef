"""The hooknb demo service: a small real webhook subscriber for tutorials and tests.

See :mod:`hooknb.demo.service` for the routes.
"""

from .service import DemoService, make_app, serve

__all__ = ["DemoService", "ensure_demo_service", "make_app", "serve"]


_started: DemoService | None = None


def ensure_demo_service(*, auto_approve_after: float | None = None) -> str:
    """The demo service's URL, for tutorials: ``$HOOKNB_DEMO_URL`` when set (``hooknb lab``
    sets it), else a service started in this process (once) on a free port."""
    import os

    global _started
    url = os.environ.get("HOOKNB_DEMO_URL")
    if url:
        return url if url.endswith("/") else url + "/"
    if _started is None:
        _started = DemoService(auto_approve_after=auto_approve_after).start()
    return _started.url
