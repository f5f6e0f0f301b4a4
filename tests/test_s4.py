"""S4's DPLR kernel against the naive kernel of the dense bilinear system, in float64."""

from __future__ import annotations

import math

import pytest
import torch

from sseq import discretize, hippo, s4, ssm


def naive_legs_kernel(C, dt, L):
    """The definition: discretize LegS densely, then feed a unit impulse (kernel_ref)."""
    A, B = hippo.legs(C.shape[0])
    A_bar, B_bar = discretize.bilinear(A, B, dt)
    return ssm.kernel_ref(A_bar, B_bar, C, L)


def relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("N", [1, 2, 8, 32, 64])
def test_the_normal_plus_low_rank_form_rebuilds_legs_with_a_unitary_basis(N):
    Lambda, P, B, V = s4.nplr_legs(N)
    A, B_legs = hippo.legs(N)
    eye = torch.eye(N, dtype=torch.complex128)
    torch.testing.assert_close(V.conj().T @ V, eye, rtol=0, atol=1e-12)  # unitary
    rebuilt = V @ (torch.diag(Lambda) - torch.outer(P, P.conj())) @ V.conj().T
    torch.testing.assert_close(rebuilt.real, A, rtol=0, atol=1e-10 * N)
    assert rebuilt.imag.abs().max() < 1e-10 * N
    torch.testing.assert_close((V @ B).real, B_legs, rtol=0, atol=1e-12 * N)
    torch.testing.assert_close(Lambda.real, torch.full((N,), -0.5, dtype=torch.float64))


@pytest.mark.parametrize(("N", "L", "dt"), [(1, 5, 0.1), (4, 16, 0.5), (16, 33, 0.05),
                                            (64, 1024, 0.01), (64, 500, 1.0)])
def test_the_dplr_kernel_of_legs_equals_the_naive_kernel(N, L, dt):
    C = torch.randn(N, dtype=torch.float64, generator=torch.Generator().manual_seed(N))
    K = s4.legs_kernel(C, dt, L)
    assert K.dtype == torch.float64 and K.shape == (L,)
    assert relative(K, naive_legs_kernel(C, dt, L)) < 1e-12  # measured: 1e-14 at N = 64


def test_the_dplr_kernel_of_any_stable_dplr_system():
    """Not only LegS: a random stable Λ, complex P, B, C, against the dense complex system."""
    g = torch.Generator().manual_seed(5)
    n, L, dt = 6, 40, 0.3

    def draw():
        return torch.randn(n, generator=g, dtype=torch.complex128)

    Lambda = torch.complex(-torch.rand(n, generator=g, dtype=torch.float64) - 0.1,
                           5 * torch.randn(n, generator=g, dtype=torch.float64))
    P, B, C = draw(), draw(), draw()
    A = torch.diag(Lambda) - torch.outer(P, P.conj())
    A_bar, B_bar = discretize.bilinear(A, B, dt)
    expected = ssm.kernel_ref(A_bar, B_bar, C, L)
    assert relative(s4.kernel_dplr(Lambda, P, B, C, dt, L), expected) < 1e-12


def test_the_cauchy_kernel_is_its_sum():
    v = torch.tensor([1.0, 2j, -1.0], dtype=torch.complex128)
    lam = torch.tensor([-0.5 + 1j, -0.5 - 1j, -2.0], dtype=torch.complex128)
    z = torch.tensor([0.3, 1j, 2.0 - 1j], dtype=torch.complex128)
    expected = [sum(v[n] / (z[j] - lam[n]) for n in range(3)) for j in range(3)]
    torch.testing.assert_close(s4.cauchy(v, z, lam), torch.stack(expected))


