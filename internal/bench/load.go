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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// loadResult is what `dbchat-bench load` reports on stdout.
type loadResult struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`

	CPU time.Duration `json:"-"` // the load generator's own CPU time (rusage)
}

// loadHeaderEnv carries one request header (the API key) to the load
// generator, out of its command line.
const loadHeaderEnv = "BENCH_LOAD_HEADER"

func cutHeader(h string) (name, value string, ok bool) {
	k, v, ok := strings.Cut(h, ":")
	return k, strings.TrimSpace(v), ok
}

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
	hName, hValue, hSet := cutHeader(os.Getenv(loadHeaderEnv))
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc,
		MaxConnsPerHost: *conc, DisableCompression: true, IdleConnTimeout: time.Minute}}
	var mu sync.Mutex
	var res loadResult
	var lat []float64 // µs
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			var mine []float64
			var errs int64
			first := ""
			for ctx.Err() == nil && time.Now().Before(deadline) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
				if hSet {
					req.Header.Set(hName, hValue)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					if errs++; first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, micros(time.Since(t0)))
			}
			mu.Lock()
			defer mu.Unlock()
			lat, res.Errors = append(lat, mine...), res.Errors+errs
			if res.FirstError == "" {
				res.FirstError = first
			}
		})
	}
	wg.Wait()
	res.Requests = int64(len(lat))
	res.RPS = float64(res.Requests) / time.Since(start).Seconds()
	res.P50us, res.P99us = pq(lat, 0.50), pq(lat, 0.99)
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
