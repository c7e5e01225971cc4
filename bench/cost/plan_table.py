"""How ``bench plan`` prints a plan: the table, and the one line ``run`` prints before it starts."""

from __future__ import annotations

from pathlib import Path

from bench.cost.plan import Plan

__all__ = ["duration", "summary_line", "format_plan"]


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h`` or ``2.1 days``.

    >>> duration(42), duration(720), duration(12240), duration(181440)
    ('42 s', '12 min', '3.4 h', '2.1 days')
    """
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def summary_line(plan: Plan) -> str:
    """The one-line estimate ``run`` prints before it starts."""
    run = plan.cells - plan.done
    many = f", {duration(plan.makespan(plan.workers))} on {plan.workers} workers" if plan.workers > 1 else ""
    return (
        f"estimate: {run} cells to run ({plan.done} already stored), {plan.fits} fits + {plan.classifier_fits} "
        f"classifier fits ({plan.cached} cached): {duration(plan.total)} on 1 worker{many} ({plan.device}, {plan.threads} thread(s) per worker)"
    )


def _cpu_timed(plan: Plan) -> bool:
    """Whether the plan's probes counted CPU time (``_probe_seconds``)."""
    return plan.device.startswith("cpu") and plan.threads == 1


def format_plan(plan: Plan, store_path: Path | None = None) -> str:
    """The table ``bench plan`` prints."""
    lines = [
        f"grid {plan.grid.name}: {plan.cells} cells, {plan.fits + plan.classifier_fits} distinct fits "
        f"({plan.fits} denoiser, {plan.classifier_fits} classifier); {plan.done} cells already in "
        f"{store_path or 'the store'} are skipped; {plan.cached} fits are in the fit cache (they cost nothing)",
        f"probe: {plan.probe_seconds:.1f} s on {plan.device}, {plan.threads} CPU thread(s) (what each worker gets)"
        + (
            "; timed in CPU seconds, which other load on the machine inflates far less than wall time"
            if _cpu_timed(plan)
            else ""
        ),
        f"{'kind':<10} {'entry':<22} {'fits':>5} {'cells':>6} {'cached':>6}  {'budget per fit':<36} {'s/fit':>9} {'s/cell':>8} {'total':>9}",
    ]
    for e in sorted(plan.entries, key=lambda e: -e.total):
        lines.append(
            f"{e.kind:<10} {e.name:<22} {e.units:>5} {e.cells:>6} {e.cached:>6}  {e.budget:<36} {e.fit_seconds:>9.2f} "
            f"{e.cell_seconds:>8.2f} {duration(e.total):>9}"
        )
    lines.append(f"total: {duration(plan.total)} on 1 worker")
    for workers in sorted({2, 4, 8, plan.workers} - {1}):
        lines.append(f"       {duration(plan.makespan(workers))} on {workers} workers (longest units first)")
    return "\n".join(lines)
