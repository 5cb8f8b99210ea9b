"""The exit monitor: exits reach huskd as events (the shim's exit file, the
shim's pidfd), recorded and streamed with no one polling ContainerStatus,
across a restart of huskd too."""
import json
import os
import signal
import threading
import time

from conftest import pb
from pods import busybox, pid_of, run_ctr, run_pod, run_trapping, status  # noqa: F401
from registry import registries  # noqa: F401

SLEEP = ["sleep", "1000"]


class Stopped:
    """Collects CONTAINER_STOPPED_EVENTs from GetContainerEvents."""

    def __init__(self, d):
        self.ids = set()
        self.cond = threading.Condition()
        self.stream = d.rt.GetContainerEvents(_timeout=120)
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.3)

    def _read(self):
        try:
            for ev in self.stream:
                if ev.container_event_type == pb.CONTAINER_STOPPED_EVENT:
                    with self.cond:
                        self.ids.add(ev.container_id)
                        self.cond.notify_all()
        except Exception:  # noqa: BLE001 (ends with cancel())
            pass

    def wait(self, ids, timeout=30):
        with self.cond:
            ok = self.cond.wait_for(lambda: set(ids) <= self.ids, timeout=timeout)
        assert ok, f"no STOPPED event for {set(ids) - self.ids}"

    def close(self):
        self.stream.cancel()


def shim_pid(d, cid):
    with open(os.path.join(d.state, "containers", cid, "shim.pid")) as f:
        return json.load(f)["pid"]


def test_exits_are_events(daemon, busybox, tmp_path):
    """Exit codes, signals and a killed shim are recorded and streamed as
    they happen; the test only listens, it never asks for a status first."""
    d = daemon
    ev = Stopped(d)
    pod, cfg = run_pod(d, tmp_path)
    code3 = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "sleep 0.5; exit 3"])
    killed = run_ctr(d, pod, cfg, busybox, SLEEP)
    shim_gone = run_ctr(d, pod, cfg, busybox, SLEEP)
    quick = run_ctr(d, pod, cfg, busybox, ["true"])
    os.kill(pid_of(d, killed), signal.SIGKILL)
    os.kill(shim_pid(d, shim_gone), signal.SIGKILL)
    ev.wait([code3, killed, quick, shim_gone])
    ev.close()
    st = {c: status(d, c).status for c in (code3, killed, shim_gone, quick)}
    assert all(s.state == pb.CONTAINER_EXITED for s in st.values())
    assert st[code3].exit_code == 3 and st[code3].reason == "Error"
    assert st[killed].exit_code == 137
    assert st[quick].exit_code == 0 and st[quick].reason == "Completed"
    assert "husk-shim died" in st[shim_gone].message
    assert st[shim_gone].exit_code == 255


def test_exits_after_restart_are_events(daemon, busybox, tmp_path):
    """Exits while huskd is down are recorded at start; containers that
    exit after the restart are still watched."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    early = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "sleep 1; exit 4"])
    late = run_ctr(d, pod, cfg, busybox, SLEEP)
    late_pid = pid_of(d, late)
    d.kill()
    time.sleep(2)
    d.start()
    assert status(d, early).status.exit_code == 4
    ev = Stopped(d)
    assert status(d, late).status.state == pb.CONTAINER_RUNNING
    os.kill(late_pid, signal.SIGKILL)
    ev.wait([late])
    ev.close()
    assert status(d, late).status.exit_code == 137


def test_stop_wakes_on_exit(daemon, busybox, tmp_path):
    """StopContainer returns once the container has gone, long before a
    generous grace period, and a second concurrent stop agrees."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_trapping(d, pod, cfg, busybox, "trap 'exit 143' TERM", loop="sleep 1000 & wait")
    futs = [d.rt.StopContainer.future(container_id=c, timeout=120) for _ in range(2)]
    for f in futs:
        f.result(timeout=60)
    st = status(d, c).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 143
