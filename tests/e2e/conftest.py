"""Fixtures that run the real huskd and talk CRI to it over its socket.

Client messages come from our own api/cri/v1/api.proto, compiled with protoc
when the test session starts, so the tests speak exactly what husk defines.
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("HUSK_BUILD", os.path.join(REPO, "build"))
HUSKD = os.path.join(BUILD, "huskd")
PROTO = os.path.join(REPO, "api", "cri", "v1", "api.proto")
# What this run makes on the host carries its tag, so that hack/leftovers
# can tell it from what other runs on the same machine make: temporary
# directories are /tmp/husk-*-<tag>-*, and pods that name no cgroup parent
# go under the cgroup POD_CG_PARENT (huskd's pod_cgroup_parent) instead of
# husk's default "husk". `make check` sets HUSK_RUN_TAG for all its steps.
RUN_TAG = os.environ.setdefault("HUSK_RUN_TAG", os.urandom(4).hex())
POD_CG_PARENT = f"husk-e2e-{RUN_TAG}"
POD_CG_SLICE = f"husk_e2e_{RUN_TAG}.slice"  # the same for the systemd driver


# RuntimeClass handlers the per-handler suites run with: husk's own
# launcher and the OCI runtimes Debian ships (hack/install-deps installs
# them). HUSK_E2E_HANDLERS=runc (comma-separated) runs those suites for the
# named handlers only; `pytest -k runc` picks the same tests by their id.
OCI_RUNTIMES = {name: shutil.which(name) for name in ("runc", "crun")}
E2E_HANDLERS = [h.strip() for h in
                os.environ.get("HUSK_E2E_HANDLERS", "husk,runc,crun").split(",") if h.strip()]


def hybrid_with_v2_controllers():
    """This host mounts cgroup v1 and a cgroup2 that holds controllers."""
    path = "/sys/fs/cgroup/unified/cgroup.controllers"
    return os.path.exists(path) and open(path).read().strip() != ""


def handler_skip_reason(handler):
    """Why the suites cannot run with handler on this host, or None."""
    if handler == "husk":
        return None
    if handler not in OCI_RUNTIMES:
        return f"unknown handler '{handler}' in HUSK_E2E_HANDLERS"
    if not OCI_RUNTIMES[handler]:
        return f"{handler} is not installed"
    if handler == "crun" and hybrid_with_v2_controllers():
        # crun 1.8.1 refuses to run at all ("cgroups in hybrid mode not
        # supported, drop all controllers from cgroupv2"), whatever its
        # --cgroup-manager; the host's cgroup2 is not husk's to change.
        return "crun 1.8.1 refuses a hybrid host whose cgroup2 has controllers"
    return None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "per_handler: the tests of this module (or this test) that make "
                   "containers run once per RuntimeClass handler (husk, runc, crun)")
    config.addinivalue_line(
        "markers", "xfail_handler(*handlers, reason): the test is expected to fail "
                   "(strict) when run with one of these handlers")


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.xfail_handler("runc", reason=...): a strict xfail for
    that handler's run of the test only (it fails loudly once fixed)."""
    for item in items:
        m = item.get_closest_marker("xfail_handler")
        cs = getattr(item, "callspec", None)
        if m is None or cs is None:
            continue
        if cs.params.get("handler") in m.args:
            item.add_marker(pytest.mark.xfail(strict=True, reason=m.kwargs["reason"]))


def pytest_generate_tests(metafunc):
    """A test of a per_handler module that makes containers (it takes the
    busybox fixture, or carries the mark itself) runs once per handler:
    test_x[husk], test_x[runc], test_x[crun]."""
    if "handler" not in metafunc.fixturenames:
        return
    for m in metafunc.definition.iter_markers("parametrize"):
        names = m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0]
        if "handler" in [n.strip() for n in names]:
            return  # the test names its own handlers
    own = metafunc.definition.get_closest_marker("per_handler")
    if own is None:
        return
    if "busybox" in metafunc.fixturenames or own in metafunc.definition.own_markers:
        metafunc.parametrize("handler", E2E_HANDLERS, indirect=True)


