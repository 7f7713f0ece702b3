//go:build ignore

// Go's side of the sync benchmarks (weft's and pthreads' are in
// bench/sync.c), measured like weft's (a median of 5 rounds of about
// 0.2 s each), printed in Go's benchmark format:
//
//	BenchmarkLockUncontended/go          sync.Mutex Lock + Unlock, one
//	                                     goroutine, GOMAXPROCS=1
//	BenchmarkLockContended/threads=N/go  N goroutines, GOMAXPROCS=N, each
//	                                     adding to one counter under a
//	                                     sync.Mutex; ns per add (the wall
//	                                     time of the round, starting and
//	                                     waiting for the goroutines
//	                                     included, over all the adds)
//	BenchmarkChanPingPong/go-P<p>        two goroutines bouncing a value
//	                                     over two unbuffered channels,
//	                                     GOMAXPROCS=p; ns per round trip
//	BenchmarkChanPingPong/go-P2-threads  the same, GOMAXPROCS=2, each
//	                                     goroutine locked to its own OS
//	                                     thread (runtime.LockOSThread): a
//	                                     hand-over between two threads,
//	                                     as weft-threads' is
//	BenchmarkChanPingPong/load=busy/go-P2-threads
//	                                     the same with a spinning process
//	                                     per CPU beside it (this program,
//	                                     run again with the argument
//	                                     -busy, one per CPU)
//
// BenchmarkThreadStartJoin has no Go row: a goroutine is not a thread
// (BenchmarkSpawnJoin/go in hub.go is the start and join of a goroutine).
//
// With threads=4 on a machine of fewer CPUs the goroutines are more than
// the CPUs, as weft's and pthreads' threads are in the same benchmark.
//
// The build tag keeps this file out of the package hub.go makes; run it
// by name: go run sync.go measure.go [regex]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sync"
)

var filter *regexp.Regexp

// bench measures fn with GOMAXPROCS procs (see measure.go).
func bench(name string, procs int, fn func(n int)) {
	if !filter.MatchString(name) {
		return
	}
	runtime.GOMAXPROCS(procs)
	n, ns := measure(1, timed(fn))
	report(name, n, ns)
}

// contended has threads goroutines add n times in all to one counter
// under one mutex, the adds shared out as evenly as they go.
func contended(threads, n int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0
	wg.Add(threads)
	for t := 0; t < threads; t++ {
		adds := n / threads
		if t < n%threads {
			adds++
		}
		go func() {
			for i := 0; i < adds; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	if counter != n {
		panic(fmt.Sprintf("counter %d, want %d", counter, n))
	}
}

// pingPong makes n round trips: main sends on ping, the other goroutine
// receives and sends the value back on pong, main receives it.
func pingPong(n int) { pingPongOn(n, false) }

// pingPongOn is pingPong, with each goroutine locked to an OS thread of
// its own when threads is true.
func pingPongOn(n int, threads bool) {
	if threads {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		if threads {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		for v := range ping {
			pong <- v + 1
		}
	}()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	if v != n {
		panic(fmt.Sprintf("%d round trips, want %d", v, n))
	}
}

// busy starts a spinning process per CPU (this program, with -busy) and
// returns what stops them.
func busy() func() {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	var procs []*exec.Cmd
	for i := 0; i < runtime.NumCPU(); i++ {
		c := exec.Command(self, "-busy")
		if err := c.Start(); err != nil {
			panic(err)
		}
		procs = append(procs, c)
	}
	return func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	}
}

func main() {
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	if pattern == "-busy" {
		runtime.GOMAXPROCS(1)
		for spin := 0; ; spin++ {
		}
	}
	filter = regexp.MustCompile(pattern)

	bench("BenchmarkLockUncontended/go", 1, func(n int) {
		var mu sync.Mutex
		for i := 0; i < n; i++ {
			mu.Lock()
			mu.Unlock()
		}
	})
	for _, threads := range []int{2, 4} {
		threads := threads
		bench(fmt.Sprintf("BenchmarkLockContended/threads=%d/go", threads), threads,
			func(n int) { contended(threads, n) })
	}
	bench("BenchmarkChanPingPong/go-P1", 1, pingPong)
	bench("BenchmarkChanPingPong/go-P2", 2, pingPong)
	onThreads := func(n int) { pingPongOn(n, true) }
	bench("BenchmarkChanPingPong/go-P2-threads", 2, onThreads)
	if name := "BenchmarkChanPingPong/load=busy/go-P2-threads"; filter.MatchString(name) {
		stop := busy()
		bench(name, 2, onThreads)
		stop()
	}
	if name := "BenchmarkThreadStartJoin/go"; filter.MatchString(name) {
		fmt.Printf("# skip %s: goroutines are not threads (BenchmarkSpawnJoin/go is a goroutine's start and join)\n", name)
	}
}
