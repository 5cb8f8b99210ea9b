"""Slow and silent clients of the stream server: connections that have not
sent their request yet are counted apart from sessions, with a smaller
limit, so they can never keep a real exec session out."""
import os
import resource
import socket
import urllib.parse

from pods import busybox, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401
from streamclient import spdy_exec


def sockets_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def test_silent_connections_do_not_refuse_exec(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sleep", "1000"])
    url = d.rt.Exec(container_id=c, cmd=["echo", "first"], stdout=True).url
    port = urllib.parse.urlparse(url).port
    assert spdy_exec(url).stdout == b"first\n"
    silent = []
    try:
        for _ in range(1100):
            silent.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # huskd keeps a bounded number of them, not 1100.
        held = sockets_of(d.proc.pid)
        assert held < 400, held
        for i in range(3):
            url = d.rt.Exec(container_id=c, cmd=["echo", f"real {i}"], stdout=True).url
            r = spdy_exec(url)
            assert r.stdout == f"real {i}\n".encode(), (r.stdout, r.status)
    finally:
        for s in silent:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
