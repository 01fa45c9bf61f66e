package audit_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/audit"
)

func kmsgFixture(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, "kmsg-records.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestParseKmsgSeccompFixture(t *testing.T) {
	type want struct {
		seq     uint64
		pid     int
		comm    string
		exe     string
		arch    string
		nr      int64
		name    string // "" when libseccomp is not linked in or the arch is unknown
		action  string
		denied  bool
		auditID string
	}
	wants := []*want{
		{seq: 341, pid: 12409, comm: "kprobe", exe: "/tmp/kprobe/kprobe", arch: "amd64", nr: 140, name: "getpriority", action: "kill_process", denied: true, auditID: "1795457624.505:2"},
		{seq: 342, pid: 12417, comm: "kprobe", exe: "/tmp/kprobe/kprobe", arch: "amd64", nr: 110, name: "getppid", action: "errno", denied: true, auditID: "1795457624.537:3"},
		{seq: 343, pid: 2201, comm: "my app", exe: "/tmp/my app/bin", arch: "amd64", nr: 101, name: "ptrace", action: "log", denied: false, auditID: "1795457624.537:4"},
		{seq: 344, pid: 28638, comm: "probe", exe: "/bin/probe", arch: "arm64", nr: 117, name: "ptrace", action: "errno", denied: true, auditID: "1795458031.137:5"},
		{seq: 345, pid: 28639, comm: "probe", exe: "/bin/probe", arch: "x86", nr: 26, name: "ptrace", action: "kill_thread", denied: true, auditID: "1795458031.137:6"},
		{seq: 346, pid: 28640, comm: "x32", exe: "/bin/x32", arch: "x32", nr: 1073742145, action: "user_notif", denied: true, auditID: "1795458031.137:7"},
		{seq: 347, pid: 28641, comm: "odd", exe: "(null)", arch: "0xdeadbeef", nr: 7, action: "trap", denied: true, auditID: "1795458031.137:8"},
		nil, nil, nil, nil, // not seccomp records
	}
	lines := kmsgFixture(t)
	if len(lines) != len(wants) {
		t.Fatalf("fixture has %d lines, table %d", len(lines), len(wants))
	}
	resolves := audit.SeccompRecord{Arch: 0xc000003e, Syscall: 0}.SyscallName() != ""
	for i, line := range lines {
		w := wants[i]
		t.Run(strings.SplitN(line, ";", 2)[0], func(t *testing.T) {
			r, ok, err := audit.ParseKmsgSeccomp([]byte(line + "\n"))
			if err != nil {
				t.Fatalf("ParseKmsgSeccomp: %v", err)
			}
			if w == nil {
				if ok {
					t.Fatalf("parsed a non-seccomp record as %+v", r)
				}
				return
			}
			if !ok {
				t.Fatal("seccomp record not recognized")
			}
			if r.KmsgSeq != w.seq || r.PID != w.pid || r.Comm != w.comm || r.Exe != w.exe || r.ArchName() != w.arch ||
				r.Syscall != w.nr || r.Action() != w.action || r.Denied() != w.denied || r.AuditID != w.auditID {
				t.Errorf("parsed %+v (arch %s, action %s, denied %v)", r, r.ArchName(), r.Action(), r.Denied())
			}
			if resolves && w.name != "" && r.SyscallName() != w.name {
				t.Errorf("syscall name = %q, want %q", r.SyscallName(), w.name)
			}
		})
	}
}

func TestParseKmsgSeccompMalformed(t *testing.T) {
	tests := []struct {
		name, rec string
		ok        bool
		err       string
	}{
		{"no prefix separator", "audit: type=1326 pid=1", false, "no ';'"},
		{"short prefix", "5,1;audit: type=1326 pid=1", false, "fewer than 4"},
		{"bad sequence", "5,x,1,-;audit: type=1326 pid=1", false, "sequence"},
		{"missing pid", "5,1,1,-;audit: type=1326 audit(1.2:3): arch=c000003e syscall=1 code=0x0", true, "pid is missing"},
		{"negative pid", "5,1,1,-;audit: type=1326 audit(1.2:3): pid=-4 arch=c000003e syscall=1 code=0x0", true, "pid"},
		{"bad arch", "5,1,1,-;audit: type=1326 audit(1.2:3): pid=4 arch=zz syscall=1 code=0x0", true, "arch"},
		{"unterminated quote", `5,1,1,-;audit: type=1326 audit(1.2:3): pid=4 comm="abc arch=c000003e syscall=1 code=0x0`, true, "unterminated"},
		{"duplicate key", "5,1,1,-;audit: type=1326 audit(1.2:3): pid=4 pid=5 arch=c000003e syscall=1 code=0x0", true, "twice"},
		{"junk token", "5,1,1,-;audit: type=1326 audit(1.2:3): pid=4 junk arch=c000003e syscall=1 code=0x0", true, "key=value"},
		{"other audit type", "5,1,1,-;audit: type=1300 audit(1.2:3): pid=4", false, ""},
		{"continuation lines are ignored", "5,9,1,-;audit: type=1326 audit(1.2:3): pid=4 arch=c000003e syscall=1 code=0x0\n SUBSYSTEM=x\n DEVICE=y\n", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, err := audit.ParseKmsgSeccomp([]byte(tc.rec))
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v", ok, tc.ok)
			}
			if tc.err == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want one containing %q", err, tc.err)
			}
		})
	}
}