def test_diagonalizing_legs_directly_is_what_fails():
    """The contrast the chapter draws: the same kernel from the eigendecomposition of A is
    right for a small or a normal A, and noise for HiPPO-LegS with N = 64."""
    L, dt = 256, 0.01
    for N, works in ((4, True), (64, False)):
        C = torch.randn(N, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        A, B = hippo.legs(N)
        naive = s4.kernel_naive(A, B, C, dt, L)
        torch.testing.assert_close(naive, naive_legs_kernel(C, dt, L), rtol=0, atol=0)
        error = relative(s4.kernel_eig(A, B, C, dt, L).real, naive)
        assert (error < 1e-9) if works else (error > 1.0)
    Q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    A_normal = Q @ torch.diag(-torch.arange(1.0, 9.0, dtype=torch.float64)) @ Q.T  # symmetric
    B = C = torch.ones(8, dtype=torch.float64)
    K_dense = ssm.kernel(*discretize.bilinear(A_normal, B, dt), C, L)  # repeated squaring
    assert relative(s4.kernel_eig(A_normal, B, C, dt, L).real, K_dense) < 1e-12


@pytest.mark.parametrize(("call", "message"), [
    (lambda: s4.legs_kernel(torch.ones(3), 0.1, 0), "L must be a positive int, got 0"),
    (lambda: s4.legs_kernel(torch.ones(3), -0.1, 4), "dt must be a positive finite number"),
    (lambda: s4.legs_kernel(torch.ones(3), math.inf, 4), "dt must be a positive finite number"),
    (lambda: s4.legs_kernel(torch.ones(2, 3), 0.1, 4), "C must be (n,), got shape (2, 3)"),
    (lambda: s4.kernel_dplr(torch.ones(3), torch.ones(2), torch.ones(3), torch.ones(3), 0.1, 4),
     "must all be (n,) = (3,)"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


# ---- issue 18 (mutation testing): the shortest kernels, precision, refusals in full ---------


def numpy_kernel(A, B, C, dt, L):
    """An independent oracle in numpy float64/complex128: A_bar = (I − ΔA/2)⁻¹(I + ΔA/2),
    B_bar = (I − ΔA/2)⁻¹ Δ B, then K_k = C A_bar^k B_bar by repeated products."""
    import numpy as np

    A, B, C = (np.asarray(x, dtype=np.complex128) for x in (A, B, C))
    eye = np.eye(A.shape[0])
    A_bar = np.linalg.solve(eye - dt * A / 2, eye + dt * A / 2)
    x = np.linalg.solve(eye - dt * A / 2, dt * B)
    out = []
    for _ in range(L):
        out.append(C @ x)
        x = A_bar @ x
    return torch.from_numpy(np.array(out))


@pytest.mark.parametrize("L", [1, 2])
def test_the_shortest_kernels_are_c_b_bar_and_c_a_bar_b_bar(L):
    """L = 1 (K_0 = C B_bar) and L = 2 are accepted by every route, and each equals the numpy
    oracle to 1e-12: the DPLR route for LegS, the dense and the eigenvalue routes."""
    N, dt = 4, 0.3
    C = torch.randn(N, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    A, B = hippo.legs(N)
    expected = numpy_kernel(A, B, C, dt, L)
    assert relative(s4.legs_kernel(C, dt, L), expected.real) < 1e-12
    assert relative(s4.kernel_naive(A, B, C, dt, L), expected.real) < 1e-12
    assert relative(s4.kernel_eig(A, B, C, dt, L), expected) < 1e-10


def test_the_dplr_kernel_works_in_complex128_whatever_it_is_given():
    """kernel_dplr casts its inputs to complex128: given complex64 Λ, P, B, C it returns
    complex128 and matches the complex128 oracle built from the same numbers to 1e-12."""
    g = torch.Generator().manual_seed(2)
    n, L, dt = 5, 24, 0.2
    Lambda = torch.complex(-torch.rand(n, generator=g) - 0.2, 3 * torch.randn(n, generator=g))
    P, B, C = (torch.randn(n, generator=g, dtype=torch.complex64) for _ in range(3))
    assert Lambda.dtype == torch.complex64
    K = s4.kernel_dplr(Lambda, P, B, C, dt, L)
    assert K.dtype == torch.complex128
    P64 = P.to(torch.complex128)
    A = torch.diag(Lambda.to(torch.complex128)) - torch.outer(P64, P64.conj())
    assert relative(K, numpy_kernel(A, B, C, dt, L)) < 1e-12


def test_the_eigenvalue_route_works_in_complex128_whatever_it_is_given():
    """kernel_eig casts A to complex128: a float32 A (a normal one, well conditioned) gives a
    complex128 kernel equal to the float64 oracle of the same numbers to 1e-12."""
    A = torch.tensor([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.5], [0.0, -0.5, -0.25]])  # float32
    B = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64)
    C = torch.tensor([0.5, 1.0, -1.0], dtype=torch.float64)
    K = s4.kernel_eig(A, B, C, 0.1, 30)
    assert K.dtype == torch.complex128
    assert relative(K, numpy_kernel(A.double(), B, C, 0.1, 30)) < 1e-12


def test_legs_kernel_reads_a_list_read_out_in_float64():
    """A read-out C given as a Python list is read in float64 (not torch's default float32):
    the kernel equals the float64 oracle to 1e-12."""
    C = [0.1, -0.7, 1.3, 0.333333333333]
    A, B = hippo.legs(4)
    K = s4.legs_kernel(C, 0.05, 20)
    assert K.dtype == torch.float64
    expected = numpy_kernel(A, B, torch.tensor(C, dtype=torch.float64), 0.05, 20).real
    assert relative(K, expected) < 1e-12


_ONES = torch.ones(3, dtype=torch.complex128)


@pytest.mark.parametrize("route", [
    lambda L, dt: s4.legs_kernel(torch.ones(3), dt, L),
    lambda L, dt: s4.kernel_dplr(_ONES, _ONES, _ONES, _ONES, dt, L),
    lambda L, dt: s4.kernel_naive(-torch.eye(3), torch.ones(3), torch.ones(3), dt, L),
    lambda L, dt: s4.kernel_eig(-torch.eye(3), torch.ones(3), torch.ones(3), dt, L),
], ids=["legs_kernel", "kernel_dplr", "kernel_naive", "kernel_eig"])
@pytest.mark.parametrize(("L", "dt", "message"), [
    (0, 0.1, "L must be a positive int, got 0"),
    (True, 0.1, "L must be a positive int, got True"),
    (2.5, 0.1, "L must be a positive int, got 2.5"),
    (4, 0, "dt must be a positive finite number, got 0"),
    (4, 0.0, "dt must be a positive finite number, got 0.0"),
    (4, True, "dt must be a positive finite number, got True"),
    (4, -0.1, "dt must be a positive finite number, got -0.1"),
    (4, math.inf, "dt must be a positive finite number, got inf"),
    (4, math.nan, "dt must be a positive finite number, got nan"),
    (4, "0.1", "dt must be a positive finite number, got '0.1'"),
])
def test_every_route_refuses_bad_lengths_and_steps_in_full(route, L, dt, message):
    """Each kernel names the argument, what it must be and what it was given, word for word;
    the smallest length 1 and a step just above 0 are accepted."""
    with pytest.raises(ValueError) as info:
        route(L, dt)
    assert str(info.value) == message
    assert route(1, 1e-3).shape == (1,)


def test_kernel_dplr_refuses_mismatched_shapes_in_full():
    """The message shows the expected (n,) and every shape given."""
    with pytest.raises(ValueError) as info:
        s4.kernel_dplr(torch.ones(3), torch.ones(2), torch.ones(3), torch.ones(3, 1), 0.1, 4)
    assert str(info.value) == "Lambda, P, B and C must all be (n,) = (3,), got [(2,), (3,), (3, 1)]"
