"""The public API of hooknb: each name and the module it lives in (read by lazy_loader)."""

from ._version import __version__ as __version__
from .errors import ActionFailed as ActionFailed
from .errors import ActionTimedOut as ActionTimedOut
from .errors import DefinitionError as DefinitionError
from .errors import ExpressionError as ExpressionError
from .errors import HookNBError as HookNBError
from .errors import HubRequestError as HubRequestError
from .errors import RunTerminated as RunTerminated
from .errors import TriggerSkipped as TriggerSkipped
from .kernel.action import Action as Action
from .kernel.client import HubClient as HubClient
from .kernel.client import connect as connect
from .kernel.outputs import Outputs as Outputs
from .kernel.placeholders import CALLBACK_URL as CALLBACK_URL
from .kernel.placeholders import CallbackUrl as CallbackUrl
from .kernel.placeholders import Expression as Expression
from .kernel.placeholders import expr as expr
from .kernel.registry import handler as handler
from .kernel.run import Run as Run
from .kernel.triggers import HttpWebhookTrigger as HttpWebhookTrigger
from .kernel.triggers import RecurrenceTrigger as RecurrenceTrigger
from .kernel.triggers import RequestTrigger as RequestTrigger
from .kernel.workflow import Workflow as Workflow
from .kernel.workflow import workflow as workflow

def load_ipython_extension(ipython: object) -> None: ...
def unload_ipython_extension(ipython: object) -> None: ...
