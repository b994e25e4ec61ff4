"""The `flextape-bench` entry point: a stop ends the command with one line and exit code 128 + the signal."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_module(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """Run `body` as a module with -m, as the installed command runs its entry point."""
    (tmp_path / "stopped_command.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "stopped_command"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=120,
    )


def test_ctrl_c_inside_code_run_from_a_string_exits_130(tmp_path):
    # Ctrl-C often lands while dataclasses build methods with exec() during imports; CPython then ends the process
    # by SIGINT (return code -2) unless the entry point clears its mark.
    done = run_module(
        tmp_path,
        """
        import flextape_bench.__main__ as entry_point, flextape_bench.cli as cli
        cli.main = lambda: exec("raise KeyboardInterrupt")
        raise SystemExit(entry_point.entry())
    """,
    )
    assert done.returncode == 130
    assert done.stderr.strip().splitlines() == [
        "flextape-bench: stopped by SIGINT; what was finished is kept: run the same command again to go on where it "
        "stopped"
    ]


def test_sigterm_exits_143_with_one_line(tmp_path):
    done = run_module(
        tmp_path,
        """
        import os, signal, flextape_bench.__main__ as entry_point, flextape_bench.cli as cli
        def main():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()
        cli.main = main
        raise SystemExit(entry_point.entry())
    """,
    )
    assert done.returncode == 143
    assert done.stderr.strip().splitlines()[-1].startswith("flextape-bench: stopped by SIGTERM;")
    assert len(done.stderr.strip().splitlines()) == 1
