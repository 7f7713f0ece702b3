// Go's side of the hub benchmarks, measured like weft's (a median of 5
// rounds of about 0.2 s each), printed in Go's benchmark format:
//
//	BenchmarkSpawnJoin/go   start a goroutine that returns, wait for it
//	BenchmarkYield/go       two goroutines alternating through runtime.Gosched
//
// GOMAXPROCS=1 unless a row says otherwise. Usage: go run hub.go [regex]
package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"
)

func bench(filter *regexp.Regexp, name string, fn func(n int)) {
	if !filter.MatchString(name) {
		return
	}
	n := 1
	for {
		t0 := time.Now()
		fn(n)
		dt := time.Since(t0).Seconds()
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
		t0 := time.Now()
		fn(n)
		rounds = append(rounds, float64(time.Since(t0).Nanoseconds())/float64(n))
	}
	sort.Float64s(rounds)
	fmt.Printf("%-40s %12d %10.1f ns/op\n", name, n, rounds[2])
}

func main() {
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	filter := regexp.MustCompile(pattern)
	runtime.GOMAXPROCS(1)

	bench(filter, "BenchmarkSpawnJoin/go", func(n int) {
		for i := 0; i < n; i++ {
			done := make(chan struct{})
			go func() { close(done) }()
			<-done
		}
	})
	bench(filter, "BenchmarkYield/go", func(n int) {
		var wg sync.WaitGroup
		wg.Add(2)
		for k := 0; k < 2; k++ {
			go func() {
				for i := 0; i < n/2; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	})
}
