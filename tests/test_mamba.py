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
    (dict(d_model=8, expand=0.1), ValueError, "expand · d_model >= 1, got 0.1"),
    (dict(d_model=8, expand="2"), ValueError, "expand must be a positive number"),
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


# --- defaults, dtypes, devices, messages (gaps found by mutation testing) -----------------------


def test_s6_defaults_are_mambas_without_the_gate():
    """S6 takes Mamba's defaults (N = 16, width 4, Δ in [0.001, 0.1], conv bias on, linear
    biases off, backend "auto") and passes every argument on to Mamba."""
    got = {k: tuple(v.shape) for k, v in S6(16).state_dict().items()}
    assert got == {"A_log": (32, 16), "D": (32,), "in_proj.weight": (32, 16),
                   "conv1d.weight": (32, 1, 4), "conv1d.bias": (32,),
                   "x_proj.weight": (33, 32), "dt_proj.weight": (32, 1), "dt_proj.bias": (32,),
                   "out_proj.weight": (16, 32)}
    dt = F.softplus(S6(64).dt_proj.bias)  # 128 channels drawn log-uniformly in [0.001, 0.1]
    assert 0.001 * (1 - 1e-5) <= dt.min() < 0.002 and 0.05 < dt.max() <= 0.1 * (1 + 1e-5)
    s6 = S6(8, d_state=2, conv_bias=True, bias=True, backend="reference")
    assert s6.backend == "reference" and s6.conv1d.bias is not None
    assert s6.in_proj.bias is not None and s6.out_proj.bias is not None
    assert S6(8, conv_bias=False).conv1d.bias is None


def test_default_dt_range_and_floor():
    """Mamba(d_model) draws Δ in [0.001, 0.1] with a floor of 1e-4 that a wider range reaches."""
    dt = F.softplus(Mamba(64).dt_proj.bias)
    assert 0.001 * (1 - 1e-5) <= dt.min() < 0.002 and 0.05 < dt.max() <= 0.1 * (1 + 1e-5)
    torch.manual_seed(0)
    dt = F.softplus(Mamba(64, dt_min=1e-6, dt_max=1e-2).dt_proj.bias).detach()
    assert dt.min().item() == pytest.approx(1e-4, rel=1e-4) and (dt > 1.5e-4).any()


def test_the_block_passes_its_backend_to_the_scan(monkeypatch):
    """forward runs the scan backend the block was built with (not the scan's default)."""
    seen = []
    original = scan.selective_scan

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend"))
        return original(*args, **kwargs)

    monkeypatch.setattr(scan, "selective_scan", spy)
    for backend in BACKENDS:
        Mamba(8, d_state=2, backend=backend)(torch.randn(1, 3, 8))
    assert seen == BACKENDS


def test_step_without_a_convolution_bias_equals_forward():
    """conv_bias=False: the step skips the bias and still equals forward and the oracle."""
    block = Mamba(8, d_state=4, conv_bias=False).double()
    u = torch.randn(2, 7, 8, dtype=torch.float64)
    want, _ = oracle({k: v.detach() for k, v in block.state_dict().items()}, u, d_state=4,
                     dt_rank=1)
    torch.testing.assert_close(block(u), want, rtol=TOL, atol=TOL)
    torch.testing.assert_close(step_all(block, u)[0], want, rtol=TOL, atol=TOL)


def test_initial_state_takes_the_models_dtype_and_device():
    """Zeros of shapes (b, d, d_conv − 1) and (b, d, n), on the parameters' device, the conv
    window in their dtype and the SSM state in at least float32; explicit arguments win."""
    block = Mamba(8, d_state=4, d_conv=3).double()
    state = block.initial_state(3)
    assert state.conv.shape == (3, 16, 2) and state.ssm.shape == (3, 16, 4)
    assert state.conv.dtype == state.ssm.dtype == torch.float64
    assert not state.conv.any() and not state.ssm.any()
    half = Mamba(8, d_state=4).half().initial_state(2)
    assert (half.conv.dtype, half.ssm.dtype) == (torch.float16, torch.float32)
    meta = Mamba(8, d_state=4).to("meta").initial_state(2)
    assert meta.conv.device.type == meta.ssm.device.type == "meta"
    cpu = Mamba(8, d_state=4).to("meta").initial_state(2, device="cpu", dtype=torch.float64)
    assert cpu.conv.device.type == "cpu" and cpu.ssm.dtype == torch.float64


