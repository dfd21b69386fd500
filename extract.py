"""Prepare a voice dataset: ingest → slice → F0 → content features → audit. (`rvc.apps.extract`; installed: `rvc-extract`)."""

from rvc.apps import extract

if __name__ == "__main__":
    extract()
