package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// dist summarises repeated measurements: the median and the full spread.
type dist struct {
	Med, Min, Max float64
	N             int
}

func newDist(xs []float64) dist {
	if len(xs) == 0 {
		return dist{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Sorted(slices.Values(xs))
	return dist{Med: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// quantile of sorted xs, linearly interpolated.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// pq is the q-quantile of unsorted xs.
func pq(xs []float64, q float64) float64 { return quantile(slices.Sorted(slices.Values(xs)), q) }

// f renders the median with the spread: "12.3 (11.9–13.0)".
func (d dist) f(format string) string {
	if d.N <= 1 {
		return d.m(format)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", d.Med, d.Min, d.Max)
}

// m renders the median alone.
func (d dist) m(format string) string {
	if d.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, d.Med)
}

// ratios divides a by b pairwise (the same run's measurements).
func ratios(a, b []float64) []float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i] / b[i]
	}
	return r
}

// collect maps xs to numbers.
func collect[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// goal is a bound on a ratio.
type goal struct {
	bound  float64
	atMost bool // ratio ≤ bound is met; otherwise ratio ≥ bound
}

func (g goal) String() string {
	return fmt.Sprintf("%s %.2f×", map[bool]string{true: "≤", false: "≥"}[g.atMost], g.bound)
}

func (g goal) met(r float64) bool { return g.atMost == (r <= g.bound) || r == g.bound }

// verdict judges the median ratio and says by how much a miss misses.
func (g goal) verdict(r float64) string {
	off := math.Abs(r-g.bound) / g.bound * 100
	switch {
	case math.IsNaN(r):
		return "not measured"
	case g.met(r) && g.atMost:
		return fmt.Sprintf("met (%.0f%% headroom)", off)
	case g.met(r):
		return fmt.Sprintf("met (%.0f%% above)", off)
	}
	return fmt.Sprintf("**missed** by %.0f%% (%.2f× vs %s)", off, r, g)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func pct(part, whole float64) float64 {
	if whole == 0 || math.IsNaN(whole) {
		return 0
	}
	return part / whole * 100
}
