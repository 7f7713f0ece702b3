//go:build ignore

// Go's side of the hub benchmarks, measured like weft's (a median of 5
// rounds of about 0.2 s each), printed in Go's benchmark format:
//
//	BenchmarkSpawnJoin/go   start a goroutine that returns, wait for it
//	BenchmarkYield/go       two goroutines alternating through runtime.Gosched
//
// GOMAXPROCS=1 unless a row says otherwise.
// Usage: go run hub.go measure.go [regex]
package main

import (
	"os"
	"regexp"
	"runtime"
	"sync"
)

func bench(filter *regexp.Regexp, name string, fn func(n int)) {
	if !filter.MatchString(name) {
		return
	}
	n, ns := measure(1, timed(fn))
	report(name, n, ns)
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
