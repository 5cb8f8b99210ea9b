"""Clients of husk's streaming server written for the tests: SPDY/3.1 (frames,
zlib header blocks with the SPDY/3 dictionary) and WebSocket (RFC 6455),
speaking the Kubernetes remotecommand and portforward protocols."""
import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time
import urllib.parse
import zlib

_WORDS = ("options head post put delete trace accept accept-charset accept-encoding "
          "accept-language accept-ranges age allow authorization cache-control connection "
          "content-base content-encoding content-language content-length content-location "
          "content-md5 content-range content-type date etag expect expires from host if-match "
          "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
          "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
          "server te trailer transfer-encoding upgrade user-agent vary via warning "
          "www-authenticate method get status").split() + ["200 OK"] + (
          "version HTTP/1.1 url public set-cookie keep-alive origin").split()
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417"
         "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
         "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
         "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
         "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
         "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
         "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICT = b"".join(struct.pack("!I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
assert len(SPDY_DICT) == 1423

FIN = 0x01


class HandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status, self.headers, self.body = status, headers, body


def _connect(url, extra_headers, timeout):
    u = urllib.parse.urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}"]
    lines += [f"{k}: {v}" for k, v in extra_headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise HandshakeError(0, {}, buf)
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    if status != 101:
        sock.settimeout(2)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except OSError:
            pass
        sock.close()
        raise HandshakeError(status, headers, rest)
    return sock, headers, rest


class Stream:
    def __init__(self, sid, headers):
        self.id, self.headers = sid, headers
        self.data = bytearray()
        self.replied = self.fin = self.reset = False


class SpdyClient:
    """A SPDY/3.1 client connection: open streams, send data, and collect
    what the server sends per stream (a reader thread)."""

    def __init__(self, url, protocols=("v4.channel.k8s.io",), timeout=30):
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        hdrs += [("X-Stream-Protocol-Version", p) for p in protocols]
        self.sock, self.headers, self.buf = _connect(url, hdrs, timeout)
        self.protocol = self.headers.get("x-stream-protocol-version", [None])[0]
        self.comp = zlib.compressobj(zdict=SPDY_DICT)
        self.decomp = zlib.decompressobj(zdict=SPDY_DICT)
        self.next_id = 1
        self.streams = {}
        self.pings = []
        self.closed = False
        self.cond = threading.Condition()
        self.wlock = threading.Lock()
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- frames
    def _header_block(self, headers):
        raw = struct.pack("!I", len(headers))
        for k, v in headers.items():
            k, v = k.lower().encode(), str(v).encode()
            raw += struct.pack("!I", len(k)) + k + struct.pack("!I", len(v)) + v
        return self.comp.compress(raw) + self.comp.flush(zlib.Z_SYNC_FLUSH)

    def _parse_block(self, block):
        raw = self.decomp.decompress(block)
        n = struct.unpack("!I", raw[:4])[0]
        off, out = 4, {}
        for _ in range(n):
            kl = struct.unpack("!I", raw[off:off + 4])[0]
            k = raw[off + 4:off + 4 + kl].decode()
            off += 4 + kl
            vl = struct.unpack("!I", raw[off:off + 4])[0]
            out[k] = raw[off + 4:off + 4 + vl].decode()
            off += 4 + vl
        return out

    def _control(self, ftype, flags, payload):
        return struct.pack("!HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload

    def _send(self, frame):
        with self.wlock:
            self.sock.sendall(frame)

    def open_stream(self, headers, fin=False):
        # Ids must grow and header blocks go out in compression order.
        with self.wlock:
            with self.cond:
                sid = self.next_id
                self.next_id += 2
                self.streams[sid] = Stream(sid, headers)
            payload = struct.pack("!IIH", sid, 0, 0) + self._header_block(headers)
            self.sock.sendall(self._control(1, FIN if fin else 0, payload))
        return sid

    def send(self, sid, data=b"", fin=False):
        while True:
            chunk, data = data[:16384], data[16384:]
            last = not data
            flags = FIN if (fin and last) else 0
            self._send(struct.pack("!II", sid, (flags << 24) | len(chunk)) + chunk)
            if last:
                return

    def rst(self, sid, status=5):
        self._send(self._control(3, 0, struct.pack("!II", sid, status)))

    def ping(self, pid=1):
        self._send(self._control(6, 0, struct.pack("!I", pid)))

    def goaway(self):
        self._send(self._control(7, 0, struct.pack("!II", 0, 0)))

    def _read(self):
        buf = self.buf
        try:
            while True:
                while len(buf) < 8 or len(buf) < 8 + (struct.unpack("!I", buf[4:8])[0] & 0xffffff):
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                length = struct.unpack("!I", buf[4:8])[0] & 0xffffff
                flags = buf[4]
                frame, buf = buf[:8 + length], buf[8 + length:]
                payload = frame[8:]
                with self.cond:
                    if frame[0] & 0x80:
                        ftype = struct.unpack("!H", frame[2:4])[0]
                        if ftype == 2:  # SYN_REPLY
                            sid = struct.unpack("!I", payload[:4])[0] & 0x7fffffff
                            self._parse_block(payload[4:])
                            if sid in self.streams:
                                self.streams[sid].replied = True
                                if flags & FIN:
                                    self.streams[sid].fin = True
                        elif ftype == 3:  # RST_STREAM
                            sid = struct.unpack("!I", payload[:4])[0] & 0x7fffffff
                            if sid in self.streams:
                                self.streams[sid].reset = True
                        elif ftype == 6:
                            self.pings.append(struct.unpack("!I", payload[:4])[0])
                        elif ftype in (1, 8):
                            self._parse_block(payload[10:] if ftype == 1 else payload[4:])
                    else:
                        sid = struct.unpack("!I", frame[:4])[0] & 0x7fffffff
                        st = self.streams.get(sid)
                        if st is not None:
                            st.data += payload
                            if flags & FIN:
                                st.fin = True
                    self.cond.notify_all()
        except (EOFError, OSError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("condition not met in time")
                self.cond.wait(left)

    def wait_replied(self, sids, timeout=30):
        self.wait(lambda: all(self.streams[s].replied or self.streams[s].reset for s in sids)
                  or self.closed, timeout)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def abort(self):
        """Vanish: reset the TCP connection without any goodbye."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class Result:
    def __init__(self, stdout, stderr, error):
        self.stdout, self.stderr, self.error = bytes(stdout), bytes(stderr), bytes(error)

    @property
    def status(self):
        return json.loads(self.error) if self.error else None

    def exit_code(self):
        st = self.status
        if st is None or st["status"] == "Success":
            return 0
        for c in st.get("details", {}).get("causes", []):
            if c.get("reason") == "ExitCode":
                return int(c["message"])
        return None


def remotecommand_streams(c, stdin, stdout, stderr, tty):
    ids = {"error": c.open_stream({"streamType": "error"})}
    if stdin:
        ids["stdin"] = c.open_stream({"streamType": "stdin"})
    if stdout:
        ids["stdout"] = c.open_stream({"streamType": "stdout"})
    if stderr and not tty:
        ids["stderr"] = c.open_stream({"streamType": "stderr"})
    if tty and c.protocol in ("v3.channel.k8s.io", "v4.channel.k8s.io"):
        ids["resize"] = c.open_stream({"streamType": "resize"})
    c.wait_replied(ids.values())
    return ids


def spdy_exec(url, stdin=None, stdout=True, stderr=True, tty=False, resize=None,
              protocol="v4.channel.k8s.io", timeout=60):
    """Run a remotecommand session (exec or attach) to its end."""
    c = SpdyClient(url, (protocol,), timeout)
    try:
        ids = remotecommand_streams(c, stdin is not None, stdout, stderr, tty)
        if resize:
            c.send(ids["resize"], json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
        if stdin is not None:
            c.send(ids["stdin"], stdin, fin=True)
        c.wait(lambda: c.streams[ids["error"]].fin or c.closed, timeout)
        c.wait(lambda: all(c.streams[i].fin for k, i in ids.items() if k in ("stdout", "stderr"))
               or c.closed, timeout)
        get = lambda k: c.streams[ids[k]].data if k in ids else b""  # noqa: E731
        return Result(get("stdout"), get("stderr"), get("error"))
    finally:
        c.close()


class WsClient:
    """A WebSocket client of the channel protocols: messages are collected per
    channel by a reader thread."""

    def __init__(self, url, protocols=("v5.channel.k8s.io",), timeout=30):
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
        if protocols:
            hdrs.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        self.sock, self.headers, self.buf = _connect(url, hdrs, timeout)
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert self.headers["sec-websocket-accept"][0] == want
        self.protocol = self.headers.get("sec-websocket-protocol", [""])[0]
        self.b64 = "base64" in self.protocol
        self.channels = {}
        self.closed = self.close_frame = False
        self.pongs = []
        self.cond = threading.Condition()
        self.sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()

    def _frame(self, opcode, data):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def send_channel(self, ch, data):
        if self.b64:
            self.sock.sendall(self._frame(1, str(ch).encode() + base64.b64encode(data)))
        else:
            self.sock.sendall(self._frame(2, bytes([ch]) + data))

    def close_channel(self, ch):
        self.sock.sendall(self._frame(2, bytes([255, ch])))

    def ping(self, data=b"hi"):
        self.sock.sendall(self._frame(9, data))

    def _read(self):
        buf = self.buf
        try:
            while True:
                while True:
                    if len(buf) >= 2:
                        n = buf[1] & 0x7f
                        off = 2
                        if n == 126 and len(buf) >= 4:
                            n, off = struct.unpack("!H", buf[2:4])[0], 4
                        elif n == 127 and len(buf) >= 10:
                            n, off = struct.unpack("!Q", buf[2:10])[0], 10
                        if n < 126 or off > 2:
                            if len(buf) >= off + n:
                                break
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                assert not buf[1] & 0x80, "server frames are never masked"
                opcode, data, buf = buf[0] & 0x0f, buf[off:off + n], buf[off + n:]
                with self.cond:
                    if opcode == 8:
                        self.close_frame = True
                    elif opcode == 10:
                        self.pongs.append(data)
                    elif opcode in (1, 2) and data:
                        if self.b64:
                            ch, payload = data[0] - ord("0"), base64.b64decode(data[1:])
                        else:
                            ch, payload = data[0], data[1:]
                        self.channels.setdefault(ch, bytearray()).extend(payload)
                    self.cond.notify_all()
        except (EOFError, OSError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pred, timeout=30):
        deadline = time.time() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError("condition not met in time")
                self.cond.wait(left)

    def get(self, ch):
        return bytes(self.channels.get(ch, b""))

    def close(self):
        try:
            self.sock.sendall(self._frame(8, struct.pack("!H", 1000)))
        except OSError:
            pass
        self.sock.close()


def portforward_pair(c, port, request_id):
    """Open the error and data streams of one port-forward connection."""
    err = c.open_stream({"streamType": "error", "port": str(port), "requestID": str(request_id)})
    data = c.open_stream({"streamType": "data", "port": str(port), "requestID": str(request_id)})
    c.wait_replied([err, data])
    return err, data
