"""The per-layer analyzer: the lecture's table, receptive field, memory, plots and errata.

``analyze(model_or_name, input_size=(C, H, W), batch_size=1) -> Report`` traces the real model on
the meta device (no compute) and reports every operation with the slides' columns. See
:mod:`cnnlab.analysis.arith` for the counting conventions.
"""

from cnnlab.analysis.report import Report, Row, analyze

__all__ = ["Report", "Row", "analyze"]
