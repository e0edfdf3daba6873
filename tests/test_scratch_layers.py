"""The from-scratch NumPy layers against torch.nn.functional (float64), and their backward
passes against numerical gradients.

Geometries are drawn by hypothesis (sizes, channels, kernel, stride, padding, dilation); every
forward is compared for values and every backward for all gradients, naive == fast == PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnlab.errors import GeometryError, InputSizeError
from cnnlab.scratch import fast, naive
from cnnlab.scratch.gradcheck import gradcheck, numerical_gradient, relative_error
from cnnlab.scratch.layers import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    flatten_backward,
    flatten_forward,
    linear_backward,
    linear_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from cnnlab.scratch.padding import output_size

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
TOL = {"rtol": 1e-10, "atol": 1e-10}


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@st.composite
def conv_cases(draw):
    """A random conv geometry that fits, and float64 operands for it."""
    n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    assume(h + 2 * padding[0] >= dilation[0] * (kh - 1) + 1)
    assume(w + 2 * padding[1] >= dilation[1] * (kw - 1) + 1)
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((k, c, kh, kw))
    b = rng.standard_normal(k) if bias else None
    geom = {"stride": stride, "padding": padding, "dilation": dilation}
    return x, wt, b, geom, rng


@SETTINGS
@given(conv_cases())
def test_conv_naive_fast_torch_agree_forward_and_backward(case) -> None:
    x, w, b, geom, rng = case
    out_n, cache_n = naive.conv2d_forward(x, w, b, **geom)
    out_f, cache_f = fast.conv2d_forward(x, w, b, **geom)
    xt, wt = _t(x), _t(w)
    bt = None if b is None else _t(b)
    out_t = F.conv2d(xt, wt, bt, **geom)
    assert out_n.shape == out_f.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out_n, out_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(out_f, out_t.detach().numpy(), **TOL)

    dout = rng.standard_normal(out_n.shape)
    out_t.backward(torch.tensor(dout))
    grads_t = (xt.grad, wt.grad, None if bt is None else bt.grad)
    for grads in (naive.conv2d_backward(dout, cache_n), fast.conv2d_backward(dout, cache_f)):
        for mine, ref in zip(grads, grads_t, strict=True):
            if ref is None:
                assert mine is None
            else:
                np.testing.assert_allclose(mine, ref.numpy(), **TOL)


def test_conv_caches_are_interchangeable() -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), np.ones(4)
    out, cache_n = naive.conv2d_forward(x, w, b, stride=2, padding=1)
    _, cache_f = fast.conv2d_forward(x, w, b, stride=2, padding=1)
    dout = rng.standard_normal(out.shape)
    for a, c in zip(
        fast.conv2d_backward(dout, cache_n), naive.conv2d_backward(dout, cache_f), strict=True
    ):
        np.testing.assert_allclose(a, c, **TOL)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_same_padding_matches_torch_for_even_kernels() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 7, 6)), rng.standard_normal((3, 2, 4, 2))
    out, _ = fast.conv2d_forward(x, w, None, padding="same")
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy()
    assert out.shape == (1, 3, 7, 6)
    np.testing.assert_allclose(out, ref, **TOL)


def test_fast_conv_workspace_reuse_and_float32() -> None:
    rng = np.random.default_rng(3)
    ws = fast.Workspace()
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    for _ in range(2):  # second call reuses the buffers; results must not leak between calls
        x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
        out, cache = fast.conv2d_forward(x, w, None, padding=1, workspace=ws)
        ref, _ = naive.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, padding=1)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        dx, dw, _ = fast.conv2d_backward(np.ones_like(out), cache, workspace=ws)
        rdx, rdw, _ = naive.conv2d_backward(np.ones(out.shape), cache)
        assert dx.dtype == dw.dtype == np.float32
        np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("impl", [naive, fast])
def test_conv_gradients_match_numerical(impl) -> None:
    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(s) for s in [(2, 2, 5, 4), (3, 2, 3, 2), (3,)])
    kw = {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}
    out, cache = impl.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    result = gradcheck(
        lambda x_, w_, b_: impl.conv2d_forward(x_, w_, b_, **kw)[0],
        [x, w, b],
        impl.conv2d_backward(dout, cache),
        dout,
    )
    assert result.ok, result.errors


def test_conv_rejects_bad_arguments_with_named_fix() -> None:
    x, w = np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 5, 5))
    with pytest.raises(GeometryError, match="does not fit"):
        fast.conv2d_forward(x, w, None)
    with pytest.raises(InputSizeError, match="input channels"):
        fast.conv2d_forward(x, np.zeros((2, 4, 3, 3)), None)
    with pytest.raises(InputSizeError, match=r"\(N, C, H, W\)"):
        naive.conv2d_forward(np.zeros((3, 4, 4)), w, None)
    with pytest.raises(GeometryError, match="stride"):
        fast.conv2d_forward(x, np.zeros((2, 3, 3, 3)), None, stride=0)
    with pytest.raises(GeometryError, match="negative"):
        fast.conv2d_forward(x, np.zeros((2, 3, 3, 3)), None, padding=-1)
    with pytest.raises(InputSizeError, match="bias"):
        fast.conv2d_forward(x, np.zeros((2, 3, 3, 3)), np.zeros(3))


@pytest.mark.parametrize(
    ("n", "f", "s", "p", "expected"),
    [
        (7, 3, 1, 0, 5),  # lecture 001: 7x7 input, 3x3 filter, stride 1 -> 5x5
        (7, 3, 2, 0, 3),  # stride 2 -> 3x3
        (7, 3, 3, 0, 2),  # stride 3 "does not fit" (2.33); PyTorch floors to 2
        (7, 3, 1, 1, 7),  # pad 1 with 3x3 keeps the size
        (227, 11, 4, 0, 55),  # AlexNet CONV1
        (32, 5, 1, 2, 32),  # "same" padding (F-1)/2 for F=5
    ],
)
def test_output_size_formula(n, f, s, p, expected) -> None:
    assert output_size(n, f, s, p, p) == expected
    assert (
        F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p).shape[-1]
        == expected
    )


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    assume(h + 2 * padding[0] >= kh and w + 2 * padding[1] >= kw)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return rng.standard_normal((n, c, h, w)), (kh, kw), stride, padding, rng


@SETTINGS
@given(pool_cases(), st.sampled_from(["max", "avg"]))
def test_pooling_matches_torch_forward_and_backward(case, kind) -> None:
    x, kernel, stride, padding, rng = case
    fwd, bwd, ref = {
        "max": (max_pool2d_forward, max_pool2d_backward, F.max_pool2d),
        "avg": (avg_pool2d_forward, avg_pool2d_backward, F.avg_pool2d),
    }[kind]
    out, cache = fwd(x, kernel, stride, padding)
    xt = _t(x)
    out_t = ref(xt, kernel, stride, padding)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(dout))
    np.testing.assert_allclose(bwd(dout, cache), xt.grad.numpy(), **TOL)


def test_pooling_default_stride_is_the_kernel_and_gradients_check() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 7))
    out, cache = max_pool2d_forward(x, 2)
    assert out.shape == (2, 3, 3, 3)
    for fwd, bwd in [
        (max_pool2d_forward, max_pool2d_backward),
        (avg_pool2d_forward, avg_pool2d_backward),
    ]:
        out, cache = fwd(x, 3, 2, 1)
        d = rng.standard_normal(out.shape)
        res = gradcheck(lambda x_: fwd(x_, 3, 2, 1)[0], [x], [bwd(d, cache)], d)  # noqa: B023
        assert res.ok, (fwd.__name__, res.errors)


def test_max_pool_ties_and_nan_follow_torch() -> None:
    x = np.array([[[[1.0, 1.0], [0.0, 1.0]], [[2.0, np.nan], [5.0, 3.0]]]])  # (1, 2, 2, 2)
    out, cache = max_pool2d_forward(x, 2)
    xt = _t(x)
    out_t = F.max_pool2d(xt, 2)
    np.testing.assert_array_equal(out, out_t.detach().numpy())  # NaN in the second channel
    out_t.backward(torch.ones_like(out_t))
    np.testing.assert_array_equal(max_pool2d_backward(np.ones(out.shape), cache), xt.grad.numpy())


def test_pooling_padding_over_half_the_window_is_refused() -> None:
    with pytest.raises(GeometryError, match="half"):
        max_pool2d_forward(np.zeros((1, 1, 8, 8)), 2, 2, 2)
    with pytest.raises(RuntimeError):  # PyTorch refuses the same thing
        F.max_pool2d(torch.zeros(1, 1, 8, 8), 2, 2, 2)


def test_relu_linear_flatten_softmax_ce_match_torch_and_gradcheck() -> None:
    rng = np.random.default_rng(6)
    x4 = rng.standard_normal((3, 2, 2, 2))
    w, b = rng.standard_normal((5, 8)), rng.standard_normal(5)
    labels = np.array([0, 4, 2])

    flat, fc = flatten_forward(x4)
    h, rc = relu_forward(flat)
    logits, lc = linear_forward(h, w, b)
    loss, cc = softmax_cross_entropy_forward(logits, labels)

    xt, wt, bt = _t(x4), _t(w), _t(b)
    logits_t = F.linear(F.relu(torch.flatten(xt, 1)), wt, bt)
    loss_t = F.cross_entropy(logits_t, torch.tensor(labels))
    loss_t.backward()
    np.testing.assert_allclose(logits, logits_t.detach().numpy(), **TOL)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)

    dlogits = softmax_cross_entropy_backward(1.0, cc)
    dh, dw, db = linear_backward(dlogits, lc)
    dx4 = flatten_backward(relu_backward(dh, rc), fc)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **TOL)
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL)
    np.testing.assert_allclose(dx4, xt.grad.numpy(), **TOL)

    # Each backward against central differences, on its own.
    d = rng.standard_normal((3, 5))
    assert gradcheck(
        lambda a, b_, c: linear_forward(a, b_, c)[0], [h, w, b], list(linear_backward(d, lc)), d
    ).ok
    xr = rng.standard_normal((4, 6)) + 0.05  # keep away from the kink at 0
    xr[np.abs(xr) < 1e-3] = 0.5
    _, rcache = relu_forward(xr)
    d = rng.standard_normal(xr.shape)
    assert gradcheck(lambda a: relu_forward(a)[0], [xr], [relu_backward(d, rcache)], d).ok
    d = rng.standard_normal((3, 8))
    assert gradcheck(lambda a: flatten_forward(a)[0], [x4], [flatten_backward(d, fc)], d).ok
    assert gradcheck(
        lambda z: np.asarray(softmax_cross_entropy_forward(z, labels)[0]),
        [logits.copy()],
        [dlogits],
        1.0,
    ).ok


def test_softmax_ce_is_stable_for_huge_logits_and_checks_labels() -> None:
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    loss, cache = softmax_cross_entropy_forward(logits, np.array([0, 0]))
    assert np.isfinite(loss) and loss == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(softmax_cross_entropy_backward(1.0, cache)))
    with pytest.raises(InputSizeError, match="classes"):
        softmax_cross_entropy_forward(logits, np.array([0, 2]))


def test_gradcheck_catches_a_wrong_backward() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4))
    d = rng.standard_normal((3, 4))
    right = gradcheck(lambda a: a**2, [x], [2 * x * d], d)
    wrong = gradcheck(lambda a: a**2, [x], [x * d], d)  # forgot the factor 2
    assert right.ok and right.errors[0] < 1e-8
    assert not wrong.ok and wrong.errors[0] > 0.1
    (num,) = numerical_gradient(lambda a: a.sum(axis=1), [x], np.ones(3))
    np.testing.assert_allclose(num, np.ones_like(x), atol=1e-8)
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0


def _imported_modules(path) -> list[str]:
    """Every module a file imports; ``from a import b`` counts as ``a.b`` (b may be a module)."""
    import ast

    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_scratch_package_never_imports_torch() -> None:
    """`cnnlab.scratch` is NumPy-only: no module in it imports torch (or anything that does,
    other than cnnlab.errors and the pure-Python cnnlab.geometry and cnnlab.choices); Pillow and
    matplotlib (through cnnlab.plotting) only in the I/O and plotting modules."""
    import sys
    from pathlib import Path

    import cnnlab.scratch

    def within(name: str, modules: set[str]) -> bool:
        return any(name == m or name.startswith(m + ".") for m in modules)

    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    pure = {"cnnlab.errors", "cnnlab.geometry", "cnnlab.choices"}
    allowed_extra = {"io.py": {"PIL"}, "plots.py": {"matplotlib", "cnnlab.plotting"}}
    package = Path(cnnlab.scratch.__file__).parent
    for path in package.glob("*.py"):
        for name in _imported_modules(path):
            ok = name.split(".")[0] in stdlib | {"numpy"} or within(
                name, pure | {"cnnlab.scratch"} | allowed_extra.get(path.name, set())
            )
            assert ok, f"{path.name} imports {name}"
    # The cnnlab modules allowed above import no torch either.
    allowed_by = {
        "errors.py": set(),
        "geometry.py": {"cnnlab.errors"},
        "plotting.py": {"cnnlab.errors", "cnnlab.files", "matplotlib", "numpy"},
        "files.py": {"cnnlab.errors"},
        "choices.py": set(),
    }
    for file, allowed in allowed_by.items():
        for name in _imported_modules(package.parent / file):
            assert name.split(".")[0] in stdlib or within(name, allowed), f"{file} imports {name}"
