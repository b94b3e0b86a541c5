package nlsql

// WithPlanHook returns r reporting the EXPLAIN of each search statement to
// f, so tests can check which index served it.
func WithPlanHook(r Retriever, f func(plan string)) Retriever {
	r.planHook = f
	return r
}
