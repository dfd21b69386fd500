"""The reliability tests reuse the training tests' tiny store (`store_root`)."""

from tests.train.conftest import store_root  # noqa: F401  (a fixture, used by name)
