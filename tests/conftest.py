import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny nets: one thread avoids spin-waiting on a shared, loaded machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def run_cli(capsys, *argv):
    """Run `raycl ARGV` in this process: (exit code, stdout, stderr)."""
    from raycl.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one line an error ends with; fails if there is more than one raycl line or a traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    mine = [line for line in lines if line.startswith("raycl")]
    assert len(mine) == 1 and lines[-1] == mine[0], err
    return mine[0]


def snapshot(folder) -> dict:
    """Every file under `folder` with its bytes and mtime: to show nothing on disk changed."""
    from pathlib import Path

    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cli(capsys):
    """cli(*argv) -> (code, stdout, stderr) of `raycl ARGV` run in this process."""
    return lambda *argv: run_cli(capsys, *argv)


def refused(cli, argv, code=2, *, keep=(), absent=()):
    """Run argv, expect `code` and one error line; folders/files in `keep` unchanged, `absent`
    not created. Returns the error line."""
    from pathlib import Path

    def state(k):
        return snapshot(k) if Path(k).is_dir() else Path(k).read_bytes()

    before = {str(k): state(k) for k in keep}
    got, _, err = cli(*argv)
    assert got == code, err
    line = error_line(err)
    for k in keep:
        assert state(k) == before[str(k)], f"{k} changed"
    for a in absent:
        assert not Path(a).exists(), f"{a} was created"
    return line


def write_lock(folder, pid: int, host: str | None = None) -> None:
    """A run-folder lock as raycl writes it, held by `pid` on `host` (default: this host)."""
    import json
    import socket
    from pathlib import Path

    (Path(folder) / ".raycl.lock").write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01 00:00:00", "command": "raycl"}))


def refused_while_locked_then_taken_over(cli, run, argv) -> None:
    """`raycl ARGV` writing into `run`: refused (naming the holder) while a live process holds
    run's lock, then accepted once that process is gone (a stale lock is taken over)."""
    import subprocess
    import sys

    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(run, holder.pid)
        line = refused(cli, argv, keep=[run])
        assert f"pid {holder.pid}" in line and "in use" in line
    finally:
        holder.kill()
        holder.wait()
    code, _, err = cli(*argv)
    assert code == 0, err
    assert not (run / ".raycl.lock").exists()
