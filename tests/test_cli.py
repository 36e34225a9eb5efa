import pytest

from raycl.cli import main


COMMANDS = ["data", "hyper-train", "deploy", "report", "activation", "sine", "sweep", "selfnet", "atari", "active"]


def test_help_lists_commands(capsys):
    from raycl.cli import build_parser

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: raycl")
    # every command the parser accepts is listed, each with its one-line help
    (commands,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert list(commands.choices) == COMMANDS
    lines = out.splitlines()
    for choice in commands._choices_actions:
        # "    NAME   first words of its help": the line that starts the command's entry
        (line,) = [ln for ln in lines if ln.startswith(f"    {choice.dest} ")]
        assert line.split(None, 1)[1].startswith(" ".join(choice.help.split()[:3])), (choice.dest, line)


def test_data_list_shows_every_source(capsys):
    from raycl.data import SOURCES

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in SOURCES:
        assert name in out


def test_building_the_parser_imports_neither_torch_nor_ray():
    # `raycl --help` and every `raycl X --help` build the whole parser: that must not import
    # torch, ray or pandas (it took 3 s when it did)
    import subprocess
    import sys

    code = ("import sys, raycl.cli; raycl.cli.build_parser(); "
            "print(','.join(m for m in ('torch', 'ray', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def parsers(p):
    """The parser and every subparser below it."""
    import argparse

    yield p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                yield from parsers(sub)


def test_every_help_reads_cleanly():
    from raycl.cli import build_parser

    seen = 0
    for p in parsers(build_parser()):
        text = p.format_help()
        assert "(default: None)" not in text and "%%" not in text, p.prog
        seen += 1
    assert seen > 20


def test_every_flag_says_what_it_does():
    import argparse

    from raycl.cli import build_parser

    silent = [(p.prog, a.option_strings[-1]) for p in parsers(build_parser()) for a in p._actions
              if a.option_strings and not a.help and not isinstance(a, argparse._HelpAction)]
    assert silent == []


# old spelling -> (a command line that takes it, the value, the new flag and its dest)
RENAMED = [
    ("--ray-address", ["selfnet", "continual", "--out", "x"], "127.0.0.1:6379", "--address", "address"),
    ("--first-seed", ["active", "run", "--out", "x"], "3", "--seed", "seed"),
    ("--dataset", ["active", "run", "--out", "x"], "cifar10", "--data", "data"),
    ("--gpus-per-run", ["active", "run", "--out", "x"], "0.5", "--gpus-per-worker", "gpus_per_worker"),
    ("--gamma", ["active", "run", "--out", "x"], "0.01", "--bt-weight", "bt_weight"),
    ("--gpus-per-model", ["hyper-train", "--out", "x"], "0.5", "--gpus-per-worker", "gpus_per_worker"),
    ("--source", ["hyper-train", "--out", "x"], "digits", "--data", "source"),
    ("--eval-source", ["deploy", "run"], "mnist", "--data", "eval_source"),
    ("--eval-root", ["deploy", "run"], "/data", "--data-root", "eval_root"),
    ("--eval-source", ["report", "hyper", "runs"], "mnist", "--data", "eval_source"),
    ("--eval-root", ["report", "hyper", "runs"], "/data", "--data-root", "eval_root"),
    ("--source", ["sweep", "scale", "--out", "x"], "digits", "--data", "data"),
    ("--gpus-per-model", ["sweep", "scale", "--out", "x"], "0.5", "--gpus-per-worker", "gpus_per_worker"),
    ("--eval-source", ["sweep", "scale", "--out", "x"], "mnist", "--eval-data", "eval_data"),
    ("--eval-root", ["sweep", "scale", "--out", "x"], "/data", "--eval-data-root", "eval_data_root"),
]


@pytest.mark.parametrize("old,line,value,new,dest", RENAMED)
def test_an_old_flag_spelling_still_works_and_names_the_new_one(capsys, old, line, value, new, dest):
    from raycl.cli import build_parser

    parse = build_parser().parse_args
    got = getattr(parse([*line, old, value]), dest)
    assert got == getattr(parse([*line, new, value]), dest) and str(got) == value
    assert f"{old} is now {new}" in capsys.readouterr().err
    assert getattr(parse(line), dest) != got  # the default is not the value given


def test_old_spellings_are_hidden_and_no_family_shows_another_word_for_a_shared_flag():
    import argparse

    from raycl.cli import build_parser

    old = {o for o, *_ in RENAMED} | {"--workers"}
    for p in parsers(build_parser()):
        shown = {o for a in p._actions if a.help != argparse.SUPPRESS for o in a.option_strings}
        # --workers is A3C's worker actors, the one family with workers of its own
        assert not (shown & old) - ({"--workers"} if p.prog == "raycl atari" else set()), p.prog
        if "--address" in shown:
            assert "--num-cpus" in shown, p.prog


def test_selfnet_workers_maps_to_num_cpus_or_no_ray(capsys):
    from raycl.cli import build_parser

    a = build_parser().parse_args(["selfnet", "scaling", "--out", "x", "--workers", "3"])
    assert (a.no_ray, a.num_cpus) == (False, 3)
    a = build_parser().parse_args(["selfnet", "scaling", "--out", "x", "--workers", "0"])
    assert (a.no_ray, a.num_cpus) == (True, None)
    assert "--workers is now --num-cpus" in capsys.readouterr().err


def test_every_config_field_has_a_flag_and_the_defaults_are_the_dataclasses():
    import dataclasses

    from raycl.cli import build_parser
    from raycl.cliargs import config_values
    from raycl.hyper.config import HyperConfig
    from raycl.sine.config import SineConfig, SineRun

    parse = build_parser().parse_args
    for line, classes in ((["hyper-train", "--out", "x"], [HyperConfig]), (["sine", "--out", "x"], [SineConfig, SineRun])):
        args = parse(line)
        for cls in classes:
            names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
            assert names <= set(vars(args)), (cls.__name__, names - set(vars(args)))
            assert config_values(args, cls) == {}  # nothing set: every value comes from the dataclass (or preset)
    args = parse(["sine", "--out", "x", "--no-skips", "--hidden", "8", "8", "--variants", "meta_fixed,random_fixed"])
    assert config_values(args, SineConfig) == {"skips": False, "hidden": (8, 8)}
    assert config_values(args, SineRun) == {"variants": ("meta_fixed", "random_fixed")}
    assert SineConfig().optimizer == "adam"  # one default: what `raycl sine` runs with
    from raycl.active.config import ActiveTrainConfig

    active = config_values(parse(["active", "run", "--out", "x"]), ActiveTrainConfig)
    assert ActiveTrainConfig(**active) == ActiveTrainConfig()  # the flags' defaults are the dataclass's
    from raycl.active.config import BACKBONES
    from raycl.active.models import ENCODERS

    assert set(BACKBONES) == {"auto", *ENCODERS}  # the flag's choices are the encoders there are


@pytest.mark.parametrize("action,flag", [
    ("multiarch", "--stream"), ("multiarch", "--buffer"), ("multiarch", "--stop"), ("multiarch", "--decoder-hidden"),
    ("multiarch", "--init-source"), ("multiarch", "--tune-epochs"), ("robustness", "--tune-lr"),
    ("robustness", "--anchor-lam"), ("robustness", "--init-source"), ("robustness", "--buffer"),
])
def test_selfnet_actions_refuse_the_flags_they_would_ignore(capsys, action, flag):
    from raycl.cli import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["selfnet", action, "--out", "x", flag, "1"])
    assert e.value.code == 2 and f"unrecognized arguments: {flag}" in capsys.readouterr().err
