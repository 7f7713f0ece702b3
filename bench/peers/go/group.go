//go:build ignore

// Go's errgroup (golang.org/x/sync/errgroup, Debian's
// golang-golang-x-sync-dev), measured like weft's task groups:
// BenchmarkGroup/members=<n>/go makes a group with a context
// (errgroup.WithContext, as the cancel-the-rest groups weft's are), starts
// n goroutines that return nil, and waits; ns per group. GOMAXPROCS=1:
// one thread, as one hub.
// Usage: GOPATH=$(go env GOPATH):/usr/share/gocode GO111MODULE=off \
//        go run group.go measure.go [regex]
package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"

	"golang.org/x/sync/errgroup"
)

func main() {
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	filter := regexp.MustCompile(pattern)
	runtime.GOMAXPROCS(1)
	for _, members := range []int{1, 100, 10000} {
		name := fmt.Sprintf("BenchmarkGroup/members=%d/go", members)
		if !filter.MatchString(name) {
			continue
		}
		m := members
		n, ns := measure(1, timed(func(n int) {
			for i := 0; i < n; i++ {
				g, _ := errgroup.WithContext(context.Background())
				for j := 0; j < m; j++ {
					g.Go(func() error { return nil })
				}
				if err := g.Wait(); err != nil {
					panic(err)
				}
			}
		}))
		report(name, n, ns)
	}
}
