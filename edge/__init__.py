"""liftwatch edge agent: camera frames in, anonymous lift events out."""

__version__ = "0.1.0"
