"""Grids: which datasets x noises x levels x denoisers to run (``grid``), and the named ones
(``named``). Everything a caller needs is importable from ``bench.grids``."""

from bench.grids.grid import TRAIN_LEVEL_MODES, Cell, Grid, load_grid_file
from bench.grids.named import NAMED_GRIDS, named_grid, resolve_grid

__all__ = ["Cell", "Grid", "named_grid", "load_grid_file", "resolve_grid", "TRAIN_LEVEL_MODES", "NAMED_GRIDS"]
