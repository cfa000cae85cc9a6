// bench-loader — HTTP POST load generator of scripts/bench (Go stdlib only).
//
//	bench-loader -url URL [-c 8] (-files LIST | -body FILE -n N | -body FILE -d 10s)
//
//	bench-loader -fetch A,B[,...] [-n 5] [-bump URL -body FILE] [-out DIR]
//
// POSTs profiles to URL over -c keep-alive connections and prints one line
// of key=value results: sent, ok (HTTP 200), bad (other status), errors
// (transport), elapsed seconds, req/s and latency percentiles in ms.
//
// Unlike a duration-bound tool such as wrk, it stops *issuing* requests when
// the count or duration is reached and then waits for every request in flight,
// so "ok" is exactly the number of acknowledgements the server sent.  That is
// what lets scripts/bench check that the store holds exactly one profile per
// 200 answer.  Bodies are read into memory before the clock starts.
//
// With -body, every request sends a distinct profile: the request's number
// goes into the gzip header's MTIME field (bytes 4-7), which no decoder
// checks (-mark K: of the gzip member at byte K of the body, a profile
// inside a request; -mark-hex K: as 8 hex digits at byte K of a text
// body, such as a frame name of folded stacks).  The server's ingest is
// idempotent, so re-sending identical bytes would time a lookup that
// stores nothing instead of an ingest: runs against the same server give
// each run its own numbers with -first (the first request's number).
// -gzip sends each body gzip-compressed (Content-Encoding: gzip, as the
// OpenTelemetry Collector's otlphttp exporter does by default), marked
// before it is compressed; the compressed bodies are made before the clock
// starts (at most -pool of them, reused past it: the count of such
// repeats is printed) so that compressing takes no CPU from the server.
//
// -fetch compares ways of reading the same answer (an http:// URL is a GET,
// anything else a file read: open, read to EOF, close), -n rounds with the
// targets interleaved, all in this process so that no side pays a process
// start; with -bump, each read follows one POST of -body to that URL, so a
// cache keyed on the store generation cannot answer it.  Prints one line
// per target: target=i median_ms=... bytes=... ms=t1,t2,...  The answers of
// the last round are written to -out/fetch.<i> when -out is given.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	lat             []time.Duration
	ok, bad, errors int
}

func readBodies(list, body string) ([][]byte, error) {
	if body != "" {
		b, err := os.ReadFile(body)
		return [][]byte{b}, err
	}
	f, err := os.Open(list)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return float64(sorted[i]) / 1e6
}

// fetchOne reads target once and returns its bytes.
func fetchOne(client *http.Client, target string) ([]byte, error) {
	if !strings.HasPrefix(target, "http://") {
		return os.ReadFile(target)
	}
	resp, err := client.Get(target)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: HTTP %d", target, resp.StatusCode)
	}
	return b, err
}

// distinct makes the gzip profile b (changed in place) differ from the
// bodies of every other i by writing i+1 into its header's MTIME; a body
// that is no gzip is returned as it is.
func distinct(b []byte, i int64) []byte {
	return distinctAt(b, i, 0, false)
}

// distinctAt is distinct for a gzip member that starts at byte at of b (a
// profile inside a request, as in Pyroscope's Connect push), or, with hex,
// writes i+1 as 8 hex digits at b[at:] (a text body: folded stacks).
func distinctAt(b []byte, i int64, at int, hex bool) []byte {
	if hex && at >= 0 && at+8 <= len(b) {
		copy(b[at:at+8], fmt.Sprintf("%08x", uint32(i+1)))
	} else if !hex && at >= 0 && len(b) > at+10 && b[at] == 0x1f && b[at+1] == 0x8b {
		binary.LittleEndian.PutUint32(b[at+4:at+8], uint32(i+1))
	}
	return b
}

// mark1 makes body b (changed in place) the i-th distinct one: -mark-hex
// when hexAt >= 0, else the gzip member at gzAt.
func mark1(b []byte, i int64, hexAt, gzAt int) []byte {
	if hexAt >= 0 {
		return distinctAt(b, i, hexAt, true)
	}
	return distinctAt(b, i, gzAt, false)
}

// gzipBodies makes bodies first..first+n-1 of b, each marked and then
// gzip-compressed (the fastest level, as exporters use), on every CPU.
func gzipBodies(b []byte, first, n int64, hexAt, gzAt int) [][]byte {
	out := make([][]byte, n)
	var wg sync.WaitGroup
	workers := int64(runtime.NumCPU())
	for w := int64(0); w < workers; w++ {
		wg.Add(1)
		go func(w int64) {
			defer wg.Done()
			own := append([]byte(nil), b...)
			for i := w; i < n; i += workers {
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
				zw.Write(mark1(own, first+i, hexAt, gzAt))
				zw.Close()
				out[i] = buf.Bytes()
			}
		}(w)
	}
	wg.Wait()
	return out
}

