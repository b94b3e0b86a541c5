package interpret

// SetPanicHook makes Describe report the panics it recovers from.
func SetPanicHook(f func(any)) { onPanic = f }
