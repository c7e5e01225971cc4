"""The one timer: the runner's pass rule, its plan-side count, and medians after a warm-up."""

import pytest

from bench.cost import timing


class FakeClock:
    """Stands in for ``time``: each call of the timed function advances it by ``step`` seconds."""

    def __init__(self, step: float):
        self.now, self.step, self.calls = 0.0, step, 0

    def perf_counter(self) -> float:
        return self.now

    process_time = perf_counter

    def work(self) -> int:
        self.calls += 1
        self.now += self.step
        return self.calls


@pytest.mark.parametrize("step", [0.01, 0.5, 0.9, 1.0, 1.5, 2.0, 7.0])
def test_the_plan_counts_the_passes_the_runner_makes(monkeypatch, step):
    clock = FakeClock(step)
    monkeypatch.setattr(timing, "time", clock)
    measured = timing.runner_passes(clock.work)
    assert clock.calls == timing.planned_passes(step)
    assert measured.wall == pytest.approx(step) and measured.result == clock.calls


def test_median_pass_warms_up_untimed_and_takes_the_median(monkeypatch):
    clock = FakeClock(0.0)
    steps = iter([100.0, 3.0, 1.0, 2.0])  # the warm-up is slow and must not count

    def work():
        clock.now += next(steps)

    monkeypatch.setattr(timing, "time", clock)
    assert timing.median_pass(work, repeats=3).wall == pytest.approx(2.0)


def test_median_pass_needs_a_repeat():
    with pytest.raises(ValueError, match="repeats must be at least 1; got 0"):
        timing.median_pass(lambda: None, repeats=0)
