"""Registry access: basic and token auth (credentials, auth string, identity
and registry tokens), TLS and the insecure setting, mirrors and location."""
import base64

import grpc
import pytest

from registry import PASSWORD, REFRESH_TOKEN, USER, Proxy, mti, registries  # noqa: F401
from test_image import listed, pull, store_empty


def expect_error(code, fn, *a, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, **kw)
    assert e.value.code() == code, e.value.details()
    return e.value.details()


def test_basic_auth(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    ref = f"{reg.basic.host}/test/busybox:latest"
    msg = expect_error(grpc.StatusCode.PERMISSION_DENIED, pull, d, ref)
    assert "requires authentication" in msg
    msg = expect_error(grpc.StatusCode.PERMISSION_DENIED, pull, d, ref, username=USER,
                       password="wrong")
    assert "401" in msg and "UNAUTHORIZED" in msg
    store_empty(d.root)
    assert pull(d, ref, username=USER, password=PASSWORD) == im.id
    d.img.RemoveImage(image={"image": ref})
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert pull(d, ref, auth=auth) == im.id
    assert [i.repo_tags[0] for i in listed(d)] == [ref]


def test_token_auth(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    host = reg.token.host
    # anonymous token: allowed for public/*, refused elsewhere
    assert pull(d, f"{host}/public/busybox") == im.id
    msg = expect_error(grpc.StatusCode.PERMISSION_DENIED, pull, d, f"{host}/test/busybox")
    assert "401" in msg
    msg = expect_error(grpc.StatusCode.PERMISSION_DENIED, pull, d, f"{host}/test/busybox",
                       username=USER, password="wrong")
    assert "invalid username or password" in msg
    assert pull(d, f"{host}/test/busybox", username=USER, password=PASSWORD) == im.id
    assert any(who == USER and "repository:test/busybox:pull" in scope
               for who, scope in reg.tokens.issued)
    d.img.RemoveImage(image={"image": im.id})
    # an OAuth2 refresh token (identity_token) traded at the token server
    assert pull(d, f"{host}/test/busybox", identity_token=REFRESH_TOKEN) == im.id
    d.img.RemoveImage(image={"image": im.id})
    msg = expect_error(grpc.StatusCode.PERMISSION_DENIED, pull, d, f"{host}/test/busybox",
                       identity_token="bogus")
    assert "invalid refresh token" in msg
    # a registry token used as it is
    tok = reg.tokens.sign([{"type": "repository", "name": "test/busybox",
                            "actions": ["pull"]}])
    assert pull(d, f"{host}/test/busybox", registry_token=tok) == im.id


def test_tls_needs_insecure_for_unknown_ca(daemon_factory, registries):
    reg = registries
    im = reg.images["test/busybox:latest"]
    ref = f"{reg.tls.host}/test/busybox"
    d = daemon_factory()
    msg = expect_error(grpc.StatusCode.INTERNAL, pull, d, ref)
    assert "certificate" in msg.lower()
    store_empty(d.root)
    d.stop()
    d2 = daemon_factory({"registries": {reg.tls.host: {"insecure": True}}})
    assert pull(d2, ref) == im.id


def test_loopback_plain_http_through_mirror(daemon_factory, registries):
    """A plain-HTTP registry on a loopback address needs no insecure entry,
    also as the mirror of a registry name that does not resolve."""
    reg = registries
    im = reg.images["test/busybox:latest"]
    d = daemon_factory({"registries": {"registry.husk.test": {
        "mirrors": [reg.open.host]}}})
    assert pull(d, "registry.husk.test/test/busybox") == im.id
    assert listed(d)[0].repo_tags[0] == "registry.husk.test/test/busybox:latest"


def test_mirror_order_and_fallback(daemon_factory, registries):
    reg = registries
    im = reg.images["test/busybox:latest"]
    empty = reg.separate("empty-mirror")
    good = Proxy(reg.open.host)
    try:
        dead = "127.0.0.1:1"
        # dead, empty, then a mirror that has it: served by the mirror
        d = daemon_factory({"registries": {"upstream.husk.test:5000": {
            "mirrors": [dead, empty.host, good.host]}}})
        ref = "upstream.husk.test:5000/test/busybox:latest"
        assert pull(d, ref) == im.id
        i = listed(d)[0]
        assert list(i.repo_tags) == [ref]
        assert list(i.repo_digests) == [f"upstream.husk.test:5000/test/busybox@{im.digest}"]
        assert good.gets("/v2/test/busybox/manifests/latest")
        assert good.gets(f"/v2/test/busybox/blobs/{im.layer_digests[0]}")
        assert empty.requests("/v2/test/busybox/manifests/latest")
        d.stop()
        # mirrors without it: falls back to the registry itself
        d = daemon_factory({"registries": {reg.open.host: {"mirrors": [dead, empty.host]}}})
        assert pull(d, f"{reg.open.host}/test/busybox") == im.id
        d.stop()
        # a mirror with a scheme and a path prefix
        im.push(mti.Registry(reg.open.host), "cache/test/busybox", "latest")
        d = daemon_factory({"registries": {"docker.io": {
            "mirrors": [f"http://{good.host}/cache/"]}}})
        assert pull(d, "docker.io/test/busybox") == im.id
        assert listed(d)[0].repo_tags[0] == "docker.io/test/busybox:latest"
        assert good.gets("/v2/cache/test/busybox/manifests/latest")
    finally:
        good.stop()


def test_location_replaces_registry(daemon_factory, registries):
    reg = registries
    im = reg.images["test/busybox:latest"]
    proxy = Proxy(reg.open.host)
    try:
        d = daemon_factory({"registries": {
            "registry.k8s.husk.test": {"location": proxy.host},
            reg.open.host: {"location": "127.0.0.1:1"}}})
        ref = "registry.k8s.husk.test/test/busybox:v1"
        assert pull(d, ref) == im.id
        assert listed(d)[0].repo_tags[0] == ref
        assert proxy.gets("/v2/test/busybox/manifests/v1")
        # no fallback to the registry when its location is down
        before = len(reg.open.requests("/v2/test/busybox-user/manifests"))
        msg = expect_error(grpc.StatusCode.UNAVAILABLE, pull, d,
                           f"{reg.open.host}/test/busybox-user")
        assert "127.0.0.1:1" in msg
        assert len(reg.open.requests("/v2/test/busybox-user/manifests")) == before
    finally:
        proxy.stop()


def test_retries_on_5xx_and_dropped_connections(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/layered:latest"]
    # the config: two 503s, then a cut transfer (all retried in place)
    cfg = Proxy(reg.open.host, fail_first=2, cut_first=1, only=im.id)
    # a layer: a 503, then two transfers cut mid-stream (the layer restarts)
    layer = im.layer_digests[1]
    lay = Proxy(reg.open.host, fail_first=1, cut_first=2, only=layer)
    try:
        assert pull(d, f"{cfg.host}/test/layered") == im.id
        assert len(cfg.gets(f"/blobs/{im.id}")) == 4
        d.img.RemoveImage(image={"image": im.id})
        assert pull(d, f"{lay.host}/test/layered") == im.id
        assert len(lay.gets(f"/blobs/{layer}")) == 4
        for other in im.layer_digests[:1] + im.layer_digests[2:]:
            assert len(lay.gets(f"/blobs/{other}")) == 1
    finally:
        cfg.stop()
        lay.stop()
