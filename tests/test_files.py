"""Atomic writes: a failed write leaves the old file whole and nothing beside it."""

import pytest

from bench.files import write_atomic, write_text_atomic


def test_a_failed_write_leaves_the_target_as_it_was_and_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "run.json", "old")

    def half_then_fail(tmp):
        tmp.write_text("half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
    assert write_text_atomic(target, "new").read_text() == "new"
