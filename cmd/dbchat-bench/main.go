// Command dbchat-bench runs dbchat's benchmarks (`make bench`): it measures
// the service against a floor measured in the same run, prints a table and
// writes docs/BENCHMARKS.md. All logic lives in internal/bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dbchat/dbchat/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
