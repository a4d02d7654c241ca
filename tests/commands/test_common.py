"""What the commands share (`keras_adv/commands/common.py`): the shared
options on every parser, the attack names known without TensorFlow, each
command's flag table, the missing optional modules named with their extra,
the help's defaults, the data's name, the stage lines (the one `Progress`)
and keras_adv's warnings as one line."""

import argparse
import importlib.util

import pytest

from keras_adv import cli
from keras_adv.commands import audit, certify, common, evaluate, poison_scan
from tests.commands.test_checks import check_argv


def _args(**values):
    shared = dict(seed=0, num_examples=None, batch_size=None)
    return argparse.Namespace(**dict(shared, **values))


def test_flag_table_checks_each_flag_by_its_rule():
    ok = dict(sigma=0.25, alpha=0.001, n=10, n0=1, radii="0,0.5")
    common.check_shared(_args(**ok), certify.FLAGS)
    for change, line in [
        (dict(sigma=0.0), "--sigma must be a finite number > 0. Received: "
         "--sigma 0.0"),
        (dict(alpha=1.0), "--alpha must be in (0, 1). Received: --alpha 1.0"),
        (dict(n0=0), "--n0 must be >= 1. Received: --n0 0"),
        (dict(radii="0,-1"), "--radii must be comma-separated finite numbers "
         ">= 0. Received: --radii 0,-1"),
    ]:
        with pytest.raises(common.UsageError) as info:
            common.check_shared(_args(**dict(ok, **change)), certify.FLAGS)
        assert str(info.value) == line
    # One rule per kind of value, shared by the commands that take it.
    assert audit.FLAGS["--sigma"] is certify.FLAGS["--sigma"]
    assert audit.FLAGS["--expected-fraction"] is \
        poison_scan.FLAGS["--expected-fraction"] is common.check_share
    with pytest.raises(common.UsageError, match=r"^--expected-fraction must "
                       r"be in \[0, 1\]\. Received: --expected-fraction 1.5$"):
        common.check_shared(_args(expected_fraction=1.5, alpha=0.05,
                                  remove_factor=1.5, size_threshold=0.35,
                                  components=10), poison_scan.FLAGS)
    assert evaluate.ATTACK_NAMES == common.ATTACK_NAMES


def test_stage_lines_name_the_command_and_stay_quiet_when_asked(capsys):
    with common.stages("certify", _args(no_progress=False)) as stage:
        stage("loading the data")
    with common.stages("certify", _args(no_progress=True)) as stage:
        stage("loading the data")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("keras-adv certify: loading the data (")


def test_every_parser_starts_with_model():
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        sub = parser._subparsers._group_actions[0].choices[name]
        assert sub._actions[1].dest == "model", name  # after --help
    assert check_argv("certify", "{m}", "--sigma", "0.25").model.endswith(
        "m.keras")


def test_every_command_has_the_shared_options():
    parser = cli.build_parser()
    shared = {"--data", "--num-examples", "--batch-size", "--seed",
              "--trust-model", "--no-progress"}
    for name in cli.COMMANDS:
        sub = parser._subparsers._group_actions[0].choices[name]
        flags = {s for a in sub._actions for s in a.option_strings}
        assert shared <= flags, (name, shared - flags)
        # audit writes DIR/report.json itself; the others take --json.
        assert ("--json" in flags) == (name != "audit")


def test_attack_names_known_without_tensorflow_match_the_registry():
    from keras_adv.evaluation import ATTACKS, STANDARD

    assert evaluate.ATTACK_NAMES == tuple(sorted(ATTACKS))
    assert common.STANDARD_NAMES == tuple(STANDARD)


def _without(monkeypatch, missing):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing
                        else real(name, *a))


@pytest.mark.parametrize("missing,argv,extra", [
    ("jinja2", ["audit", "{m}", "--eps", "0.1", "--out", "{r}/out"],
     "audit"),
    ("matplotlib", ["audit", "{m}", "--eps", "0.1", "--out", "{r}/out"],
     "audit"),
    ("sklearn", ["audit", "{m}", "--eps", "0.1", "--out", "{r}/out",
                 "--train-data", "mnist5k:train"], "poisoning"),
    ("sklearn", ["poison-scan", "{m}", "--data", "{d}",
                 "--expected-fraction", "0.1"], "poisoning"),
    ("matplotlib", ["evaluate", "{m}", "--eps", "0.1", "--plot",
                    "{r}/out/r.png"], "audit"),
    ("matplotlib", ["certify", "{m}", "--sigma", "0.1", "--plot",
                    "{r}/out/r.png"], "audit"),
])
def test_missing_module_is_named_with_its_extra(monkeypatch, missing, argv,
                                                extra):
    _without(monkeypatch, missing)
    with pytest.raises(common.UsageError) as info:
        check_argv(*argv)
    assert str(info.value) == (
        f"{argv[0]} needs the module {missing} (pip install "
        f"'keras_adv[{extra}]'). Received: {missing} not installed")


@pytest.mark.parametrize("missing,argv", [
    ("matplotlib", ["evaluate", "{m}", "--eps", "0.1"]),
    ("sklearn", ["poison-scan", "{m}", "--data", "{d}", "--method",
                 "spectral", "--expected-fraction", "0.1"]),
    ("sklearn", ["audit", "{m}", "--eps", "0.1", "--out", "{r}/out"]),
])
def test_a_module_not_needed_is_not_asked_for(monkeypatch, missing, argv):
    _without(monkeypatch, missing)
    check_argv(*argv)


@pytest.mark.parametrize("command,shown", [
    ("evaluate", ["use the first N examples (default: 1000)",
                  "(default: linf)", "(default: standard)",
                  "(default: 500)"]),
    ("certify", ["(default: 10000)", "(default: 100)", "(default: 0.001)",
                 "(default: 0,0.25,0.5,0.75,1)"]),
    ("poison-scan", ["(default: both)", "(default: 1.5)", "(default: 0.35)",
                     "(default: 10)", "(default: all)"]),
    ("audit", ["(default: 1000)", "(default: 0.05)", "(default: 500)"]),
])
def test_help_shows_the_defaults(command, shown):
    sub = cli.build_parser()._subparsers._group_actions[0].choices[command]
    text = " ".join(sub.format_help().split())
    for piece in shown + ["seed of every random draw"]:
        assert " ".join(piece.split()) in text, piece
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: 0)" in text  # --seed


def test_data_name_says_the_split():
    assert [common.data_name(s) for s in (
        "mnist5k", "mnist5k:test", "mnist5k:train", "tfds:cifar10",
        "tfds:mnist:train[:10%]", "x.npz")] == [
        "mnist5k:test", "mnist5k:test", "mnist5k:train", "tfds:cifar10:test",
        "tfds:mnist:train[:10%]", "x.npz"]


def test_warning_lines_print_keras_adv_warnings_as_one_line(capsys):
    import warnings

    from keras_adv import validation

    with common.warning_lines("evaluate"):
        for _ in range(2):  # each time, not once per place
            validation.warn_eps_range([3.0], "linf", (0.0, 1.0), 4)
        with pytest.warns(UserWarning, match="someone else's"):
            warnings.warn("someone else's", UserWarning, stacklevel=1)
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == ["keras-adv evaluate: warning: eps 3 is larger than "
                       "the data's range under linf (1: box [0, 1], its "
                       "width): every input of the box is in reach, so the "
                       "robust accuracy there measures only where the "
                       "model is constant"] * 2
    assert len(err) == 2  # another library's warning: not a command line
