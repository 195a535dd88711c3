"""botqueue's version: the one source, read by pyproject (setuptools' dynamic version) too."""

__version__ = "0.2.0"
