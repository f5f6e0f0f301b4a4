"""The grader reads a learner's answers as data: every kind of answer survives the trip, and
nothing a submission sends can run code in the grader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
import torch

from sseq.exercises_guard import same_value
from sseq.grade import wire


def trip(x):
    return wire.decode(json.loads(json.dumps(wire.encode(x))))


@pytest.mark.parametrize("value", [
    None, ..., True, 0, -7, 10**400, -(2**5000), 1.5, float("inf"), -0.0, 2 + 3j, "text",
    [1, 2.5, "a"], (1, (2, 3)), {"a": 1, 2: [3]},
    np.arange(6, dtype=np.int16).reshape(2, 3), np.array([1.5, np.nan]), np.float32(2.5),
    np.array([1 + 2j], dtype=np.complex64), np.array(True),
    torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
    torch.tensor([1, 2], dtype=torch.int64), torch.tensor([[True, False]]),
    torch.tensor([1 + 1j], dtype=torch.complex128),
])
def test_values_survive_the_trip(value):
    back = trip(value)
    assert type(back) is type(value) or (value is ... and back is ...)
    assert same_value(back, value)


def test_tensor_details_survive():
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex128)
    back = trip(z.conj())  # the conjugate bit is resolved, not lost
    assert torch.equal(back, torch.conj_physical(z))
    p = trip(torch.nn.Parameter(torch.ones(3, dtype=torch.float64)))
    assert isinstance(p, torch.nn.Parameter) and p.dtype == torch.float64
    b = trip(torch.tensor([1.5, -2.0], dtype=torch.bfloat16))
    assert b.dtype == torch.bfloat16 and b.tolist() == [1.5, -2.0]
    strided = torch.arange(12.0).reshape(3, 4).T
    assert trip(strided).tolist() == strided.tolist()


def test_sympy_expressions_and_matrices_survive():
    lam, k = sp.symbols("lambda k", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    for expr in (lam ** (2 * k) * (1 - lam**2), sp.Matrix([[-sp.sqrt(7), -4]]),
                 sp.summation(lam ** (2 * j), (j, 0, sp.oo)), sp.exp(sp.I * sp.pi / 3) + sp.oo,
                 sp.Function("f")(lam) + sp.Rational(1, 3), 1.0 - lam**2.0):
        back = trip(expr)
        assert back == expr, (back, expr)
    assert trip(lam).is_positive


def test_other_objects_come_back_as_named_stand_ins():
    class Weird:
        def __repr__(self):
            return "<weird>"

    back = trip(Weird())
    assert isinstance(back, wire.Opaque) and type(back).__name__ == "Weird"
    assert repr(back) == "<weird>"
    gen = trip(i for i in range(3))
    assert type(gen).__name__ == "generator"
    fn = trip(lambda x: x)
    assert isinstance(fn, wire.Opaque) and not callable(fn)
    obj_array = trip(np.array([object()], dtype=object))
    assert isinstance(obj_array, wire.Opaque)


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo hacked')",
    "Symbol('x').__class__",
    "Symbol.__subclasses__()",
    "(lambda: 1)()",
    "Integer(1) if True else 2",
    "open('/etc/passwd')",
    "Symbol('x')[0]",
    "eval('1')",
])
def test_srepr_parser_refuses_anything_but_sympy_constructors(text):
    with pytest.raises((ValueError, TypeError, SyntaxError)):
        wire.parse_srepr(text)


@pytest.mark.parametrize("bad", [
    {"t": "ndarray", "dtype": "object", "shape": [1], "b64": ""},
    {"t": "tensor", "dtype": "float64", "shape": [4], "b64": "AAAA"},  # too few bytes
    {"t": "sympy", "srepr": "__import__('os')"},
])
def test_malformed_data_is_refused(bad):
    with pytest.raises((ValueError, TypeError, SyntaxError)):
        wire.decode(bad)
