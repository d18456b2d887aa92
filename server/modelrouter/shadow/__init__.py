"""Shadow evaluation: live routing quality from a sample of real traffic (``[shadow]``).

:mod:`.evaluator` samples answered calls and has a reference model answer them again off
the request path; :mod:`.judging` asks a judge model to score both answers; :mod:`.stats`
keeps the live figures ``GetStats`` reports.
"""

from .evaluator import SHADOW_LINE, ShadowEvaluator, sampled
from .stats import ShadowQuality, ShadowStats

__all__ = ["SHADOW_LINE", "ShadowEvaluator", "ShadowQuality", "ShadowStats", "sampled"]
