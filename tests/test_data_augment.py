"""Batched augmentation against per-sample torchvision references, and its determinism."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from cnnlab.data import augment
from cnnlab.errors import ConfigError


def batch(dtype=torch.uint8, shape=(16, 3, 9, 7), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return x if dtype == torch.uint8 else x.to(dtype) / 255


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_random_crop_matches_per_sample_reference(dtype, mode) -> None:
    x, p = batch(dtype), 3
    out = augment.random_crop(x, p, gen(), padding_mode=mode)
    assert out.shape == x.shape and out.dtype == x.dtype
    # Replay the documented draws (dy then dx) and crop each sample with torchvision.
    g = gen()
    dy = torch.randint(2 * p + 1, (len(x),), generator=g)
    dx = torch.randint(2 * p + 1, (len(x),), generator=g)
    tv_mode = {"replicate": "edge"}.get(mode, mode)  # torchvision's name for it
    padded = TF.pad(x if mode == "constant" else x.float(), [p] * 4, padding_mode=tv_mode)
    padded = padded.to(x.dtype)
    for i in range(len(x)):
        ref = TF.crop(padded[i], int(dy[i]), int(dx[i]), x.shape[2], x.shape[3])
        assert torch.equal(out[i], ref), i


def test_random_crop_offsets_cover_the_range_and_zero_padding_is_identity() -> None:
    x = torch.ones(2000, 1, 4, 4, dtype=torch.uint8)
    out = augment.random_crop(x, 2, gen())
    # The number of zero rows/cols seen at the top-left reveals each offset; all 5 must occur.
    zero_rows = (out[:, 0, :, 1:3] == 0).all(dim=2).sum(dim=1)  # rows entirely padding
    assert set(zero_rows.tolist()) == {0, 1, 2}
    assert torch.equal(augment.random_crop(x[:3], 0, gen()), x[:3])


def test_same_generator_same_result_and_resume_from_state() -> None:
    x = batch()
    a = augment.random_hflip(augment.random_crop(x, 4, gen(7)), gen(8))
    b = augment.random_hflip(augment.random_crop(x, 4, gen(7)), gen(8))
    assert torch.equal(a, b)
    c = augment.random_crop(x, 4, gen(9))
    assert not torch.equal(augment.random_crop(x, 4, gen(7)), c)
    # exact resume: restoring the generator state replays the next batch's augmentation
    g = gen(3)
    augment.random_crop(x, 2, g)
    state = g.get_state()
    first = augment.random_hflip(augment.random_crop(x, 2, g), g)
    g2 = torch.Generator()
    g2.set_state(state)
    assert torch.equal(first, augment.random_hflip(augment.random_crop(x, 2, g2), g2))


def test_global_rng_is_not_used() -> None:
    x = batch()
    torch.manual_seed(0)
    a = augment.random_crop(x, 2, gen())
    torch.manual_seed(123)
    assert torch.equal(a, augment.random_crop(x, 2, gen()))


def test_random_hflip_per_sample_and_probability() -> None:
    x = batch(shape=(4000, 1, 3, 5))
    out = augment.random_hflip(x, gen())
    flipped = (out == TF.hflip(x)).flatten(1).all(1)
    same = (out == x).flatten(1).all(1)
    assert bool((flipped | same).all())
    assert 0.45 < float(flipped.float().mean()) < 0.55
    assert torch.equal(augment.random_hflip(x, gen(), p=0.0), x)
    assert torch.equal(augment.random_hflip(x, gen(), p=1.0), TF.hflip(x))


def test_normalize_matches_torchvision() -> None:
    x = batch()
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    ref = TF.normalize(x.float() / 255, mean, std)
    out = augment.normalize(x, mean, std)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(augment.normalize(x.float() / 255, mean, std), ref)
    with pytest.raises(ConfigError, match="3 channels"):
        augment.normalize(x, (0.5,), (0.5,))
    with pytest.raises(ConfigError, match="positive"):
        augment.normalize(x, mean, (0.2, 0.0, 0.1))


@pytest.mark.parametrize("size", [(224, 224), (14, 10)])
def test_resize_matches_torchvision_antialiased_bilinear(size) -> None:
    x = batch(shape=(4, 1, 28, 28))
    out = augment.resize(x, size)
    assert out.shape == (4, 1, *size) and out.dtype == torch.uint8
    ref = TF.resize(x.float(), list(size), antialias=True)
    assert (out.float() - ref.round().clamp(0, 255)).abs().max() <= 1
    f = augment.resize(x.float() / 255, size)
    assert f.dtype == torch.float32
    torch.testing.assert_close(f, ref / 255, rtol=1e-4, atol=1e-4)
    assert augment.resize(x, 28).shape == x.shape
    with pytest.raises(ConfigError):
        augment.resize(x, (0, 5))


def test_batch_shape_is_checked() -> None:
    with pytest.raises(ConfigError, match="batch"):
        augment.random_crop(torch.zeros(3, 4, 4), 1, gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_generator_gives_same_result_on_cuda() -> None:
    x = batch()
    cpu = augment.random_hflip(augment.random_crop(x, 4, gen(5)), gen(6))
    gpu = augment.random_hflip(augment.random_crop(x.cuda(), 4, gen(5)), gen(6))
    assert torch.equal(cpu, gpu.cpu())
