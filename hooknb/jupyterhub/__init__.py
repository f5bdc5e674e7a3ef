"""hooknb under JupyterHub: a hub-level receiver for every user's callbacks.

In ``jupyterhub_config.py``::

    import hooknb.jupyterhub
    hooknb.jupyterhub.configure(c)

adds the receiver service (:mod:`hooknb.jupyterhub.receiver`), its role, and the settings that
make users' servers hand out callback URLs under it; see :func:`configure` for the options.
"""

from __future__ import annotations

from .config import configure, scrub_hub_log

__all__ = ["configure", "scrub_hub_log"]
