// gospdy: a client of husk's stream server built on moby/spdystream (Debian's
// golang-github-docker-spdystream-dev), the SPDY/3 framing and zlib header
// compression the kubelet and crictl use, so the e2e suite checks husk
// against Go's implementation of the wire. Built in GOPATH mode from
// /usr/share/gocode by test_stream.py.
//
// Usage: gospdy exec URL STDIN_TEXT | gospdy portforward URL PORT
// Prints one JSON object with what each stream carried.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gospdy: "+format+"\n", args...)
	os.Exit(1)
}

func dial(raw, protocol string) *spdystream.Connection {
	u, err := url.Parse(raw)
	if err != nil {
		fail("url: %v", err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		fail("dial: %v", err)
	}
	req, _ := http.NewRequest("POST", raw, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Add("X-Stream-Protocol-Version", protocol)
	if err := req.Write(conn); err != nil {
		fail("request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1), req)
	if err != nil {
		fail("response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("X-Stream-Protocol-Version") != protocol {
		fail("upgrade refused: %s %v", resp.Status, resp.Header)
	}
	sc, err := spdystream.NewConnection(conn, false)
	if err != nil {
		fail("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	return sc
}

func open(sc *spdystream.Connection, h http.Header) *spdystream.Stream {
	s, err := sc.CreateStream(h, nil, false)
	if err != nil {
		fail("create stream %v: %v", h, err)
	}
	if err := s.WaitTimeout(30 * time.Second); err != nil {
		fail("stream %v not accepted: %v", h, err)
	}
	return s
}

func readAll(wg *sync.WaitGroup, s *spdystream.Stream, out *string) {
	defer wg.Done()
	b, _ := io.ReadAll(s)
	*out = string(b)
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: gospdy exec URL STDIN | gospdy portforward URL PORT")
	}
	res := map[string]string{}
	var stdout, stderr, errs, data string
	var wg sync.WaitGroup
	switch os.Args[1] {
	case "exec":
		sc := dial(os.Args[2], "v4.channel.k8s.io")
		kind := func(t string) http.Header {
			h := http.Header{}
			h.Set("streamType", t)
			return h
		}
		e := open(sc, kind("error"))
		in := open(sc, kind("stdin"))
		o := open(sc, kind("stdout"))
		se := open(sc, kind("stderr"))
		wg.Add(3)
		go readAll(&wg, o, &stdout)
		go readAll(&wg, se, &stderr)
		go readAll(&wg, e, &errs)
		if _, err := io.Copy(in, strings.NewReader(os.Args[3])); err != nil {
			fail("stdin: %v", err)
		}
		in.Close()
		wg.Wait()
		sc.Close()
		res["stdout"], res["stderr"], res["error"] = stdout, stderr, errs
	case "portforward":
		sc := dial(os.Args[2], "portforward.k8s.io")
		h := http.Header{}
		h.Set("streamType", "error")
		h.Set("port", os.Args[3])
		h.Set("requestID", "0")
		e := open(sc, h)
		h = http.Header{}
		h.Set("streamType", "data")
		h.Set("port", os.Args[3])
		h.Set("requestID", "0")
		d := open(sc, h)
		wg.Add(2)
		go readAll(&wg, d, &data)
		go readAll(&wg, e, &errs)
		d.Write([]byte("GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"))
		d.Close()
		wg.Wait()
		sc.Close()
		res["data"], res["error"] = data, errs
	default:
		fail("unknown mode %q", os.Args[1])
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}
