"""The request pipeline: validate -> classify -> select -> execute -> record.

Read :mod:`.flow` first: it is the whole path of a request, each stage a module here.
"""

from .call import Call
from .flow import Pipeline

__all__ = ["Call", "Pipeline"]
