"""Direct feedback alignment (DFA) on the OPU: the only part of the stack that imports torch.

    dfa = DFA(model, marked=["act1", "act2"], projector=opu_device)
    loss = F.cross_entropy(dfa(x), y); loss.backward()   # marked layers get DFA signals

See docs/dfa.md for the update, ternarisation and scaling rules.
"""

from opu.dfa.alignment import LayerAlignment, angle_deg, measure_alignment
from opu.dfa.errors import DFAConfigurationError, DFAInputError, ProjectorError
from opu.dfa.feedback import DFA
from opu.dfa.projector import GaussianProjector, Projector, ReplicatedInput
from opu.dfa.ternarize import Ternarizer

__all__ = [
    "DFA",
    "DFAConfigurationError",
    "DFAInputError",
    "GaussianProjector",
    "LayerAlignment",
    "Projector",
    "ProjectorError",
    "ReplicatedInput",
    "Ternarizer",
    "angle_deg",
    "measure_alignment",
]
