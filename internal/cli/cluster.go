package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/dbchat/dbchat/internal/pgcluster"
)

// cmdCluster implements `dbchat cluster exec`: `make test` uses it to run the
// tests against a private, throwaway-speed cluster unless the caller already
// named a database.
func cmdCluster(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "exec" {
		return errUsage
	}
	fs := newFlags("cluster exec", env)
	dir := fs.String("dir", ".dbchat/test", "cluster directory")
	fast := fs.Bool("fast", true, "fsync off: for throwaway test clusters")
	buffers := fs.String("shared-buffers", "", "shared_buffers: a size (4GB) or a share of memory (25%); default 128MB")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() == 0 {
		return errUsage
	}
	testURL := env.Getenv("TEST_DATABASE_URL")
	if testURL == "" {
		testURL = env.Getenv("DBCHAT_ADMIN_DATABASE_URL")
	}
	// TEST_CLUSTER_DIR names the private cluster, so tests that need its
	// hot standby (dbtest.DB.Standby) can start it: lazily, once, and Stop
	// below stops it with the cluster.
	var clusterDir string
	if testURL == "" {
		c, err := pgcluster.EnsureWith(ctx, *dir, env.Stderr, pgcluster.Options{Fast: *fast, SharedBuffers: *buffers})
		if err != nil {
			return err
		}
		defer func() {
			if err := c.Stop(context.Background()); err != nil {
				fmt.Fprintf(env.Stderr, "dbchat: stop cluster: %v\n", err)
			}
		}()
		testURL, clusterDir = c.SuperuserURL("postgres"), c.Dir
		fmt.Fprintf(env.Stderr, "dbchat: private cluster in %s on 127.0.0.1:%d\n", *dir, c.Port)
	}
	cmd := exec.CommandContext(ctx, fs.Arg(0), fs.Args()[1:]...)
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+testURL)
	if clusterDir != "" {
		cmd.Env = append(cmd.Env, "TEST_CLUSTER_DIR="+clusterDir)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, env.Stdout, env.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitError{code: max(ee.ExitCode(), 1)}
	}
	return err
}
