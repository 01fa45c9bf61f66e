// Package rootless answers what an unprivileged secrun may use on this host:
// whether it runs without root, and the cgroup, if any, that was delegated
// to it so that containers can get cgroup limits. The policy input's host
// section and the runner ask the same questions here, so they agree.
package rootless

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Enabled reports whether secrun runs rootless: with a non-zero effective
// uid. Root inside a user namespace is treated as root (secrun then takes its
// root path and fails where the kernel says no), which errs on the strict
// side for policies that relax a control for rootless runs.
func Enabled() bool { return os.Geteuid() != 0 }

// Cgroup is a cgroup this process may create child cgroups under and set
// limits in, with the hierarchy it belongs to.
type Cgroup struct {
	// Parent is the delegated cgroup, as a path from the root of every
	// hierarchy (e.g. "/user.slice/user-1000.slice/user@1000.service/app.slice").
	// A container's cgroup is Parent/<name>, passed to runc as an absolute
	// cgroupsPath.
	Parent string
	// V2 is true on a unified (cgroup v2 only) host.
	V2 bool
}

// Sources are the files delegation is read from and the writability test;
// tests point them at fixtures.
type Sources struct {
	ProcCgroup string // /proc/self/cgroup
	MountInfo  string // /proc/self/mountinfo
	// Writable reports whether this process may create entries in the
	// directory, or write the file, at path.
	Writable func(path string) bool
}

// ErrNoDelegation is wrapped by DelegatedCgroupFrom's errors when this
// process has no cgroup of its own to put containers in.
var ErrNoDelegation = errors.New("no delegated cgroup")

// hierarchy is one mounted cgroup hierarchy and this process's place in it.
type hierarchy struct {
	name  string // "memory", "cpu,cpuacct", "name=systemd", "" for v2
	dir   string // the directory of this process's cgroup in it
	cpath string // this process's cgroup path, from /proc/self/cgroup
}

// DelegatedCgroupFrom finds the cgroup under which this process may create
// container cgroups with limits, the way runc will use it:
//
//   - cgroup v2 (unified): the parent of this process's cgroup (runc's own
//     cgroup has processes in it, so its controllers cannot be enabled for a
//     child: the container goes beside it). The parent must be writable, its
//     cgroup.procs writable (moving a process needs write access to the
//     common ancestor), and memory and pids enabled in its subtree_control.
//   - cgroup v1 and hybrid: this process's cgroup, which must be the same
//     path in every mounted hierarchy (runc creates the container's cgroup
//     in all of them, the v2 one too on a hybrid host) and writable in each.
//
// Without such a cgroup the error wraps ErrNoDelegation and names the first
// requirement that failed, in one line.
func DelegatedCgroupFrom(src Sources) (Cgroup, error) {
	hs, err := hierarchies(src)
	if err != nil {
		return Cgroup{}, err
	}
	if len(hs) == 1 && hs[0].name == "" {
		return delegatedV2(src, hs[0])
	}
	parent := ""
	for _, h := range hs {
		if parent == "" {
			parent = h.cpath
		}
		if h.cpath != parent {
			return Cgroup{}, fmt.Errorf("%w: this process is in %s in one cgroup hierarchy and %s in %s; runc needs one path in every hierarchy", ErrNoDelegation, parent, h.cpath, hierarchyName(h))
		}
		if parent == "/" {
			return Cgroup{}, fmt.Errorf("%w: this process is in the root cgroup, which only root may write", ErrNoDelegation)
		}
		if !src.Writable(h.dir) || !src.Writable(filepath.Join(h.dir, "cgroup.procs")) {
			return Cgroup{}, fmt.Errorf("%w: %s is not writable", ErrNoDelegation, h.dir)
		}
	}
	return Cgroup{Parent: parent}, nil
}

func hierarchyName(h hierarchy) string {
	if h.name == "" {
		return "the v2 hierarchy"
	}
	return h.name
}

func delegatedV2(src Sources, h hierarchy) (Cgroup, error) {
	if h.cpath == "/" {
		return Cgroup{}, fmt.Errorf("%w: this process is in the root cgroup, which only root may write", ErrNoDelegation)
	}
	parent := path.Dir(h.cpath)
	if parent == "/" {
		return Cgroup{}, fmt.Errorf("%w: the parent of this process's cgroup %s is the root cgroup", ErrNoDelegation, h.cpath)
	}
	dir := filepath.Dir(h.dir)
	if !src.Writable(dir) || !src.Writable(filepath.Join(dir, "cgroup.procs")) {
		return Cgroup{}, fmt.Errorf("%w: %s is not writable (systemd delegates user@UID.service to its user; run secrun from a delegated scope, e.g. systemd-run --user --scope)", ErrNoDelegation, dir)
	}
	ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return Cgroup{}, fmt.Errorf("%w: %w", ErrNoDelegation, err)
	}
	have := strings.Fields(string(ctl))
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(have, c) {
			return Cgroup{}, fmt.Errorf("%w: the %s controller is not enabled in %s/cgroup.subtree_control", ErrNoDelegation, c, dir)
		}
	}
	return Cgroup{Parent: parent, V2: true}, nil
}

// mount is a cgroup filesystem mount: its root inside the hierarchy and
// where it is mounted.
type mount struct {
	root, point string
}

// hierarchies pairs each line of /proc/self/cgroup with its mount point.
// On a hybrid host the v2 line is kept only if the v2 hierarchy is mounted
// (runc joins it there too).
func hierarchies(src Sources) ([]hierarchy, error) {
	mounts, err := cgroupMounts(src.MountInfo)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(src.ProcCgroup)
	if err != nil {
		return nil, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	var hs []hierarchy
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		name, cpath := parts[1], parts[2]
		m, ok := mounts[name]
		if !ok {
			if name == "" {
				continue // a hybrid host without the v2 hierarchy mounted
			}
			return nil, fmt.Errorf("cgroup hierarchy %q is not mounted", name)
		}
		// runc joins an absolute cgroupsPath to the mount point, so it can
		// only address a hierarchy mounted from its root.
		if m.root != "/" {
			return nil, fmt.Errorf("%w: the %s hierarchy is mounted from %s, not its root", ErrNoDelegation, hierarchyName(hierarchy{name: name}), m.root)
		}
		hs = append(hs, hierarchy{name: name, dir: filepath.Join(m.point, cpath), cpath: cpath})
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: no cgroup hierarchy is mounted", ErrNoDelegation)
	}
	return hs, nil
}

// cgroupMounts maps a hierarchy's name as /proc/self/cgroup spells it
// ("memory", "cpu,cpuacct", "name=systemd", "" for v2) to its mount.
func cgroupMounts(mountinfo string) (map[string]mount, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	out := map[string]mount{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		m := mount{root: unescape(f[3]), point: unescape(f[4])}
		switch g[0] {
		case "cgroup2":
			if _, seen := out[""]; !seen {
				out[""] = m
			}
		case "cgroup":
			var names []string
			for _, o := range strings.Split(g[2], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent=") || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					names = append(names, o)
				}
			}
			key := strings.Join(names, ",")
			if _, seen := out[key]; !seen {
				out[key] = m
			}
		}
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}
