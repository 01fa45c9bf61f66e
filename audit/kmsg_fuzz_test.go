package audit_test

import (
	"testing"

	"github.com/secrun/secrun/audit"
)

// FuzzParseKmsgSeccomp: kernel log records are parsed without panics, and an
// accepted seccomp record names a process and can be described.
func FuzzParseKmsgSeccomp(f *testing.F) {
	for _, line := range kmsgFixture(f) {
		f.Add([]byte(line))
	}
	f.Add([]byte("5,1,1,-;audit: type=1326 pid=1 arch=c000003e syscall=1 code=0x0"))
	f.Add([]byte("5,1,1,-;audit: type=1326 audit(1.2:3): pid=4 comm=\"a b"))
	f.Add([]byte(";"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		r, ok, err := audit.ParseKmsgSeccomp(rec)
		if !ok || err != nil {
			return
		}
		if r.PID <= 0 {
			t.Fatalf("accepted a record without a PID: %+v", r)
		}
		if r.Action() == "" || r.ArchName() == "" {
			t.Fatalf("record cannot be described: %+v", r)
		}
		_ = r.SyscallName()
	})
}
