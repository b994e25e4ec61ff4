"""The fault-injection script, quick: trials of ROME (key statistics of a sampled corpus), MEND (a trained
checkpoint) and FT-L over two processes, stopped by SIGKILL, SIGTERM and SIGINT, one of them two processes started
at once, on a full disk where a tmpfs can be mounted (root), with damaged files; each must finish byte-identical to
a clean run; and a MEND trial on a full disk. Real CLI subprocesses on a tiny random Llama; about four minutes on 2
cores."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
sys.path.insert(0, str(SCRIPT.parent))
from fault_injection import can_mount  # noqa: E402


def _run_script(tiny_llama, tmp_path, data_dir, *flags: str) -> subprocess.CompletedProcess:
    """The script on `tiny_llama` (saved to disk) and the first 2 cases of the real task, with `flags`."""
    model = tmp_path / "tiny-llama"
    tiny_llama.model.save_pretrained(model)
    tiny_llama.tokenizer.save_pretrained(model)
    command = [sys.executable, str(SCRIPT), *flags, "--limit", "2", "--model", str(model), "--data-dir", str(data_dir)]
    return subprocess.run([*command, "--workdir", str(tmp_path / "work")], capture_output=True, text=True, timeout=900)


@pytest.mark.faults
def test_stopped_concurrent_and_damaged_runs_finish_identical_to_a_clean_run(tiny_llama, tmp_path, data_dir):
    disk = ["--full-disk", "0.5"] if can_mount() else []
    done = _run_script(
        tiny_llama,
        tmp_path,
        data_dir,
        *["--trials", "3", "--seed", "3", "--max-kills", "2", "--scenarios", "rome,mend,processes"],
        *["--signals", "KILL,TERM,INT", "--concurrent", "0.5", *disk],
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert [t.split(":")[0] for t in trials] == ["trial 1 (rome)", "trial 2 (mend)", "trial 3 (processes)"]
    assert all(line.endswith("identical: yes") for line in trials)
    assert lines[-1].endswith("identical to the clean run: 3 of 3")
    assert "SIGTERM" in done.stdout and "SIGINT" in done.stdout and "two processes started at once" in done.stdout


@pytest.mark.faults
@pytest.mark.skipif(not can_mount(), reason="a full disk needs a tmpfs mount (root)")
def test_a_mend_run_on_a_full_disk_is_given_its_checkpoint_and_finishes_identical(tiny_llama, tmp_path, data_dir):
    """The trial's disk holds the MEND checkpoint it is given (copied before the run) and only part of what the run
    writes: the first attempt ends with "no space left", the next finishes as the clean run did. Seed 309 draws a
    disk of 10% of the clean run's bytes, less than the checkpoint alone."""
    done = _run_script(
        tiny_llama, tmp_path, data_dir, *["--trials", "1", "--seed", "309", "--scenarios", "mend", "--full-disk", "1"]
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    trial = next(line for line in done.stdout.splitlines() if line.startswith("trial 1 (mend)"))
    assert "full disk" in trial and trial.endswith("identical: yes"), trial  # the script checks the first attempt
