"""One job for every long operation: a worker thread with progress, cancel and errors handed back.

Blender-free, so it is tested without an event loop: the operator's timer calls `poll(job)` (a
plain function) on the main thread, and only there touches bpy. The work is any callable taking a
progress callback (`Progress` -> True to stop), e.g. `Generator.run` over a request.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # torch-free at import, so the Blender side can import this without torch
    from .sampler import Progress

RUNNING, FINISHED, CANCELLED, ERROR = "RUNNING", "FINISHED", "CANCELLED", "ERROR"


@dataclass(frozen=True)
class JobState:
    """What one poll saw."""

    status: str
    """RUNNING, FINISHED, CANCELLED or ERROR."""
    step: int
    total: int
    result: Any = None
    """The work's return value once FINISHED."""
    error: BaseException | None = None
    """What went wrong once ERROR (the traceback is printed to the console by the worker)."""

    @property
    def progress(self) -> float:
        return min(1.0, self.step / max(1, self.total))


class Job:
    """`work(on_progress)` in a daemon thread; cancel() asks it to stop at the next progress report."""

    def __init__(self, work: Callable[[Callable[["Progress"], bool]], Any], name: str = "marionette-job"):
        self.work, self.name = work, name
        self.step, self.total = 0, 1
        self.result: Any = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.started = time.perf_counter()
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> "Job":
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def on_progress(self, p: "Progress") -> bool:
        """Progress from the work; returning True stops it (it raises `Cancelled`)."""
        self.step, self.total = p.step, p.total
        return self.cancel_event.is_set()

    def run(self) -> None:
        """The worker's body (also callable on the current thread, e.g. in background mode)."""
        from .diffusion import Cancelled

        try:
            if self.cancel_event.is_set():
                raise Cancelled()
            self.result = self.work(lambda p: self.on_progress(p))
        except Cancelled:
            self.cancelled = True
        except Exception as exc:  # noqa: BLE001 - handed to the main thread and reported there
            import traceback

            traceback.print_exc()
            self.error = exc
        finally:
            self.done.set()

    @property
    def progress(self) -> float:
        return min(1.0, self.step / max(1, self.total))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def poll(job: Job) -> JobState:
    """One poll step, with no side effects: where the job is and, once done, how it ended."""
    if not job.done.is_set():
        return JobState(RUNNING, job.step, job.total)
    if job.cancelled:
        return JobState(CANCELLED, job.step, job.total)
    if job.error is not None:
        return JobState(ERROR, job.step, job.total, error=job.error)
    return JobState(FINISHED, job.step, job.total, result=job.result)


def generation_job(request) -> Job:
    """A job that runs a `GenerationRequest` on the shared generator for its model folder and device."""
    def work(on_progress):
        from .generate import Generator

        return Generator.shared(request.model_dir or None, request.device).run(request, on_progress)

    return Job(work, "marionette-generate")
