"""``datacatalog run``: run a command as a managed job's execute step (one line in a batch script).

::

    datacatalog run --pipeline ID --sample-id S [--data JSON] [--input PATH ...]
                    [--instanced] [--index/--no-index] [--timeout S] [--retries N]
                    [--grace S] [--force | --rerun-stale] [--verify sha256|size]
                    -- COMMAND ARGS...
    datacatalog run --job UUID [--token T] -- COMMAND ARGS...

Running the same line again is safe (the decision of :mod:`datacatalog.jobs.reruns`): a
job whose indexed outputs still verify runs nothing and exits 0 with one line saying so;
a FAILED one runs again; a stale one (outputs missing or changed) is refused naming the
files (exit 10) unless ``--rerun-stale``; ``--force`` runs it again anyway.

The job is created (or attached to) and driven by a stage driver
(:class:`datacatalog.driver.Driver`) whose execute step runs COMMAND in a process group
of its own. COMMAND's environment names the job::

    DATACATALOG_JOB_UUID     the job            DATACATALOG_JOB_TOKEN   its token
    DATACATALOG_ARCHIVE_PATH a local directory for the outputs (on a non-local storage
                             system: a staging directory uploaded after success)
    DATACATALOG_WEBHOOK      the job's webhook  DATACATALOG_INPUTS      its inputs (JSON)

The job's creation and every event the driver sends are safe to send again (the job's
UUID comes from its plan, each event carries a key of the driver's), and are sent again
while the database is unavailable, as during a replica set election.

COMMAND's output is streamed (to stderr with ``--json``, so stdout stays one JSON
document); its exit status decides finish or fail, and the fail event keeps the exit
code and the last lines of its stderr. SIGINT or SIGTERM cancels: the process group gets
SIGTERM, then SIGKILL after the grace period, and the job fails with reason
``cancelled``. ``datacatalog run`` exits with COMMAND's exit status (128 + N when a
signal N ended it), or with the error table's code when the catalog refused.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any

import click
from rich.markup import escape

from datacatalog.cli.context import App, person, runs_command_line, stopped_by_signals
from datacatalog.cli.params import json_object
from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from rich.console import Console

    from datacatalog.driver import Driver, DriverResult, Payload

STDERR_TAIL_LINES = 20
DEFAULT_GRACE = 10.0
_POLL = 0.05


class CommandFailed(Exception):
    """COMMAND ended with a non-zero status; carries the status and its stderr's end."""

    def __init__(self, command: Sequence[str], status: int, stderr_tail: list[str]) -> None:
        self.status = status
        self.stderr_tail = stderr_tail
        shown = f"signal {-status}" if status < 0 else f"exit code {status}"
        super().__init__(f"{command[0]} ended with {shown}")
        self.record_details = {"exit_code": exit_status(status), "stderr_tail": stderr_tail}


