"""``sseq.book.glue`` writes what myst-nb's own ``glue`` writes, at a portable precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell

from sseq import book


def displayed(fn, *args, **kwargs):
    """The (data, metadata) pairs that ``fn`` displays inside an IPython shell."""
    shell = InteractiveShell.instance()
    seen = []
    publisher = shell.display_pub
    original = publisher.publish
    publisher.publish = lambda data, metadata=None, **kw: seen.append((data, metadata))
    try:
        fn(*args, **kwargs)
    finally:
        publisher.publish = original
    return seen


@pytest.mark.parametrize("value", [0.123, 7, True, "LegS", 83200000000.0, 2.81e-13])
def test_glue_writes_the_record_myst_nb_reads(value):
    """Oracle: myst-nb's own glue (display=False) on the same already-rounded value."""
    from myst_nb import glue as myst_glue

    ours = displayed(book.glue, "ch00_x", value)
    theirs = displayed(myst_glue, "ch00_x", value, display=False)
    assert ours == theirs


@pytest.mark.parametrize(("value", "digits", "stored"), [
    (0.15151301551189253, 3, 0.152),
    (0.1515130155118904, 3, 0.152),  # the same claim on another CPU stores the same text
    (83198590546.30171, 2, 8.3e10),
    (2.95217466977849e-13, 1, 3e-13),
    (-0.004999, 2, -0.005),
    (np.float32(0.699417), 4, 0.6994),
    (torch.tensor(1.23456), 2, 1.2),
    (np.int64(12), 3, 12),
    (-0.0, 3, 0.0),
])
def test_floats_are_rounded_to_significant_digits(value, digits, stored):
    assert book.glue("ch00_value", value, digits=digits) is None  # no stray Out[] in a notebook
    got = book.GLUED["ch00_value"]
    assert got == stored and type(got) is type(stored)
    assert repr(got) == repr(stored)


def test_non_finite_values_pass_through():
    assert book.round_sig(float("inf")) == float("inf")
    assert np.isnan(book.round_sig(float("nan")))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"name": "1st", "value": 1.0}, ValueError, "name must be an identifier"),
    ({"name": "ch00 x", "value": 1.0}, ValueError, "name must be"),
    ({"name": "ch00_x", "value": [1.0, 2.0]}, TypeError, "value must be a number"),
    ({"name": "ch00_x", "value": np.ones(2)}, TypeError, "value must be a number"),
    ({"name": "ch00_x", "value": 1.0, "digits": 0}, ValueError, "digits must be in 1..6"),
    ({"name": "ch00_x", "value": 1.0, "digits": 17}, ValueError, "digits must be in 1..6"),
    ({"name": "ch00_x", "value": 1.0, "digits": 2.5}, TypeError, "digits must be an int"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        book.glue(**kwargs)


@pytest.mark.parametrize(("x", "bound"), [
    (2.95217466977849e-13, 1e-12), (2.8066438062523957e-13, 1e-12), (1e-3, 1e-3),
    (0.00101, 1e-2), (-245690.2, 1e6), (7.0, 10.0), (1.0, 1.0),
])
def test_power_of_ten_above(x, bound):
    assert book.power_of_ten_above(x) == pytest.approx(bound, rel=1e-12)


@pytest.mark.parametrize(("x", "bound"), [
    (245690.18537246375, 1e5), (7.1e5, 1e5), (1e-3, 1e-3), (0.00099, 1e-4), (-9.99, 1.0),
])
def test_power_of_ten_below(x, bound):
    assert book.power_of_ten_below(x) == pytest.approx(bound, rel=1e-12)


@pytest.mark.parametrize("x", [0.0, float("inf"), float("nan")])
def test_powers_of_ten_refuse_what_has_no_decade(x):
    for bound in (book.power_of_ten_above, book.power_of_ten_below):
        with pytest.raises(ValueError, match="x must be finite and non-zero"):
            bound(x)
