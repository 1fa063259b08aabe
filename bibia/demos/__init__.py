"""Demonstrators: one model version run in a sandbox, with its lifecycle held in the database.

The modules follow the lifecycle: :mod:`.states` (states, transitions, the
view), :mod:`.sessions` (rows, quotas, the organisation filter),
:mod:`.sandbox` (the sandbox factory shared by launches and the warm pool),
:mod:`.pool` (the warm pool), :mod:`.launch` (start and wait),
:mod:`.endings` (failures and teardown), :mod:`.reaper` (expiry, the
directory sweep), :mod:`.reconcile` (adoption at start-up), and
:mod:`.service`, the façade the routes, the web pages, the proxy and the CLI
call.
"""

from bibia.demos.messages import TAMPERED
from bibia.demos.sandbox import LABEL_INSTANCE, LABEL_MODEL
from bibia.demos.service import DemoService
from bibia.demos.states import DemoState, DemoView

__all__ = ["LABEL_INSTANCE", "LABEL_MODEL", "TAMPERED", "DemoService", "DemoState", "DemoView"]
