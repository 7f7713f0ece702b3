//go:build ignore

// The measuring loop the Go peers share (run with each: go run hub.go
// measure.go): size a round to about 0.2 s, then take the median of 5
// rounds, and print it in Go's benchmark format, as weft's bench.h does.
package main

import (
	"fmt"
	"sort"
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
