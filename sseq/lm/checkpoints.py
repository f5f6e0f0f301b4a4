"""Saving and loading the chapter's trained models, and the three that ship with the package.

A checkpoint is one ``torch.save`` file holding plain data only (so ``torch.load`` reads it
with ``weights_only=True``, the safe mode): the model's family and configuration, its
``state_dict``, the tokenizer's characters, and whatever the training run adds (the recipe,
the validation loss, the time it took).

``python -m sseq.experiments lm --seeds 0`` trains the three models of Chapter 7 and writes
``checkpoints/{gpt,lstm,mamba}.pt`` next to this module; :func:`load_pretrained` reads them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from sseq.lm.corpus import CharTokenizer
from sseq.lm.gpt import GPT
from sseq.lm.lstm import LSTMLM
from sseq.lm.mamba_lm import MambaLM

__all__ = ["CHECKPOINTS", "PRETRAINED", "load_checkpoint", "load_pretrained", "save_checkpoint"]

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
PRETRAINED = ("gpt", "lstm", "mamba")
_FAMILIES = {"gpt": GPT, "lstm": LSTMLM, "mamba": MambaLM}


def _family(model: nn.Module) -> str:
    for name, cls in _FAMILIES.items():
        if isinstance(model, cls):
            return name
    raise TypeError(f"model must be a GPT, LSTMLM or MambaLM, got {type(model).__name__}")


def save_checkpoint(model: nn.Module, path, tokenizer: CharTokenizer, **meta) -> Path:
    """Write ``model`` (weights in float32), its configuration, the tokenizer and ``meta``
    (plain values: numbers, strings, lists, dicts) to ``path``."""
    family, path = _family(model), Path(path)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"family": family, "config": asdict(model.config), "state_dict": state,
                "chars": tokenizer.chars, "meta": meta}, path)
    return path


def load_checkpoint(path) -> nn.Module:
    """The model saved at ``path``, in evaluation mode, with ``tokenizer`` and ``meta``
    attributes (so that ``sseq.lm.generate(model, "ROMEO:", ...)`` takes text)."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = dict(data["config"])
    cls = _FAMILIES[data["family"]]
    if cls is GPT:
        model = GPT(**config)
    elif cls is LSTMLM:
        model = LSTMLM(**config)
    else:
        model = MambaLM(**config)
    model.load_state_dict(data["state_dict"], strict=True)
    model.tokenizer = CharTokenizer(data["chars"])
    model.meta = data["meta"]
    return model.eval()


def load_pretrained(name: str) -> nn.Module:
    """One of the chapter's trained models: ``"gpt"``, ``"lstm"`` or ``"mamba"``."""
    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {PRETRAINED}, got {name!r}")
    path = CHECKPOINTS / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train it with "
                                f"'python -m sseq.experiments lm --seeds 0'")
    return load_checkpoint(path)
