"""The networks: shapes for any size, parameter counts, save/load round trips."""

from __future__ import annotations

import pytest
import torch

from models.family import load_weights, parameter_count, save_weights
from models.pix2pix import (
    DiscriminatorConfig,
    GeneratorConfig,
    PatchDiscriminator,
    Pix2PixGenerator,
)
from models.unet import UNet, UNetConfig


@pytest.mark.parametrize("out_channels", [2, 3])
@pytest.mark.parametrize("hw", [(64, 64), (37, 91), (50, 17)])
def test_unet_any_size(out_channels, hw):
    net = UNet(UNetConfig(out_channels=out_channels, base_channels=4, depth=3)).eval()
    with torch.inference_mode():
        y = net(torch.rand(2, 1, *hw) * 2 - 1)
    assert y.shape == (2, out_channels, *hw)
    assert y.abs().max() <= 1.0


def test_unet_classification_head_decodes_to_ab():
    net = UNet(UNetConfig(out_channels=3, base_channels=4, depth=2, ab_bins=8)).eval()
    with torch.inference_mode():
        y = net(torch.zeros(1, 1, 20, 30))
        _, logits = net.heads(net.features(torch.zeros(1, 1, 20, 30)))
    assert logits.shape == (1, 64, 20, 30)
    assert y.shape == (1, 3, 20, 30)


def test_unet_chunked_annealed_mean_matches_the_plain_decode():
    torch.manual_seed(0)
    net = UNet(UNetConfig(out_channels=3, base_channels=4, depth=2, ab_bins=9)).eval()
    x = torch.rand(3, 1, 24, 17) * 2 - 1
    with torch.inference_mode():
        feats = net.features(x)
        _, logits = net.heads(feats)
        plain = net.decode_ab(logits)
        chunked = net.annealed_ab(feats, chunk=50)  # many chunks, a ragged last one
        y = net(x)
    torch.testing.assert_close(chunked, plain, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(y[:, 1:], plain, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("hw", [(64, 64), (45, 70)])
def test_pix2pix_generator_any_size(hw):
    net = Pix2PixGenerator(GeneratorConfig(base_channels=4, depth=4)).eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 1, *hw)).shape == (1, 3, *hw)


def test_patch_discriminator_shape():
    d = PatchDiscriminator(DiscriminatorConfig(in_channels=4, base_channels=8, n_layers=3))
    out = d(torch.zeros(2, 1, 64, 64), torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 1, 6, 6)  # pix2pix's 70x70 PatchGAN on 64 px


def test_parameter_counts_follow_the_config():
    # Fixed numbers: a change in the architecture shows up here on purpose.
    assert parameter_count(UNet(UNetConfig(base_channels=8, depth=4, max_channels=64))) == 307_171
    p2p = Pix2PixGenerator(GeneratorConfig(base_channels=16, depth=6))
    assert parameter_count(p2p) == 1_830_195
    # Convolutions dominate: doubling the width (no cap) about quadruples the count.
    small = parameter_count(UNet(UNetConfig(base_channels=8, max_channels=1024)))
    assert parameter_count(UNet(UNetConfig(base_channels=16, max_channels=1024))) > 3.5 * small


@pytest.mark.parametrize("make", [
    lambda: UNet(UNetConfig(base_channels=4, depth=3)),
    lambda: Pix2PixGenerator(GeneratorConfig(base_channels=4, depth=4)),
])
def test_save_load_roundtrip(tmp_path, make):
    torch.manual_seed(0)
    net = make().eval()
    sha = save_weights(net, tmp_path / "w.safetensors")
    assert len(sha) == 64
    other = make().eval()
    load_weights(other, tmp_path / "w.safetensors")
    x = torch.rand(1, 1, 32, 48) * 2 - 1
    with torch.inference_mode():
        # Weights are stored in fp16: equal up to half precision.
        assert torch.allclose(net(x), other(x), atol=2e-2)
    for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
        if a.is_floating_point():
            assert torch.equal(a.half().float(), b.float())
