// goapp is the scrape test's target: a Go program that serves
// net/http/pprof on a loopback address and keeps busy so that every
// profile type has samples (cpu: hashing; heap: allocations kept alive;
// mutex and block: goroutines fighting over one lock; goroutine: those).
// Standard library only: the test builds it offline with `go build`.
package main

import (
	"crypto/sha256"
	"flag"
	"log"
	"net/http"
	_ "net/http/pprof"
	"runtime"
	"sync"
	"time"
)

// burn hashes for about half of the time, leaving the machine usable.
func burn() {
	buf := make([]byte, 64<<10)
	for {
		end := time.Now().Add(20 * time.Millisecond)
		for time.Now().Before(end) {
			sum := sha256.Sum256(buf)
			buf[0] = sum[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contend makes lock contention (mutex profile) and waiting (block profile).
func contend(mu *sync.Mutex, counter *int) {
	for {
		mu.Lock()
		*counter++
		time.Sleep(time.Millisecond)
		mu.Unlock()
		runtime.Gosched()
	}
}

// allocate keeps a rolling window of buffers alive (heap profile).
func allocate() {
	keep := make([][]byte, 64)
	for i := 0; ; i++ {
		keep[i%len(keep)] = make([]byte, 256<<10)
		time.Sleep(5 * time.Millisecond)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6060", "listen address (loopback)")
	flag.Parse()
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	var mu sync.Mutex
	counter := 0
	go burn()
	go allocate()
	for i := 0; i < 4; i++ {
		go contend(&mu, &counter)
	}
	log.Printf("goapp: serving /debug/pprof on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
