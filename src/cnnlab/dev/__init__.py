"""Tools for working on cnnlab from a source checkout; the library never imports them.

``python -m cnnlab.dev generate`` (``make generate``) rewrites every generated file of the
repository, and ``--check`` names the ones that are out of date without writing; see
:mod:`cnnlab.dev.generate`. Unlike the library packages, these tools may import anything: the
analyzer, PyTorch, the whole zoo.
"""
