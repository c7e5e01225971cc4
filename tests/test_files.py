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


def _write_many(target, tag, count, errors):
    import json

    for i in range(count):
        try:
            write_text_atomic(target, json.dumps({"writer": tag, "i": i, "pad": "x" * 20000}))
        except OSError as err:
            errors.put(repr(err))


def test_two_processes_writing_one_target_never_fail_nor_show_half_a_file(tmp_path):
    import json
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    target, errors = tmp_path / "fit.json", context.Queue()
    write_text_atomic(target, json.dumps({"writer": "first"}))
    writers = [context.Process(target=_write_many, args=(target, tag, 150, errors)) for tag in "ab"]
    for writer in writers:
        writer.start()
    torn = 0
    while any(w.is_alive() for w in writers):
        try:
            json.loads(target.read_text())
        except ValueError:
            torn += 1
    for writer in writers:
        writer.join()
    assert errors.empty() and torn == 0 and all(w.exitcode == 0 for w in writers)
    assert json.loads(target.read_text())["i"] == 149 and [p.name for p in tmp_path.iterdir()] == ["fit.json"]


def test_a_full_disk_names_the_target_not_the_temporary(tmp_path):
    import errno

    def full(tmp):
        with open(tmp, "w") as handle:
            handle.write("x")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        write_atomic(tmp_path / "report.html", full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []
