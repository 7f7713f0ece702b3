//go:build ignore

// Go's side of BenchmarkRedisGet, printed in Go's benchmark format:
//
//	BenchmarkRedisGet/clients=<n>/go   n goroutines, each with a redigo
//	                                   connection of its own, making GETs
//	                                   of one 64-byte value, one at a time;
//	                                   ns per GET, resident bytes per client
//
// The server is the one bench/run.sh started (bench-redis-server), on the
// port in $REDIS_PORT; the value is SET once before the rows. Every reply
// is checked. As in
// weft's rows (bench/redis-client.h): kstack-B/client is the kernel stacks
// they added (/proc/meminfo's KernelStack); B/client is VmRSS once every client
// has connected and made one GET, less VmRSS before the first dialled,
// over n, each row in a process of its own (this program again, with -row
// n); a round is k GETs on each connection, k sized so that a round takes
// about 0.2 s, and the median of 5 rounds is printed. GOMAXPROCS=1, as
// weft's one hub.
//
// redigo is Debian's golang-github-gomodule-redigo-dev, found through
// GOPATH (run.sh adds /usr/share/gocode) with GO111MODULE=off. The build
// tag keeps this file out of the package hub.go makes; run it by name:
// go run redis.go measure.go [regex]
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The key and value of bench/redis-client.h.
const key = "weft:bench:get"

var value = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

// get makes one GET on c and checks the reply.
func get(c redis.Conn) error {
	got, err := redis.Bytes(c.Do("GET", key))
	if err != nil {
		return fmt.Errorf("GET: %v", err)
	}
	if !bytes.Equal(got, value) {
		return fmt.Errorf("GET: %q, not the value set", got)
	}
	return nil
}

// set SETs the key to the value.
func set(port int) error {
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("dial: %v", err)
	}
	defer c.Close()
	if _, err := redis.String(c.Do("SET", key, value)); err != nil {
		return fmt.Errorf("SET: %v", err)
	}
	return nil
}

// clients are n goroutines, each owning a connection, that make k GETs
// whenever a round starts and report when done.
type clients struct {
	start []chan int // a round's k for each client; closed to stop
	done  chan error // one per client per round (and once when connected)
	wg    sync.WaitGroup
}

func startClients(port, n int) (*clients, error) {
	cs := &clients{done: make(chan error, n)}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < n; i++ {
		ch := make(chan int, 1)
		cs.start = append(cs.start, ch)
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			c, err := redis.Dial("tcp", addr)
			if err != nil {
				cs.done <- fmt.Errorf("dial: %v", err)
				for range ch {
					cs.done <- err
				}
				return
			}
			defer c.Close()
			err = get(c)
			cs.done <- err
			for k := range ch {
				for i := 0; i < k && err == nil; i++ {
					err = get(c)
				}
				cs.done <- err
			}
		}()
	}
	return cs, cs.wait()
}

// wait collects one report from every client: the first error, if any.
func (cs *clients) wait() error {
	var first error
	for range cs.start {
		if err := <-cs.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// round makes k GETs on every connection at once; it returns the seconds
// it took, or an error.
func (cs *clients) round(k int) (float64, error) {
	t0 := time.Now()
	for _, ch := range cs.start {
		ch <- k
	}
	err := cs.wait()
	return time.Since(t0).Seconds(), err
}

func (cs *clients) stop() {
	for _, ch := range cs.start {
		close(ch)
	}
	cs.wg.Wait()
}

func benchGet(name string, port, n int) {
	if lim := raiseFileLimit(); lim < uint64(n)+64 {
		fmt.Printf("# skip %s: RLIMIT_NOFILE is %d, %d connections need more\n", name, lim, n)
		return
	}
	runtime.GC()
	before, kstackBefore := statusKB("VmRSS"), meminfoKB("KernelStack")
	cs, err := startClients(port, n)
	after, kstackAfter := statusKB("VmRSS"), meminfoKB("KernelStack")
	defer cs.stop()
	if err != nil {
		fmt.Printf("# %s failed: %v\n", name, err)
		return
	}
	var failed error
	k, ns := measure(1, func(k int) float64 {
		if failed != nil {
			return 1 // ends the sizing: failed clients make no GETs
		}
		dt, err := cs.round(k)
		failed = err
		return dt
	})
	if failed != nil {
		fmt.Printf("# %s failed: %v\n", name, failed)
		return
	}
	fmt.Printf("%-40s %12d %10.1f ns/op %10.0f B/client %8.0f kstack-B/client\n",
		name, k*n, ns/float64(n), float64(after-before)*1024/float64(n),
		float64(kstackAfter-kstackBefore)*1024/float64(n))
}

func main() {
	runtime.GOMAXPROCS(1)
	port, perr := strconv.Atoi(os.Getenv("REDIS_PORT"))
	if len(os.Args) > 2 && os.Args[1] == "-row" {
		n, err := strconv.Atoi(os.Args[2])
		if err == nil && perr == nil {
			benchGet(fmt.Sprintf("BenchmarkRedisGet/clients=%d/go", n), port, n)
		}
		return
	}
	pattern := "."
	if len(os.Args) > 1 {
		pattern = os.Args[1]
	}
	filter := regexp.MustCompile(pattern)
	var names []string
	var sizes []int
	for _, n := range []int{1, 100, 1000} {
		name := fmt.Sprintf("BenchmarkRedisGet/clients=%d/go", n)
		if filter.MatchString(name) {
			names = append(names, name)
			sizes = append(sizes, n)
		}
	}
	if len(names) == 0 {
		return
	}
	if perr != nil {
		fmt.Println("# skip BenchmarkRedisGet/*/go: no server (REDIS_PORT)")
		return
	}
	if err := set(port); err != nil {
		fmt.Printf("# BenchmarkRedisGet/*/go failed: %v\n", err)
		return
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Printf("# skip BenchmarkRedisGet/*/go: %v\n", err)
		return
	}
	for i, name := range names {
		row := exec.Command(self, "-row", strconv.Itoa(sizes[i]))
		row.Stdout = os.Stdout
		row.Stderr = os.Stderr
		if err := row.Run(); err != nil {
			fmt.Printf("# %s failed: %v\n", name, err)
		}
	}
}
