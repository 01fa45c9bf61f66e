package runner

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseVMStat(t *testing.T) {
	data := []byte("pgfault 12\noom_kill 201\noom_kill_extra 9\n")
	if n, ok := parseVMStat(data, "oom_kill"); !ok || n != 201 {
		t.Errorf("oom_kill = %d, %v; want 201", n, ok)
	}
	for _, bad := range []string{"pgfault 12\n", "oom_kill x\n", "oom_kill\n", ""} {
		if n, ok := parseVMStat([]byte(bad), "oom_kill"); ok {
			t.Errorf("%q: got %d, want no value", bad, n)
		}
	}
	if _, ok := hostOOMKills(); !ok {
		t.Error("this kernel's /proc/vmstat has no oom_kill")
	}
}

// One signal when runc returns is the removal when no process on the host
// was OOM-killed meanwhile: the verdict does not wait for a second signal.
// When the kill counter moved, a second signal soon after says the first
// was an OOM.
func TestOOMVerdictFromOneSignal(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before, now uint64
		want        bool
	}{
		{"no kill on the host", 7, 7, false},
		{"a kill on the host", 7, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(efd)
			signal := func() {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], 1)
				if _, err := unix.Write(efd, b[:]); err != nil {
					t.Error(err)
				}
			}
			w := &oomWatch{efd: efd, control: -1, kills: tc.before, killsOK: true,
				hostKills: func() (uint64, bool) { return tc.now, true }}
			signal()
			// The removal's signal, well within oomSettle.
			timer := time.AfterFunc(20*time.Millisecond, signal)
			defer timer.Stop()
			if got := w.oomed(); got != tc.want {
				t.Errorf("oomed() = %v, want %v", got, tc.want)
			}
		})
	}
}
