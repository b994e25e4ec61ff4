"""The transport of a run over several processes (data parallel): rank 0 runs the benchmark and asks the others.

This module only starts processes and moves commands and answers between them; what a command does is the runner's
(`runner.WorkerCommands`, and rank 0's side of each command in `runner.Runner`). Rank 0 asks with `Workers.ask`
(a command name, its common arguments and each rank's share); every other rank `serve`s: it calls the command of
the same name on its handler with the common arguments and its share, and sends the answer back. `stop` ends them.

Commands travel as pickled objects over a gloo process group (on GPUs too: messages are small next to the work, and
weight deltas go through the CPU). A failure in any process is answered rather than raised, so every process
finishes the command; rank 0 then raises it (a UserError keeps its one-line message) and stops the others with the
exit code it ends with.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from flextape_bench.errors import UserError

# The other ranks wait for rank 0's next command while it edits a chunk or generates texts alone (hours for a large
# MEMIT batch on a CPU). A process that dies closes its connections, so the others fail at once all the same.
TIMEOUT = timedelta(hours=24)
GRACE_S = 60  # how long `launch` waits for the other ranks once rank 0 has ended


def launches(processes: int | None) -> bool:
    """Whether `--num-processes` asks this process to start the others (`launch`): more than one, and no launcher
    (accelerate launch, torchrun: WORLD_SIZE in the environment) started this one."""
    if "WORLD_SIZE" in os.environ:
        return False
    if processes is not None and processes < 1:
        raise UserError(f"--num-processes must be a positive integer, got {processes}")
    return (processes or 1) > 1


def run_command(
    device: str, processes: int | None, lead: Callable[[Workers | None], int], handler: Callable[[], Any]
) -> int:
    """A command as this process alone or as one process of a launcher's group: rank 0 calls `lead` with a handle on
    the other ranks (None when alone), and every other rank serves it with `handler()`'s methods. The exit code is
    rank 0's, in every process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        _check_group(device, processes, size)
        return lead(None)
    rank = int(os.environ["RANK"])
    if device in ("cuda", "auto") and torch.cuda.is_available():  # auto: cuda here (models.loading.resolve_device)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    dist.init_process_group("gloo", timeout=TIMEOUT)
    try:
        return serve(handler()) if rank > 0 else _lead(device, processes, size, lead)
    finally:
        dist.destroy_process_group()


def _check_group(device: str, processes: int | None, size: int) -> None:
    """Refuse `--num-processes` other than the launcher's process count, and `--device spread` with several."""
    if processes is not None and processes != size:
        raise UserError(
            f"--num-processes {processes}, but the launcher (accelerate launch, torchrun) started {size} "
            "processes; under a launcher leave --num-processes out"
        )
    if size > 1 and device == "spread":
        raise UserError(
            "--device spread spreads one model over every device, which several processes cannot share; "
            "use --device cuda (one GPU per process) or --device cpu"
        )


def _lead(device: str, processes: int | None, size: int, lead: Callable[[Workers | None], int]) -> int:
    """Rank 0: `lead` with a handle on the others, who are stopped with its exit code however it ends."""
    workers = Workers(size)
    try:
        _check_group(device, processes, size)
        code = lead(workers)
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the other processes may be gone already
            workers.stop(2 if isinstance(exc, UserError) else 1)
        raise
    workers.stop(code)
    return code


def launch(processes: int, argv: Sequence[str]) -> int:
    """Start `processes` copies of the command `argv` on this machine as ranks 0..N-1 of a group on 127.0.0.1 and a
    free port (as `torchrun --nproc-per-node N` would) and wait for them; returns rank 0's exit code."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": str(processes),
        "LOCAL_WORLD_SIZE": str(processes),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "flextape_bench", *argv], env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        )
        for rank in range(processes)
    ]
    try:
        code = children[0].wait()
        for child in children[1:]:  # rank 0 stops them as it ends
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=GRACE_S)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return code


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Workers:
    """Rank 0's handle on the other `size - 1` processes of a run."""

    def __init__(self, size: int):
        self.size = size

    def ask(self, command: str, common: tuple, shares: Sequence[tuple], own: Callable[..., Any]) -> list[Any]:
        """Every process runs `command` with the `common` arguments and its share (rank r: `shares[r]`; this process
        runs `own(*shares[0])`); returns the answers in rank order. A failure is raised once all have answered:
        this process's own exception, else the lowest failed rank's (a UserError keeps its message)."""
        dist.broadcast_object_list([(command, common)], src=0)
        dist.scatter_object_list([None], [None, *shares[1:]], src=0)
        failure = None
        try:
            mine = ("ok", own(*shares[0]))
        except Exception as exc:
            mine, failure = ("failed", None), exc
        answers: list[Any] = [None] * self.size
        dist.gather_object(mine, answers, dst=0)
        if failure is not None:
            raise failure
        for rank, (status, value) in enumerate(answers):
            if status == "user":
                raise UserError(value)
            if status == "error":
                raise RuntimeError(f"process {rank} of {self.size} failed:\n{value}")
        return [value for _, value in answers]

    def stop(self, code: int) -> None:
        """The others end with exit code `code`."""
        dist.broadcast_object_list([("stop", (code,))], src=0)


def serve(handler: Any) -> int:
    """A rank other than 0: answer rank 0's commands with `handler`'s methods of the same names until it stops this
    process; returns the exit code it gives."""
    os.environ["FLEXTAPE_PROGRESS"] = "0"  # rank 0 shows the progress
    while True:
        message: list[Any] = [None]
        dist.broadcast_object_list(message, src=0)
        command, common = message[0]
        if command == "stop":
            return common[0]
        share: list[Any] = [None]
        dist.scatter_object_list(share, None, src=0)
        try:
            answer = ("ok", getattr(handler, command)(*common, *share[0]))
        except UserError as exc:
            answer = ("user", str(exc))
        except Exception:
            answer = ("error", traceback.format_exc())
        dist.gather_object(answer, None, dst=0)
