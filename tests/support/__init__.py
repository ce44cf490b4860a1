"""Helpers shared by the test suites (servers started for real, not mocked)."""