def exit_status(returncode: int) -> int:
    """A process's return code as a shell reports it (a signal N is 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--pipeline", metavar="ID_OR_UUID", help="The pipeline of a new (or found) job.")
@click.option("--experiment-id", multiple=True, metavar="ID", help="Experiment id or UUID.")
@click.option("--sample-id", multiple=True, metavar="ID", help="Sample id or UUID.")
@click.option("--measurement-id", multiple=True, metavar="ID", help="Measurement id or UUID.")
@click.option("--data", callback=json_object, metavar="JSON", help="Job parameters (JSON object).")
@click.option("--input", "inputs", multiple=True, metavar="PATH_OR_URI", help="An input file.")
@click.option("--instanced", is_flag=True, help="Give the run its own instanced directory.")
@click.option("--job", "job_uuid", metavar="UUID", help="Drive this existing job instead.")
@click.option("--agent", metavar="TEXT", help="Who makes a new job [default: user@host].")
@click.option("--task", metavar="TEXT", help="What a new job is for [default: COMMAND].")
@click.option("--token", metavar="TOKEN", help="The job token (default: from the local secret).")
@click.option(
    "--index/--no-index", default=True, show_default=True, help="Index the outputs after success."
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Stage timeout, s.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when the command is stopped.",
)
@click.option(
    "--force", is_flag=True, help="Run again even when the job is up to date (a new execution)."
)
@click.option(
    "--rerun-stale",
    is_flag=True,
    help="Run again when the outputs of a job that ran are missing or changed (else exit 10).",
)
@click.option(
    "--verify",
    type=click.Choice(["sha256", "size"]),
    default="sha256",
    show_default=True,
    help="How a job that ran is checked to be up to date: hash its outputs again, or sizes.",
)
@runs_command_line
def run(
    ctx: click.Context,
    app: App,
    pipeline: str | None,
    experiment_id: tuple[str, ...],
    sample_id: tuple[str, ...],
    measurement_id: tuple[str, ...],
    data: dict[str, Any] | None,
    inputs: tuple[str, ...],
    instanced: bool,
    job_uuid: str | None,
    agent: str | None,
    task: str | None,
    token: str | None,
    index: bool,
    timeout: float | None,
    retries: int,
    grace: float,
    force: bool,
    rerun_stale: bool,
    verify: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (after --) as the execute step of a managed job.

    Creates the job for PIPELINE on some metadata (or finds it), or drives the job
    given with --job, under the job's lease: a second run of a job already running
    elsewhere is refused (exit 9). A job that ran and whose outputs verify runs nothing
    (exit 0); a FAILED job runs again; a stale one is refused (exit 10) unless
    --rerun-stale; --force runs it again anyway. Exits with COMMAND's exit status.
    """
    # Imported here: the command line stays quick to start for every other command.
    from datacatalog.driver import Driver

    argv = _command(command)
    if job_uuid is not None and (pipeline or experiment_id or sample_id or measurement_id):
        raise InvalidRequestError("give --job, or --pipeline with metadata ids, not both")
    if job_uuid is None and pipeline is None:
        raise InvalidRequestError("give --pipeline (with metadata ids) or --job")
    if job_uuid is not None and (data is not None or inputs or instanced or agent or task):
        raise InvalidRequestError(
            "--data, --input, --instanced, --agent and --task describe a new job, not --job"
        )
    catalog = app.catalog
    subject: Any = job_uuid
    if job_uuid is None:
        assert pipeline is not None
        plan = catalog.jobs.plan(
            pipeline=pipeline,
            metadata={
                "experiment_id": list(experiment_id) or None,
                "sample_id": list(sample_id) or None,
                "measurement_id": list(measurement_id) or None,
            },
            data=data,
            inputs=list(inputs) or None,
            instanced=instanced,
            agent=agent if agent is not None else person(),
            task=task if task is not None else shlex.join(argv),
        )
        if plan.instanced:
            # Claiming a fresh instanced path may take tries: created first. The plan
            # fixes the job's UUID, so creating it again attaches: safe to resend.
            job, _created = catalog.store.failover.call(
                lambda: catalog.jobs.create(plan), what=f"create the job of pipeline {pipeline}"
            )
            job_uuid, subject = job.uuid, job  # the driver need not read it again
        else:
            # The driver creates the job in the write that starts it (or finds it).
            job_uuid, subject = plan.uuid, plan
    job_token = token if token is not None else catalog.jobs.job_token(job_uuid)
    runner = CommandStep(
        argv,
        app=app,
        webhook=catalog.jobs.webhook_url(job_uuid),
        inputs=inputs,
        grace=grace,
        output=sys.stderr if app.json_mode else sys.stdout,
    )
    driver = Driver(
        subject,
        catalog=catalog,
        token=job_token,
        execute=runner.execute,
        max_attempts=retries + 1,
        stage_timeout=timeout,
        index_outputs=index,
        force=force,
        if_stale="rerun" if rerun_stale else "error",
        verify=verify,
    )
    with stopped_by_signals(lambda _signum: driver.cancel()):
        driver.start()
        while not driver.wait(0.2):  # in slices: signal handlers run between them
            pass
    runner.stop()  # a command abandoned by a timeout must not outlive us
    result = driver.wait_for_completion()
    app.out.emit(result.to_dict(), lambda console: _render(console, result))
    ctx.exit(_exit_code(result, runner))


