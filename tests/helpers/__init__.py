"""Shared test helpers: imported by test modules, never test modules themselves."""