def test_a_half_precision_block_keeps_a_in_float32():
    """A = −exp(A_log) is computed in float32 in a float16 model: a decay rate beyond float16's
    range (65504) still gives exp(Δ·A) ≈ 0.5, not exp(−inf) = 0, in forward and step."""
    torch.manual_seed(0)
    block = Mamba(8, d_state=2, d_conv=2, backend="reference")
    with torch.no_grad():
        block.A_log.fill_(math.log(7e4))  # A = −70000 > float16's max
        block.dt_proj.weight.zero_()
        block.dt_proj.bias.fill_(inverse_softplus(torch.tensor(1e-5)).item())  # Δ·A = −0.7
    half = copy.deepcopy(block).half()
    u = torch.randn(2, 6, 8)
    sd = {k: v.detach().float() for k, v in half.state_dict().items()}
    want, h = oracle(sd, u.half().float(), d_state=2, dt_rank=1)
    y, state = half(u.half(), return_state=True)
    assert y.dtype == torch.float16 and state.ssm.dtype == torch.float32
    # h is of order Δ·B·u ≈ 1e-6: compare it relative to its size
    torch.testing.assert_close(state.ssm.double(), h, rtol=2e-2, atol=1e-3 * h.abs().max())
    torch.testing.assert_close(y.double(), want, rtol=2e-2, atol=2e-3)


def test_a_half_precision_step_returns_half_outputs():
    """step in a float16 model: the float32 state's readout is cast back before out_proj, and
    the steps agree with forward to float16's precision."""
    block = Mamba(8, d_state=4).half()
    u = torch.randn(2, 5, 8).half()
    ys, state = step_all(block, u)
    assert ys.dtype == torch.float16 and state.ssm.dtype == torch.float32
    torch.testing.assert_close(ys.float(), block(u).float(), rtol=2e-2, atol=2e-3)


def test_s4d_real_A_log_is_float32_even_under_a_float64_default():
    """A_log = log(1, …, N) is float32 (as mamba_ssm's), whatever torch's default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        A_log = Mamba(4, d_state=3).A_log
    finally:
        torch.set_default_dtype(previous)
    assert A_log.dtype == torch.float32
    assert torch.equal(A_log, torch.log(torch.tensor([1.0, 2.0, 3.0])).repeat(8, 1))


def test_reinitialisation_draws_embeddings_and_out_proj_as_gpt2():
    """Embeddings ~ N(0, initializer_range²) (0.02 by default); out_proj.weight redrawn from
    nn.Linear's U(±1/√fan_in) and divided by √(n_residuals_per_layer · n_layer)."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(1000, 64)
    reinit_weights(emb, n_layer=2)
    assert emb.weight.std().item() == pytest.approx(0.02, rel=0.03)
    reinit_weights(emb, n_layer=2, initializer_range=0.5)
    assert emb.weight.std().item() == pytest.approx(0.5, rel=0.03)
    block = Mamba(32, d_state=2, expand=32)  # out_proj: 1024 → 32, fan_in 1024
    for n_layer, per_layer in ((1, None), (4, None), (3, 2)):  # None: the default, 1
        extra = {} if per_layer is None else {"n_residuals_per_layer": per_layer}
        reinit_weights(block, n_layer=n_layer, **extra)
        w = block.out_proj.weight
        bound = 1 / math.sqrt(1024) / math.sqrt(n_layer * (per_layer or 1))
        assert 0.999 * bound < w.abs().max() <= bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    before = block.out_proj.weight.clone()
    reinit_weights(block, n_layer=4, rescale_prenorm_residual=False)
    assert torch.equal(block.out_proj.weight, before)


