//go:build ignore

// The measuring loop the Go peers share (run with each: go run hub.go
// measure.go): size a round to about 0.2 s, then take the median of 5
// rounds, and print it in Go's benchmark format, as weft's bench.h does;
// and what several peers need of the process (its memory, its fd limit).
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// measure sizes n from start so that round(n) takes about 0.2 s, then runs
// 5 rounds of n and returns n and the median time per operation in ns.
// round returns the seconds it took, and does n operations.
func measure(start int, round func(n int) float64) (int, float64) {
	n := start
	for {
		dt := round(n)
		if dt > 0.2 {
			break
		}
		next := n * 100
		if dt > 0.001 {
			next = int(float64(n) * 0.25 / dt)
		}
		if next <= n {
			next = n * 2
		}
		n = next
	}
	var rounds []float64
	for r := 0; r < 5; r++ {
		rounds = append(rounds, round(n)*1e9/float64(n))
	}
	sort.Float64s(rounds)
	return n, rounds[2]
}

// timed turns fn(n) into a round that returns its seconds.
func timed(fn func(n int)) func(n int) float64 {
	return func(n int) float64 {
		t0 := time.Now()
		fn(n)
		return time.Since(t0).Seconds()
	}
}

func report(name string, n int, ns float64) {
	fmt.Printf("%-40s %12d %10.1f ns/op\n", name, n, ns)
}

// statusKB reads a "VmRSS:"-style field of /proc/self/status, in kB.
func statusKB(field string) int64 { return procKB("/proc/self/status", field) }

// meminfoKB reads a field of /proc/meminfo ("KernelStack"), in kB: the
// whole machine's.
func meminfoKB(field string) int64 { return procKB("/proc/meminfo", field) }

// procKB reads a "Name:  <n> kB" field of a /proc file, in kB, or -1.
func procKB(path, field string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				v, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the soft limit it got.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return lim.Cur
}
