"""Every registered network: builds, keeps shapes, handles awkward sizes; the fixed cubic baseline."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from srnsz import networks  # noqa: E402
from srnsz.networks.autoencoder import GDN  # noqa: E402
from srnsz.networks.upsample import cubic_upsample2x, new_point_mask  # noqa: E402


@pytest.mark.parametrize("name", networks.list_models("hat"))
def test_hat_variants_upsample_by_two(name):
    model = networks.create_model(name, **({"depths": (1,), "num_heads": (2,)} if name != "hat_tiny" else {}))
    model.eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 9, 13))
    assert out.shape == (2, 1, 18, 26)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 3), (8, 8), (17, 31), (40, 24)])
def test_hat_tiny_any_input_size(shape):
    model = networks.create_model("hat_tiny", cubic_skip=False).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 1, *shape))
    assert out.shape == (1, 1, 2 * shape[0], 2 * shape[1])


def test_hat_cubic_skip_starts_at_the_baseline_and_learns_a_correction():
    torch.manual_seed(0)
    model = networks.create_model("hat_tiny")
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(model(x), cubic_upsample2x(x))
    target = torch.rand(2, 1, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = (model(x) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_hat_is_translation_consistent_inside_windows():
    """Shifted-window masking: a batch of two identical inputs gives identical outputs (no cross-talk)."""
    model = networks.create_model("hat_tiny", cubic_skip=False).eval()
    x = torch.rand(1, 1, 24, 24)
    with torch.inference_mode():
        both = model(torch.cat([x, torch.rand(1, 1, 24, 24)]))
        alone = model(x)
    torch.testing.assert_close(both[:1], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window, overlap_size, side", [(8, 12, 16), (4, 6, 8), (4, 6, 12), (7, 10, 14)])
def test_overlapping_windows_are_the_values_unfold_gives(window, overlap_size, side):
    """The overlapping cross-attention's key/value windows: the same values, in the same order, as nn.Unfold
    with the enlarged kernel (the published HAT's way; gathered here in one copy)."""
    from srnsz.networks.hat import overlapping_windows

    x = torch.rand(2, 6, side, side + window)
    unfold = torch.nn.Unfold(kernel_size=overlap_size, stride=window, padding=(overlap_size - window) // 2)
    expected = unfold(x).view(2, 6, overlap_size * overlap_size, -1).permute(0, 3, 2, 1).flatten(0, 1)
    assert torch.equal(overlapping_windows(x, window, overlap_size), expected)


def test_context_planes_added_to_a_trained_network_start_at_its_predictions():
    from srnsz.networks.hat import with_bound_channel, with_context_planes

    torch.manual_seed(2)
    kwargs = networks.model_kwargs("hat_tiny", depths=(1,), num_heads=(2,), bound_channel=True)
    model = networks.create_model("hat_tiny", **kwargs).eval()
    with torch.no_grad():
        model.upsample[-1].weight.normal_(0, 0.01)
    widened = with_context_planes(model, kwargs).eval()
    x, bound, context = torch.rand(2, 1, 12, 10), torch.tensor([1e-2, 1e-3]), torch.rand(2, 2, 12, 10)
    with torch.inference_mode():
        assert torch.equal(widened(x, bound, context), model(x, bound))
    assert widened.context_planes and with_context_planes(widened, kwargs) is widened
    assert with_bound_channel(widened, kwargs) is widened


def test_a_network_trains_after_inference_in_the_same_process():
    """The shifted-window masks are cached: one made under inference_mode must still serve a training step."""
    torch.manual_seed(1)
    model = networks.create_model("hat_tiny", cubic_skip=False)
    x = torch.rand(1, 1, 24, 24)
    with torch.inference_mode():
        model(x)
    loss = model(x).abs().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", networks.list_models("autoencoder"))
def test_autoencoders_round_trip_blocks(name):
    entry = networks.model_entry(name)
    model = networks.create_model(name).eval()
    block = (entry.defaults["block_size"],) * entry.defaults["spatial_dims"]
    x = torch.rand(3, 1, *block)
    with torch.inference_mode():
        latent = model.encode(x)
        out = model.decode(latent)
    assert latent.shape == (3, entry.defaults["latent_dim"])
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="expected blocks"):
        model(torch.rand(1, 1, *(b + 1 for b in block)))


def test_gdn_shrinks_and_inverse_gdn_grows_magnitudes():
    """At init beta = 1 and gamma >= 0, so GDN divides and IGDN multiplies by sqrt(1 + ...) >= 1."""
    x = torch.randn(2, 4, 5, 5, 3)
    y, z = GDN(4)(x), GDN(4, inverse=True)(x)
    assert torch.equal(torch.sign(y), torch.sign(x)) and torch.equal(torch.sign(z), torch.sign(x))
    assert torch.all(y.abs() <= x.abs()) and torch.all(z.abs() >= x.abs())


def test_registry_rejects_unknown_names_and_hyperparameters():
    with pytest.raises(ValueError, match="unknown network 'nope'"):
        networks.create_model("nope")
    with pytest.raises(ValueError, match="no hyperparameter"):
        networks.create_model("hat_tiny", windowsize=4)


def test_cubic_upsample_is_exact_on_cubics_and_keeps_coarse_points():
    i = torch.arange(40, dtype=torch.float64)
    fine = (0.01 * i**3 - 0.3 * i**2 + i)[None, None, :, None] * torch.ones(1, 1, 1, 40, dtype=torch.float64)
    up = cubic_upsample2x(fine[..., ::2, ::2])
    torch.testing.assert_close(up[..., ::2, ::2], fine[..., ::2, ::2])
    torch.testing.assert_close(up[..., 3:-3, :], fine[..., 3:-3, :])
    assert new_point_mask(4, 4).sum() == 12
