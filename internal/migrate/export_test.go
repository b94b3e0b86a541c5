package migrate

import (
	"context"
	"io/fs"
)

// RunMigrations is Run over the migrations in fsys instead of the embedded
// ones, for tests that add a migration of their own.
func RunMigrations(ctx context.Context, opts Options, fsys fs.FS) error {
	return run(ctx, opts, fsys)
}

// AutoShards is autoShards.
var AutoShards = autoShards
