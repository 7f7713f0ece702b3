//go:build ignore

// Go's side of the echo benchmark, printed in Go's benchmark format:
//
//	BenchmarkEcho/conns=<n>/go   a TCP echo over 127.0.0.1: n connections,
//	                             each writing 64 bytes and reading them back,
//	                             over and over; ns per round trip
//
// The server (a goroutine per accepted connection, reading up to 64 bytes
// and writing back what it read until EOF) runs in a second process, this
// program started again with -server, so that the server and the clients
// each have one OS thread to run on: GOMAXPROCS=1 in both. The server
// writes its port on its stdout and exits when its stdin closes, so it
// does not outlive this process.
//
// The connections are all made before the timing starts. A round is R
// round trips, R/n on each connection; R is sized so that a round takes
// about 0.2 s (at least 2 round trips on each connection), and the median
// of 5 rounds is printed.
//
// The build tag keeps this file out of the package hub.go makes; run it
// by name: go run echo.go measure.go [regex]
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const msgSize = 64

func serve() {
	runtime.GOMAXPROCS(1)
	raiseFileLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // backlog: somaxconn
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo server:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			// EMFILE and the like: the client will notice
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			var buf [msgSize]byte
			for {
				m, err := c.Read(buf[:])
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:m]); err != nil {
					return
				}
			}
		}(c)
	}
}

// roundTrip writes 64 bytes on c and reads until all 64 are back.
func roundTrip(c net.Conn, out, in []byte) error {
	if _, err := c.Write(out); err != nil {
		return err
	}
	_, err := io.ReadFull(c, in)
	return err
}

// dial makes n connections, in batches that each do one round trip on
// every connection (a goroutine each) before the next batch, so the server
// has accepted every connection of a batch before more arrive and the
// listen backlog never overflows.
func dial(port, n int) ([]net.Conn, error) {
	const batch = 500
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conns := make([]net.Conn, 0, n)
	for len(conns) < n {
		first := len(conns)
		for len(conns) < n && len(conns)-first < batch {
			c, err := net.Dial("tcp", addr) // Go sets TCP_NODELAY
			if err != nil {
				return conns, err
			}
			conns = append(conns, c)
		}
		errs := make(chan error, len(conns)-first)
		for _, c := range conns[first:] {
			go func(c net.Conn) {
				errs <- roundTrip(c, make([]byte, msgSize), make([]byte, msgSize))
			}(c)
		}
		for range conns[first:] {
			if err := <-errs; err != nil {
				return conns, err
			}
		}
	}
	return conns, nil
}

// closeAll closes with a reset, so that 10,000 connections leave no
// TIME_WAIT behind.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// round does k round trips on every connection, a goroutine each, and
// returns the seconds it took. The goroutines wait at a gate, so that
// starting them is not timed.
func round(conns []net.Conn, k int) float64 {
	gate := make(chan struct{})
	var wg sync.WaitGroup
	var parked int32
	wg.Add(len(conns))
	for _, c := range conns {
		go func(c net.Conn) {
			defer wg.Done()
			out, in := make([]byte, msgSize), make([]byte, msgSize)
			atomic.AddInt32(&parked, 1)
			<-gate
			for i := 0; i < k; i++ {
				if err := roundTrip(c, out, in); err != nil {
					fmt.Fprintln(os.Stderr, "echo client:", err)
					os.Exit(1)
				}
			}
		}(c)
	}
	for atomic.LoadInt32(&parked) < int32(len(conns)) {
		runtime.Gosched() // let them reach the gate
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	return time.Since(t0).Seconds()
}

func benchEcho(name string, port, n int) {
	if lim := raiseFileLimit(); lim < uint64(n)+64 {
		fmt.Printf("# skip %s: RLIMIT_NOFILE is %d, %d connections need more\n", name, lim, n)
		return
	}
	conns, err := dial(port, n)
	defer closeAll(conns)
	if err != nil {
		fmt.Printf("# skip %s: connecting: %v\n", name, err)
		return
	}
	// k round trips on each of the n connections: measure sizes k by the
	// round's time, and gives ns per k; a round trip is k*n of them.
	k, ns := measure(2, func(k int) float64 { return round(conns, k) })
	report(name, k*n, ns/float64(n))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-server" {
		serve()
		return
	}
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	filter := regexp.MustCompile(pattern)
	runtime.GOMAXPROCS(1)

	var names []string
	var sizes []int
	for _, n := range []int{1, 100, 10000} {
		name := fmt.Sprintf("BenchmarkEcho/conns=%d/go", n)
		if filter.MatchString(name) {
			names = append(names, name)
			sizes = append(sizes, n)
		}
	}
	if len(names) == 0 {
		return
	}

	self, err := os.Executable()
	if err != nil {
		fmt.Printf("# skip BenchmarkEcho/*/go: %v\n", err)
		return
	}
	server := exec.Command(self, "-server")
	server.Env = append(os.Environ(), "GOMAXPROCS=1")
	server.Stderr = os.Stderr
	stdin, _ := server.StdinPipe()
	stdout, _ := server.StdoutPipe()
	if err := server.Start(); err != nil {
		fmt.Printf("# skip BenchmarkEcho/*/go: starting the server: %v\n", err)
		return
	}
	stop := func() {
		stdin.Close()
		server.Process.Kill()
		server.Wait()
	}
	// Everything is bounded: give up after 10 minutes.
	watchdog := time.AfterFunc(10*time.Minute, func() {
		fmt.Fprintln(os.Stderr, "echo.go: timed out")
		server.Process.Kill()
		os.Exit(1)
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		fmt.Printf("# skip BenchmarkEcho/*/go: no port from the server\n")
		stop()
		return
	}
	for i, name := range names {
		benchEcho(name, port, sizes[i])
	}
	watchdog.Stop()
	stop()
}
