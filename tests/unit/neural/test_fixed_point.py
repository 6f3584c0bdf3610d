"""Fixed-point network inference (srnsz.neural.fixed_point): exact sums of products, correctly made tables, the same
prediction bits for any batch, thread count and CPU instruction set."""

from __future__ import annotations

import collections
import decimal
import fractions
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

import srnsz  # noqa: E402
from srnsz import networks  # noqa: E402
from srnsz.neural import fixed_point  # noqa: E402
from srnsz.neural.runtime import FIXED_POINT, FIXED_POINT_1  # noqa: E402
from srnsz.neural.zoo import load_pretrained  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "golden" / "data"
PRODUCTS = (torch.matmul, torch.Tensor.__matmul__, torch.Tensor.matmul, torch.mm, torch.bmm, F.conv2d, F.conv3d,
            F.conv_transpose2d, F.conv_transpose3d, torch.einsum)
ACCUMULATING = (torch.baddbmm, torch.Tensor.addmm_)  # a tensor plus a sum of products
SUMS = (torch.Tensor.sum, torch.sum)
DIVISIONS = (torch.div, torch.true_divide, torch.Tensor.div, torch.Tensor.div_, torch.Tensor.__truediv__,
             torch.Tensor.__itruediv__)


def integer_scale(t: torch.Tensor) -> int:
    """The smallest k with t * 2^k all integers (an AssertionError when there is none up to 64): a binary search,
    being integral at k means being integral at every larger k."""
    def integral(k: int) -> bool:
        scaled = t * 2.0**k
        return torch.equal(scaled, torch.round(scaled))

    if not integral(64):
        raise AssertionError(f"a float64 operand of a sum is not on any power-of-two grid: {t.flatten()[:4]}")
    low, high = -1, 64
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if integral(middle) else (middle, high)
    return high


