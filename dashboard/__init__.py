"""liftwatch dashboard: ingests lift events, stores them, shows team / zone / shift metrics."""

__version__ = "0.1.0"
