"""Small layers shared by the classic architectures.

:class:`CrossChannelLRN` is the local response normalisation of Krizhevsky et al. (2012),
Section 3.3, used by ``alexnet_paper``, ``zfnet`` and ``vgg11_lrn`` (VGG's A-LRN column uses "the
same" normalisation, Simonyan & Zisserman 2014, Section 2.1).

Deviation from a literal PyTorch call: the paper writes the denominator as
``(k + alpha * sum_j a_j^2) ** beta`` while :class:`torch.nn.LocalResponseNorm` (like Caffe)
computes ``(k + alpha / n * sum_j a_j^2) ** beta``. ``nn.LocalResponseNorm(5, alpha=1e-4, ...)``
would therefore normalise five times more weakly than the paper says; this class takes the
paper's ``alpha`` and hands ``n * alpha`` to PyTorch, so the formula is the paper's.
"""

from __future__ import annotations

from torch import nn

# Krizhevsky et al. 2012, Section 3.3: "k = 2, n = 5, alpha = 10^-4, and beta = 0.75".
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_K = 2.0


class CrossChannelLRN(nn.LocalResponseNorm):
    """Local response normalisation across channels, with the paper's ``alpha`` convention.

    ``b[c] = a[c] / (k + alpha * sum(a[j]^2 for j in c-n//2 .. c+n//2, clipped)) ** beta``
    (Krizhevsky et al. 2012, Section 3.3). Still an :class:`torch.nn.LocalResponseNorm`, so
    everything that understands PyTorch's layer (the analyzer, ONNX export) understands this one.

    Args:
        size: ``n``, the number of adjacent channels summed over (the channel itself included).
        alpha: the paper's ``alpha`` (not divided by ``n``).
        beta: exponent of the denominator.
        k: additive constant of the denominator.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``
    """

    def __init__(
        self,
        size: int = LRN_SIZE,
        alpha: float = LRN_ALPHA,
        beta: float = LRN_BETA,
        k: float = LRN_K,
    ) -> None:
        # PyTorch divides alpha by size inside forward; multiply here so the two cancel.
        super().__init__(size=size, alpha=alpha * size, beta=beta, k=k)
        self.paper_alpha = alpha

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, alpha={self.paper_alpha} (paper convention), "
            f"beta={self.beta}, k={self.k}"
        )
