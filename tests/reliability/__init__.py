"""Reliability: crashes, full disks, malicious files and damaged data (``harness.py``).

The ``test_*.py`` modules run the harness's trials with small counts; ``benchmarks/reliability.py``
runs them with the full counts for ``docs/shipping.md``. ``fault_runner.py``,
``checkpoint_writer.py``, ``unsafe_load.py`` and ``load_trained_cli.py`` are the scripts the
trials start as subprocesses.
"""
