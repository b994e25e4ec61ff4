"""The fault-injection script, quick: two trials of a killed and resumed run (real CLI subprocesses, SIGKILL, damaged
files) on a tiny random Llama, each finishing byte-identical to a clean run. About a minute on 2 cores."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"


@pytest.mark.faults
def test_killed_and_damaged_runs_finish_identical_to_a_clean_run(tiny_llama, tmp_path, data_dir):
    model = tmp_path / "tiny-llama"
    tiny_llama.model.save_pretrained(model)
    tiny_llama.tokenizer.save_pretrained(model)
    done = subprocess.run([sys.executable, str(SCRIPT), "--trials", "2", "--seed", "3", "--max-kills", "1", "--limit",
                           "2", "--model", str(model), "--data-dir", str(data_dir), "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert len(trials) == 2 and all(line.endswith("identical: yes") for line in trials)
    assert lines[-1].endswith("identical to the clean run: 2 of 2")
