"""denoise-bench: classical and neural image denoisers on the same data and noise.

The Python API is ``bench.run`` and ``bench.load_results`` (see ``bench.api``).
"""

from bench.version import __version__

__all__ = ["run", "load_results", "__version__"]


def __getattr__(name: str):
    # Imported on first use, so that `import bench` stays light (no torch until needed).
    if name in ("run", "load_results"):
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
