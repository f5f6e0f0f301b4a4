"""Chapter 8's models: every family — Transformer, Mamba, LSTM, hybrids — from one constructor.

==========  ====================================================================
module      what it holds
==========  ====================================================================
``layers``  the four layer kinds (attention, mlp, mamba, lstm), each with a state
``stack``   :func:`build`: a stack of layers named in a list; the families
``cost``    what a model costs, measured: training step, generation step, state carried
==========  ====================================================================

    model = sseq.models.build("mamba", vocab_size=32, d_model=64, seed=0)
    hybrid = sseq.models.build(["mamba", "attention", "mamba"], vocab_size=32)
"""

from sseq.models.cost import count_state, state_numbers, step_seconds, training_seconds
from sseq.models.layers import LAYER_KINDS, make_layer
from sseq.models.stack import (
    FAMILIES,
    POSITIONS,
    LayerStack,
    ModelConfig,
    StackState,
    build,
    count_parameters,
)

__all__ = ["FAMILIES", "LAYER_KINDS", "POSITIONS", "LayerStack", "ModelConfig", "StackState",
           "build", "count_parameters", "count_state", "make_layer", "state_numbers",
           "step_seconds", "training_seconds"]