def test_rmsnorm_keeps_a_half_precision_input_in_its_precision():
    """A bfloat16 norm returns bfloat16 (normalised in float32, as torch.nn.RMSNorm's values)."""
    x = torch.randn(3, 8)
    norm = RMSNorm(8).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2, 8))
    y = norm(x.bfloat16())
    assert y.dtype == torch.bfloat16
    ref = torch.nn.RMSNorm(8, eps=1e-5).double()
    ref.load_state_dict(norm.state_dict())
    torch.testing.assert_close(y.double(), ref(x.bfloat16().double()), rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("eps", [None, 0.5])
def test_block_norm_uses_its_eps(eps):
    """Block(d, mixer) normalises with eps = 1e-5 (or the one given): visible on small inputs."""
    block = Block(4, torch.nn.Identity()) if eps is None else Block(4, torch.nn.Identity(), eps)
    u = 1e-3 * torch.randn(2, 3, 4)  # mean(u²) ≈ 1e-6: eps = 1e-5 dominates it
    ref = torch.nn.RMSNorm(4, eps=1e-5 if eps is None else eps)
    torch.testing.assert_close(block(u), u + ref(u), rtol=1e-5, atol=1e-9)


def test_bad_inputs_say_what_they_got():
    """The messages name what was given: the Python type, or the tensor's dtype."""
    block = Mamba(8, d_state=4)
    with pytest.raises(TypeError, match=r"u must be a floating-point torch.Tensor, got list$"):
        block([[1.0] * 8])
    with pytest.raises(TypeError, match=r"torch.Tensor, got torch.int64$"):
        block(torch.ones(2, 5, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"state must be a MambaState \(see initial_state\), "
                                        r"got tuple$"):
        block.step(torch.randn(2, 8), (torch.zeros(2, 16, 3), torch.zeros(2, 16, 4)))
    with pytest.raises(ValueError, match=r"^d must be a positive int, got 0$"):
        RMSNorm(0)


def test_argument_boundaries_are_accepted():
    """The edges of the valid ranges build: d_inner = 1, dt_min = dt_max, dt_init_floor = 0."""
    assert Mamba(8, d_state=2, expand=0.125).d_inner == 1
    dt = F.softplus(Mamba(8, dt_min=0.01, dt_max=0.01).dt_proj.bias).detach()
    torch.testing.assert_close(dt, torch.full((16,), 0.01))
    dt = F.softplus(Mamba(8, dt_min=1e-6, dt_max=1e-5, dt_init_floor=0).dt_proj.bias).detach()
    assert dt.min() >= 1e-6 * (1 - 1e-4) and dt.max() <= 1e-5 * (1 + 1e-4)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(expand=True), "expand must be a positive number with expand · d_model >= 1, got True"),
    (dict(dt_rank=0), r"dt_rank \(or 'auto'\) must be a positive int, got 0"),
    (dict(dt_min=0, dt_max=0.1), r"need 0 < dt_min <= dt_max, got dt_min=0, dt_max=0.1"),
])
def test_bad_arguments_say_what_they_got(kwargs, message):
    """Each refusal names the argument, the rule and the value given (bools are no numbers)."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        Mamba(8, **kwargs)


@pytest.mark.parametrize(("d_model", "rank"), [(16, 1), (17, 2), (33, 3), (64, 4)])
def test_auto_dt_rank_is_the_ceiling_of_d_model_over_16(d_model, rank):
    """dt_rank="auto" is ⌈d_model / 16⌉, and dt_proj starts U(±1/√dt_rank) (its bound reached)."""
    block = Mamba(d_model, d_state=2, expand=4)
    assert block.dt_rank == rank and block.dt_proj.weight.shape == (4 * d_model, rank)
    w, bound = block.dt_proj.weight, rank**-0.5
    assert -bound <= w.min() < -0.9 * bound and 0.9 * bound < w.max() <= bound
