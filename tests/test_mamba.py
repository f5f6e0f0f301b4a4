"""sseq.mamba: the reference's parameters, forward against a float64 loop, step == forward,
gradients across scan backends, the initialisation and its survival of re-initialisation.

The oracle below is written here from the paper's equations and mamba_ssm's code layout,
independently of sseq.mamba: explicit loops over time in float64. float64 paths are held to
1e-10; float32 to rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from sseq import scan
from sseq.mamba import (
    S6,
    Block,
    Mamba,
    MambaState,
    RMSNorm,
    inverse_softplus,
    no_weight_decay,
    reinit_weights,
)

BACKENDS = [name for name in scan.BACKENDS if name != "triton"]
TOL = 1e-10

# mamba_ssm.modules.mamba_simple.Mamba(d_model=64): names and shapes of its state dict,
# written out from the reference source (d_inner = 128, dt_rank = ceil(64 / 16) = 4, N = 16).
REFERENCE_64 = {
    "A_log": (128, 16),
    "D": (128,),
    "in_proj.weight": (256, 64),
    "conv1d.weight": (128, 1, 4),
    "conv1d.bias": (128,),
    "x_proj.weight": (36, 128),
    "dt_proj.weight": (128, 4),
    "dt_proj.bias": (128,),
    "out_proj.weight": (64, 128),
}


def reference_state_dict(shapes: dict, seed: int = 0) -> dict:
    """A state dict as mamba_ssm would save one: the names and shapes above, random values."""
    g = torch.Generator().manual_seed(seed)
    return {k: 0.3 * torch.randn(*s, generator=g) for k, s in shapes.items()}


def oracle(sd: dict, u: torch.Tensor, *, d_state: int, dt_rank: int, gate: bool = True):
    """Mamba's forward pass from its state dict, one time step at a time, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    u = u.double()
    b, l, _ = u.shape
    xz = u @ sd["in_proj.weight"].T
    x, z = xz.chunk(2, dim=-1) if gate else (xz, None)
    d = x.shape[-1]
    w = sd["conv1d.weight"][:, 0]  # (d, width)
    width = w.shape[1]
    conv = torch.zeros_like(x)
    for t in range(l):
        for k in range(width):  # tap k sees the input k steps back
            if t - k >= 0:
                conv[:, t] += w[:, width - 1 - k] * x[:, t - k]
    x = F.silu(conv + sd.get("conv1d.bias", torch.zeros(d, dtype=torch.float64)))
    proj = x @ sd["x_proj.weight"].T
    dt, B, C = proj[..., :dt_rank], proj[..., dt_rank:dt_rank + d_state], proj[..., -d_state:]
    dt = F.softplus(dt @ sd["dt_proj.weight"].T + sd["dt_proj.bias"])  # (b, l, d)
    A = -torch.exp(sd["A_log"])
    h = torch.zeros(b, d, d_state, dtype=torch.float64)
    ys = []
    for t in range(l):
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * x[:, t])[..., None] * B[:, t, None]
        y = (h * C[:, t, None]).sum(-1) + sd["D"] * x[:, t]
        ys.append(y * F.silu(z[:, t]) if gate else y)
    return torch.stack(ys, 1) @ sd["out_proj.weight"].T, h


def step_all(block, u):
    state = block.initial_state(u.shape[0], dtype=u.dtype)
    ys = []
    for t in range(u.shape[1]):
        y, state = block.step(u[:, t], state)
        ys.append(y)
    return torch.stack(ys, 1), state


# --- parameters --------------------------------------------------------------------------------


def test_state_dict_has_the_reference_names_and_shapes():
    got = {k: tuple(v.shape) for k, v in Mamba(64).state_dict().items()}
    assert got == REFERENCE_64


def test_options_change_the_shapes_as_in_the_reference():
    got = {k: tuple(v.shape) for k, v in
           Mamba(48, d_state=8, d_conv=3, expand=1.5, dt_rank=5, bias=True,
                 conv_bias=False).state_dict().items()}
    assert got == {"A_log": (72, 8), "D": (72,), "in_proj.weight": (144, 48),
                   "in_proj.bias": (144,), "conv1d.weight": (72, 1, 3),
                   "x_proj.weight": (21, 72), "dt_proj.weight": (72, 5), "dt_proj.bias": (72,),
                   "out_proj.weight": (48, 72), "out_proj.bias": (48,)}