def _command(command: tuple[str, ...]) -> list[str]:
    argv = list(command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise InvalidRequestError("no command given: put it after --, as in `-- ./analyze.sh`")
    if argv[0].startswith("-"):
        raise InvalidRequestError(f"unknown option {argv[0]!r}; put the command after --")
    if shutil.which(argv[0]) is None:
        raise InvalidRequestError(f"command not found: {argv[0]}")
    return argv


class CommandStep:
    """The execute step: runs the command in its own process group, streams its output."""

    def __init__(
        self,
        argv: list[str],
        *,
        app: App,
        webhook: str,
        inputs: Sequence[str],
        grace: float,
        output: IO[str],
    ) -> None:
        from datacatalog.jobs.references import file_reference_uuid, is_file_reference

        self.argv = argv
        # The job keeps its inputs' UUIDs; the names given here say what they were.
        self.named_inputs = {file_reference_uuid(i): i for i in inputs if is_file_reference(i)}
        self.app = app
        self.webhook = webhook
        self.grace = grace
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def execute(self, driver: Driver, payload: Payload) -> bool:
        """Run the command once; raise :class:`CommandFailed` unless it exits 0."""
        (output,) = payload.output_entries
        staging: str | None = None
        archive_dir = output.path
        if archive_dir is None:  # not a local system: stage, upload after success
            staging = tempfile.mkdtemp(prefix="datacatalog-run-")
            archive_dir = staging
        env = dict(os.environ)
        env.update(self.app.catalog_env())
        env.update(
            {
                "DATACATALOG_JOB_UUID": str(driver.job_id),
                "DATACATALOG_JOB_TOKEN": driver.token or "",
                "DATACATALOG_ARCHIVE_PATH": archive_dir,
                "DATACATALOG_WEBHOOK": self.webhook,
                "DATACATALOG_INPUTS": json.dumps(self._inputs(payload)),
            }
        )
        try:
            status, tail = self._run(env, driver)
            if status != 0:
                raise CommandFailed(self.argv, status, tail)
            if staging is not None:
                system = driver.catalog.storage.get(output.system)
                system.put_tree(staging, output.name)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return True

    def _inputs(self, payload: Payload) -> list[dict[str, Any]]:
        entries = []
        for entry in payload.input_entries:
            body = entry.to_dict()
            if entry.uuid in self.named_inputs and body["name"] == entry.uuid:
                body["name"] = self.named_inputs[entry.uuid]
            entries.append(body)
        return entries

    def _run(self, env: dict[str, str], driver: Driver) -> tuple[int, list[str]]:
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        out_target = None if self.output is sys.stdout else subprocess.PIPE
        with self._lock:
            process = subprocess.Popen(
                self.argv,
                env=env,
                stdout=out_target,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: a cancel stops all of it
            )
            self.process = process
        pumps = [threading.Thread(target=_pump, args=(process.stderr, sys.stderr, tail))]
        if process.stdout is not None:
            pumps.append(threading.Thread(target=_pump, args=(process.stdout, self.output, None)))
        for pump in pumps:
            pump.daemon = True
            pump.start()
        while process.poll() is None:
            if driver.cancel_requested:
                self._terminate(process)
                break
            with suppress(subprocess.TimeoutExpired):
                process.wait(_POLL)
        status = process.wait()
        for pump in pumps:
            pump.join(5)
        self.returncode = status
        return status, list(tail)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period."""
        _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while process.poll() is None and time.monotonic() < deadline:
            with suppress(subprocess.TimeoutExpired):
                process.wait(_POLL)
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Stop the command's process group if it still runs (a timed-out, stuck command)."""
        with self._lock:
            process = self.process
        if process is not None:
            if process.poll() is None:
                self._terminate(process)
            else:
                _signal_group(process, signal.SIGKILL)  # stragglers left in its group


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _pump(source: IO[bytes] | None, target: IO[str], tail: deque[str] | None) -> None:
    """Copy a child's output line by line to ``target``, keeping the last lines in ``tail``."""
    if source is None:
        return
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        with suppress(OSError, ValueError):
            target.write(line)
            target.flush()
        if tail is not None:
            tail.append(line.rstrip("\n"))
    source.close()


def _exit_code(result: DriverResult, runner: CommandStep) -> int:
    """COMMAND's status when it decided the outcome; else the error table's code."""
    from datacatalog.errors import ERROR_TABLE

    if result.succeeded:
        return 0
    process = runner.process
    status = runner.returncode if process is None else process.returncode
    if status not in (None, 0) and result.phase == "execute":
        assert status is not None
        return exit_status(status)
    error = result.event_error or result.error or {}
    details = error.get("details") or {}
    if isinstance(details.get("exit_code"), int):
        return int(details["exit_code"])
    code = {"lease_lost": "lease_lost"}.get(result.reason or "", "error")
    return ERROR_TABLE[code].exit_code


def _render(console: Console, result: DriverResult) -> None:
    if result.up_to_date:
        console.print(f"[green]{escape(result.message or 'up to date')}[/green]")
        return
    if result.succeeded:
        files = f", {result.index_report.written} file(s) indexed" if result.index_report else ""
        console.print(
            f"[green]job {result.state}[/green] after {result.attempts} attempt(s){files}"
        )
        return
    error = result.error or {}
    message = f" — {escape(str(error['message']))}" if error.get("message") else ""
    console.print(f"[red]job {result.state}[/red]: {result.reason} in {result.phase}{message}")
