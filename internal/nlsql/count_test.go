package nlsql

import (
	"math"
	"testing"

	"github.com/google/uuid"
)

// A capped count leads to the same access path as the full one, for every
// set size, graph size, k and threshold tried (the cap is applied as
// CountRetrievable applies it; TestModelVectorIndex checks the statement).
func TestCountCapKeepsTheChoice(t *testing.T) {
	for _, r := range []Retriever{{}, {TenantExactMax: 1}, {TenantExactMax: 100, MaxScanTuples: 400}, {TenantExactMax: 3000, ExactMax: 2000}} {
		r = r.withDefaults()
		for _, k := range []int{1, 5, 10, 100} {
			p := r.countParams(uuid.Nil, "e", Ks{SQL: k, DDL: -1, Documentation: -1})
			for _, own := range []bool{true, false} {
				least := p.GlobalMinCount // the graph is the table
				if own {
					least = p.OwnMinCount
				}
				for _, graph := range []float64{0, 1, 50, 501, 10_000, 250_000, 2_000_000, 20_000_000} {
					limit := min(float64(p.MaxCount), max(float64(least), math.Ceil(graph*p.WalkFactor)))
					for _, n := range []int{1, 2, 9, 10, 11, 100, 101, 499, 500, 501, 502, 2000, 2001, 2002, 10_000, 99_999, 250_000} {
						capped := min(n, int(limit))
						if capped < min(n, k) {
							t.Errorf("%+v k %d own %t graph %.0f n %d: counted %d, fewer than k", r, k, own, graph, n, capped)
						}
						if got, want := r.useHNSW(k, capped, max(graph, 1), own), r.useHNSW(k, min(n, r.CountCap), max(graph, 1), own); got != want {
							t.Errorf("%+v k %d own %t graph %.0f n %d: capped at %d chooses hnsw=%t, the full count %t", r, k, own, graph, n, capped, got, want)
						}
					}
				}
			}
		}
	}
}
