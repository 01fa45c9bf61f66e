package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

func subIDFixture(t *testing.T, subuid, subgid string, helpers bool) subIDFiles {
	t.Helper()
	dir := t.TempDir()
	f := subIDFiles{subuid: filepath.Join(dir, "subuid"), subgid: filepath.Join(dir, "subgid"),
		lookPath: func(name string) (string, error) {
			if helpers {
				return "/usr/bin/" + name, nil
			}
			return "", errors.New("not found")
		}}
	for p, text := range map[string]string{f.subuid: subuid, f.subgid: subgid} {
		if text == "-" {
			continue // no such file
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestRootlessIDs(t *testing.T) {
	self := specs.LinuxIDMapping{ContainerID: 0, HostID: 1000, Size: 1}
	for _, tc := range []struct {
		name           string
		subuid, subgid string
		noHelpers      bool
		wantU, wantG   []specs.LinuxIDMapping
		wantNote       string
		wantErr        string
	}{
		{
			name:   "ranges by name: container 0 is the caller, 1..65535 the range",
			subuid: "other:100000:65536\nalice:165536:65536\n", subgid: "alice:200000:65536\n",
			wantU: []specs.LinuxIDMapping{self, {ContainerID: 1, HostID: 165536, Size: 65535}},
			wantG: []specs.LinuxIDMapping{self, {ContainerID: 1, HostID: 200000, Size: 65535}},
		},
		{
			name:   "ranges by uid, several small ones in order",
			subuid: "1000:300000:10\n1000:400000:100000\n", subgid: "1000:300000:65536\n",
			wantU: []specs.LinuxIDMapping{self, {ContainerID: 1, HostID: 300000, Size: 10}, {ContainerID: 11, HostID: 400000, Size: 65525}},
			wantG: []specs.LinuxIDMapping{self, {ContainerID: 1, HostID: 300000, Size: 65535}},
		},
		{
			name:   "unusable ranges are skipped: host root, empty, past 2^32",
			subuid: "alice:0:65536\nalice:100000:0\nalice:4294967000:65536\n", subgid: "alice:100000:65536\n",
			wantU:    []specs.LinuxIDMapping{self},
			wantG:    []specs.LinuxIDMapping{self},
			wantNote: "has no subordinate ids in",
		},
		{
			name:   "no files: one id",
			subuid: "-", subgid: "-",
			wantU: []specs.LinuxIDMapping{self}, wantG: []specs.LinuxIDMapping{self},
			wantNote: "alice has no subordinate ids in " + "SUBUID",
		},
		{
			name:   "subuid without subgid: one id, naming subgid",
			subuid: "alice:100000:65536\n", subgid: "",
			wantU: []specs.LinuxIDMapping{self}, wantG: []specs.LinuxIDMapping{self},
			wantNote: "alice has no subordinate ids in " + "SUBGID",
		},
		{
			name:   "ranges but no newuidmap",
			subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", noHelpers: true,
			wantErr: "newuidmap is not installed: install the uidmap package",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := subIDFixture(t, tc.subuid, tc.subgid, !tc.noHelpers)
			ids, notes, err := rootlessIDsFor(files, "alice", 1000, 1000)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids.UIDMap, tc.wantU) || !reflect.DeepEqual(ids.GIDMap, tc.wantG) {
				t.Errorf("maps = %+v / %+v, want %+v / %+v", ids.UIDMap, ids.GIDMap, tc.wantU, tc.wantG)
			}
			if ids.Single != (len(tc.wantU) == 1) {
				t.Errorf("Single = %v", ids.Single)
			}
			want := strings.NewReplacer("SUBUID", files.subuid, "SUBGID", files.subgid).Replace(tc.wantNote)
			if got := strings.Join(notes, "\n"); (want == "") != (got == "") || !strings.Contains(got, want) {
				t.Errorf("notes = %q, want one containing %q", got, want)
			}
		})
	}
}

var (
	rangeIDs = RootlessIDs{
		UIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}},
		GIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65535}},
	}
	singleIDs = RootlessIDs{
		UIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		GIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		Single: true,
	}
)

