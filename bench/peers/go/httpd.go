//go:build ignore

// Go's side of BenchmarkHTTPIdle: a net/http server, as a Go program
// would write one, answering GET /hello with "Hello, world" on keep-alive
// connections, and nothing else. bench/http/http.sh builds it (go build
// httpd.go), runs it with GOMAXPROCS=1 beside nginx's one worker and
// weft's, and reads its resident memory before and after its idle
// connections (bench/http/client.c).
//
//	httpd -listen 127.0.0.1:PORT
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, world"))
	})
	// No timeouts: the idle connections must stay open, as nginx's
	// keepalive_timeout 75s and weft's keep them.
	log.Fatal(http.ListenAndServe(*listen, mux))
}
