"""Fixtures for importer tests."""

from importer_testkit import write  # noqa: F401  (re-exported as a pytest fixture)