func rootlessPlan(t *testing.T, o RunOptions, ids RootlessIDs, cgroups string, user string) (*Plan, string, error) {
	t.Helper()
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "bin", "sh"), []byte("#!"), 0o755)
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\napp:x:1000:\naudio:x:29:app\n"), 0o644)
	cfg := &v1.ConfigFile{Config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, User: user}}
	p, err := MakePlan(PlanInput{Options: o, ID: strings.Repeat("ab", 32), Config: cfg, Rootfs: rootfs,
		Seccomp: testSeccomp, Cgroups: cgroups, Rootless: &ids})
	return p, rootfs, err
}

func rlimit(s *specs.Spec, typ string) *specs.POSIXRlimit {
	for i := range s.Process.Rlimits {
		if s.Process.Rlimits[i].Type == typ {
			return &s.Process.Rlimits[i]
		}
	}
	return nil
}

func devptsOptions(s *specs.Spec) []string {
	for _, m := range s.Mounts {
		if m.Destination == "/dev/pts" {
			return m.Options
		}
	}
	return nil
}

func TestRootlessPlan(t *testing.T) {
	t.Run("subordinate ids, no delegated cgroup", func(t *testing.T) {
		p, rootfs, err := rootlessPlan(t, RunOptions{ReadOnly: true, PidsLimit: 64}, rangeIDs, "", "")
		if err != nil {
			t.Fatal(err)
		}
		s := p.Spec
		if !reflect.DeepEqual(s.Linux.UIDMappings, rangeIDs.UIDMap) || !reflect.DeepEqual(s.Linux.GIDMappings, rangeIDs.GIDMap) {
			t.Errorf("mappings = %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
		}
		if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace }) {
			t.Error("no user namespace")
		}
		if s.Root.Path != rootfs || !s.Root.Readonly {
			t.Errorf("root = %+v, want the image %s read-only", s.Root, rootfs)
		}
		if s.Process.User.UID != NonRootUID || s.Process.User.GID != NonRootUID {
			t.Errorf("user = %+v, want the non-root default", s.Process.User)
		}
		r := s.Linux.Resources
		if r.Memory != nil || r.Pids != nil || r.CPU != nil || s.Linux.CgroupsPath != "" {
			t.Errorf("cgroup limits without a cgroup: %+v path %q", r, s.Linux.CgroupsPath)
		}
		if len(r.Devices) != 1 || r.Devices[0].Allow {
			t.Errorf("device rules = %+v, want deny all", r.Devices)
		}
		if n := rlimit(s, "RLIMIT_NPROC"); n == nil || n.Hard != 64 || n.Soft != 64 {
			t.Errorf("RLIMIT_NPROC = %+v, want 64", n)
		}
		if !slices.Contains(devptsOptions(s), "gid=5") {
			t.Errorf("devpts options %q lack gid=5", devptsOptions(s))
		}
		if p.Request.Memory != DefaultMemory || p.Request.PidsLimit != 64 {
			t.Errorf("request limits = %d %d: the request keeps what was asked", p.Request.Memory, p.Request.PidsLimit)
		}
	})
	t.Run("delegated cgroup: limits and RLIMIT_NPROC", func(t *testing.T) {
		p, _, err := rootlessPlan(t, RunOptions{ReadOnly: true, Memory: "64m"}, rangeIDs, "/user.slice/secrun-x", "")
		if err != nil {
			t.Fatal(err)
		}
		s := p.Spec
		if s.Linux.CgroupsPath != "/user.slice/secrun-x" || s.Linux.Resources.Memory == nil || *s.Linux.Resources.Memory.Limit != 64<<20 ||
			s.Linux.Resources.Pids == nil || *s.Linux.Resources.Pids.Limit != DefaultPidsLimit {
			t.Errorf("cgroup %q resources %+v", s.Linux.CgroupsPath, s.Linux.Resources)
		}
		if n := rlimit(s, "RLIMIT_NPROC"); n == nil || n.Hard != DefaultPidsLimit {
			t.Errorf("RLIMIT_NPROC = %+v", n)
		}
	})
	t.Run("no process limit asked: no RLIMIT_NPROC", func(t *testing.T) {
		p, _, err := rootlessPlan(t, RunOptions{ReadOnly: true, PidsLimit: -1}, rangeIDs, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if n := rlimit(p.Spec, "RLIMIT_NPROC"); n != nil {
			t.Errorf("RLIMIT_NPROC = %+v", n)
		}
	})
	t.Run("image user with groups: groups dropped with a note", func(t *testing.T) {
		p, _, err := rootlessPlan(t, RunOptions{ReadOnly: true}, rangeIDs, "", "app")
		if err != nil {
			t.Fatal(err)
		}
		if u := p.Spec.Process.User; u.UID != 1000 || u.GID != 1000 || len(u.AdditionalGids) != 0 {
			t.Errorf("user = %+v", u)
		}
		if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "container gids 29") }) {
			t.Errorf("notes = %q", p.Notes)
		}
	})
	t.Run("one id: the default user is container root, no tty group", func(t *testing.T) {
		p, _, err := rootlessPlan(t, RunOptions{ReadOnly: true}, singleIDs, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if u := p.Spec.Process.User; u.UID != 0 || u.GID != 0 || len(u.AdditionalGids) != 0 {
			t.Errorf("user = %+v, want 0:0", u)
		}
		if slices.ContainsFunc(devptsOptions(p.Spec), func(o string) bool { return strings.HasPrefix(o, "gid=") }) {
			t.Errorf("devpts options %q name a gid the container does not have", devptsOptions(p.Spec))
		}
	})
	for _, tc := range []struct {
		name    string
		o       RunOptions
		ids     RootlessIDs
		user    string
		wantErr string
	}{
		{"writable rootfs", RunOptions{ReadOnly: false}, rangeIDs, "", "--read-only=false needs root"},
		{"host user namespace", RunOptions{ReadOnly: true, Userns: "host"}, rangeIDs, "", "--userns host needs root"},
		{"one id, non-root user", RunOptions{ReadOnly: true}, singleIDs, "app", "has one id, its root"},
		{"one id, -u 1000", RunOptions{ReadOnly: true, User: "1000"}, singleIDs, "", "has one id, its root"},
		{"user beyond the range", RunOptions{ReadOnly: true, User: "1000"}, RootlessIDs{
			UIDMap: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 100}},
			GIDMap: rangeIDs.GIDMap}, "", "outside the container's ids"},
		{"tmpfs owner not mapped", RunOptions{ReadOnly: true, Tmpfs: []string{"/data:uid=1000"}}, singleIDs, "", "option uid=1000 names an id the rootless container does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := rootlessPlan(t, tc.o, tc.ids, "", tc.user)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// The default restricted policy admits what a rootless `secrun run` plans,
// with and without subordinate ids, when the image is signed.
func TestRestrictedAdmitsRootlessPlans(t *testing.T) {
	eng, err := policy.Load(context.Background(), "restricted")
	if err != nil {
		t.Fatal(err)
	}
	for name, ids := range map[string]RootlessIDs{"subordinate ids": rangeIDs, "one id": singleIDs} {
		for _, cgroups := range []string{"", "/user.slice/secrun-x"} {
			p, _, err := rootlessPlan(t, RunOptions{ReadOnly: true}, ids, cgroups, "")
			if err != nil {
				t.Fatal(err)
			}
			digest := "sha256:" + strings.Repeat("1", 64)
			in := &policy.Input{
				Request:   p.Request,
				Spec:      p.Spec,
				Image:     policy.ImageInfo{Ref: "oci:/x:y", Digest: digest, Identity: true},
				Signature: policy.SignatureInfo{Verified: true, Signers: []string{"test"}, Digest: digest},
				Host:      policy.HostInfo{LSM: []string{}, Userns: true, Cgroup: "hybrid", Rootless: true, CgroupLimits: cgroups != ""},
			}
			d, err := eng.Eval(context.Background(), in)
			if err != nil || !d.Allowed {
				t.Errorf("%s, cgroup %q: denied: %v %+v", name, cgroups, err, d.Violations)
			}
			// The same spec claimed by a root run is denied: the relaxations
			// are for rootless hosts only.
			in.Host.Rootless, in.Host.CgroupLimits = false, true
			if d, err := eng.Eval(context.Background(), in); err == nil && d.Allowed && (cgroups == "" || ids.Single) {
				t.Errorf("%s, cgroup %q: allowed as a root run", name, cgroups)
			}
		}
	}
}
