package caps_test

import (
	"os"
	"slices"
	"testing"

	"github.com/secrun/secrun/caps"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"net_admin", "CAP_NET_ADMIN"},
		{"CAP_SYS_ADMIN", "CAP_SYS_ADMIN"},
		{" Net_Bind_Service ", "CAP_NET_BIND_SERVICE"},
		{"all", "ALL"},
	} {
		got, err := caps.Normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := caps.Normalize("CAP_TELEPORT"); err == nil {
		t.Error("unknown capability accepted")
	}
}

func TestResolve(t *testing.T) {
	got, err := caps.Resolve(caps.DockerDefault, []string{"sys_ptrace"}, []string{"ALL"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, caps.Set{"CAP_SYS_PTRACE"}) {
		t.Errorf("drop ALL then add SYS_PTRACE = %v", got)
	}
	got, err = caps.Resolve(nil, []string{"ALL"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, caps.Known()) {
		t.Errorf("add ALL = %d caps, want %d", len(got), len(caps.Known()))
	}
	if _, err := caps.Resolve(nil, []string{"bogus"}, nil); err == nil {
		t.Error("bad --cap-add accepted")
	}
}

// The default set secrun grants is empty; Docker's reference set never
// contains CAP_SYS_ADMIN. Both are standing promises.
func TestDefaultsNeverGrantSysAdmin(t *testing.T) {
	if slices.Contains(caps.DockerDefault, "CAP_SYS_ADMIN") {
		t.Fatal("DockerDefault grants CAP_SYS_ADMIN")
	}
}

func TestHostBounding(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	b, err := caps.HostBounding()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b, "CAP_SYS_ADMIN") {
		t.Errorf("root without CAP_SYS_ADMIN in bounding set: %v", b)
	}
	// This machine's bounding set lacks CAP_SYS_RESOURCE (see the brief);
	// Outside must name it when asked for.
	if !slices.Contains(b, "CAP_SYS_RESOURCE") {
		if out := (caps.Set{"CAP_SYS_RESOURCE"}).Outside(b); len(out) != 1 {
			t.Errorf("Outside = %v", out)
		}
	}
}
