"""vmprep: make Windows images configure themselves."""

__version__ = "0.1.0"
