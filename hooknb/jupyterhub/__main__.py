"""``python -m hooknb.jupyterhub``: run the hooknb receiver (JupyterHub starts it as a service)."""

from .receiver import main

main()
