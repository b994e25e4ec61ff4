"""The `flextape-bench` entry point: a stop ends the command with one line and exit code 128 + the signal."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_module(tmp_path: Path, body: str, progress: str = "0") -> subprocess.CompletedProcess:
    """Run `body` as a module with -m, as the installed command runs its entry point (FLEXTAPE_PROGRESS=`progress`)."""
    (tmp_path / "stopped_command.py").write_text(textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "-m", "stopped_command"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "", "FLEXTAPE_PROGRESS": progress},
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


def test_the_stop_line_starts_its_own_line_after_a_progress_bar(tmp_path):
    # In a --num-processes run another process's bar can be the last thing written, ending on a cursor-up escape with
    # no newline; the stop line must still be a line of its own (a fault-injection trial found it glued to one).
    done = run_module(
        tmp_path,
        """
        import sys, flextape_bench.__main__ as entry_point, flextape_bench.cli as cli
        from flextape_bench.progress import progress_bar
        def main():
            for _ in progress_bar(range(3), desc="scoring"):
                break
            sys.stderr.write("worker scoring:  33%|###    | 1/3 [00:01<00:02]\\x1b[A")
            raise KeyboardInterrupt
        cli.main = main
        raise SystemExit(entry_point.entry())
    """,
        progress="1",
    )
    assert done.returncode == 130
    assert done.stderr.splitlines()[-1] == (
        "flextape-bench: stopped by SIGINT; what was finished is kept: run the same command again to go on where it "
        "stopped"
    )
