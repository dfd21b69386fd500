"""Evaluation fixtures: the training tests' tiny store (40 kHz, pm F0, spectral features)."""

from tests.train.conftest import store_root  # noqa: F401  (a session fixture of its own here)
