"""The arithmetic of loss-landscape plots: filter-normalised directions, surfaces, curvature.

Paper: Li, Xu, Taylor, Studer, Goldstein (2018), "Visualizing the Loss Landscape of Neural
Nets", NeurIPS. Sec. 4: a random Gaussian direction ``d`` with the parameters' shapes is
*filter-normalised*, ``d_ij <- d_ij / ||d_ij|| * ||theta_ij||`` for filter ``j`` of layer ``i``
(a fully connected layer's neurons count as filters), so that a step along ``d`` perturbs every
filter in proportion to its own size and the scale invariance of ReLU nets with batch norm
cannot distort the picture. The surface is ``f(a, b) = L(theta + a d1 + b d2)``. Sec. 6: the
non-convexity of the surface is read from the Hessian's extreme eigenvalues, ``|lambda_min /
lambda_max|``, at each point (their Fig. 7, computed with implicitly restarted Lanczos).

Choices here, as in Li et al.'s released code with its ``--xignore biasbn`` option: directions
are zero for every parameter with fewer than two dimensions (biases, batch-norm scales and
shifts), so those parameters, and batch norm's running statistics, stay at the trained values;
the network is evaluated in eval mode throughout. The Hessian is taken with respect to the same
parameters (those with two or more dimensions), with fixed-length Lanczos iteration on
Hessian-vector products (double backward through ``torch.autograd``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = dict[str, Tensor]


def grid_coordinates(steps: int, radius: float = 1.0) -> list[float]:
    """``steps`` evenly spaced values on [-radius, radius]; the middle one (odd steps) is 0.0.

    Computed as ``radius * (2i - (steps - 1)) / (steps - 1)`` so the centre is exactly zero and
    the grid's centre is exactly the trained network (``theta + 0 d``).
    """
    if steps < 2:
        raise ValueError(f"a grid needs at least 2 steps, got {steps}")
    return [radius * (2 * i - (steps - 1)) / (steps - 1) for i in range(steps)]


def perturbed_names(model: nn.Module) -> list[str]:
    """Names of the parameters the directions move: those with at least two dimensions."""
    return [name for name, p in model.named_parameters() if p.dim() > 1]


def filter_normalised_direction(model: nn.Module, generator: torch.Generator) -> State:
    """A random direction in parameter space, filter-normalised as Li et al. Sec. 4.

    Args:
        model: the trained network (its parameters give the filter norms).
        generator: the source of the Gaussian draws (seed it for a reproducible direction).

    Returns:
        One tensor per parameter name, same shape: for a weight of shape (C_out, ...), each
        ``d[j]`` has the norm of ``w[j]``; zeros for parameters with fewer than two dimensions.
    """
    direction: State = {}
    for name, p in model.named_parameters():
        w = p.detach()
        if w.dim() <= 1:
            direction[name] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        d_norms = d.flatten(1).norm(dim=1)  # (C_out,)
        w_norms = w.flatten(1).norm(dim=1)
        scale = w_norms / (d_norms + 1e-10)  # Li et al.'s code adds the same 1e-10
        direction[name] = d * scale.view(-1, *([1] * (w.dim() - 1)))
    return direction


def trained_state(model: nn.Module) -> State:
    """A copy of every parameter, keyed by name (the point the surface is centred on)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def move_to(model: nn.Module, base: State, steps: Sequence[tuple[float, State]]) -> None:
    """Set the parameters to ``base + sum(a * d for a, d in steps)``."""
    for name, p in model.named_parameters():
        value = base[name].clone()
        for a, d in steps:
            value += a * d[name]
        p.copy_(value)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch: int = 256) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode on ``(x, y)``.

    Args:
        x: ``(N, C, H, W)`` prepared float input; y: ``(N,)`` labels.

    Returns:
        ``(loss, accuracy)`` with accuracy a fraction in [0, 1].
    """
    model.eval()
    total, correct = 0.0, 0
    for start in range(0, len(x), batch):
        logits = model(x[start : start + batch])
        target = y[start : start + batch]
        total += F.cross_entropy(logits, target, reduction="sum").item()
        correct += int((logits.argmax(1) == target).sum())
    return total / len(x), correct / len(x)


def surface_row(
    model: nn.Module,
    base: State,
    directions: tuple[State, State],
    alpha: float,
    betas: Sequence[float],
    data: tuple[Tensor, Tensor],
) -> dict[str, list[float]]:
    """Loss and accuracy at ``(alpha, beta)`` for every beta: one row of the 2-D surface.

    The model's parameters are restored to ``base`` afterwards.
    """
    losses, accs = [], []
    for beta in betas:
        move_to(model, base, [(alpha, directions[0]), (beta, directions[1])])
        loss, acc = evaluate(model, *data)
        losses.append(loss)
        accs.append(acc)
    move_to(model, base, [])
    return {"loss": losses, "accuracy": accs}


def interpolate(
    model: nn.Module,
    start: Mapping[str, Tensor],
    end: Mapping[str, Tensor],
    alphas: Sequence[float],
    data: tuple[Tensor, Tensor],
) -> dict[str, list[float]]:
    """Loss and accuracy along ``(1 - a) start + a end`` (Goodfellow et al. 2015; Li et al. Sec. 3).

    ``start`` and ``end`` are full state dicts: parameters *and* batch-norm running statistics
    are interpolated (integer buffers such as ``num_batches_tracked`` keep ``end``'s value), so
    ``a = 0`` is exactly the initial network and ``a = 1`` the trained one, both in eval mode.
    Outside [0, 1] an extrapolated running variance can fall below zero; it is clamped at zero
    (batch norm adds its epsilon). The model holds ``end`` afterwards.
    """
    losses, accs = [], []
    for a in alphas:
        mixed = {
            k: ((1 - a) * start[k] + a * v) if v.is_floating_point() else v for k, v in end.items()
        }
        for k in mixed:
            if k.endswith("running_var"):
                mixed[k] = mixed[k].clamp(min=0)
        model.load_state_dict(mixed)
        loss, acc = evaluate(model, *data)
        losses.append(loss)
        accs.append(acc)
    model.load_state_dict(dict(end))
    return {"loss": losses, "accuracy": accs}


# --- curvature ----------------------------------------------------------------------------------


def hessian_vector_product(
    model: nn.Module, names: Sequence[str], data: tuple[Tensor, Tensor]
) -> Callable[[Tensor], Tensor]:
    """``v -> H v`` for the mean cross-entropy's Hessian w.r.t. the parameters ``names``.

    Vectors are flat (the named parameters concatenated in order); eval mode. Each product is
    one double backward pass over the whole of ``data``.
    """
    params = dict(model.named_parameters())
    chosen = [params[n] for n in names]
    sizes = [p.numel() for p in chosen]
    x, y = data

    def product(v: Tensor) -> Tensor:
        model.eval()
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, chosen, create_graph=True)
        pieces = [piece.view_as(p) for piece, p in zip(v.split(sizes), chosen, strict=True)]
        hv = torch.autograd.grad(grads, chosen, grad_outputs=pieces)
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    return product


def lanczos_extremes(
    matvec: Callable[[Tensor], Tensor], size: int, steps: int, generator: torch.Generator
) -> tuple[float, float]:
    """Smallest and largest eigenvalue estimates of a symmetric operator, by Lanczos.

    ``steps`` products build a Krylov basis (fully reorthogonalised, so rounding cannot bring
    back converged directions); the extreme eigenvalues of the small tridiagonal matrix (Ritz
    values) approach the operator's from inside the spectrum, so with few steps the estimates
    understate both ``|lambda_min|`` and ``lambda_max``. With ``steps >= size`` they are exact
    up to rounding.

    Returns:
        ``(lambda_min, lambda_max)``.
    """
    steps = min(steps, size)
    v = torch.randn(size, generator=generator, dtype=torch.float64)
    basis = [v / v.norm()]
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(steps):
        w = matvec(basis[j].to(torch.float32)).to(torch.float64)
        alphas.append(float(w @ basis[j]))
        w = w - alphas[j] * basis[j] - (betas[j - 1] * basis[j - 1] if j else 0)
        for u in basis:  # full reorthogonalisation
            w = w - (w @ u) * u
        beta = float(w.norm())
        if j == steps - 1 or beta < 1e-10:
            break
        betas.append(beta)
        basis.append(w / beta)
    k = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    ritz = torch.linalg.eigvalsh(t)
    return float(ritz[0]), float(ritz[-1])