class ExactnessAudit(TorchFunctionMode):
    """Checks every sum of products and every sum a forward pass runs on float64 tensors: each operand holds integers
    times a power of two, and the sum of |products| in those units stays below 2^52, so the result is exact in any
    order, on any BLAS, device and thread count."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in PRODUCTS:
            self._product(func, args, kwargs)
        elif func in ACCUMULATING:
            self._accumulated(func, args)
        elif func in SUMS and args[0].dtype == torch.float64:
            ints = args[0].abs() * 2.0 ** integer_scale(args[0])
            assert float(func(ints, *args[1:], **kwargs).max()) < 2.0**52, "an inexact sum"
            self.seen["sum"] += 1
        elif func in DIVISIONS:
            self._division(args, kwargs)
        elif func in (torch.sqrt, torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.rsqrt, torch.pow, torch.Tensor.pow,
                      torch.Tensor.__pow__):
            # torch's CPU kernel is MKL's vdSqrt where torch has MKL: not correctly rounded (fixed_point.square_root)
            assert args[0].dtype != torch.float64, f"{func.__name__} on float64 in the fixed-point forward"
        return func(*args, **kwargs)

    def _division(self, args, kwargs) -> None:
        """A float64 tensor divided by a number is multiplied by the number's reciprocal on CUDA: exact only for a
        power of two, any other divisor must be a tensor on the device (fixed_point.on_device)."""
        a, b = args[0], args[1] if len(args) > 1 else kwargs["other"]
        if not isinstance(a, torch.Tensor) or a.dtype != torch.float64:
            return
        if not isinstance(b, torch.Tensor):
            assert b != 0 and math.frexp(abs(b))[0] == 0.5, f"a division by the number {b!r} (not a power of two)"
        self.seen["division"] += 1

    def _product(self, func, args, kwargs) -> None:
        equation = None
        if func is torch.einsum:
            equation, args = args[0], args[1:]
        a, b = args[0], args[1]
        if a.dtype != torch.float64:
            return
        assert b.dtype == torch.float64
        if func in (F.conv2d, F.conv3d, F.conv_transpose2d, F.conv_transpose3d):
            assert (args[2] if len(args) > 2 else kwargs.get("bias")) is None, "a bias added inside the product"
        a_ints, b_ints = (t.abs() * 2.0 ** integer_scale(t) for t in (a, b))
        rest, options = args[2:], {k: v for k, v in kwargs.items() if k != "out"}
        bound = func(equation, a_ints, b_ints) if equation else func(a_ints, b_ints, *rest, **options)
        assert float(bound.max()) < 2.0**52, f"{func.__name__}: products up to {float(bound.max()):.3g}"
        self.seen[func.__name__] += 1

    def _accumulated(self, func, args) -> None:
        base, a, b = args[0], args[1], args[2]
        if a.dtype != torch.float64:
            return
        scales = [integer_scale(t) for t in (base, a, b)]
        units = max(scales[0], scales[1] + scales[2])  # base and products in one integer unit
        products = torch.matmul(a.abs() * 2.0 ** scales[1], b.abs() * 2.0 ** scales[2])
        bound = base.abs() * 2.0**units + products * 2.0 ** (units - scales[1] - scales[2])
        assert float(bound.max()) < 2.0**52, f"{func.__name__}: partial sums up to {float(bound.max()):.3g}"
        self.seen[func.__name__] += 1


def random_network(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kwargs = {"bound_channel": True, "context_planes": True} if networks.model_entry(name).family == "hat" else {}
    model = networks.create_model(name, **kwargs).eval()
    with torch.no_grad():  # trained networks are not zero where these start at zero
        for p in model.parameters():
            if not p.abs().max() > 0:
                p.normal_(0.0, 0.05)
    return model


def run_fixed(model: torch.nn.Module, batch: int = 2, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    if isinstance(model, networks.hat.HAT):
        side = 2 * model.window_size + 3  # padded inside: odd sizes too
        x = torch.from_numpy(rng.uniform(0, 1, (batch, 1, side, side + 2)))
        levels = torch.tensor([fixed_point.bound_level(b) for b in np.geomspace(1e-4, 1e-1, batch)])
        context = torch.from_numpy(rng.uniform(0, 1, (batch, 2, side, side + 2)))
        return fixed_point.hat_forward(model, x, levels, context, arithmetic=FIXED_POINT)
    latent = torch.from_numpy(np.round(rng.normal(0, 1, (batch, model.latent_dim)) / 1e-3) * 1e-3)
    return fixed_point.autoencoder_decode(model, latent, arithmetic=FIXED_POINT)


@pytest.mark.parametrize("name", [n for n in networks.list_models() if n not in ("hat", "hat_s")])
def test_every_sum_of_products_is_exact(name):
    # The paper sizes (hat, hat_s) take minutes to audit op by op; the same code checks their bit budgets as they run.
    model = random_network(name)
    audit = ExactnessAudit()
    with torch.inference_mode(), audit:
        out = run_fixed(model)
    assert torch.isfinite(out).all()
    assert audit.seen["sum"] > 0 and sum(audit.seen.values()) > audit.seen["sum"], audit.seen
    if networks.model_entry(name).family == "hat":  # the layer norm's and the attention's, at least
        assert audit.seen["division"] > 0, audit.seen


def test_fixed_point_follows_the_float_network_closely():
    model, _ = load_pretrained("hat_pico_series")
    rng = np.random.default_rng(3)
    coarse = np.cumsum(np.cumsum(rng.normal(size=(4, 24, 28)), axis=1), axis=2)
    x = (coarse - coarse.min()) / (coarse.max() - coarse.min())
    levels = torch.full((4,), fixed_point.bound_level(1e-3), dtype=torch.float64)
    with torch.inference_mode():
        exact = fixed_point.hat_forward(model, torch.from_numpy(x)[:, None], levels, arithmetic=FIXED_POINT)
        floating = model(torch.from_numpy(x).float()[:, None], torch.full((4,), 1e-3)).double()
    assert 0 < float((exact - floating).abs().max()) < 2e-4


def test_the_same_bits_for_any_batch_and_thread_count():
    model, _ = load_pretrained("hat_pico_series")
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.uniform(0, 1, (5, 1, 18, 22)))
    levels = torch.tensor([fixed_point.bound_level(b) for b in (1e-2, 1e-3, 3e-4, 1e-4, 0.0)])
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            torch.set_num_threads(1)
            together = fixed_point.hat_forward(model, x, levels, arithmetic=FIXED_POINT)
            torch.set_num_threads(2)
            alone = torch.cat([fixed_point.hat_forward(model, x[i:i + 1], levels[i:i + 1], arithmetic=FIXED_POINT)
                               for i in range(5)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(together, alone)


def test_exp_table_is_exp_at_each_cells_middle():
    table = fixed_point._table(f"exp_negative_{fixed_point.TABLE_BITS}", torch.float64, torch.device("cpu"))
    step = 2.0**-fixed_point.LOGIT_BITS
    for j in (0, 1, 4095, 4096, 70000):
        assert abs(float(table[j]) - math.exp(-(j + 0.5) * step)) <= 2.0 ** -(fixed_point.TABLE_BITS - 1)
    assert float(table[-1]) == 0.0 and bool((table[1:] <= table[:-1]).all())
    assert math.exp(-(table.shape[0] - 0.5) * step) < 2.0 ** -(fixed_point.TABLE_BITS - 1)  # kept to its first 0
    a = torch.tensor([0.0, 0.3, 5.0, 31.9, 40.0], dtype=torch.float64)
    expected = torch.exp(-(torch.floor(a / step) + 0.5) * step) * (a < fixed_point.EXP_SPAN)
    assert torch.allclose(fixed_point.exp_negative(a), expected, atol=2.0**-29, rtol=0)


@pytest.mark.parametrize("bits", [20, fixed_point.TABLE_BITS])
def test_exp_lookup_is_the_whole_tables(bits):
    whole = torch.floor(fixed_point._exp_negative_table() * 2.0**bits) * 2.0**-bits  # every cell up to EXP_SPAN
    a = torch.arange(whole.shape[0] + 100, dtype=torch.float64) * 2.0**-fixed_point.LOGIT_BITS
    expected = whole[a.mul(2.0**fixed_point.LOGIT_BITS).clamp(max=whole.shape[0] - 1).long()]
    assert torch.equal(fixed_point.exp_negative(a, bits), expected)


def correctly_rounded_root(root: float, value: fractions.Fraction) -> bool:
    """Whether ``root`` is sqrt(``value``) rounded to the nearest float64, by exact rational arithmetic: the real root
    lies between the midpoints to the floats below and above ``root`` (the gap below is half as wide at a power of
    two)."""
    exact = fractions.Fraction(root)
    low = (exact + fractions.Fraction(math.nextafter(root, 0.0))) / 2
    high = (exact + fractions.Fraction(math.nextafter(root, math.inf))) / 2
    return low * low <= value <= high * high


def test_square_roots_are_correctly_rounded_on_the_cpu():
    rng = np.random.default_rng(5)
    # variances on the layer norm's grid plus eps, values over many binades, powers of two and their neighbours
    powers = 2.0 ** np.arange(-60, 61)
    values = np.concatenate([rng.integers(1, 1 << 40, 100_000) * 2.0**-24 / 48 + 1e-5,
                             np.exp(rng.uniform(-40, 40, 100_000)), powers, np.nextafter(powers, 0.0),
                             np.nextafter(powers, np.inf)])
    arithmetic = fixed_point.arithmetic_named(FIXED_POINT)
    roots = fixed_point.square_root(torch.from_numpy(values), arithmetic).numpy()
    # every root where torch's own sqrt differs (MKL: about 1% of these), the edges and a sample, checked exactly
    differ = np.flatnonzero(torch.sqrt(torch.from_numpy(values)).numpy() != roots)
    edges = np.arange(200_000, values.size)
    checked = np.concatenate([differ, edges, rng.choice(200_000, 2000, replace=False)])
    wrong = [i for i in checked if not correctly_rounded_root(float(roots[i]), fractions.Fraction(float(values[i])))]
    assert not wrong, values[wrong[:5]]
    # and each against Python's math.sqrt (the C library's, an IEEE operation) on a sample
    sample = rng.choice(values.size, 5000, replace=False)
    assert all(roots[i] == math.sqrt(values[i]) for i in sample)


def test_the_cpu_kernels_the_forward_pass_relies_on_are_correctly_rounded():
    """torch's float64 CPU kernels for the IEEE steps of the contract give NumPy's bits: a guard against a torch whose
    kernel takes a shortcut (as its CUDA division by a number and its MKL sqrt do); benchmarks/gpu_check.py runs the
    same on a GPU."""
    assert fixed_point.kernels_off_ieee("cpu") == []


def test_the_kernel_check_sees_a_kernel_that_is_not_correctly_rounded(monkeypatch):
    # a root one ulp too large everywhere (made here: nothing assumed of this CPU's torch.sqrt)
    monkeypatch.setattr(fixed_point, "square_root",
                        lambda v, arithmetic: torch.nextafter(torch.sqrt(v), torch.tensor(math.inf)))
    assert fixed_point.kernels_off_ieee("cpu", size=1000) == ["square_root"]


def test_an_unknown_arithmetic_is_refused_by_the_forward_passes():
    with pytest.raises(fixed_point.FixedPointError, match="arithmetic"):
        fixed_point.hat_forward(random_network("hat_femto"), torch.zeros(1, 1, 8, 8, dtype=torch.float64),
                                arithmetic="fixed-point-0")
    with pytest.raises(fixed_point.FixedPointError, match="arithmetic"):
        fixed_point.autoencoder_decode(random_network("ae_3d"), torch.zeros(1, 16, dtype=torch.float64),
                                       arithmetic="fixed-point-0")


@pytest.mark.parametrize("name", ["hat_v1_9", "ae_v1_9", "hat_v1_16", "ae_v1_16"])
def test_every_square_root_and_division_follows_the_streams_arithmetic(name, monkeypatch):
    """Decoding a golden network stream and compressing its field again: every square root and every division by a
    number takes the stream's arithmetic (fixed-point-1 in formats 1.9-1.15, fixed-point-2 from 1.16 on)."""
    seen: collections.Counter[str] = collections.Counter()
    for function in ("square_root", "divisor"):
        real = getattr(fixed_point, function)

        def spy(*args, real=real, function=function):
            seen[f"{function} {args[-1].name}"] += 1
            return real(*args)

        monkeypatch.setattr(fixed_point, function, spy)
    stream = (DATA / f"golden_{name}.srnsz").read_bytes()
    arithmetic = FIXED_POINT_1 if name.endswith("v1_9") else FIXED_POINT
    srnsz.decompress(stream)
    data = np.load(DATA / ("golden_hat_original.npy" if name.startswith("hat") else "golden_ae_v1_9_original.npy"))
    if name.startswith("hat"):
        srnsz.compress(data[:16, :24, :24], 1e-3, "rel", predictor="hat", arithmetic=arithmetic,
                       model=srnsz.info(stream).predictor_params["hat"]["weights"])
    else:
        srnsz.compress(data, 0.1, "rel", predictor="ae", compete_interp=False, arithmetic=arithmetic)
    kinds = {"square_root", "divisor"} if name.startswith("hat") else {"square_root"}  # (ae: no mean, no norm)
    assert {key.split()[0] for key in seen} == kinds and all(key.endswith(arithmetic) for key in seen), seen


