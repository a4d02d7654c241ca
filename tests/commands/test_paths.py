"""The files a command reads and writes (`keras_adv/commands/paths.py`),
checked in process: names and places, outputs against inputs, a Keras
archive or a SavedModel directory, an .npz with x and y, an earlier
report."""

import json
import zipfile

import numpy as np
import pytest

from keras_adv.commands import paths
from keras_adv.commands.common import UsageError


def _refused(call, *args):
    with pytest.raises(UsageError) as info:
        call(*args)
    return str(info.value)


def test_names_and_places(tmp_path):
    assert [paths.names_a_file(s) for s in (
        "mnist5k", "mnist5k:train", "tfds:mnist", "d.npz")] == [
        False, False, False, True]
    (tmp_path / "sm").mkdir()
    assert paths.same_or_inside(str(tmp_path / "sm" / "a.json"),
                                str(tmp_path / "sm"))
    assert paths.same_or_inside(str(tmp_path / "x" / ".." / "sm"),
                                str(tmp_path / "sm"))
    assert not paths.same_or_inside(str(tmp_path / "smx"),
                                    str(tmp_path / "sm"))


def test_an_output_never_lands_on_an_input(tmp_path):
    model = str(tmp_path / "m.keras")
    assert _refused(paths.check_not_read, "--json", model,
                    {"MODEL": model}) == (
        f"--json must not be a file the command reads or writes for another "
        f"option. Received: --json {model} (it is MODEL {model})")
    paths.check_not_read("--json", str(tmp_path / "r.json"),
                         {"MODEL": model})


def test_model_path_is_an_archive_or_a_saved_model(tmp_path):
    good = tmp_path / "m.keras"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("config.json", "{}")
    paths.check_model_path(str(good))
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    paths.check_model_path(str(tmp_path / "sm"))
    (tmp_path / "m.h5").write_bytes(b"")
    assert _refused(paths.check_model_path, str(tmp_path / "m.h5")).endswith(
        "(not a .keras file)")
    assert _refused(paths.check_model_path, str(tmp_path)).endswith(
        "(a directory without saved_model.pb)")


def test_data_file_holds_x_and_y(tmp_path):
    np.savez(tmp_path / "test.npz", x_test=np.zeros(2), y_test=np.zeros(2))
    paths.check_data_file("--data", str(tmp_path / "test.npz"))
    paths.check_data_file("--data", "mnist5k:train")  # no file to read
    np.savez(tmp_path / "x.npz", x=np.zeros(2))
    assert _refused(paths.check_data_file, "--train-data",
                    str(tmp_path / "x.npz")) == (
        "--train-data must be an .npz file with arrays x and y. Received: "
        f"--train-data {tmp_path / 'x.npz'} holding ['x']")


def test_report_file_holds_the_fields(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"summary": {}, "evasion": {}}))
    paths.check_report_file("--compare", str(path), ("summary",), "a report")
    assert _refused(paths.check_report_file, "--compare", str(path),
                    ("summary", "examples"), "a report").endswith(
        "(a JSON object without 'examples')")
    path.write_text("{oops")
    assert "(not JSON: " in _refused(paths.check_report_file, "--compare",
                                     str(path), ("summary",), "a report")
