import pytest

from raycl.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "data" in capsys.readouterr().out


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
