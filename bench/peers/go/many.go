//go:build ignore

// Go's side of the many-tasks benchmark, printed in Go's benchmark format:
//
//	BenchmarkManyTasks/go   1,000,000 goroutines alive at once: each
//	                        waits on a gate until all are started, sleeps
//	                        1 ms and returns; main waits for all
//
// ns/op is the wall time of the whole (spawning to the last one finishing)
// divided by N; B/task is the peak resident memory (VmHWM) less the
// resident memory before the first spawn (VmRSS), divided by N. The peak
// is the process's, so each round runs in a process of its own (this
// program again, with -round); the medians of 3 rounds are printed.
// GOMAXPROCS=1.
//
// The build tag keeps this file out of the package hub.go makes; run it
// by name: go run many.go measure.go [regex]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	tasks  = 1000000
	rounds = 3
)

// round runs the benchmark once in this process and returns ns per task
// and bytes per task.
func round() (float64, float64) {
	runtime.GOMAXPROCS(1)
	runtime.GC()
	before := statusKB("VmRSS")
	t0 := time.Now()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(tasks)
	var parked int32
	for i := 0; i < tasks; i++ {
		go func() {
			atomic.AddInt32(&parked, 1)
			<-gate
			time.Sleep(time.Millisecond)
			wg.Done()
		}()
	}
	// Let them all reach the gate (those that have not yet run while main
	// was spawning) before opening it.
	for atomic.LoadInt32(&parked) < tasks {
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	dt := time.Since(t0)
	peak := statusKB("VmHWM")
	return float64(dt.Nanoseconds()) / tasks, float64(peak-before) * 1024 / tasks
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-round" {
		ns, bytes := round()
		fmt.Println(ns, bytes)
		return
	}
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	const name = "BenchmarkManyTasks/go"
	if !regexp.MustCompile(pattern).MatchString(name) {
		return
	}
	if statusKB("VmHWM") < 0 {
		fmt.Printf("# skip %s: no VmHWM in /proc/self/status\n", name)
		return
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Printf("# skip %s: %v\n", name, err)
		return
	}
	var ns, bytes []float64
	for r := 0; r < rounds; r++ {
		cmd := exec.Command(self, "-round")
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		var n, b float64
		if err == nil {
			_, err = fmt.Sscan(string(out), &n, &b)
		}
		if err != nil {
			fmt.Printf("# skip %s: the round failed: %v\n", name, err)
			return
		}
		ns, bytes = append(ns, n), append(bytes, b)
	}
	sort.Float64s(ns)
	sort.Float64s(bytes)
	fmt.Printf("%-40s %12d %10.1f ns/op %10.0f B/task\n", name, tasks,
		ns[rounds/2], bytes[rounds/2])
}
