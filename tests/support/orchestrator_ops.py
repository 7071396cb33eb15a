"""Operations and workflows the orchestrator tests run (importable, so they pickle)."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections import defaultdict
from typing import Any

from datacatalog.orchestrator.decorators import operation, workflow

# Shared by the thread-executor tests only (a process has its own copy).
CALLS: defaultdict[str, list[str]] = defaultdict(list)
BARRIERS: dict[str, threading.Barrier] = {}
GATES: dict[str, threading.Event] = {}


class ListHandler(logging.Handler):
    """Keeps the messages it is given (an operation's extra logging handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


EXTRA_HANDLER = ListHandler()


@operation(logging_handlers=[EXTRA_HANDLER])
def logs_twice(ctx: Any, key: str) -> None:
    ctx.logger.warning("seen by %s", key)
    CALLS[key].append(ctx.execution_id)


@operation
def record(ctx: Any, key: str, label: str) -> None:
    CALLS[key].append(label)
    ctx.logger.info("ran %s", label)


@operation
def meet(ctx: Any, key: str, label: str) -> None:
    # Passes only when the other side of the barrier runs at the same time.
    BARRIERS[key].wait()
    CALLS[key].append(label)


@operation
def fail_until(ctx: Any, key: str, succeed_on: int) -> None:
    CALLS[key].append(f"attempt {ctx.task.attempt}")
    if ctx.task.attempt < succeed_on:
        raise ValueError(f"not yet (attempt {ctx.task.attempt})")


@operation
def retry_with(ctx: Any, key: str, interval: float) -> None:
    CALLS[key].append(f"attempt {ctx.task.attempt}")
    if ctx.task.attempt == 1:
        ctx.task.retry("come back later", retry_interval=interval)


@operation
def aborting(ctx: Any, key: str) -> None:
    CALLS[key].append("abort")
    ctx.task.abort("this input can never work")


@operation(ignore_failure=True)
def optional(ctx: Any, key: str) -> None:
    CALLS[key].append("optional")
    raise RuntimeError("optional step broke")


@operation(max_attempts=1)
def broken(ctx: Any) -> None:
    def inner() -> None:
        raise KeyError("missing-column")

    try:
        inner()
    except KeyError as exc:
        raise LookupError("could not read the table") from exc


@operation
def wait_gate(ctx: Any, key: str) -> None:
    CALLS[key].append("waiting")
    GATES[key].wait(10)
    CALLS[key].append("released")


@operation
def poll_cancel(ctx: Any, key: str) -> None:
    for _ in range(500):
        if ctx.cancel_requested:
            CALLS[key].append("saw cancel")
            return
        time.sleep(0.01)


@operation
def noop(ctx: Any, **_: Any) -> None:
    return None


@operation
def die(ctx: Any) -> None:
    os._exit(3)


@operation
def write_output(ctx: Any, filename: str) -> None:
    assert ctx.job.archive_dir is not None
    with open(os.path.join(ctx.job.archive_dir, filename), "w", encoding="utf-8") as handle:
        handle.write(ctx.job.uuid)


@operation(toolbelt=True)
def with_toolbelt(ctx: Any, toolbelt: Any, key: str) -> None:
    toolbelt.output_path("sub", "out.txt").write_text(key)
    CALLS[key].append(str(ctx.inputs.get("sample")))


@workflow
def diamond(ctx: Any, graph: Any, key: str) -> None:
    top = graph.add(record, key=key, label="top")
    left = graph.add(meet, after=[top], name="left", key=key, label="left")
    right = graph.add(meet, after=[top], name="right", key=key, label="right")
    graph.add(record, after=[left, right], name="bottom", key=key, label="bottom")


@workflow
def chain(ctx: Any, graph: Any, key: str, steps: int = 3) -> None:
    previous = None
    for number in range(steps):
        previous = graph.add(
            record,
            after=[previous] if previous else [],
            name=f"step{number}",
            key=key,
            label=str(number),
        )


@workflow
def single(
    ctx: Any, graph: Any, op: str, key: str = "", sample: str = "", **arguments: Any
) -> None:
    graph.add(globals()[op], **({"key": key} if key else {}), **arguments)


@workflow
def with_optional(ctx: Any, graph: Any, key: str) -> None:
    first = graph.add(optional, key=key)
    graph.add(record, after=[first], key=key, label="after optional")


@workflow
def fail_then_more(ctx: Any, graph: Any, key: str) -> None:
    first = graph.add(broken)
    graph.add(record, after=[first], key=key, label="never")


@workflow
def gate_then_more(ctx: Any, graph: Any, key: str) -> None:
    first = graph.add(wait_gate, key=key)
    graph.add(record, after=[first], name="second", key=key, label="second")
    graph.add(record, after=["second"], name="third", key=key, label="third")


@workflow
def crash_and_fine(ctx: Any, graph: Any) -> None:
    graph.add(die)
    graph.add(write_output, name="fine", filename="fine.txt")


@workflow
def many_noops(ctx: Any, graph: Any, count: int) -> None:
    for number in range(count):
        graph.add(noop, name=f"noop{number}")


@workflow
def unpicklable_argument(ctx: Any, graph: Any) -> None:
    graph.add(noop, lock=threading.Lock())


@operation
def stubborn(ctx: Any) -> None:
    # Ignores the cancel flag: only killing its worker stops it.
    for _ in range(6000):
        time.sleep(0.01)


@operation(resources={"GPU": 1})
def on_a_gpu(ctx: Any) -> None:
    """Needs one GPU of a Dask worker."""


@operation(resources={"GPU": 2})
def on_two_gpus(ctx: Any) -> None:
    """Needs two GPUs of one Dask worker."""


@workflow
def gpu_work(ctx: Any, graph: Any, gpus: int = 1) -> None:
    graph.add(on_a_gpu if gpus == 1 else on_two_gpus, name="gpu")
    graph.add(noop, name="cpu")


def nothing_at_all(ctx: Any) -> None:
    """A plain function, to decorate in tests."""


@operation(max_attempts=2)
def hostile(ctx: Any) -> None:
    """Fails with markup in its message, which pages must show as text."""
    raise ValueError("<script>bad</script>")


@workflow
def hostile_then_more(ctx: Any, graph: Any) -> None:
    first = graph.add(hostile)
    graph.add(noop, after=[first], name="after")


class Halt(BaseException):
    """An exception that is not an Exception (as a library's own "stop" signal may be)."""


@operation
def halt(ctx: Any, kind: str = "custom") -> None:
    if kind == "generator-exit":
        raise GeneratorExit("closing the generator")
    raise Halt("stop right there")


@operation
def spawn_and_ignore_cancel(ctx: Any, pidfile: str) -> None:
    # Starts a long child process and never polls the cancel flag: only a hard stop ends it.
    child = subprocess.Popen(["sleep", "120"])
    with open(pidfile + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(str(child.pid))
    os.replace(pidfile + ".tmp", pidfile)
    for _ in range(12000):
        time.sleep(0.01)


@operation
def run_tool(ctx: Any, tool: str) -> None:
    # A plugin's script, found on PATH as the plugin loaded it.
    done = subprocess.run([tool], capture_output=True, text=True, check=True)
    ctx.logger.info("tool said %s", done.stdout.strip())


@operation(toolbelt=True)
def write_named(ctx: Any, toolbelt: Any, filename: str, text: str) -> None:
    toolbelt.output_path(filename).write_text(text, encoding="utf-8")


@operation(toolbelt=True)
def append_named(ctx: Any, toolbelt: Any, filename: str, text: str) -> None:
    path = toolbelt.output_path(filename)
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


@workflow
def typed(ctx: Any, graph: Any, text: str, times: int = 2, ratio: float = 0.5,
          loud: bool = False, label: str | None = None, anything: Any = None) -> None:  # fmt: skip
    graph.add(noop)


@workflow
def writers(ctx: Any, graph: Any, text: str = "hello") -> None:
    first = graph.add(write_named, filename="a.txt", text=text)
    graph.add(append_named, after=[first], filename="a.txt", text="!")
    graph.add(write_named, filename="sub/b.txt", text=text)


@workflow
def write_then_fail(ctx: Any, graph: Any, key: str, succeed_on: int = 2) -> None:
    first = graph.add(write_named, filename="kept.txt", text="first run")
    graph.add(fail_until, after=[first], key=key, succeed_on=succeed_on)


@operation(toolbelt=True, max_attempts=1)
def leftover_then_fail(ctx: Any, toolbelt: Any) -> None:
    toolbelt.output_path("leftover.txt").write_text("half done", encoding="utf-8")
    raise RuntimeError("died half-way")