func fetch(targets []string, rounds int, bump string, body []byte, out string) error {
	client := &http.Client{Timeout: 600 * time.Second}
	times := make([][]time.Duration, len(targets))
	last := make([][]byte, len(targets))
	for r := 0; r < rounds; r++ {
		for i, t := range targets {
			if bump != "" {
				// a distinct profile: a repeat would be stored once and
				// leave the store's generation where it was
				body = distinct(body, int64(r*len(targets)+i)+time.Now().UnixNano()%(1<<30))
				resp, err := client.Post(bump, "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			t0 := time.Now()
			b, err := fetchOne(client, t)
			if err != nil {
				return err
			}
			times[i] = append(times[i], time.Since(t0))
			last[i] = b
		}
	}
	for i := range targets {
		d := append([]time.Duration(nil), times[i]...)
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		med := float64(d[len(d)/2])
		if len(d)%2 == 0 {
			med = (float64(d[len(d)/2-1]) + float64(d[len(d)/2])) / 2
		}
		all := make([]string, len(times[i]))
		for j, t := range times[i] {
			all[j] = fmt.Sprintf("%.1f", float64(t)/1e6)
		}
		fmt.Printf("target=%d median_ms=%.3f bytes=%d ms=%s\n", i, med/1e6, len(last[i]),
			strings.Join(all, ","))
		if out != "" {
			if err := os.WriteFile(fmt.Sprintf("%s/fetch.%d", out, i), last[i], 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {
	url := flag.String("url", "", "POST URL, e.g. http://127.0.0.1:10100/api/0/profiles?service=s&type=cpu")
	conns := flag.Int("c", 8, "connections (concurrent requests)")
	list := flag.String("files", "", "file listing one profile path per line; each is POSTed once")
	body := flag.String("body", "", "one profile POSTed repeatedly (with -n or -d)")
	n := flag.Int("n", 0, "number of requests with -body")
	dur := flag.Duration("d", 0, "with -body: issue requests for this long, then drain")
	fetchList := flag.String("fetch", "", "comma-separated URLs / paths to read and time")
	bump := flag.String("bump", "", "with -fetch: POST -body here before each read")
	out := flag.String("out", "", "with -fetch: directory for the last answers")
	ctype := flag.String("type", "application/octet-stream", "Content-Type of the POSTs")
	mark := flag.Int("mark", 0, "with -body: byte offset of the gzip member whose MTIME makes each body distinct")
	markHex := flag.Int("mark-hex", -1, "with -body: byte offset of 8 characters replaced by a hex counter instead (text bodies)")
	first := flag.Int64("first", 0, "with -body: the number of the first request (runs against one server: distinct bodies)")
	gz := flag.Bool("gzip", false, "with -body: send the bodies gzip-compressed (Content-Encoding: gzip)")
	pool := flag.Int("pool", 65536, "with -gzip: compressed bodies made in advance")
	flag.Parse()
	if *fetchList != "" {
		var b []byte
		var err error
		if *bump != "" {
			b, err = os.ReadFile(*body)
		}
		if err == nil {
			rounds := *n
			if rounds <= 0 {
				rounds = 5
			}
			err = fetch(strings.Split(*fetchList, ","), rounds, *bump, b, *out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-loader:", err)
			os.Exit(1)
		}
		return
	}
	if *url == "" || (*list == "") == (*body == "") || (*body != "" && *n <= 0 && *dur <= 0) {
		flag.Usage()
		os.Exit(2)
	}
	bodies, err := readBodies(*list, *body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-loader:", err)
		os.Exit(1)
	}
	total := int64(len(bodies))
	if *body != "" {
		total = int64(*n)
		if *n <= 0 {
			total = 1 << 62
		}
	}

	var packed [][]byte
	if *gz {
		if *body == "" {
			fmt.Fprintln(os.Stderr, "bench-loader: -gzip needs -body")
			os.Exit(2)
		}
		k := int64(*pool)
		if total < k {
			k = total
		}
		packed = gzipBodies(bodies[0], *first, k, *markHex, *mark)
	}

	tr := &http.Transport{MaxIdleConns: *conns, MaxIdleConnsPerHost: *conns,
		MaxConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 120 * time.Second}
	var next, repeats int64 = -1, 0
	var stop int32
	results := make([]result, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	if *dur > 0 {
		time.AfterFunc(*dur, func() { atomic.StoreInt32(&stop, 1) })
	}
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			var own []byte
			if *body != "" {
				own = append([]byte(nil), bodies[0]...)
			}
			for atomic.LoadInt32(&stop) == 0 {
				i := atomic.AddInt64(&next, 1)
				if i >= total {
					return
				}
				b := bodies[i%int64(len(bodies))]
				if packed != nil {
					b = packed[i%int64(len(packed))]
					if i >= int64(len(packed)) {
						atomic.AddInt64(&repeats, 1)
					}
				} else if own != nil {
					b = mark1(own, *first+i, *markHex, *mark)
				}
				req, err := http.NewRequest("POST", *url, bytes.NewReader(b))
				if err != nil {
					r.errors++
					continue
				}
				req.Header.Set("Content-Type", *ctype)
				if packed != nil {
					req.Header.Set("Content-Encoding", "gzip")
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					r.errors++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				r.lat = append(r.lat, time.Since(t0))
				if resp.StatusCode == 200 {
					r.ok++
				} else {
					r.bad++
				}
			}
		}(&results[w])
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	var ok, bad, errs int
	for _, r := range results {
		all = append(all, r.lat...)
		ok, bad, errs = ok+r.ok, bad+r.bad, errs+r.errors
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sent := ok + bad + errs
	fmt.Printf("sent=%d ok=%d bad=%d errors=%d elapsed=%.3f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f",
		sent, ok, bad, errs, elapsed.Seconds(), float64(sent)/elapsed.Seconds(),
		percentile(all, 50), percentile(all, 90), percentile(all, 99), percentile(all, 100))
	if packed != nil {
		fmt.Printf(" repeats=%d", repeats)
	}
	fmt.Println()
	if errs > 0 || bad > 0 {
		os.Exit(1)
	}
}