def run_tmpdir(kind):
    """A new directory /tmp/husk-<kind>-<tag>-XXXX of this run."""
    return tempfile.mkdtemp(prefix=f"husk-{kind}-{RUN_TAG}-", dir="/tmp")


def hygiene_snapshot():
    """For the benchmarks: hack/leftovers snapshot of the host before they
    make anything; returns the snapshot's path for hygiene_check."""
    path = os.path.join(BUILD, f"leftovers-{RUN_TAG}-{os.getpid()}.json")
    subprocess.run([os.path.join(REPO, "hack", "leftovers"), "snapshot", path], check=True)
    return path


def hygiene_check(path):
    """hack/leftovers check: 0 when nothing of this run is left, else 1."""
    return subprocess.run([os.path.join(REPO, "hack", "leftovers"), "check", path]).returncode


def _compile_proto():
    out = run_tmpdir("pb")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run(["protoc", "--python_out", out, "-I", os.path.dirname(PROTO), PROTO],
                   check=True)
    sys.path.insert(0, out)
    import api_pb2  # noqa: E402
    return api_pb2


pb = _compile_proto()

import grpc  # noqa: E402


class CRIClient:
    """Calls CRI methods by name: client.Version(version="v1").

    Keyword arguments build the request (nested dicts become messages);
    unary calls return the response message, server-streaming calls an
    iterator. Errors raise grpc.RpcError."""

    def __init__(self, channel, service):
        self._channel = channel
        self._service = pb.DESCRIPTOR.services_by_name[service]

    def __getattr__(self, name):
        m = self._service.methods_by_name.get(name)
        if m is None:
            raise AttributeError(name)
        req_cls = getattr(pb, m.input_type.name)
        resp_cls = getattr(pb, m.output_type.name)
        path = f"/{self._service.full_name}/{name}"
        if m.server_streaming:
            fn = self._channel.unary_stream(path, req_cls.SerializeToString, resp_cls.FromString)
        else:
            fn = self._channel.unary_unary(path, req_cls.SerializeToString, resp_cls.FromString)

        def call(_request=None, _timeout=60, **kwargs):
            req = _request if _request is not None else req_cls(**kwargs)
            return fn(req, timeout=_timeout)

        call.future = lambda _timeout=60, **kw: fn.future(req_cls(**kw), timeout=_timeout)
        return call

    def raw(self, name, payload, timeout=10):
        """Send raw bytes as the request of method name; returns raw bytes."""
        path = f"/{self._service.full_name}/{name}"
        return self._channel.unary_unary(path)(payload, timeout=timeout)


