"""The parallel scan, written to be read: h_t = a_t h_{t−1} + b_t in log depth.

A step of the recurrence is the pair (a_t, b_t): the affine map h ↦ a_t h + b_t. Doing the step
(a₁, b₁) and then the step (a₂, b₂) is again an affine map, h ↦ a₂(a₁h + b₁) + b₂, so

    (a₁, b₁) • (a₂, b₂) = (a₂ a₁, a₂ b₁ + b₂)                  (:func:`combine`)

is an *associative* operator with identity (1, 0). The states are its prefixes: with
h_{−1} = 0, h_t is the b-part of (a₀, b₀) • (a₁, b₁) • … • (a_t, b_t). Associativity lets the
prefixes be computed in any bracketing — in a tree, in O(log l) parallel rounds:

* :func:`hillis_steele` (Hillis & Steele, 1986): in round k every position combines with the
  one 2^k to its left. log₂ l rounds, but l·log₂ l work: not work-efficient.
* :func:`blelloch` (Blelloch, 1990): an up-sweep builds partial results in a tree, a
  down-sweep hands each subtree the prefix before it. 2 log₂ l rounds and about 2l work, as
  much as the loop up to a constant.
* :func:`sequential_scan` — the loop: l − 1 combines, each waiting for the last.

Each records what it does in a :class:`Trace`: the rounds, and in each round which positions
combine (its *work*: combines; its *depth*: rounds). :func:`scan_explorer` draws the rounds.
Tensors are batch-first, ``(b, l, ...)``, as in :func:`sseq.scan.linear_scan`, which all three
equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["ALGORITHMS", "NAMES", "Trace", "blelloch", "combine", "cost", "hillis_steele",
           "plot_scan", "replay", "scan_explorer", "sequential_scan", "time_scans"]


def combine(first, second):
    """The step ``first`` followed by the step ``second``: (a₁, b₁) • (a₂, b₂) = (a₂a₁, a₂b₁ + b₂).

    Args:
        first, second: pairs ``(a, b)`` of tensors (or numbers) that broadcast together.

    Returns:
        The pair ``(a, b)`` of the combined step.
    """
    a1, b1 = first
    a2, b2 = second
    return a2 * a1, a2 * b1 + b2


@dataclass
class Trace:
    """What a scan did, round by round: ``rounds[k] = (phase, sources, targets)``.

    In a round, every target position t is replaced by a combination with its source s:
    ``x[t] = x[s] • x[t]`` (phases ``"scan"`` and ``"up"``); in Blelloch's ``"down"`` phase,
    ``x[s], x[t] = x[t], x[t] • x[s]``. A round's combines are independent of each other.
    """

    length: int = 0  # positions (after padding to a power of two, for Blelloch)
    rounds: list[tuple[str, list[int], list[int]]] = field(default_factory=list)

    def record(self, phase: str, sources, targets) -> None:
        """Add a round: ``targets[i]`` combines with ``sources[i]`` (lists of one length)."""
        sources, targets = [int(s) for s in sources], [int(t) for t in targets]
        if len(sources) != len(targets):
            raise ValueError(f"sources and targets must pair up one to one, got "
                             f"{len(sources)} sources and {len(targets)} targets")
        self.rounds.append((phase, sources, targets))

    @property
    def work(self) -> int:
        """The number of combines."""
        return sum(len(targets) for _, _, targets in self.rounds)

    @property
    def depth(self) -> int:
        """The number of rounds: the time with unlimited processors."""
        return len(self.rounds)


def _check(a, b):
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (b, l, ...), got {type(x).__name__}")
    if a.ndim < 2 or a.shape[1] < 1:
        raise ValueError(f"a must have shape (b, l, ...) with l >= 1, got {tuple(a.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"b must have a's shape {tuple(a.shape)}, got {tuple(b.shape)}")


def sequential_scan(a, b, trace: Trace | None = None):
    """The loop: h_t = a_t h_{t−1} + b_t from h_{−1} = 0, as prefixes of :func:`combine`.

    Args:
        a, b: ``(b, l, ...)``.
        trace: a :class:`Trace` to record the rounds in (one combine each), or None.

    Returns:
        h ``(b, l, ...)``.
    """
    _check(a, b)
    prefix = (a[:, 0], b[:, 0])  # (a₀, b₀)
    hs = [prefix[1]]
    for t in range(1, a.shape[1]):
        prefix = combine(prefix, (a[:, t], b[:, t]))  # (a₀, b₀) • … • (a_t, b_t)
        hs.append(prefix[1])
        if trace is not None:
            trace.record("scan", [t - 1], [t])
    if trace is not None:
        trace.length = a.shape[1]
    return torch.stack(hs, dim=1)


def hillis_steele(a, b, trace: Trace | None = None):
    """Hillis–Steele: in round k, position t ≥ 2^k combines with position t − 2^k.

    After round k, position t holds the combination of steps max(0, t − 2^{k+1} + 1) … t;
    after ⌈log₂ l⌉ rounds, of steps 0 … t: the prefix.

    Args and Returns: as :func:`sequential_scan`.
    """
    _check(a, b)
    l, shift = a.shape[1], 1
    while shift < l:
        left = (a[:, :-shift], b[:, :-shift])  # positions 0 … l − 1 − shift
        right = (a[:, shift:], b[:, shift:])  # positions shift … l − 1
        a_new, b_new = combine(left, right)  # every pair at once: one parallel round
        a = torch.cat([a[:, :shift], a_new], dim=1)
        b = torch.cat([b[:, :shift], b_new], dim=1)
        if trace is not None:
            trace.record("scan", range(0, l - shift), range(shift, l))
        shift *= 2
    if trace is not None:
        trace.length = l
    return b


def blelloch(a, b, trace: Trace | None = None):
    """Blelloch's work-efficient scan: an up-sweep and a down-sweep over a balanced tree.

    The length is padded to a power of two n with identity steps (1, 0).

    * Up-sweep, stride s = 2, 4, …, n: the right child t of each pair (t − s/2, t) becomes
      left • right, so position n − 1 ends up holding the whole sequence.
    * Down-sweep: the root is set to the identity, then from the top down each node hands its
      prefix to its left child and (prefix • left child's total) to its right child. Position
      t ends up with the *exclusive* prefix, steps 0 … t − 1.
    * The inclusive prefix of t is the exclusive prefix of t + 1, and the total for the last.

    Args and Returns: as :func:`sequential_scan`.
    """
    _check(a, b)
    l = a.shape[1]
    n = 1 << (l - 1).bit_length()  # the next power of two
    pad = [0, 0] * (a.ndim - 2) + [0, n - l]
    a = torch.nn.functional.pad(a, pad, value=1.0)  # identity steps (1, 0)
    b = torch.nn.functional.pad(b, pad, value=0.0)
    stride = 2
    while stride <= n:  # up-sweep
        right = torch.arange(stride - 1, n, stride)
        left = right - stride // 2
        a_r, b_r = combine((a[:, left], b[:, left]), (a[:, right], b[:, right]))
        a, b = a.index_copy(1, right, a_r), b.index_copy(1, right, b_r)
        if trace is not None:
            trace.record("up", left, right)
        stride *= 2
    total = (a[:, -1], b[:, -1])
    a, b = a.index_fill(1, torch.tensor([n - 1]), 1.0), b.index_fill(1, torch.tensor([n - 1]), 0)
    stride = n
    while stride >= 2:  # down-sweep
        right = torch.arange(stride - 1, n, stride)
        left = right - stride // 2
        prefix, child = (a[:, right], b[:, right]), (a[:, left], b[:, left])
        a_r, b_r = combine(prefix, child)  # the prefix before the right subtree
        a, b = a.index_copy(1, left, prefix[0]), b.index_copy(1, left, prefix[1])
        a, b = a.index_copy(1, right, a_r), b.index_copy(1, right, b_r)
        if trace is not None:
            trace.record("down", left, right)
        stride //= 2
    if trace is not None:
        trace.length = n
    return torch.cat([b[:, 1:l], total[1][:, None]], dim=1) if l == n else b[:, 1:l + 1]


ALGORITHMS = {"sequential": sequential_scan, "hillis_steele": hillis_steele,
              "blelloch": blelloch}
NAMES = {"sequential": "Sequential", "hillis_steele": "Hillis–Steele", "blelloch": "Blelloch"}


def cost(algorithm: str, l: int) -> tuple[int, int]:
    """``(work, depth)`` of a scan of length l, in closed form (what :class:`Trace` counts).

    sequential: (l − 1, l − 1). Hillis–Steele: Σ_k (l − 2^k) over 2^k < l, and ⌈log₂ l⌉ rounds.
    Blelloch, with n = l rounded up to a power of two: (2(n − 1), 2 log₂ n).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
    if isinstance(l, bool) or not isinstance(l, int) or l < 1:
        raise ValueError(f"l must be a positive int, got {l!r}")
    if algorithm == "sequential":
        return l - 1, l - 1
    if algorithm == "hillis_steele":
        shifts = [1 << k for k in range((l - 1).bit_length())]
        return sum(l - s for s in shifts), len(shifts)
    n = 1 << (l - 1).bit_length()
    return 2 * (n - 1), 2 * (n.bit_length() - 1)


def replay(trace: Trace, values: list, op=combine, identity=(1.0, 0.0)) -> list[list]:
    """Replay a trace on a list of values with any associative ``op`` and its ``identity``.

    Blelloch's down-sweep starts by setting the root (the last position) to the identity.

    Returns:
        The list after each round (the first entry is ``values`` itself), for drawing.
    """
    x, history, previous = list(values), [list(values)], None
    for phase, sources, targets in trace.rounds:
        if phase == "down" and previous != "down":
            x[-1] = identity  # the root: nothing comes before the whole sequence
        previous = phase
        new = list(x)
        for s, t in zip(sources, targets, strict=True):
            if phase == "down":
                new[s], new[t] = x[t], op(x[t], x[s])
            else:
                new[t] = op(x[s], x[t])
        x = new
        history.append(list(x))
    return history


def _span(first, second):
    """The operator on spans of steps, None the identity: (i, j) • (j + 1, k) = (i, k)."""
    if first is None or second is None:
        return second if first is None else first
    return first[0], second[1]


def trace_of(algorithm: str, l: int) -> Trace:
    """The :class:`Trace` of ``algorithm`` on a length-l scan (run on a tiny input)."""
    trace = Trace()
    ALGORITHMS[algorithm](torch.ones(1, l), torch.zeros(1, l), trace)
    return trace


def plot_scan(ax, algorithm: str, l: int = 8, upto: int | None = None):
    """Draw the rounds of a scan: one row per round, one column per position.

    Each cell shows the span of steps i..j its value combines (∅: the identity, no step); an
    arrow from s to t is a combine of round k. ``upto`` rounds are drawn (all when None): the
    explorer's update.

    Returns:
        ``ax``.
    """
    from sseq.viz import PALETTE

    trace = trace_of(algorithm, l)
    upto = trace.depth if upto is None else max(0, min(int(upto), trace.depth))
    spans = [(t, t) if t < l else None for t in range(trace.length)]
    history = replay(trace, spans, _span, identity=None)
    ax.clear()
    for k, row in enumerate(history[:upto + 1]):
        for t, span in enumerate(row):
            label = "∅" if span is None else (f"{span[0]}" if span[0] == span[1] else
                                              f"{span[0]}–{span[1]}")
            done = span is not None and span[0] == 0
            ax.text(t, -k, label, ha="center", va="center", fontsize=8,
                    color=PALETTE["accent"] if done else PALETTE["reference"])
        if k < upto:
            phase, sources, targets = trace.rounds[k]
            for s, t in zip(sources, targets, strict=True):
                color = PALETTE["attention"] if phase == "down" else PALETTE["state"]
                ax.annotate("", xy=(t, -k - 0.75), xytext=(s, -k - 0.25),
                            arrowprops=dict(arrowstyle="->", color=color, lw=0.8))
                if phase == "down":  # the node's prefix also moves down to its left child
                    ax.annotate("", xy=(s, -k - 0.75), xytext=(t, -k - 0.25),
                                arrowprops=dict(arrowstyle="->", color=color, lw=0.8,
                                                linestyle="--"))
    phase = {"up": " (up-sweep)", "down": " (down-sweep)"}.get(
        trace.rounds[upto - 1][0] if upto else "", "")
    ax.set(xlim=(-0.7, trace.length - 0.3), ylim=(-trace.depth - 0.5, 0.5), xlabel="position t",
           ylabel="round", yticks=[-k for k in range(trace.depth + 1)],
           yticklabels=[str(k) for k in range(trace.depth + 1)],
           title=f"{NAMES[algorithm]}{phase}: round {upto} of {trace.depth}, "
                 f"{sum(len(r[2]) for r in trace.rounds[:upto])} combines so far")
    ax.grid(False)
    return ax


def scan_explorer(l: int = 8):
    """An ipywidgets explorer (ipywidgets 7 and 8): pick an algorithm, step through its rounds."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def update(algorithm="blelloch", rounds=0):
        fig, ax = plt.subplots(figsize=(7.2, 3.6))
        plot_scan(ax, algorithm, l, rounds)
        plt.show()

    choice = widgets.Dropdown(options=[("Hillis–Steele", "hillis_steele"),
                                       ("Blelloch", "blelloch"),
                                       ("sequential", "sequential")],
                              value="blelloch", description="algorithm")
    rounds = widgets.IntSlider(value=0, min=0, max=max(cost(name, l)[1] for name in ALGORITHMS),
                               step=1, description="rounds")
    return widgets.interactive(update, algorithm=choice, rounds=rounds)


def time_scans(lengths, *, width: int = 256, repeat: int = 5, seed: int = 0) -> dict:
    """Median seconds of h_t = a_t h_{t−1} + b_t for ``(1, l, width)`` float32 inputs.

    Returns:
        ``{name: [seconds per length]}`` for the loop, Hillis–Steele, Blelloch, and the
        ``"parallel"`` and fused ``"cpu"`` backends of :func:`sseq.scan.linear_scan`.
    """
    from sseq import scan
    from sseq.bench import time_fn

    g = torch.Generator().manual_seed(seed)
    fns = {"sequential": sequential_scan, "hillis_steele": hillis_steele, "blelloch": blelloch,
           "parallel backend": lambda a, b: scan.linear_scan(a, b, backend="parallel")}
    if "cpu" in scan.BACKENDS:
        fns["fused cpu backend"] = lambda a, b: scan.linear_scan(a, b, backend="cpu")
    out = {name: [] for name in fns}
    for l in lengths:
        a = torch.rand(1, l, width, generator=g)
        b = torch.randn(1, l, width, generator=g)
        with torch.no_grad():
            for name, fn in fns.items():
                out[name].append(time_fn(lambda fn=fn, a=a, b=b: fn(a, b),
                                         repeat=repeat).median)
    return out
