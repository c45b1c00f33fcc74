"""Rendering chunks of views in worker processes that the parent watches itself.

Neither multiprocessing.Pool nor ProcessPoolExecutor ends reliably when a worker is killed: a
Pool waits for ever on the dead worker's chunk, and the executor's shutdown joins a queue
feeder thread that can be stuck writing to a pipe nobody reads (seen as a 120 s hang in CI).
Here each worker has a pipe of its own and no queue, lock or feeder thread is shared: the
parent waits on the pipes and the processes' sentinels together, so a worker that dies is seen
at once, and the parent kills the others itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from geoloc_core.demo_world.worker import init_worker, render_chunk

STOP_GRACE_S = 10.0


class RenderProcessDied(RuntimeError):
    """A render process ended while it still had views to render (killed, out of memory)."""


class RenderFailed(RuntimeError):
    """A view could not be rendered; the message holds the worker's traceback."""


def _serve(connection: Connection, initargs: tuple[Any, ...]) -> None:
    """A worker: render each chunk it is sent, answer with the number of views or the error,
    and end at None."""
    init_worker(*initargs)
    while True:
        chunk = connection.recv()
        if chunk is None:
            return
        try:
            connection.send(("done", render_chunk(chunk)))
        except Exception:  # the parent raises it, with this traceback
            connection.send(("failed", traceback.format_exc()))


def render_in_processes(
    chunks: Sequence[list[Any]],
    workers: int,
    initargs: tuple[Any, ...],
    on_done: Callable[[int], object],
) -> None:
    """Renders every chunk in `workers` spawned processes (spawn, not fork: callers such as
    Dagster or pytest may have threads running), calling on_done(views) per finished chunk.
    Raises RenderProcessDied or RenderFailed; either way no worker is left running."""
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    pipes: list[Connection] = []
    finished = False
    try:
        for _ in range(min(workers, len(chunks))):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, initargs), daemon=True)
            process.start()
            theirs.close()
            processes.append(process)
            pipes.append(ours)
        waiting = iter(chunks)
        busy: set[Connection] = set()

        def hand_out(pipe: Connection) -> None:
            chunk = next(waiting, None)
            if chunk is not None:
                pipe.send(chunk)
                busy.add(pipe)

        for pipe in pipes:
            hand_out(pipe)
        sentinels = {process.sentinel: process for process in processes}
        while busy:
            ready = wait([*busy, *sentinels])
            for pipe in [r for r in ready if r in busy]:
                try:
                    outcome, value = pipe.recv()
                except EOFError as error:
                    raise RenderProcessDied("a render process closed its pipe") from error
                if outcome == "failed":
                    raise RenderFailed(f"a render process failed:\n{value}")
                busy.discard(pipe)
                on_done(value)
                hand_out(pipe)
            dead = [sentinels[r] for r in ready if r in sentinels]
            if dead and busy:
                raise RenderProcessDied(
                    f"render process {dead[0].pid} ended with exit code {dead[0].exitcode}"
                )
        finished = True
    finally:
        _stop(processes, pipes, gracefully=finished)


def _stop(processes: list[BaseProcess], pipes: list[Connection], gracefully: bool) -> None:
    """Ends every worker: asked to stop after a full run, killed after a failure (a killed
    sibling may have left nothing to ask)."""
    for pipe, process in zip(pipes, processes, strict=True):
        if gracefully and process.is_alive():
            with contextlib.suppress(OSError):  # it ended between the check and the send
                pipe.send(None)
    for process in processes:
        if gracefully:
            process.join(STOP_GRACE_S)
        if process.is_alive():
            process.kill()
        process.join()
    for pipe in pipes:
        pipe.close()
