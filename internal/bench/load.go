package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// loadResult is what `dbchat-bench load` reports on stdout.
type loadResult struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	MeanUs     float64 `json:"mean_us"`
	BodyBytes  int64   `json:"body_bytes"` // per successful response

	CPU time.Duration `json:"-"` // the load generator's own CPU time (rusage)
}

// loadHeaderEnv carries one request header (the API key) to the load
// generator, out of its command line.
const loadHeaderEnv = "BENCH_LOAD_HEADER"

// loadMain is the load generator: c workers on keep-alive connections send
// GET url back to back for d, then it prints a loadResult as JSON.
func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dbchat-bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "URL to GET")
	conc := fs.Int("c", 32, "concurrent connections")
	dur := fs.Duration("d", 5*time.Second, "duration")
	if err := fs.Parse(args); err != nil || *target == "" {
		fmt.Fprintln(stderr, "usage: dbchat-bench load -url URL [-c 32] [-d 5s]   (header in $"+loadHeaderEnv+")")
		return 2
	}
	var hName, hValue string
	if h := os.Getenv(loadHeaderEnv); h != "" {
		k, v, _ := bytes.Cut([]byte(h), []byte(":"))
		hName, hValue = string(k), string(bytes.TrimSpace(v))
	}
	tr := &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc,
		DisableCompression: true, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: time.Minute}

	type worker struct {
		lat    []time.Duration
		errors int64
		first  string
		bytes  int64
	}
	workers := make([]worker, *conc)
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, 1<<14)
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
				if err != nil {
					w.errors++
					w.first = err.Error()
					return
				}
				if hName != "" {
					req.Header.Set(hName, hValue)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					w.errors++
					if w.first == "" {
						w.first = err.Error()
					}
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				elapsed := time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK {
					w.errors++
					if w.first == "" {
						w.first = "status " + strconv.Itoa(resp.StatusCode)
					}
					continue
				}
				w.lat = append(w.lat, elapsed)
				w.bytes += n
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var res loadResult
	var all []time.Duration
	var sum time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errors
		res.BodyBytes += w.bytes
		if res.FirstError == "" {
			res.FirstError = w.first
		}
	}
	for _, l := range all {
		sum += l
	}
	slices.Sort(all)
	res.Requests = int64(len(all))
	res.Seconds = elapsed.Seconds()
	res.RPS = float64(res.Requests) / res.Seconds
	res.P50us = micros(durationQuantile(all, 0.50))
	res.P99us = micros(durationQuantile(all, 0.99))
	if res.Requests > 0 {
		res.MeanUs = micros(sum) / float64(res.Requests)
		res.BodyBytes /= res.Requests
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// runLoad runs the load generator in a second process against url.
func (e *Env) runLoad(ctx context.Context, url, header string, conc int, d time.Duration) (loadResult, error) {
	cmd := exec.CommandContext(ctx, e.exe, "load", "-url", url, "-c", strconv.Itoa(conc), "-d", d.String())
	cmd.Env = append(os.Environ(), loadHeaderEnv+"="+header)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("load generator: %w: %s", err, errb.String())
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("load generator output %q: %w", out.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = rusageCPU(ru)
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("load generator: %d failed requests (first: %s)", res.Errors, res.FirstError)
	}
	return res, nil
}
