package pgbouncer

import "syscall"

// procAttr runs PgBouncer as cred (nil: as ourselves) and has the kernel
// kill it should we die without calling Stop, so no test run leaves one behind.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