def test_the_forward_pass_reads_no_unwritten_memory():
    """Without torch's deterministic mode new tensors are not filled first: the same bits as with every new tensor
    filled with NaN (an output read before it is written would show)."""
    import torch.utils.deterministic as determinism

    model = random_network("hat_femto")
    expected = run_fixed(model)
    fill = determinism.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(True)
        determinism.fill_uninitialized_memory = True
        filled = run_fixed(model)
    finally:
        torch.use_deterministic_algorithms(False)
        determinism.fill_uninitialized_memory = fill
    assert torch.equal(filled, expected)


def test_gelu_and_sigmoid_follow_their_functions():
    x = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    x = torch.round(x * 2.0**16) / 2.0**16
    assert float((fixed_point.gelu(x) - F.gelu(x)).abs().max()) < 2.0**-15
    assert float((fixed_point.sigmoid(x) - torch.sigmoid(x)).abs().max()) < 2.0**-12
    assert fixed_point.bound_level(1e-3) == float(np.round(0.5 * 2.0**16) / 2.0**16)


def test_gelu_lookup_gives_the_interpolations_bits():
    grid = torch.arange(-9 * 2**16, 9 * 2**16 + 1, 7, dtype=torch.float64) * 2.0**-16
    x = torch.cat([grid, torch.tensor([-0.0, 0.0, 8.0, -8.0, 4000.5, -4000.5, 5000.0, -5000.0], dtype=torch.float64)])
    looked_up, interpolated = fixed_point.gelu(x), fixed_point._gelu_interpolated(fixed_point.bounded(x))
    assert torch.equal(looked_up, interpolated)
    assert torch.equal(torch.signbit(looked_up), torch.signbit(interpolated))  # -0 stays -0


