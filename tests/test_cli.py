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


def test_an_old_flag_spelling_still_works_and_names_the_new_one(capsys):
    from raycl.cli import build_parser

    args = build_parser().parse_args(["selfnet", "continual", "--out", "x", "--ray-address", "127.0.0.1:6379"])
    assert args.address == "127.0.0.1:6379"
    assert "--ray-address is now --address" in capsys.readouterr().err
    assert build_parser().parse_args(["selfnet", "continual", "--out", "x"]).address is None
