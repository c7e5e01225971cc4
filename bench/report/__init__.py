"""Outputs of a run folder, rebuilt from its store (``bench.execution.store.Store``).

- :mod:`bench.report.outputs`: ``write_outputs`` and ``rebuild`` (leaderboard.csv with each
  group's rank and winner-vs-runner-up test, classifiers.csv, per_image.csv.gz, then report.html).
- :mod:`bench.report.compare`: ``compare RUN_A RUN_B``, per-cell differences of two runs.
- :mod:`bench.report.page`: the self-contained report.html and its summary.
- :mod:`bench.report.tables`, :mod:`bench.report.images`: its tables and image strips.
- :mod:`bench.report.plots` (drawing helpers in :mod:`bench.report.canvas`): its figures.
- :mod:`bench.report.select`: which cells the leaderboard shows and their row names.
- ``templates/report.html.j2``: the Jinja2 page.
"""

from bench.report.images import image_grids, image_strip
from bench.report.outputs import rebuild, write_outputs
from bench.report.page import render_report, summary, write_report
from bench.report.select import diagonal
from bench.report.tables import leaderboards, load_seed_frames, seed_tables

__all__ = [
    "write_outputs",
    "rebuild",
    "render_report",
    "write_report",
    "summary",
    "leaderboards",
    "image_grids",
    "image_strip",
    "load_seed_frames",
    "seed_tables",
    "diagonal",
]
