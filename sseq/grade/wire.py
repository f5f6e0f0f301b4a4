"""Values across the boundary between a learner's kernel and the grader, as plain JSON.

The grader never unpickles or evaluates anything a submission produced: a learner's answer
comes back as data (numbers, strings, tensors and arrays as raw bytes of an allowed dtype,
sympy expressions as ``srepr`` text read by a parser that only builds sympy objects), and
anything else as an :class:`Opaque` stand-in that names its type. Sizes are bounded.
"""

from __future__ import annotations

import ast
import base64
import json
from typing import Any

import numpy as np

__all__ = ["Opaque", "decode", "dumps", "encode", "loads", "parse_srepr"]

MAX_BYTES = 64 * 2**20  # the most raw data one value may carry
MAX_ITEMS = 100_000
MAX_DEPTH = 32
_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64", "complex128"}


class Opaque:
    """A stand-in for a value the wire does not carry; its class is named after the original."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text


def _opaque(type_name: str, text: str) -> Opaque:
    name = "".join(c for c in type_name if c.isalnum() or c == "_")[:60] or "object"
    return type(name, (Opaque,), {})(type_name, text[:200])


def _array(x: np.ndarray) -> dict:
    if x.dtype.name not in _DTYPES:
        raise TypeError(f"dtype {x.dtype}")
    if x.nbytes > MAX_BYTES:
        raise ValueError(f"{x.nbytes} bytes")
    data = np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<"), copy=False)
    return {"dtype": x.dtype.name, "shape": list(x.shape),
            "b64": base64.b64encode(data.tobytes()).decode()}


def encode(x: Any, depth: int = 0) -> dict:
    """``x`` as a JSON-able dict (see the module's docstring for what survives)."""
    import torch  # the kernel has it: the chapters import sseq

    if depth > MAX_DEPTH:
        return {"t": "opaque", "type": type(x).__name__, "repr": "(nested too deep)"}
    try:
        if x is None or x is Ellipsis:
            return {"t": "none" if x is None else "ellipsis"}
        if isinstance(x, bool):
            return {"t": "bool", "v": x}
        if isinstance(x, int):
            return {"t": "int", "hex": hex(x)}
        if isinstance(x, float):
            return {"t": "float", "v": repr(x)}
        if isinstance(x, complex):
            return {"t": "complex", "re": repr(x.real), "im": repr(x.imag)}
        if isinstance(x, str):
            return {"t": "str", "v": x[:100_000]}
        if isinstance(x, (list, tuple)):
            if len(x) > MAX_ITEMS:
                raise ValueError(f"{len(x)} items")
            return {"t": type(x).__name__ if type(x) in (list, tuple) else "tuple",
                    "items": [encode(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            return {"t": "dict", "items": [[encode(k, depth + 1), encode(v, depth + 1)]
                                           for k, v in list(x.items())[:MAX_ITEMS]]}
        if isinstance(x, torch.Tensor):
            t = x.detach().resolve_conj().resolve_neg().cpu()
            if t.layout != torch.strided:
                t = t.to_dense()
            dtype = str(t.dtype).removeprefix("torch.")
            if dtype == "bfloat16":
                t = t.float()
            return {"t": "tensor", "bf16": dtype == "bfloat16",
                    "param": isinstance(x, torch.nn.Parameter), **_array(t.numpy())}
        if isinstance(x, np.ndarray):
            return {"t": "ndarray", **_array(x)}
        if isinstance(x, np.generic) and x.dtype.name in _DTYPES:
            return {"t": "npscalar", **_array(np.asarray(x))}
        if _is_sympy(x):
            import sympy as sp

            return {"t": "sympy", "srepr": sp.srepr(x)}
        if callable(x):
            return {"t": "function", "name": getattr(x, "__qualname__", type(x).__name__)}
    except Exception as err:  # a value the wire cannot carry is described, not sent
        return {"t": "opaque", "type": type(x).__name__, "repr": f"(unreadable: {err})"}
    try:
        text = repr(x)
    except Exception:
        text = f"<{type(x).__name__}>"
    return {"t": "opaque", "type": type(x).__name__, "repr": text[:200]}


def _is_sympy(x) -> bool:
    module = type(x).__module__ or ""
    return module.startswith("sympy.")


def _from_array(d: dict) -> np.ndarray:
    if d["dtype"] not in _DTYPES:
        raise ValueError(f"dtype {d['dtype']!r} is not allowed")
    raw = base64.b64decode(d["b64"], validate=True)
    if len(raw) > MAX_BYTES:
        raise ValueError("too much data")
    shape = tuple(int(n) for n in d["shape"])
    dtype = np.dtype(d["dtype"]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(d["dtype"])


def decode(d: dict, depth: int = 0) -> Any:
    """The value :func:`encode` described (tensors come back as torch tensors)."""
    import torch

    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    kind = d["t"]
    if kind in ("none", "ellipsis"):
        return None if kind == "none" else ...
    if kind == "bool":
        return bool(d["v"])
    if kind == "int":
        return int(d["hex"], 16)
    if kind == "float":
        return float(d["v"])
    if kind == "complex":
        return complex(float(d["re"]), float(d["im"]))
    if kind == "str":
        return str(d["v"])
    if kind in ("list", "tuple"):
        items = [decode(v, depth + 1) for v in d["items"][:MAX_ITEMS]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_hashable(decode(k, depth + 1)): decode(v, depth + 1) for k, v in d["items"]}
    if kind == "tensor":
        t = torch.from_numpy(_from_array(d).copy())
        t = t.to(torch.bfloat16) if d.get("bf16") else t
        return torch.nn.Parameter(t, requires_grad=t.is_floating_point()) if d.get("param") \
            else t
    if kind == "ndarray":
        return _from_array(d)
    if kind == "npscalar":
        return _from_array(d)[()]
    if kind == "sympy":
        return parse_srepr(d["srepr"])
    if kind == "function":
        return _opaque("function", f"<function {d.get('name', '?')}>")
    return _opaque(str(d.get("type", "object")), str(d.get("repr", "")))


def _hashable(k):
    try:
        hash(k)
        return k
    except TypeError:
        return repr(k)


def dumps(x: Any) -> str:
    return json.dumps(encode(x))


def loads(text: str) -> Any:
    return decode(json.loads(text))


def _sympy_names() -> dict[str, Any]:
    """Every sympy class by name (what ``srepr`` prints), and sympy's singletons."""
    import sympy as sp
    from sympy.matrices import MatrixBase

    names: dict[str, Any] = {}
    todo = [sp.Basic, MatrixBase]
    while todo:
        cls = todo.pop()
        if (cls.__module__ or "").startswith("sympy"):
            names.setdefault(cls.__name__, cls)
        todo += cls.__subclasses__()
    for name, obj in vars(sp).items():
        if isinstance(obj, type) and issubclass(obj, (sp.Basic, MatrixBase)):
            names[name] = obj  # the public name wins
        elif isinstance(obj, sp.Basic):  # singletons: pi, E, I, oo, zoo, nan, true, false
            names[name] = obj
    names["Function"] = sp.Function
    return names


def parse_srepr(text: str):
    """Build the sympy object that ``sympy.srepr`` printed, without ``eval``.

    Only calls of sympy classes (and ``Function('f')``) with literal arguments are read; any
    other syntax (attributes, subscripts, names outside sympy) is refused.
    """
    if len(text) > 1_000_000:
        raise ValueError("the expression is too long")
    names = _sympy_names()

    def build(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool,
                                                                      type(None))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -build(node.operand)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [build(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.Call):
            fn = build(node.func)
            if not callable(fn):
                raise ValueError("only sympy constructors may be called")
            return fn(*[build(a) for a in node.args],
                      **{k.arg: build(k.value) for k in node.keywords if k.arg})
        raise ValueError(f"{type(node).__name__} is not allowed in an expression")

    return build(ast.parse(text, mode="eval").body)
