"""The package version, in a module of its own so that the command line can read it without importing the
public API (import-linter sees ``from sysprune import __version__`` as an import of everything it re-exports)."""

__version__ = "0.1.0"
