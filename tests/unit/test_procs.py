"""Background processes: stopping one ends its whole process group, even a member that outlives the leader."""

from __future__ import annotations

import os
import sys
import time

from redcloud.services import procs

# the leader starts a worker that ignores SIGTERM (as a server's worker busy shutting down may),
# writes the worker's PID, then waits; SIGTERM ends the leader at once and leaves the worker behind
LEADER = """
import signal, subprocess, sys, time
w = subprocess.Popen([sys.executable, "-c",
                      "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
open(sys.argv[1], "w").write(str(w.pid))
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _start_leader(name: str, tmp_path) -> tuple[int, int]:
    """Start LEADER under ``name``; (leader PID, worker PID) once the worker is up."""
    worker_file = tmp_path / "worker.pid"
    leader = procs.start(name, [sys.executable, "-c", LEADER, str(worker_file)])
    deadline = time.monotonic() + 30
    while not (worker_file.exists() and worker_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return leader, int(worker_file.read_text())


def test_stop_ends_a_group_member_that_outlives_its_leader(tmp_path):
    name = f"test-orphan-{os.getpid()}"
    leader, worker = _start_leader(name, tmp_path)
    try:
        assert procs.read_pid(name) == leader
        assert procs.stop(name, timeout=2)
        assert not _alive(leader)
        assert not _alive(worker), "the worker that ignored SIGTERM outlived stop()"
        assert procs.read_pid(name) is None
    finally:
        for pid in (worker, leader):
            if _alive(pid):
                os.kill(pid, 9)


def test_a_pid_file_whose_leader_died_still_names_the_live_group(tmp_path):
    name = f"test-orphan-leader-{os.getpid()}"
    leader, worker = _start_leader(name, tmp_path)
    try:
        os.kill(leader, 15)                      # the leader dies alone (as when a test run is interrupted)
        os.waitpid(leader, 0)
        assert _alive(worker)
        assert procs.read_pid(name) == leader    # the group is still there: the service is not "down"
        assert procs.stop(name, timeout=2)
        assert not _alive(worker)
    finally:
        if _alive(worker):
            os.kill(worker, 9)
