"""Experiments side by side: worker processes, each with its share of the cores.

On a CPU a small model's training step keeps hardly more than one core
busy: the quick profile's MobileNetV2-0.35 at 32-96 px trains as fast on one
thread as on two, so two experiments on one thread each finish in about half
the time of one after the other, and a third worker on two cores fills the
gaps each leaves (BENCHMARKS.md, "experiments side by side").

Each worker is a fresh interpreter (`spawn`) whose thread counts are set
before the backend starts. An experiment's numbers depend on the threads it
trains with, not on the worker or the order: with the same threads per
experiment on the same machine, a run of one experiment gives what it gives
inside the nine.
"""

import importlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import sys
import threading
import traceback

from fcn_experiments.errors import UsageError

# Read when the backend creates its thread pools, so set before it starts.
THREAD_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
)
_POLL_SECONDS = 0.5
_CLOSE_SECONDS = 30  # For an idle worker to finish its output and exit.


class WorkerProcessError(RuntimeError):
    """A worker process ended without an error of its own (killed, out of
    memory); the message says which and what to do."""


def usable_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows.
        return os.cpu_count() or 1


def auto_jobs():
    """`jobs="auto"` on a CPU: one worker more than the cores, so that one
    worker's single-threaded phases (tracing, checkpoints, the end of the
    queue) leave no core idle; at most one per 2 GiB of memory (a worker
    of the quick profile holds about 1.3-1.7 GiB)."""
    jobs = usable_cores() + 1
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # Windows.
        return jobs
    return max(1, min(jobs, memory // 2**31))


def resolve_jobs(jobs, *, replicas, gpu, callbacks):
    """The number of worker processes for `jobs` (1: train in this process).

    Args:
        jobs: `Config.jobs`: `"auto"` or a positive integer.
        replicas: the strategy's replicas (several: one process trains).
        gpu: whether the backend sees a GPU (one process uses it).
        callbacks: the run's extra Keras callbacks, which live in this
            process.
    """
    if jobs == "auto":
        return 1 if gpu or replicas > 1 or callbacks else auto_jobs()
    if jobs > 1 and replicas > 1:
        raise UsageError(
            "`jobs` > 1 trains experiments in separate processes, each on "
            f"one device, but the strategy has {replicas} replicas. Pass "
            f"jobs=1 (or 'auto') with a distribution strategy. Received: jobs={jobs}"
        )
    if jobs > 1 and callbacks:
        raise UsageError(
            "`callbacks` run in this process, but `jobs` > 1 trains the "
            "experiments in worker processes. Pass jobs=1 to use callbacks. "
            f"Received: jobs={jobs}, callbacks={list(callbacks)}"
        )
    return jobs


def worker_count(jobs, pending, *, auto):
    """The worker processes to start for `pending` experiments: at most
    one each. `auto`'s extra worker fills the gaps of a long queue, but
    with no more experiments than workers it only shares the cores: three
    experiments on 2 cores took 74 s on three workers, 63 s on two
    (BENCHMARKS.md). The threads of each stay as `jobs` sets them."""
    if auto and pending <= jobs:
        return max(1, min(jobs, usable_cores(), pending))
    return min(jobs, pending)


def threads_per_job(jobs):
    """Each worker's share of the cores (at least one thread)."""
    return max(1, usable_cores() // jobs)


def training_threads():
    """The intra-op threads this process trains with (TensorFlow's setting,
    or the usable cores where the backend picks)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        threads = tf.config.threading.get_intra_op_parallelism_threads()
        if threads:
            return threads
    if keras.backend.backend() == "torch":
        import torch

        return torch.get_num_threads()
    return usable_cores()


class Workers:
    """`jobs` worker processes of `threads` threads each, started at once so
    that their imports overlap this process's own preparation; `run` gives
    them the work. A context manager: leaving it stops them.

    Args:
        target: `"module:function"`, imported in each worker once its
            threads are set, called as `function(state, number)`.
        jobs, threads: worker processes, and threads in each.
    """

    def __init__(self, target, *, jobs, threads):
        context = multiprocessing.get_context("spawn")
        self.tasks, self.events = context.Queue(), context.Queue()
        self.processes = [
            context.Process(
                target=_worker_main,
                args=(index, target, threads, self.tasks, self.events),
                name=f"fcn-experiments-worker-{index + 1}",
                daemon=True,
            )
            for index in range(jobs)
        ]
        for process in self.processes:
            process.start()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc_info):
        self.close(at_once=exc_type is not None)

    def run(self, state, numbers, *, on_event):
        """Has the workers call `target(state, number)` for each of
        `numbers`, in the order given (the longest first packs best).

        Args:
            state: what `target` needs besides the number.
            numbers: the work items.
            on_event: called in this process as `on_event(kind, number,
                value)`: `"start"` (value None), `"line"` (a line the worker
                printed: `(stream, text)`) and `"done"` (what `target`
                returned).

        Returns:
            `{number: what target returned}`.

        Raises:
            The first error of a worker (its traceback as a note), or
            `WorkerProcessError` if a worker died without one; the other
            workers are stopped first. A stopped experiment resumes from its
            last finished epoch on a re-run.
        """
        for number in numbers:
            self.tasks.put((state, number))
        results, running = {}, {}
        try:
            while len(results) < len(numbers):
                try:
                    kind, index, number, value = self.events.get(
                        timeout=_POLL_SECONDS
                    )
                except queue.Empty:
                    _check_alive(self.processes, running)
                    continue
                if kind == "error":
                    raise value
                if kind == "start":
                    running[index] = number
                elif kind == "done":
                    running.pop(index, None)
                    results[number] = value
                on_event(kind, number, value)
        except BaseException:
            self.close(at_once=True)
            raise
        return results

    def close(self, at_once=False):
        """Stops the workers: by a stop sign once their work is done, or
        `at_once` (after an error: work still queued must not start)."""
        if not at_once:
            for _ in self.processes:
                self.tasks.put(None)
        for process in self.processes:
            if not at_once:
                process.join(timeout=_CLOSE_SECONDS)
            if process.is_alive():
                process.terminate()
            process.join()
        self.tasks.close()
        self.events.close()
        self.processes = []


def _check_alive(workers, running):
    for index, worker in enumerate(workers):
        if worker.exitcode not in (None, 0):
            number = running.get(index)
            doing = f"while training experiment {number}" if number else ""
            raise WorkerProcessError(
                f"Worker process {worker.name} stopped (exit code "
                f"{worker.exitcode}) {doing}, without an error of its own "
                "(killed, or out of memory?). Run the same command again to "
                "resume from the last finished epoch, or pass jobs=1."
            )
    if all(worker.exitcode is not None for worker in workers):
        raise WorkerProcessError(
            "Every worker process ended before all experiments finished. Run "
            "the same command again to resume them, or pass jobs=1."
        )


def _worker_main(index, target, threads, tasks, events):
    # This process's thread counts, before the backend starts.
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # The parent stops us.
    _exit_with_parent()
    number = None
    sys.stdout = _EventLines(events, index, "stdout", lambda: number)
    sys.stderr = _EventLines(events, index, "stderr", lambda: number)
    try:
        _limit_threads(threads)
        module, name = target.split(":")
        function = getattr(importlib.import_module(module), name)
        while (task := tasks.get()) is not None:
            state, number = task
            events.put(("start", index, number, None))
            result = function(state, number)
            sys.stdout.flush()
            sys.stderr.flush()
            events.put(("done", index, number, result))
    except BaseException as error:
        sys.stdout.flush()
        sys.stderr.flush()
        events.put(("error", index, number, _sendable(error)))


def _limit_threads(threads):
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    elif keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)


def _exit_with_parent():
    """Ends this worker when the process that started it dies (even by
    SIGKILL): an orphan must not go on writing a folder a re-run resumes."""
    parent = multiprocessing.parent_process()

    def watch():
        multiprocessing.connection.wait([parent.sentinel])
        # At once, without the interpreter's clean-up: nothing of the
        # experiment may be written after this.
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _sendable(error):
    """`error` with its traceback as a note, if it survives pickling; else a
    `RuntimeError` that says what it was."""
    details = "".join(traceback.format_exception(error)).rstrip()
    if not isinstance(error, UsageError):
        error.add_note(f"In the worker process:\n{details}")
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(
            f"{type(error).__name__}: {error}\nIn the worker process:\n{details}"
        )


class _EventLines:
    """A text stream that sends each complete line to the parent process,
    which prints it: a notebook shows the workers' output too."""

    def __init__(self, events, index, stream, number):
        self.events, self.index, self.stream = events, index, stream
        self.number = number
        self.pending = ""

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._send(line)
        return len(text)

    def flush(self):
        if self.pending:
            self._send(self.pending)
            self.pending = ""

    def _send(self, line):
        # A progress bar's carriage returns: keep what it drew last.
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            self.events.put(
                ("line", self.index, self.number(), (self.stream, line))
            )

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"
