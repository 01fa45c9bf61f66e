package rootless_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/internal/rootless"
)

// A hybrid host as Debian 12 mounts it: v1 controllers under
// /sys/fs/cgroup/NAME, and the v2 hierarchy at /sys/fs/cgroup/unified.
const hybridMounts = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`

func hybridCgroups(path string) string {
	return strings.ReplaceAll("5:name=systemd:P\n4:pids:P\n3:memory:P\n2:cpu,cpuacct:P\n0::P\n", "P", path)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sources(t *testing.T, mounts, cgroups string, writable func(string) bool) rootless.Sources {
	t.Helper()
	dir := t.TempDir()
	src := rootless.Sources{ProcCgroup: filepath.Join(dir, "cgroup"), MountInfo: filepath.Join(dir, "mountinfo"), Writable: writable}
	write(t, src.ProcCgroup, cgroups)
	write(t, src.MountInfo, mounts)
	return src
}

// under makes a Writable that allows only paths below one of the prefixes.
func under(prefixes ...string) func(string) bool {
	return func(p string) bool {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				return true
			}
		}
		return false
	}
}

func TestDelegatedCgroupV1(t *testing.T) {
	all := []string{"/sys/fs/cgroup/cpu,cpuacct/deleg", "/sys/fs/cgroup/memory/deleg", "/sys/fs/cgroup/pids/deleg", "/sys/fs/cgroup/systemd/deleg", "/sys/fs/cgroup/unified/deleg"}
	for _, tc := range []struct {
		name     string
		cgroups  string
		writable []string
		want     string
		wantErr  string
	}{
		{name: "delegated in every hierarchy", cgroups: hybridCgroups("/deleg"), writable: all, want: "/deleg"},
		{name: "one hierarchy not writable", cgroups: hybridCgroups("/deleg"), writable: all[:4], wantErr: "/sys/fs/cgroup/unified/deleg is not writable"},
		{name: "paths differ", cgroups: strings.Replace(hybridCgroups("/deleg"), "3:memory:/deleg", "3:memory:/elsewhere", 1), writable: all,
			wantErr: "this process is in /deleg in one cgroup hierarchy and /elsewhere in memory"},
		{name: "root cgroup", cgroups: hybridCgroups("/"), writable: []string{"/sys/fs/cgroup"}, wantErr: "root cgroup"},
		{name: "hierarchy not mounted", cgroups: "6:blkio:/deleg\n" + hybridCgroups("/deleg"), writable: all, wantErr: `cgroup hierarchy "blkio" is not mounted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cg, err := rootless.DelegatedCgroupFrom(sources(t, hybridMounts, tc.cgroups, under(tc.writable...)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cg.Parent != tc.want || cg.V2 {
				t.Errorf("cgroup = %+v, want parent %s (v1)", cg, tc.want)
			}
		})
	}
}

func TestDelegatedCgroupV2(t *testing.T) {
	const scope = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope"
	for _, tc := range []struct {
		name     string
		cgroups  string
		subtree  string // the parent's cgroup.subtree_control; "-" for none
		writable bool
		wantErr  string
	}{
		{name: "systemd user delegation", cgroups: "0::" + scope, subtree: "cpu memory pids\n", writable: true},
		{name: "controllers not enabled", cgroups: "0::" + scope, subtree: "cpu\n", writable: true, wantErr: "the memory controller is not enabled"},
		{name: "not writable", cgroups: "0::" + scope, subtree: "memory pids\n", writable: false, wantErr: "is not writable"},
		{name: "root cgroup", cgroups: "0::/", subtree: "-", writable: true, wantErr: "root cgroup"},
		{name: "parent is the root cgroup", cgroups: "0::/init.scope", subtree: "-", writable: true, wantErr: "is the root cgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := t.TempDir()
			mounts := "25 22 0:26 / " + fs + " rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
			parent := filepath.Join(fs, filepath.Dir(scope))
			if tc.subtree != "-" {
				write(t, filepath.Join(parent, "cgroup.subtree_control"), tc.subtree)
			}
			writable := func(p string) bool { return tc.writable && strings.HasPrefix(p, parent) }
			cg, err := rootless.DelegatedCgroupFrom(sources(t, mounts, tc.cgroups, writable))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, rootless.ErrNoDelegation) {
					t.Fatalf("err = %v, want %q wrapping ErrNoDelegation", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The container goes beside secrun's own cgroup: runc's has
			// processes, so its controllers cannot be enabled for children.
			if cg.Parent != filepath.Dir(scope) || !cg.V2 {
				t.Errorf("cgroup = %+v, want %s (v2)", cg, filepath.Dir(scope))
			}
		})
	}
}

// A mount point with a space is octal-escaped in mountinfo; a hierarchy
// mounted from below its root (inherited into a cgroup namespace) cannot be
// addressed by runc's absolute cgroupsPath.
func TestDelegatedCgroupMountInfo(t *testing.T) {
	mounts := "40 30 0:37 / /sys/fs/cgroup/my\\040pids rw - cgroup cgroup rw,pids\n"
	cg, err := rootless.DelegatedCgroupFrom(sources(t, mounts, "4:pids:/deleg\n", under("/sys/fs/cgroup/my pids/deleg")))
	if err != nil || cg.Parent != "/deleg" {
		t.Errorf("cgroup = %+v, %v; want /deleg", cg, err)
	}
	mounts = "40 30 0:37 /deleg /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
	_, err = rootless.DelegatedCgroupFrom(sources(t, mounts, "4:pids:/deleg\n", under("/sys/fs/cgroup")))
	if err == nil || !strings.Contains(err.Error(), "mounted from /deleg, not its root") {
		t.Errorf("err = %v", err)
	}
}