def test_a_reference_state_dict_loads_strictly_and_is_used():
    sd = reference_state_dict(REFERENCE_64)
    block = Mamba(64)
    block.load_state_dict(sd, strict=True)
    u = torch.randn(2, 9, 64, dtype=torch.float64)
    want, _ = oracle(sd, u, d_state=16, dt_rank=4)
    torch.testing.assert_close(block.double()(u), want, rtol=TOL, atol=TOL)


def test_a_wrong_state_dict_is_refused():
    sd = reference_state_dict(REFERENCE_64)
    sd["x_proj.weight"] = torch.zeros(40, 128)
    with pytest.raises(RuntimeError, match="x_proj.weight"):
        Mamba(64).load_state_dict(sd, strict=True)


def test_parameter_count_matches_the_closed_form():
    d_model, n, width, d = 64, 16, 4, 128
    r = math.ceil(d_model / 16)
    count = (2 * d * d_model + d * width + d + (r + 2 * n) * d + r * d + d + d * n + d
             + d_model * d)
    assert sum(p.numel() for p in Mamba(d_model).parameters()) == count


def test_s6_has_no_gate_branch():
    s6 = S6(16, d_state=4)
    assert not s6.gate and s6.in_proj.weight.shape == (32, 16)
    u = torch.randn(2, 7, 16, dtype=torch.float64)
    sd = {k: v.double() for k, v in s6.state_dict().items()}
    want, _ = oracle(sd, u, d_state=4, dt_rank=1, gate=False)
    torch.testing.assert_close(s6.double()(u), want, rtol=TOL, atol=TOL)


# --- forward, step, gradients ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gate", [True, False])
def test_forward_equals_the_oracle(backend, gate):
    block = Mamba(8, d_state=4, gate=gate, backend=backend, conv_bias=True).double()
    with torch.no_grad():
        block.conv1d.bias.normal_()
    u = torch.randn(3, 13, 8, dtype=torch.float64)
    sd = {k: v.detach() for k, v in block.state_dict().items()}
    want, h = oracle(sd, u, d_state=4, dt_rank=1, gate=gate)
    y, state = block(u, return_state=True)
    torch.testing.assert_close(y, want, rtol=TOL, atol=TOL)
    torch.testing.assert_close(state.ssm, h, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("length", [1, 2, 17])
@pytest.mark.parametrize("gate", [True, False])
def test_step_equals_forward(backend, length, gate):
    block = Mamba(8, d_state=4, d_conv=4, gate=gate, backend=backend).double()
    u = torch.randn(2, length, 8, dtype=torch.float64)
    y, state = block(u, return_state=True)
    y_steps, state_steps = step_all(block, u)
    torch.testing.assert_close(y_steps, y, rtol=TOL, atol=TOL)
    torch.testing.assert_close(state_steps.ssm, state.ssm, rtol=TOL, atol=TOL)
    torch.testing.assert_close(state_steps.conv, state.conv, rtol=TOL, atol=TOL)


def test_generation_continues_from_a_prompt_read_in_parallel():
    block = Mamba(8, d_state=4).double()
    u = torch.randn(2, 12, 8, dtype=torch.float64)
    _, state = block(u[:, :5], return_state=True)  # the prompt, in parallel
    tail = []
    for t in range(5, 12):
        y, state = block.step(u[:, t], state)
        tail.append(y)
    torch.testing.assert_close(torch.stack(tail, 1), block(u)[:, 5:], rtol=TOL, atol=TOL)


def test_step_in_float32_matches_forward():
    block = Mamba(16, d_state=8)
    u = torch.randn(2, 20, 16)
    torch.testing.assert_close(step_all(block, u)[0], block(u), rtol=1e-4, atol=1e-5)


def test_the_state_does_not_grow_with_the_sequence():
    block = Mamba(8, d_state=4)
    state = block.initial_state(3)
    for _ in range(10):
        _, state = block.step(torch.randn(3, 8), state)
    assert state.conv.shape == (3, 16, 3) and state.ssm.shape == (3, 16, 4)


def test_auto_backend_is_the_fused_cpu_loop_on_a_cpu():
    if "cpu" not in scan.BACKENDS:
        pytest.skip("numba is not installed")
    assert scan.resolve_backend("auto", "cpu") == "cpu"
    u = torch.randn(2, 9, 8)
    auto, cpu = Mamba(8, d_state=4), Mamba(8, d_state=4, backend="cpu")
    cpu.load_state_dict(auto.state_dict())
    assert torch.equal(auto(u), cpu(u))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "reference"])