@pytest.mark.parametrize("shape,outputs,kernel", [((3, 16, 11, 7), 5, 3), ((2, 8, 24, 24), 1, 3),
                                                   ((1, 4, 5, 9), 4, 1), ((2, 6, 9, 8), 3, 5), ((2, 3, 7, 6), 12, 3)])
def test_convolution_by_tap_products_is_torchs_bit_for_bit(shape, outputs, kernel):
    generator = torch.Generator().manual_seed(sum(shape) + outputs)
    x = torch.randint(-2**20, 2**20, shape, generator=generator).double() * 2.0**-16
    layer = torch.nn.Conv2d(shape[1], outputs, kernel, padding=kernel // 2).double()
    weight = torch.randint(-2**15, 2**15, layer.weight.shape, generator=generator).double() * 2.0**-20
    assert fixed_point._tap_products_apply(x, weight, layer)
    assert torch.equal(fixed_point._conv2d_by_tap_products(x, weight), F.conv2d(x, weight, padding=kernel // 2))
    strided = torch.nn.Conv2d(shape[1], outputs, kernel, stride=2, padding=kernel // 2)
    assert not fixed_point._tap_products_apply(x, weight, strided)
    two_channels = torch.nn.Conv2d(2, outputs, kernel, padding=kernel // 2)
    assert not fixed_point._tap_products_apply(x[:, :2], weight[:, :2], two_channels)


@pytest.mark.parametrize("name", [n for n in networks.list_models() if n not in ("hat", "hat_s")])
def test_inference_shortcuts_give_the_bits_of_the_straight_through_forward(name):
    # Float64 with autograd runs the generic steps (quantize after every product, attention on the windows as cut,
    # the GELU interpolation); inference takes shortcuts (sums in grid units, keys rounded before the overlapping
    # windows, table lookups): the same values.
    model = random_network(name)
    with torch.inference_mode():
        inference = run_fixed(model)
    with torch.enable_grad():
        for p in model.parameters():
            p.requires_grad_(True)
        model.double()
        traced = run_fixed(model)
    assert traced.requires_grad
    assert torch.equal(traced.detach(), inference)


def test_products_and_quotients_in_grid_units_round_like_the_plain_ones():
    generator = torch.Generator().manual_seed(5)
    a = torch.randint(-2**22, 2**22, (64, 33), generator=generator).double() * 2.0**-16
    a[0, :4] = torch.tensor([0.0, -0.0, 2.0**-16, -(2.0**-16)])
    b = torch.randint(-2**12, 2**12, (64, 1), generator=generator).double() * 2.0**-10
    b[b == 0] = 2.0**-10
    for factor in (b, 0.01, -0.3, 1.5):
        expected = fixed_point.rounded(a * factor, 16)
        got = fixed_point.product_on_grid(a, factor)
        assert torch.equal(got, expected) and torch.equal(torch.signbit(got), torch.signbit(expected))
        expected = fixed_point.rounded(a / factor, 16, 40.0)
        got = fixed_point.quotient_on_grid(a, factor, 16, 40.0)
        assert torch.equal(got, expected) and torch.equal(torch.signbit(got), torch.signbit(expected))


def test_a_convolution_in_training_has_the_inference_values_and_gradients():
    layer = torch.nn.Conv2d(4, 6, 3, padding=1).double()
    generator = torch.Generator().manual_seed(3)
    x = torch.round(torch.randn(2, 4, 9, 7, dtype=torch.float64, generator=generator) * 2.0**16) * 2.0**-16
    with torch.no_grad():
        inference = fixed_point.conv(x, layer)
    trained_input = x.clone().requires_grad_(True)
    trained = fixed_point.conv(trained_input, layer)
    trained.sum().backward()
    assert torch.equal(trained.detach(), inference)
    assert trained_input.grad is not None and layer.weight.grad is not None and bool(trained_input.grad.abs().sum() > 0)


def test_parameters_on_their_grids_follow_changed_weights():
    layer = torch.nn.Linear(6, 3).double()
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(2, 6)
    with torch.no_grad():
        first = fixed_point.linear(x, layer)
        layer.weight.mul_(3.0)
        again = fixed_point.linear(x, layer)
    fresh = fixed_point.linear(x, layer)  # autograd on: computed afresh
    assert torch.equal(again, fresh.detach()) and not torch.equal(first, again)


def test_normal_cdf_table_matches_erf():
    table = fixed_point._normal_cdf_table()
    half = fixed_point.GELU_SPAN << fixed_point.GELU_TABLE_BITS
    for j in (-half, -300, -1, 0, 1, 77, half):
        x = j * 2.0**-fixed_point.GELU_TABLE_BITS
        assert abs(table[j + half] / 2.0**fixed_point.TABLE_BITS - 0.5 * (1 + math.erf(x / math.sqrt(2)))) < 2e-9
    with decimal.localcontext() as ctx:
        assert abs(float(fixed_point._pi(ctx)) - math.pi) < 1e-15


def test_layers_too_large_for_float64_are_refused():
    with pytest.raises(fixed_point.FixedPointError, match="not exact"):
        fixed_point.check_exact(2.0**30, 2.0**20, 16, "a layer")
    weight, bits = fixed_point.fixed_weight(torch.full((2, 5000), 3.0), fixed_point.ACTIVATION_LIMIT)
    assert 5000 * 3.0 * 2.0**bits * fixed_point.ACTIVATION_LIMIT * 2.0**fixed_point.ACTIVATION_BITS < 2.0**53
    assert torch.equal(weight * 2.0**bits, torch.round(weight * 2.0**bits))


# ---- streams: compressed under one instruction set and thread count, decoded under another ----

COMPRESS = textwrap.dedent("""
    import sys, numpy as np, torch, srnsz
    from pathlib import Path
    out = Path(sys.argv[1])
    print(torch.backends.cpu.get_cpu_capability())
    hat_field = np.load(sys.argv[2])
    ae_field = np.load(sys.argv[3])
    hat = srnsz.compress(hat_field, 1e-3, "rel", predictor="hat", threads=2, batch=5, tile=16, overlap=3)
    ae = srnsz.compress(ae_field, 0.1, "rel", predictor="ae", threads=2, batch=7, compete_interp=False)
    for name, stream in (("hat", hat), ("ae", ae)):
        (out / f"{name}.srnsz").write_bytes(stream)
        np.save(out / f"{name}.npy", srnsz.decompress(stream))
""")
DECOMPRESS = textwrap.dedent("""
    import sys, numpy as np, torch, srnsz
    from pathlib import Path
    out = Path(sys.argv[1])
    print(torch.backends.cpu.get_cpu_capability())
    with torch.backends.mkldnn.flags(enabled=False):
        for name in ("hat", "ae"):
            recon = srnsz.decompress((out / f"{name}.srnsz").read_bytes(), threads=1)
            assert np.array_equal(recon.view(np.uint32), np.load(out / f"{name}.npy").view(np.uint32)), name
""")


def _run(script: str, capability: str, *args: Path) -> str:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()[0]


@pytest.mark.skipif("avx2" not in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else True,
                    reason="needs an x86 CPU with AVX2 to compare two instruction sets")
@pytest.mark.slow
@pytest.mark.parametrize("writer, reader", [("avx2", "default"), ("default", "avx2")])
def test_network_streams_decode_bit_for_bit_under_another_instruction_set(tmp_path, writer, reader):
    from conftest import smooth_field

    hat_field = tmp_path / "hat_field.npy"
    np.save(hat_field, np.load(DATA / "golden_hat_original.npy")[:24, :32, :40])
    ae_field = tmp_path / "ae_field.npy"
    np.save(ae_field, smooth_field((16, 24, 24), seed=1, noise=0.0))
    assert _run(COMPRESS, writer, tmp_path, hat_field, ae_field) == writer.upper()
    for name in ("hat", "ae"):
        made = srnsz.info((tmp_path / f"{name}.srnsz").read_bytes())
        assert made.predictor == name and made.format_version == "1.16"  # fixed-point-2: 1.16
        params = made.predictor_params
        used = params["hat"]["blocks_hat"] if name == "hat" else params["blocks"]["ae"]
        assert used > 0, f"the {name} network was not used: the test would prove nothing"
        assert FIXED_POINT in str(params) and "threads" not in str(params) and "device" not in str(params)
    assert _run(DECOMPRESS, reader, tmp_path) == reader.upper()


def test_decoder_device_and_threads_are_checked_and_free_for_fixed_point_streams():
    stream = (DATA / "golden_ae_v1_9.srnsz").read_bytes()
    expected = np.load(DATA / "golden_ae_v1_9_expected.npy")
    for threads in (1, 3):
        recon = srnsz.decompress(stream, device="cpu", threads=threads)
        assert np.array_equal(recon.view(np.uint32), expected.view(np.uint32))
    with pytest.raises(srnsz.InvalidInputError, match="threads"):
        srnsz.decompress(stream, threads=0)
    with pytest.raises(srnsz.InvalidInputError, match="device"):
        srnsz.decompress(stream, device="gpu")


def test_an_unknown_arithmetic_is_a_clear_error():
    from srnsz.format.container import read_container, write_container

    container = read_container((DATA / "golden_ae_v1_9.srnsz").read_bytes())
    header = container.header
    header["predictor"]["params"]["arithmetic"] = "fixed-point-99"
    with pytest.raises(srnsz.StreamFormatError, match="fixed-point-99.*upgrade"):
        srnsz.decompress(write_container(header, container.sections, 9))