def make_channel(socket):
    opts = [("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20)]
    return grpc.insecure_channel(f"unix://{socket}", options=opts)


class Daemon:
    """One huskd process with its own socket, root, state and config."""

    def __init__(self, base, config=None, args=(), env=None, handler="husk"):
        self.base = base
        # The RuntimeClass handler run_pod (tests/e2e/pods.py) gives pods.
        self.handler = handler
        # Extra environment variables (NOTIFY_SOCKET, WATCHDOG_USEC, ...).
        self.env = env
        self.socket = os.path.join(base, "run", "husk.sock")
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.config_path = os.path.join(base, "etc", "husk.json")
        self.log_path = os.path.join(base, "huskd.log")
        # This machine has no CNI config; suites that want pod networking
        # write their own (tests/e2e/test_network.py).
        self.config = {"require_pod_network": False, **(config or {})}
        if handler != "husk" and "runtimes" not in self.config:
            self.config["runtimes"] = {handler: {"path": OCI_RUNTIMES[handler]}}
        self.args = list(args)
        if "pod_cgroup_parent" not in self.config:
            flag = [v for k, v in zip(self.args, self.args[1:]) if k == "--cgroup-driver"]
            systemd = (flag or [self.config.get("cgroup_driver")])[-1] == "systemd"
            self.config["pod_cgroup_parent"] = POD_CG_SLICE if systemd else POD_CG_PARENT
        self.proc = None
        self.channel = None
        self.was_ready = False
        os.makedirs(os.path.dirname(self.config_path), exist_ok=True)
        self.write_config()

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)

    def cmdline(self):
        return [HUSKD, "--config", self.config_path, "--socket", self.socket,
                "--root", self.root, "--state", self.state, "--log-level", "debug",
                *self.args]

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(self.cmdline(), stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"huskd exited with {self.proc.returncode}:\n{self.logs()}")
            if os.path.exists(self.socket):
                self.channel = make_channel(self.socket)
                try:
                    self.rt.Version(version="v1", _timeout=2)
                    self.was_ready = True
                    return
                except grpc.RpcError:
                    self.channel.close()
            time.sleep(0.05)
        raise RuntimeError(f"huskd not ready after {timeout}s:\n{self.logs()}")

    @property
    def rt(self):
        return CRIClient(self.channel, "RuntimeService")

    @property
    def img(self):
        return CRIClient(self.channel, "ImageService")

    def logs(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _close(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal huskd and wait; returns its exit code."""
        self._close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"huskd ignored {sig!r} for {timeout}s:\n{self.logs()}")
        self.proc = None
        self.log.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self, kill=False):
        self.kill() if kill else self.stop()
        return self.start()


def mounts_under(path):
    """Mount points at or below path, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


# Started once per session (see registry.registries).
from registry import registries_session  # noqa: E402,F401


@pytest.fixture
def handler(request):
    """The RuntimeClass handler of this test's pods: "husk" unless the test
    runs once per handler (pytest_generate_tests); skips a handler this
    host cannot run, saying why."""
    h = getattr(request, "param", "husk")
    reason = handler_skip_reason(h)
    if reason:
        pytest.skip(reason)
    return h


@pytest.fixture
def daemon_factory(handler):
    made = []

    def make(config=None, args=(), start=True, env=None):
        base = run_tmpdir("e2e")
        d = Daemon(base, config, args, env, handler)
        made.append(d)
        return d.start() if start else d

    yield make
    failures = []
    for d in made:
        if d.proc is None and d.was_ready:
            # Left stopped or SIGKILLed by the test: what it made is cleaned
            # up through husk itself (restart, remove all), never by
            # deleting its files, so that a leak shows.
            try:
                d.start()
            except RuntimeError as e:
                failures.append(f"restart for cleanup failed: {e}")
        if d.proc is not None and d.channel is not None:
            # Pods outlive huskd by design; a test's pods must not.
            try:
                for c in d.rt.ListContainers().containers:
                    d.rt.RemoveContainer(container_id=c.id)
                for p in d.rt.ListPodSandbox().items:
                    d.rt.StopPodSandbox(pod_sandbox_id=p.id)
                    d.rt.RemovePodSandbox(pod_sandbox_id=p.id)
            except grpc.RpcError as e:
                failures.append(f"cleanup of pods failed: {e.code()} {e.details()}")
        if d.proc is not None:
            rc = d.stop()
            if rc != 0:
                failures.append(f"huskd exited {rc} at teardown:\n{d.logs()[-4000:]}")
        left = mounts_under(d.base)
        if left:
            failures.append(f"mounts left behind under {d.base}: {left}")
            for m in reversed(left):
                subprocess.run(["umount", "-l", m], check=False)
        if "ERROR: AddressSanitizer" in d.logs() or "runtime error:" in d.logs():
            failures.append(f"sanitizer report:\n{d.logs()[-8000:]}")
        if not mounts_under(d.base):  # never recurse into a mount
            # rm, not shutil.rmtree: a container's layer can be deeper than
            # Python's recursion limit when husk failed to remove it.
            subprocess.run(["rm", "-rf", "--one-file-system", d.base], check=False)
    assert not failures, "\n".join(failures)


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()
