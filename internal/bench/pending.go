package bench

import "context"

// Parts 3 and 5 measure code that does not exist yet. Their hooks are here so
// that the report keeps a place for them and the suite's shape does not
// change when they land.

// runVector is the hook for part 3, vector retrieval at scale. When the
// retrieval code in internal/nlsql lands, it should:
//
//   - seed ≥ 200,000 training_data rows of 768 dimensions across 1,000
//     tenants with skew (one tenant 25 %, ten tenants 2 % each, the rest
//     small) and several models per tenant, as the superuser (seedTenants
//     gives the tenants; random unit vectors with a few clusters per tenant
//     make recall meaningful);
//   - compute the exact top-10 within tenant+model as the floor (sequential
//     scan, ORDER BY embedding <=> $q, as the superuser);
//   - call the real retrieval function through tenant.DB for the same
//     queries, for each strategy (no index, HNSW default, HNSW with
//     hnsw.iterative_scan, exact via B-tree for small tenants, partitioning);
//   - report recall@10 and p50/p95 latency per tenant size class (25 %, 2 %,
//     small), goal recall@10 ≥ 0.95 in every class and p95 ≤ 20 ms.
func runVector(context.Context, *Env) (*Section, error) {
	return pendingSection("recall@10 and p95 latency per tenant size class", "recall ≥ 0.95, p95 ≤ 20 ms",
		"**Not measured yet:** the vector retrieval code (internal/nlsql) is being built. The hook is `runVector` in "+
			"internal/bench/pending.go; it will seed ≥ 200,000 training rows of 768 dimensions across 1,000 tenants with skew "+
			"(one tenant with 25 %, ten with 2 % each, the rest small) and several models, and report recall@10 against exact "+
			"search and p50/p95 latency per tenant size class for each strategy tried (no index, HNSW default, HNSW with "+
			"iterative scan, exact via B-tree for small tenants, partitioning).\n\n"+
			"**Goal:** recall@10 ≥ 0.95 in every class and p95 ≤ 20 ms on this machine.\n"), nil
}

// runAsk is the hook for part 5, the overhead of /v1/ask around the
// generator. When /v1/ask exists (with the offline generator), it should:
//
//   - provision a tenant with 10,000 training rows (seedTenants plus
//     training_data rows) and start the real server (startServer, as part 4
//     does, so its CPU profile is its own);
//   - drive POST /v1/ask from the load generator (runLoad) at concurrency 1
//     and 32, and take the time spent outside the generator (embed,
//     retrieve, validate, execute, history write) from the server's
//     per-phase timings, with the generator's own time subtracted;
//   - report p50/p95 of that overhead, goal p50 ≤ 10 ms.
func runAsk(context.Context, *Env) (*Section, error) {
	return pendingSection("time outside the generator, p50", "p50 ≤ 10 ms",
		"**Not measured yet:** `/v1/ask` is not built yet. The hook is `runAsk` in internal/bench/pending.go; it will run "+
			"`/v1/ask` with the offline generator on a tenant with 10,000 training rows and report the time spent outside the "+
			"generator (embed, retrieve, validate, execute, history write).\n\n**Goal:** p50 ≤ 10 ms.\n"), nil
}