def test_gradients_agree_with_the_reference_backend(backend):
    torch.manual_seed(1)
    fast = Mamba(8, d_state=4, backend=backend).double()
    slow = copy.deepcopy(fast)
    slow.backend = "reference"
    u = torch.randn(2, 11, 8, dtype=torch.float64, requires_grad=True)
    u_slow = u.detach().clone().requires_grad_()
    g = torch.randn(2, 11, 8, dtype=torch.float64)
    fast(u).backward(g)
    slow(u_slow).backward(g)
    torch.testing.assert_close(u.grad, u_slow.grad, rtol=1e-9, atol=1e-10)
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_gradients_match_finite_differences():
    block = Mamba(4, d_state=2, expand=1, backend="reference").double()
    u = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: block(x), (u,))


# --- initialisation ----------------------------------------------------------------------------


def test_initialisation_follows_the_reference():
    torch.manual_seed(0)
    block = Mamba(64, dt_min=0.002, dt_max=0.05)
    assert torch.equal(block.A_log, torch.log(torch.arange(1, 17.0)).repeat(128, 1))
    assert torch.equal(block.D, torch.ones(128))
    dt = F.softplus(block.dt_proj.bias)
    assert dt.min() >= 0.002 * (1 - 1e-5) and dt.max() <= 0.05 * (1 + 1e-5)
    log_dt = dt.log()  # log-uniform: its mean is the midpoint of the logs
    assert abs(log_dt.mean() - (math.log(0.002) + math.log(0.05)) / 2) < 0.3
    assert block.dt_proj.weight.abs().max() <= 4**-0.5 and block.dt_rank == 4


def test_inverse_softplus_inverts_softplus():
    y = torch.tensor([1e-4, 1e-3, 0.1, 1.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(F.softplus(inverse_softplus(y)), y, rtol=1e-12, atol=0)


def test_dt_floor_clamps_small_steps():
    block = Mamba(8, dt_min=1e-6, dt_max=2e-6, dt_init_floor=1e-3)
    torch.testing.assert_close(F.softplus(block.dt_proj.bias), torch.full((16,), 1e-3))


@pytest.mark.parametrize("bias", [False, True])
def test_initialisation_survives_reinitialisation(bias):
    torch.manual_seed(0)
    block = Block(32, Mamba(32, bias=bias))
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block.apply(functools.partial(reinit_weights, n_layer=4))
    after = block.state_dict()
    for name in ("mixer.dt_proj.bias", "mixer.A_log", "mixer.D"):
        assert torch.equal(after[name], before[name]), name
    if bias:  # the other biases are zeroed
        assert not after["mixer.in_proj.bias"].any() and not after["mixer.out_proj.bias"].any()
    bound = 1 / math.sqrt(64) / math.sqrt(4)  # kaiming-uniform bound of out_proj, / sqrt(n_layer)
    assert after["mixer.out_proj.weight"].abs().max() <= bound


def test_without_the_flag_reinitialisation_would_destroy_dt():
    block = Mamba(32)
    del block.dt_proj.bias._no_reinit
    block.apply(functools.partial(reinit_weights, n_layer=1))
    # softplus(0) = log 2: every channel's step becomes 0.69, outside [0.001, 0.1]
    torch.testing.assert_close(F.softplus(block.dt_proj.bias), torch.full((64,), math.log(2)))


def test_flags_survive_a_deep_copy_and_name_the_no_decay_parameters():
    block = copy.deepcopy(Block(16, Mamba(16)))
    assert block.mixer.dt_proj.bias._no_reinit
    assert no_weight_decay(block) == {"mixer.A_log", "mixer.D"}


# --- norm and block ----------------------------------------------------------------------------


def test_rmsnorm_matches_torch():
    x = torch.randn(3, 5, 8)
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.normal_()
    ref = torch.nn.RMSNorm(8, eps=1e-5)
    ref.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x), ref(x))


