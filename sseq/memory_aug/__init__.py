"""Memory beyond the state (Chapter 9): store the past somewhere else and look it up.

===================  ============================================================================
module               what it holds
===================  ============================================================================
``knn_lm``           a datastore of a trained LM's context vectors, exact search, interpolation
``rag``              retrieval as a latent variable: RAG's marginals, REALM's gradient
``ntm``              the Neural Turing Machine's addressing, read and erase/add write
``ntm_model``        an NTM: an LSTM controller with one write and one read head
``copy_task``        the NTM paper's copy task on bit vectors
``dnc``              the DNC's precedence weighting and temporal link matrix
``compressive``      the Compressive Transformer's two-tier memory and compression functions
``switch``           a Switch (top-1 mixture-of-experts) layer: routing, capacity, balance loss
``depth``            Mixture-of-Depths routing and the Universal Transformer's shared layer
``perceiver``        a Perceiver's latent array: cross-attention into a fixed-size memory
``atlas``            the book's architectures placed by state, cost and recall (the map)
``explore``          the chapter's addressing explorer
===================  ============================================================================
"""

from sseq.memory_aug.copy_task import copy_accuracy, copy_loss, copy_task

__all__ = ["copy_accuracy", "copy_loss", "copy_task"]
