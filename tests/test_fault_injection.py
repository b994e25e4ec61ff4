"""The fault-injection script, quick: trials of ROME (key statistics of a sampled corpus), MEND (a trained
checkpoint) and FT-L over two processes, stopped by SIGKILL, SIGTERM and SIGINT, one of them two processes started
at once, on a full disk where a tmpfs can be mounted (root), with damaged files; each must finish byte-identical to
a clean run. Real CLI subprocesses on a tiny random Llama; about three minutes on 2 cores."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
sys.path.insert(0, str(SCRIPT.parent))
from fault_injection import can_mount  # noqa: E402


@pytest.mark.faults
def test_stopped_concurrent_and_damaged_runs_finish_identical_to_a_clean_run(tiny_llama, tmp_path, data_dir):
    model = tmp_path / "tiny-llama"
    tiny_llama.model.save_pretrained(model)
    tiny_llama.tokenizer.save_pretrained(model)
    disk = ["--full-disk", "0.5"] if can_mount() else []
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--trials",
            "3",
            "--seed",
            "3",
            "--max-kills",
            "2",
            "--scenarios",
            "rome,mend,processes",
            "--signals",
            "KILL,TERM,INT",
            "--concurrent",
            "0.5",
            *disk,
            "--limit",
            "2",
            "--model",
            str(model),
            "--data-dir",
            str(data_dir),
            "--workdir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert [t.split(":")[0] for t in trials] == ["trial 1 (rome)", "trial 2 (mend)", "trial 3 (processes)"]
    assert all(line.endswith("identical: yes") for line in trials)
    assert lines[-1].endswith("identical to the clean run: 3 of 3")
    assert "SIGTERM" in done.stdout and "SIGINT" in done.stdout and "two processes started at once" in done.stdout