def test_block_is_a_pre_norm_residual_and_steps_like_it_runs():
    block = Block(8, Mamba(8, d_state=4)).double()
    u = torch.randn(2, 6, 8, dtype=torch.float64)
    torch.testing.assert_close(block(u), u + block.mixer(block.norm(u)), rtol=0, atol=0)
    state, ys = block.mixer.initial_state(2, dtype=torch.float64), []
    for t in range(6):
        y, state = block.step(u[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), block(u), rtol=TOL, atol=TOL)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(d_model=0), ValueError, "d_model must be a positive int, got 0"),
    (dict(d_model=8, d_state=2.5), ValueError, "d_state must be a positive int"),
    (dict(d_model=8, d_conv=0), ValueError, "d_conv must be a positive int"),
    (dict(d_model=8, expand=0), ValueError, "expand must be a positive number"),
    (dict(d_model=8, dt_rank="big"), ValueError, "dt_rank"),
    (dict(d_model=8, dt_min=0.1, dt_max=0.01), ValueError, "dt_min <= dt_max"),
    (dict(d_model=8, dt_init_floor=-1.0), ValueError, "dt_init_floor must be >= 0"),
    (dict(d_model=8, backend="gpu"), ValueError, "backend must be one of"),
    (dict(d_model=8, gate=1), TypeError, "gate must be True or False"),
])
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        Mamba(**kwargs)


def test_bad_inputs_name_themselves():
    block = Mamba(8, d_state=4)
    with pytest.raises(ValueError, match=r"u must have shape \(b, l, d_model\) with d_model = "
                                         r"8, got \(2, 5, 7\)"):
        block(torch.randn(2, 5, 7))
    with pytest.raises(TypeError, match="u must be a floating-point torch.Tensor"):
        block(torch.ones(2, 5, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"u_t must have shape \(b, d_model\)"):
        block.step(torch.randn(2, 1, 8), block.initial_state(2))
    with pytest.raises(TypeError, match="state must be a MambaState"):
        block.step(torch.randn(2, 8), (torch.zeros(2, 16, 3), torch.zeros(2, 16, 4)))
    with pytest.raises(ValueError, match="batch must be a positive int, got 0"):
        block.initial_state(0)
    assert isinstance(block.initial_state(1), MambaState)


# --- the Triton kernel inside the block ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif("triton" not in scan.BACKENDS, reason="needs triton")
def test_the_block_runs_the_triton_kernel_in_its_interpreter():
    if torch.cuda.is_available():
        pytest.skip("on a GPU the kernel is compiled: see the gpu test")
    torch.manual_seed(2)
    block = Mamba(8, d_state=4, backend="triton")
    ref = copy.deepcopy(block)
    ref.backend = "reference"
    u = torch.randn(2, 19, 8, requires_grad=True)
    u_ref = u.detach().clone().requires_grad_()
    torch.testing.assert_close(block(u), ref(u_ref), rtol=1e-4, atol=1e-5)
    block(u).sum().backward()
    ref(u_ref).sum().backward()
    torch.testing.assert_close(u.grad, u_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(block.A_log.grad, ref.A_log.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_on_a_gpu_auto_runs_the_triton_kernel_and_steps_agree():
    assert scan.resolve_backend("auto", "cuda") == "triton"
    torch.manual_seed(3)
    block = Mamba(64).cuda()
    ref = copy.deepcopy(block)
    ref.backend = "reference"
    u = torch.randn(2, 300, 64, device="cuda")
    y = block(u)
    torch.testing.assert_close(y, ref(u), rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(step_all(block, u)[0], y, rtol=1e-3, atol=1e-4)
