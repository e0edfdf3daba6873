"""Capture every operation a model performs on an input, without computing anything.

The model runs once on the ``meta`` device (tensors with shapes but no storage), under a
:class:`torch.overrides.TorchFunctionMode` that sees every ``torch.*`` function, every
``torch.nn.functional`` call and every tensor method, including the ones that module hooks miss:
residual additions written ``out += identity`` (torchvision's ResNet), ``torch.cat`` of branches
(Inception, DenseNet), ``F.relu`` and ``F.adaptive_avg_pool2d`` called inside ``forward``, and
``torch.flatten``. Module forward hooks, registered only for the duration of the trace, tell
which module each call happens in, so a leaf module (``nn.Conv2d``, ``nn.ReLU``, ...) becomes one
op and a functional call made inside a container's ``forward`` becomes its own op named after
that container (``layer1.0.add``).

Because nothing is computed, time and memory do not depend on the batch size or the resolution.

Receptive field and jump are propagated along the data flow (not along the list of layers), so
branches that merge by addition or concatenation take the maximum over their inputs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab import geometry
from cnnlab.analysis import arith

# Operation kinds, keyed by the canonical function name (see :func:`canonical_name`).
_KINDS: dict[str, str] = {}
for _kind, _names in {
    "conv": "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d",
    "linear": "linear",
    "pool": "max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d "
    "max_pool1d_with_indices max_pool2d_with_indices max_pool3d_with_indices",
    "adaptive_pool": "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d "
    "adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d "
    "adaptive_max_pool2d_with_indices",
    "norm": "batch_norm layer_norm group_norm instance_norm",
    "lrn": "local_response_norm",
    "act": "relu relu6 gelu sigmoid tanh hardtanh leaky_relu elu selu celu silu hardswish "
    "hardsigmoid softplus threshold mish prelu rrelu logsigmoid",
    "elementwise": "add sub mul div rsub truediv",
    "softmax": "softmax log_softmax softmin",
    "cat": "cat concat concatenate stack",
    "reshape": "flatten view reshape squeeze unsqueeze permute transpose contiguous "
    "getitem chunk split narrow expand to clone detach",
    "dropout": "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout",
    "matmul": "matmul mm bmm",
}.items():
    for _n in _names.split():
        _KINDS[_n] = _kind


def canonical_name(func: Callable[..., Any]) -> str:
    """``Tensor.__iadd__`` / ``Tensor.add_`` / ``torch.add`` -> ``"add"``; ``_max_pool2d`` -> ..."""
    name = getattr(func, "__name__", None) or str(func)
    name = name.strip("_")
    if name.startswith("i") and name[1:] in ("add", "sub", "mul", "truediv"):  # __iadd__
        name = name[1:]
    if name.endswith("_") and not name.endswith("__"):  # in-place variant
        name = name[:-1]
    return name.rstrip("_")


@dataclass
class Field:
    """Receptive field, jump and start of one tensor, per spatial dimension (H, W).

    ``start`` is the input coordinate (pixel centres at 0, 1, ...) of the centre of the first
    output unit's field, so unit ``i`` sees the input pixels ``start + i * jump +- (rf - 1) / 2``
    (Dumoulin & Visin 2016, "A guide to convolution arithmetic"; Araujo et al. 2019, "Computing
    receptive fields of convolutional neural networks"). Padding moves it left or up.
    """

    rf: tuple[int, ...]
    jump: tuple[int, ...]
    extent: tuple[int, ...]  # spatial size of the last map this tensor came from
    start: tuple[float, ...] = ()


@dataclass
class Op:
    """One operation observed during the trace.

    Attributes:
        name: module path (``features.0``) for a leaf module, ``<container path>.<function>``
            for a functional call inside a container's ``forward``.
        type: the module's class name, or the function's name for functional calls.
        kind: see ``_KINDS`` (``conv``, ``pool``, ``elementwise``, ...), or ``other``.
        module: the leaf module, or None for functional calls.
        input_shapes: shapes of the activation inputs, batch included.
        output_shape: shape of the (first) output, batch included.
        geometry: kernel, stride, padding, dilation, groups, filters, ... of the main call.
        calls: canonical names of all functions the op is made of.
        macs_lecture / macs_conv_linear: multiply-adds for the whole batch under each mode.
        rf: receptive field of the output.
        aliases: the output shares memory with an input (in-place op or view).
        notes: geometry warnings (windows that do not tile the input).
    """

    name: str
    type: str
    kind: str
    module: nn.Module | None
    input_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    geometry: dict[str, Any] = dataclasses.field(default_factory=dict)
    calls: list[str] = dataclasses.field(default_factory=list)
    macs_lecture: int = 0
    macs_conv_linear: int = 0
    rf: Field | None = None
    aliases: bool = False
    output_elements: int = 0
    output_itemsize: int = 4
    notes: list[str] = dataclasses.field(default_factory=list)
    first_call: bool = True  # False for the second and later calls of a shared module
    param_names: list[str] = dataclasses.field(default_factory=list)  # used by functional calls
    param_count: int = 0


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a call's arguments or output (nested lists, tuples, dict values)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from tensors_in(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from tensors_in(o)


def _fmt_geom(
    dims: list[int], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
) -> str:
    def x(t: tuple[int, ...] | list[int]) -> str:
        return "x".join(str(v) for v in t) if len(set(t)) > 1 else f"{t[0]}x{t[0]}"

    return (
        f"{x(kernel)} filter at stride {stride[0] if len(set(stride)) == 1 else stride}"
        + (f", pad {padding[0] if len(set(padding)) == 1 else padding}" if any(padding) else "")
        + f" does not fit a {'x'.join(map(str, dims))} input"
    )


def _window_geometry(
    kind: str, fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], x: torch.Tensor
) -> dict[str, Any]:
    """Kernel, stride, padding, dilation (and filters/groups for convolutions) of one call."""
    nd = x.dim() - 2
    if kind == "conv":
        w = _arg(args, kwargs, 1, "weight", None)
        transposed = "transpose" in fname
        if transposed:
            # conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation)
            stride = _tuple(_arg(args, kwargs, 3, "stride", 1), nd)
            padding = _tuple(_arg(args, kwargs, 4, "padding", 0), nd)
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            dilation = _tuple(_arg(args, kwargs, 7, "dilation", 1), nd)
            filters = w.shape[1] * groups
        else:
            stride = _tuple(_arg(args, kwargs, 3, "stride", 1), nd)
            pad = _arg(args, kwargs, 4, "padding", 0)
            dilation = _tuple(_arg(args, kwargs, 5, "dilation", 1), nd)
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            kernel = tuple(w.shape[2:])
            if isinstance(pad, str):  # "same" / "valid"
                pad = [
                    0 if pad == "valid" else d * (k - 1) // 2
                    for k, d in zip(kernel, dilation, strict=True)
                ]
            padding = _tuple(pad, nd)
            filters = w.shape[0]
        bias = _arg(args, kwargs, 2, "bias", None)
        return {
            "filters": int(filters),
            "kernel": tuple(int(k) for k in w.shape[2:]),
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "bias": bias is not None,
            "transposed": transposed,
        }
    if kind == "pool":
        kernel = _tuple(_arg(args, kwargs, 1, "kernel_size", 1), nd)
        stride_arg = _arg(args, kwargs, 2, "stride", None)
        stride = kernel if stride_arg in (None, [], ()) else _tuple(stride_arg, nd)
        padding = _tuple(_arg(args, kwargs, 3, "padding", 0), nd)
        if fname.startswith("avg"):  # avg_pool(input, kernel, stride, padding, ceil_mode, ...)
            dilation = (1,) * nd
            ceil_mode = bool(_arg(args, kwargs, 4, "ceil_mode", False))
        else:  # max_pool(input, kernel, stride, padding, dilation, ceil_mode, ...)
            dilation = _tuple(_arg(args, kwargs, 4, "dilation", 1), nd)
            ceil_mode = bool(_arg(args, kwargs, 5, "ceil_mode", False))
        return {
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "ceil_mode": ceil_mode,
        }
    return {}


# In-place random fills that have no value to produce on the meta device.
_RANDOM_FILLS = frozenset(
    {
        torch.Tensor.normal_,
        torch.Tensor.uniform_,
        torch.Tensor.random_,
        torch.Tensor.bernoulli_,
        torch.Tensor.exponential_,
        torch.Tensor.log_normal_,
        torch.Tensor.cauchy_,
        torch.Tensor.geometric_,
    }
)


class SkipMetaInit(TorchFunctionMode):
    """Skips weight initialisation of meta tensors while a model is built on the meta device.

    A meta tensor has a shape and no values, so initialising it changes nothing; but PyTorch
    runs ``normal_`` and friends on meta tensors through Python decompositions that import its
    compiler (``torch._dynamo``, about a second), which would double ``cnnlab summary``'s time.
    ``torch.nn.init`` functions and the tensors' random fills return their meta tensor as is;
    everything else, and every real tensor, runs unchanged.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensor = args[0] if args else kwargs.get("tensor")
        is_init = func in _RANDOM_FILLS or getattr(func, "__module__", "") == "torch.nn.init"
        if is_init and isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
            return tensor
        return func(*args, **kwargs)


@contextmanager
def on_meta() -> Iterator[None]:
    """Build modules on the meta device: shapes without storage, and no initialisation run
    (:class:`SkipMetaInit`), for every caller that needs a model's structure but not its values."""
    with SkipMetaInit(), torch.device("meta"):
        yield


def _meta_linear(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """``F.linear``'s output on the meta device, from shapes alone: (..., in) -> (..., out).

    PyTorch's meta path for it is a Python decomposition of ``addmm`` that imports
    ``torch._dynamo`` (see :class:`SkipMetaInit`); the shape rule is all the analyzer needs.
    """
    x = _arg(args, kwargs, 0, "input", None)
    weight = _arg(args, kwargs, 1, "weight", None)
    return torch.empty((*x.shape[:-1], weight.shape[0]), dtype=x.dtype, device="meta")


class _Tracer(TorchFunctionMode):
    """Records every tensor-producing call, attributed to the innermost running module."""

    def __init__(self, names: dict[nn.Module, str], params: dict[int, str]) -> None:
        super().__init__()
        self.names = names
        self.params = params  # id of each parameter tensor the forward will see -> its name
        self.params_used: set[str] = set()
        self.stack: list[tuple[nn.Module, int]] = []  # (module, op index where its call began)
        self.ops: list[Op] = []
        self.fields: dict[int, Field] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids unique for the whole trace
        self.call_count: dict[str, int] = {}
        self.open_leaf: dict[int, Op] = {}  # id(module) -> op being filled by its call

    # -- module hooks -------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.stack.append((module, len(self.ops)))

    def post_hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self.stack and self.stack[-1][0] is module:  # its pre-hook may not have run
            self.stack.pop()
        self.open_leaf.pop(id(module), None)

    # -- the function mode --------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        x = _arg(args, kwargs, 0, "input", None)
        if func is nn.functional.linear and isinstance(x, torch.Tensor) and x.is_meta:
            out = _meta_linear(args, kwargs)
        elif func is nn.functional.batch_norm and isinstance(x, torch.Tensor) and x.is_meta:
            # the shape rule again: PyTorch's meta batch norm is a Python decomposition that
            # took 0.3 of DenseNet-201's 0.6 s trace
            out = torch.empty_like(x)
        else:
            out = func(*args, **kwargs)
        try:
            self._record(func, args, kwargs, out)
        except Exception as err:  # never let bookkeeping break a model's forward
            raise RuntimeError(f"cnnlab analyzer could not record {func}: {err}") from err
        return out

    def _record(self, func: Callable[..., Any], args: tuple, kwargs: dict, out: Any) -> None:
        outputs = [t for t in tensors_in(out)]
        if not outputs:
            return
        inputs = [t for t in tensors_in((args, kwargs)) if id(t) in self.fields]
        if not inputs:
            return  # parameter arithmetic or a constant, not part of the data flow
        fname = canonical_name(func)
        kind = _KINDS.get(fname, "other")
        x = inputs[0]
        y = outputs[0]

        module = self.stack[-1][0] if self.stack else None
        leaf = module is not None and next(iter(module.children()), None) is None
        if leaf and id(module) in self.open_leaf:
            op = self.open_leaf[id(module)]  # a second call inside the same leaf module
            op.calls.append(fname)
        else:
            if leaf:
                base, typ = self.names.get(module, type(module).__name__), type(module).__name__
            else:
                prefix = self.names.get(module, "") if module is not None else ""
                base = f"{prefix}.{fname}" if prefix else fname
                typ = fname
            n = self.call_count[base] = self.call_count.get(base, 0) + 1
            op = Op(
                name=base if n == 1 else f"{base}:{n}",
                type=typ,
                kind=kind,
                module=module if leaf else None,
                input_shapes=[tuple(t.shape) for t in inputs],
                output_shape=tuple(y.shape),
                calls=[fname],
                first_call=n == 1,
            )
            self.ops.append(op)
            if leaf:
                self.open_leaf[id(module)] = op
        if op.kind in ("other", "reshape", "act", "dropout") and kind not in (
            "other",
            "reshape",
            "act",
            "dropout",
        ):
            op.kind = kind  # a leaf whose main call comes after a helper call
        op.output_shape = tuple(y.shape)
        op.output_elements = y.numel()
        op.output_itemsize = y.element_size()
        op.aliases = any(
            y is t or (y._base is not None and (y._base is t or y._base is t._base)) for t in inputs
        )
        if op.module is None:
            # A functional call made with a container's own parameter (F.conv2d(x, self.weight)):
            # the parameter belongs to this row, the first time it is used.
            for t in tensors_in((args, kwargs)):
                name = self.params.get(id(t))
                if name is not None and name not in self.params_used:
                    self.params_used.add(name)
                    op.param_names.append(name)
                    op.param_count += t.numel()
        geometry = _window_geometry(kind, fname, args, kwargs, x)
        if geometry:
            op.geometry = geometry
        self._count(op, kind, fname, args, kwargs, inputs, y)
        fld = self._field(kind, fname, inputs, y, op)
        for t in outputs:
            self.fields[id(t)] = fld
            self.keep.append(t)
        op.rf = fld

    # -- multiply-adds ------------------------------------------------------------------------
    def _count(
        self, op: Op, kind: str, fname: str, args: tuple, kwargs: dict, inputs: list, y
    ) -> None:
        """Add ``op``'s multiply-adds under both count modes (``--count lecture``, ``conv-linear``).

        The lecture count charges each operation its cheapest honest implementation at inference
        time, per output element: C_in/g * K*K for convolution and K*K for pooling (the slides'
        rules), the window's area for adaptive pooling, 1 for batch norm (scale and shift fold
        into one multiply-add), activations and elementwise arithmetic, size + 2 for LRN
        (windowed sum of squares, power, divide), 3 for softmax (exp, sum, divide) and 0 for
        concatenation, views and dropout. Only convolution and linear are in torchvision's
        published figures, so only they count under ``conv-linear``.
        """
        n_out = y.numel()
        g = op.geometry
        lecture = 0
        conv_linear = 0
        if kind == "conv":
            if g["transposed"]:  # every input element meets every weight of its group
                w = _arg(args, kwargs, 1, "weight", None)
                macs = inputs[0].numel() * (w.shape[1]) * math.prod(g["kernel"])
            else:
                macs = arith.conv_macs(n_out, inputs[0].shape[1], g["kernel"], g["groups"])
            connections = getattr(op.module, "num_connections", None)
            if connections is not None and not g["transposed"]:
                # A partial connection table (LeNet-5's C3) runs as a dense kernel with zeros;
                # only the connected (input map, output map) pairs are real work.
                macs = (n_out // y.shape[1]) * connections * math.prod(g["kernel"])
            lecture = conv_linear = macs
        elif kind == "linear":
            lecture = conv_linear = arith.linear_macs(n_out, inputs[0].shape[-1])
        elif kind == "pool":
            lecture = arith.pool_macs(n_out, g["kernel"])
        elif kind == "adaptive_pool":
            x = inputs[0]
            in_hw, out_hw = tuple(x.shape[2:]), tuple(y.shape[2:])
            lecture = arith.adaptive_pool_macs(y.shape[0] * y.shape[1], in_hw, out_hw)
        elif kind in ("norm", "act", "elementwise"):
            lecture = n_out
        elif kind == "lrn":
            size = int(_arg(args, kwargs, 1, "size", 5))
            lecture = n_out * (size + 2)
        elif kind == "softmax":
            lecture = 3 * n_out
        elif kind == "matmul":
            lecture = n_out * inputs[0].shape[-1]
        op.macs_lecture += lecture
        op.macs_conv_linear += conv_linear

    # -- receptive field ----------------------------------------------------------------------
    def _field(self, kind: str, fname: str, inputs: list, y: torch.Tensor, op: Op) -> Field:
        ins = [self.fields[id(t)] for t in inputs]
        nd = max(len(f.rf) for f in ins)
        rf = tuple(max(f.rf[i] for f in ins if len(f.rf) == nd) for i in range(nd))
        jump = tuple(max(f.jump[i] for f in ins if len(f.jump) == nd) for i in range(nd))
        extent = next(f.extent for f in ins if len(f.rf) == nd)
        # Branches that merge keep the start of the widest one (in the zoo they agree: "same"
        # padding and 1x1 shortcuts keep every branch's fields centred on the same pixels).
        start = tuple(
            max((f for f in ins if len(f.rf) == nd), key=lambda f, i=i: f.rf[i]).start[i]
            for i in range(nd)
        )
        x = inputs[0]
        spatial = x.dim() - 2
        g = op.geometry
        if kind in ("conv", "pool") and spatial == nd and not g.get("transposed"):
            dims = list(x.shape[2:])
            new_rf, new_jump, new_start = [], [], []
            for i in range(nd):
                r, j = arith.receptive_field(
                    rf[i], jump[i], g["kernel"][i], g["stride"][i], g["dilation"][i]
                )
                new_rf.append(r)
                new_jump.append(j)
                new_start.append(
                    arith.field_start(
                        start[i], jump[i], g["kernel"][i], g["padding"][i], g["dilation"][i]
                    )
                )
            fits = [
                arith.output_size(
                    dims[i],
                    g["kernel"][i],
                    g["stride"][i],
                    g["padding"][i],
                    g["dilation"][i],
                    g.get("ceil_mode", False),
                )
                for i in range(nd)
            ]
            if not all(f.fits for f in fits):
                exact = [float(f.exact) for f in fits]
                p = g["padding"][0]
                k = geometry.window_extent(g["kernel"][0], g["dilation"][0])
                formula = (
                    f"({dims[0]}{f'+2*{p}' if p else ''}-{k})/{g['stride'][0]}+1 = {exact[0]:.2f}"
                    if nd == 1 or len(set(exact)) == 1
                    else ", ".join(f"{e:.2f}" for e in exact)
                )
                rounding = "rounded up" if g.get("ceil_mode") else "floored"
                op.notes.append(
                    f"{_fmt_geom(dims, g['kernel'], g['stride'], g['padding'])}: {formula} "
                    f"({rounding} to {'x'.join(str(f.size) for f in fits)})"
                )
            return Field(tuple(new_rf), tuple(new_jump), tuple(y.shape[2:]), tuple(new_start))
        if kind == "adaptive_pool" and spatial == nd:
            new_rf, new_jump, new_start = [], [], []
            for i in range(nd):
                k, s = arith.adaptive_window(x.shape[2 + i], y.shape[2 + i])
                r, j = arith.receptive_field(rf[i], jump[i], k, s)
                new_rf.append(r)
                new_jump.append(j)
                new_start.append(arith.field_start(start[i], jump[i], k))
            return Field(tuple(new_rf), tuple(new_jump), tuple(y.shape[2:]), tuple(new_start))
        if kind in ("linear", "matmul"):
            # Every output sees the whole map the features were flattened from.
            full = tuple(rf[i] + (extent[i] - 1) * jump[i] for i in range(nd))
            centre = tuple(start[i] + (extent[i] - 1) * jump[i] / 2 for i in range(nd))
            return Field(full, jump, (1,) * nd, centre)
        if kind == "reshape" and x.dim() >= 3 and y.dim() == x.dim() and fname != "flatten":
            return Field(rf, jump, tuple(y.shape[2:]) if y.dim() > 2 else extent, start)
        return Field(rf, jump, extent, start)


@dataclass
class Trace:
    """Result of :func:`trace_model`: the ops in execution order and the model they came from."""

    ops: list[Op]
    model: nn.Module
    input_shape: tuple[int, ...]
    names: dict[nn.Module, str]


@contextmanager
def _hooks(model: nn.Module, tracer: _Tracer) -> Iterator[None]:
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(tracer.pre_hook))
        handles.append(module.register_forward_hook(tracer.post_hook, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def trace_model(model: nn.Module, input_shape: tuple[int, ...]) -> Trace:
    """Run ``model`` once on a meta tensor of ``input_shape`` and record every operation.

    Args:
        model: any ``nn.Module``; its parameters may live on any device (they are replaced by
            meta tensors for the trace, the model itself is not modified).
        input_shape: full input shape, batch included, e.g. ``(1, 3, 224, 224)``.

    Returns:
        A :class:`Trace` whose first op is the input itself.

    Raises:
        RuntimeError: what the model raised (the caller turns shape errors into
            :class:`~cnnlab.errors.InputSizeError`).
    """
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules():
        names.setdefault(module, name)
    meta_state = {
        k: torch.empty_like(v, device="meta")
        for k, v in {**dict(model.named_parameters()), **dict(model.named_buffers())}.items()
    }
    on_meta = all(v.device.type == "meta" for v in model.parameters())
    seen_params = dict(model.named_parameters()) if on_meta else meta_state
    params = {id(seen_params[k]): k for k, _ in model.named_parameters()}
    tracer = _Tracer(names, params)
    x = torch.empty(input_shape, device="meta")
    nd = len(input_shape) - 2
    tracer.fields[id(x)] = Field((1,) * nd, (1,) * nd, tuple(input_shape[2:]), (0.0,) * nd)
    tracer.keep.append(x)
    tracer.ops.append(
        Op(
            name="input",
            type="Input",
            kind="input",
            module=None,
            input_shapes=[tuple(input_shape)],
            output_shape=tuple(input_shape),
            rf=tracer.fields[id(x)],
            output_elements=x.numel(),
            output_itemsize=x.element_size(),
        )
    )
    was_training = {m: m.training for m in model.modules()}
    model.eval()  # batch statistics are undefined for 1x1 maps; eval computes the same shapes
    try:
        with _hooks(model, tracer), tracer, torch.no_grad():
            if on_meta:
                model(x)
            else:
                torch.func.functional_call(model, meta_state, (x,))
    finally:
        for m, t in was_training.items():
            m.training = t
    return Trace(ops=tracer.ops, model=model, input_shape=tuple(input_shape), names=names)
