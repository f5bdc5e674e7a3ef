"""The kernel side: workflows and runs in a kernel (or any Python process), and their views.

Modules, each importing only modules listed before it (``tests/test_imports.py`` checks that
there is no import cycle):

* :mod:`.aio` (which loop runs workflows), :mod:`.discovery` (which hub to use),
  :mod:`.outputs` (``Outputs``), :mod:`.placeholders` (``CALLBACK_URL`` and ``expr``, all a
  Python request holds besides data), :mod:`.triggers`, :mod:`.action` (``Action``, a
  recorded step);
* :mod:`.client` (``HubClient``: requests, the push channel, acks and reports);
* :mod:`.render` and :mod:`.widgets` (text, HTML and live views), which read runs and
  workflows through protocols; runs and workflows import them only when they are shown;
* :mod:`.steps` (the step kinds) and :mod:`.run` (``Run``: state, reports, wait, cancel);
* :mod:`.interpreter` (runs WDL definitions), :mod:`.declarative` (building and exporting
  them), :mod:`.workflow` (``Workflow``, the trigger, ``@workflow``);
* :mod:`.registry` (``@handler``), :mod:`.magics_workflow` and :mod:`.magics` (``%hooknb``).
"""
