//go:build !linux

package pgbouncer

import "syscall"

// procAttr runs PgBouncer as cred (nil: as ourselves).
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
