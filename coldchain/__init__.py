"""coldchain: monitoring service for temperature-sensitive medicines in transit."""

__version__ = "0.1.0"
