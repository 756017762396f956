"""EMRR: simulator, reference report engine and conformance suite for the ECoS Migration Reporting Regime."""

__version__ = "0.1.0"
