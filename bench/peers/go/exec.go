//go:build ignore

// Go's side of the thread pool rows of bench/exec.c: a worker pool as Go
// programs write one, goroutines fed by a channel of calls, each call's
// result sent back on a channel of its own (buffered, of one: a future).
// The workers are as many as weft's and Python's default (CPUs + 4, at
// most 32), under Go's default GOMAXPROCS (every CPU). Printed in Go's
// benchmark format:
//
//	BenchmarkThreadPoolRoundTrip/go   ns per call of a no-op sent to the
//	                                  pool and its result received before
//	                                  the next is sent (measure.go's loop)
//	BenchmarkThreadPoolThroughput/go  ns per call when 1,000,000 no-op
//	                                  calls are sent, then each result
//	                                  received in order; a round is always
//	                                  the million calls, a first round,
//	                                  then the median of 3, as weft's. The
//	                                  calls' channel holds them all, as
//	                                  weft's queue does (no bound)
//
// Go has no process pool: the process pool rows have no Go peer, nor the
// workload rows (their runners are weft's pools and tasks and Python's).
//
// The build tag keeps this file out of the package hub.go makes; run it
// by name: go run exec.go measure.go [regex]
package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"time"
)

const throughputCalls = 1000000

type call struct {
	fn     func() int
	result chan int
}

// pool starts workers goroutines taking calls from a channel of room
// calls, and returns it; closing it ends them.
func pool(workers, room int) chan call {
	calls := make(chan call, room)
	for i := 0; i < workers; i++ {
		go func() {
			for c := range calls {
				c.result <- c.fn()
			}
		}()
	}
	return calls
}

func noop() int { return 0 }

func submit(calls chan call) chan int {
	result := make(chan int, 1)
	calls <- call{noop, result}
	return result
}

func main() {
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	filter := regexp.MustCompile(pattern)
	workers := runtime.NumCPU() + 4
	if workers > 32 {
		workers = 32
	}

	if name := "BenchmarkThreadPoolRoundTrip/go"; filter.MatchString(name) {
		calls := pool(workers, 0)
		n, ns := measure(1000, timed(func(n int) {
			for i := 0; i < n; i++ {
				<-submit(calls)
			}
		}))
		close(calls)
		report(name, n, ns)
	}

	if name := "BenchmarkThreadPoolThroughput/go"; filter.MatchString(name) {
		calls := pool(workers, throughputCalls)
		results := make([]chan int, throughputCalls)
		round := func() float64 {
			t0 := time.Now()
			for i := range results {
				results[i] = submit(calls)
			}
			for _, r := range results {
				if <-r != 0 {
					panic("a call failed")
				}
			}
			return time.Since(t0).Seconds()
		}
		round()
		var rounds []float64
		for r := 0; r < 3; r++ {
			rounds = append(rounds, round()*1e9/throughputCalls)
		}
		sort.Float64s(rounds)
		close(calls)
		report(name, throughputCalls, rounds[1])
	}

	for _, name := range []string{"BenchmarkProcessPoolRoundTrip/go", "BenchmarkProcessPoolThroughput/go"} {
		if filter.MatchString(name) {
			fmt.Printf("# skip %s: Go has no process pool\n", name)
		}
	}
}
