"""The hooknb demo service: a small real webhook subscriber for tutorials and tests.

See :mod:`hooknb.demo.service` for the routes.
"""

from .service import DemoService, make_app, serve

__all__ = ["DemoService", "make_app", "serve"]
