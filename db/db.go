// Package db embeds the goose SQL migrations, which are also the schema sqlc
// reads, so the binary carries exactly the schema its queries were generated
// against.
package db

import "embed"

// Migrations holds db/migrations/*.sql in goose format.
//
//go:embed migrations/*.sql
var Migrations embed.FS
