"""The package's version: part of every cell's and fit's key, so a new version keys afresh.

A module of its own (not ``bench/__init__``), so that the modules that read it do not import
the package's front door and, through its API, the whole run path.
"""

__version__ = "0.1.0"
