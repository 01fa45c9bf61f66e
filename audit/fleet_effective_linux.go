package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Effective reads what the kernel enforces on the container whose init
// process is pid: every process of its cgroup (or the init process and its
// descendants), each one's capabilities, no_new_privs, seccomp mode, id
// maps, namespaces and root mount, and the cgroup's memory and pids limits.
// It only reads /proc and /sys/fs/cgroup; it never enters the container.
func Effective(pid int) (EffectiveState, error) {
	r, err := newProcReader("/proc")
	if err != nil {
		return EffectiveState{}, err
	}
	return r.container(pid)
}

// procReader holds what every container's reading compares against, read
// once per audit: the host's namespaces and cgroup mounts.
type procReader struct {
	proc    string
	hostNS  map[string]uint64
	mounts  cgroupMounts
	hostCg  map[int]string // hierarchy -> host init's cgroup path
	noChild bool           // the kernel has no /proc/PID/task/TID/children
	// hostNSFrom is the process whose namespaces are the host's: 1, or
	// this process when pid 1 cannot be inspected (a sandbox's init that
	// holds capabilities this process lacks).
	hostNSFrom string
}

// hostNamespaces reads the host's namespace inodes from /proc/1/ns, or from
// /proc/self/ns when pid 1 refuses inspection.
func hostNamespaces(proc string) (map[string]uint64, string, error) {
	var firstErr error
	for _, who := range []string{"1", "self"} {
		ns := map[string]uint64{}
		var err error
		for _, k := range nsKinds {
			link, lerr := os.Readlink(filepath.Join(proc, who, "ns", k.proc))
			if errors.Is(lerr, fs.ErrNotExist) {
				continue // a namespace kind this kernel does not have
			}
			if lerr != nil {
				err = lerr
				break
			}
			ino, perr := parseNSLink(k.proc, link)
			if perr != nil {
				err = perr
				break
			}
			ns[k.oci] = ino
		}
		if err == nil {
			return ns, filepath.Join(proc, who), nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, fs.ErrPermission) {
			break
		}
	}
	return nil, "", fmt.Errorf("reading the host's namespaces from %s/1/ns: %w; run secrun audit as root in the host's pid namespace", proc, firstErr)
}

type cgroupMount struct{ point, root string }

type cgroupMounts struct {
	v2 *cgroupMount
	v1 map[string]cgroupMount // controller (or name=...) -> mount
}

func newProcReader(proc string) (*procReader, error) {
	r := &procReader{proc: proc, hostNS: map[string]uint64{}, hostCg: map[int]string{}}
	ns, from, err := hostNamespaces(proc)
	if err != nil {
		return nil, err
	}
	r.hostNS, r.hostNSFrom = ns, from
	mi, err := readBounded(filepath.Join(proc, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("reading cgroup mounts: %w", err)
	}
	ms, err := parseMountinfo(mi)
	if err != nil {
		return nil, fmt.Errorf("reading cgroup mounts: %w", err)
	}
	r.mounts = cgroupMountsOf(ms)
	cg, err := readBounded(filepath.Join(proc, "1", "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("reading the host's cgroups: %w", err)
	}
	lines, err := parseProcCgroup(cg)
	if err != nil {
		return nil, fmt.Errorf("reading the host's cgroups: %w", err)
	}
	for _, l := range lines {
		r.hostCg[l.Hierarchy] = l.Path
	}
	return r, nil
}

func cgroupMountsOf(ms []mountEntry) cgroupMounts {
	c := cgroupMounts{v1: map[string]cgroupMount{}}
	for _, m := range ms {
		switch m.FSType {
		case "cgroup2":
			if c.v2 == nil {
				c.v2 = &cgroupMount{point: m.MountPoint, root: m.Root}
			}
		case "cgroup":
			for _, o := range m.SuperOption {
				if _, dup := c.v1[o]; !dup && o != "rw" && o != "ro" {
					c.v1[o] = cgroupMount{point: m.MountPoint, root: m.Root}
				}
			}
		}
	}
	return c
}

// dir is the directory of cgroup path p in mount m, or "" when p is not
// visible through m.
func (m cgroupMount) dir(p string) string {
	rel, ok := strings.CutPrefix(p, m.root)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && m.root != "/") {
		return ""
	}
	return filepath.Join(m.point, rel)
}

// lineMount finds the mount of one /proc/PID/cgroup line.
func (r *procReader) lineMount(l cgroupLine) (cgroupMount, bool) {
	if l.Hierarchy == 0 && len(l.Controllers) == 0 {
		if r.mounts.v2 == nil {
			return cgroupMount{}, false
		}
		return *r.mounts.v2, true
	}
	for _, c := range l.Controllers {
		if m, ok := r.mounts.v1[c]; ok {
			return m, true
		}
	}
	return cgroupMount{}, false
}

func (r *procReader) container(pid int) (EffectiveState, error) {
	st := EffectiveState{InitPid: pid}
	raw, err := readBounded(r.path(pid, "cgroup"))
	if err != nil {
		return st, r.procErr(pid, "cgroup", err)
	}
	lines, err := parseProcCgroup(raw)
	if err != nil {
		return st, fmt.Errorf("process %d: %w", pid, err)
	}
	listDir := ""
	for _, l := range orderCgroupLines(lines) {
		if st.Cgroup == "" {
			st.Cgroup = l.Path
		}
		m, ok := r.lineMount(l)
		// A process in the host's own cgroup (or the root) has no cgroup of
		// its own: listing it would list the host.
		if !ok || l.Path == "/" || l.Path == r.hostCg[l.Hierarchy] {
			continue
		}
		if d := m.dir(l.Path); d != "" {
			st.Cgroup, listDir = l.Path, d
			break
		}
	}
	var pids []int
	if listDir != "" {
		st.ProcessSource = "cgroup"
		pids, err = cgroupProcs(listDir)
		if errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("process %d: %w", pid, ErrProcessGone)
		}
	} else {
		st.ProcessSource = "descendants"
		pids, err = r.descendants(pid)
	}
	if err != nil {
		return st, fmt.Errorf("listing the processes of container init %d: %w", pid, err)
	}
	if !slices.Contains(pids, pid) {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	mnts := map[uint64]mountEntry{}
	for _, p := range pids {
		ps, err := r.process(p, mnts)
		if err != nil {
			if errors.Is(err, ErrProcessGone) && p != pid {
				continue // exited while we looked; it enforces nothing now
			}
			return st, err
		}
		st.Processes = append(st.Processes, ps)
	}
	st.MemoryLimit = r.limit(lines, "memory", "memory.limit_in_bytes", "memory.max")
	st.PidsLimit = r.limit(lines, "pids", "pids.max", "pids.max")
	return st, nil
}

// orderCgroupLines puts the unified hierarchy first, then the v1
// hierarchies that every runtime creates a cgroup in.
func orderCgroupLines(lines []cgroupLine) []cgroupLine {
	rank := func(l cgroupLine) int {
		if l.Hierarchy == 0 && len(l.Controllers) == 0 {
			return 0
		}
		for i, c := range []string{"pids", "memory", "freezer", "devices", "name=systemd"} {
			if slices.Contains(l.Controllers, c) {
				return i + 1
			}
		}
		return 10
	}
	out := slices.Clone(lines)
	slices.SortStableFunc(out, func(a, b cgroupLine) int { return rank(a) - rank(b) })
	return out
}

// maxContainerProcs bounds the processes read per container.
const maxContainerProcs = 100000

// cgroupProcs lists the processes of a cgroup and every cgroup below it.
func cgroupProcs(dir string) ([]int, error) {
	var out []int
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		raw, err := readBounded(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if depth > 0 && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		for f := range strings.FieldsSeq(string(raw)) {
			n, err := strconv.Atoi(f)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s/cgroup.procs: %q is not a pid", d, clip(f, 20))
			}
			out = append(out, n)
		}
		if len(out) > maxContainerProcs {
			return fmt.Errorf("%s: more than %d processes", d, maxContainerProcs)
		}
		if depth >= 32 {
			return nil
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			if depth > 0 && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := walk(filepath.Join(d, e.Name()), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// descendants is pid and every process below it, from the kernel's
// children lists (or, on kernels without them, every process's parent).
func (r *procReader) descendants(pid int) ([]int, error) {
	if !r.noChild {
		out, err := r.descendantsByChildren(pid)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, errNoChildren) {
			return nil, err
		}
		r.noChild = true
	}
	return r.descendantsByScan(pid)
}

var errNoChildren = errors.New("no children files")

func (r *procReader) descendantsByChildren(pid int) ([]int, error) {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		p := out[i]
		tasks, err := os.ReadDir(filepath.Join(r.proc, strconv.Itoa(p), "task"))
		if err != nil {
			if p != pid {
				continue
			}
			return nil, r.procErr(pid, "task", err)
		}
		for _, t := range tasks {
			raw, err := readBounded(filepath.Join(r.proc, strconv.Itoa(p), "task", t.Name(), "children"))
			if errors.Is(err, fs.ErrNotExist) {
				if _, serr := os.Stat(filepath.Join(r.proc, strconv.Itoa(p), "task", t.Name())); serr == nil {
					return nil, errNoChildren
				}
				continue
			}
			if err != nil {
				continue
			}
			for f := range strings.FieldsSeq(string(raw)) {
				if n, err := strconv.Atoi(f); err == nil && n > 0 && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
			if len(out) > maxContainerProcs {
				return nil, fmt.Errorf("more than %d processes below %d", maxContainerProcs, pid)
			}
		}
	}
	return out, nil
}

func (r *procReader) descendantsByScan(pid int) ([]int, error) {
	ents, err := os.ReadDir(r.proc)
	if err != nil {
		return nil, err
	}
	kids := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := readBounded(filepath.Join(r.proc, e.Name(), "stat"))
		if err != nil {
			continue // exited
		}
		if pp, err := parseStatPPid(raw); err == nil {
			kids[pp] = append(kids[pp], n)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out) && len(out) <= maxContainerProcs; i++ {
		out = append(out, kids[out[i]]...)
	}
	return out, nil
}

// limit is the tightest limit on the container's cgroup and its ancestors
// for one controller: v1 when the controller is mounted there, else v2.
func (r *procReader) limit(lines []cgroupLine, controller, v1File, v2File string) *int64 {
	for _, l := range lines {
		if !slices.Contains(l.Controllers, controller) {
			continue
		}
		if m, ok := r.mounts.v1[controller]; ok {
			return tightest(m, m.dir(l.Path), v1File)
		}
	}
	for _, l := range lines {
		if l.Hierarchy == 0 && len(l.Controllers) == 0 && r.mounts.v2 != nil {
			return tightest(*r.mounts.v2, r.mounts.v2.dir(l.Path), v2File)
		}
	}
	return nil
}

func tightest(m cgroupMount, dir, file string) *int64 {
	if dir == "" {
		return nil
	}
	var best *int64
	for d := dir; ; d = filepath.Dir(d) {
		raw, err := readBounded(filepath.Join(d, file))
		if err == nil {
			if v, perr := parseLimit(raw); perr == nil && (best == nil || *best == Unlimited || (v != Unlimited && v < *best)) {
				best = &v
			}
		} else if d == dir {
			return nil // the controller is not enabled for this cgroup
		}
		if d == m.point || !strings.HasPrefix(d, m.point) || d == "/" {
			break
		}
	}
	return best
}

func (r *procReader) path(pid int, name ...string) string {
	return filepath.Join(append([]string{r.proc, strconv.Itoa(pid)}, name...)...)
}

// procErr turns "no such file" and "no such process" into ErrProcessGone.
func (r *procReader) procErr(pid int, what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process %d: %w", pid, ErrProcessGone)
	}
	return fmt.Errorf("process %d: reading %s: %w", pid, what, err)
}

func (r *procReader) nsInode(pid int, kind string) (uint64, error) {
	link, err := os.Readlink(r.path(pid, "ns", kind))
	if err != nil {
		return 0, err
	}
	return parseNSLink(kind, link)
}

// process reads one process. mnts caches the root mount per mount
// namespace: the processes of a container share one.
func (r *procReader) process(pid int, mnts map[uint64]mountEntry) (ProcessState, error) {
	ps := ProcessState{Pid: pid, Namespaces: map[string]uint64{}, HostNamespaces: []string{}}
	raw, err := readBounded(r.path(pid, "status"))
	if err != nil {
		return ps, r.procErr(pid, "status", err)
	}
	s, err := parseProcStatus(raw)
	if err != nil {
		return ps, fmt.Errorf("process %d: %w", pid, err)
	}
	ps.Name, ps.UID = s.Name, s.UID[1]
	ps.CapEff, ps.CapPrm, ps.CapBnd, ps.CapAmb = Caps(s.CapEff), Caps(s.CapPrm), Caps(s.CapBnd), Caps(s.CapAmb)
	ps.NoNewPrivs, ps.Seccomp, ps.SeccompFilters = s.NoNewPrivs, s.Seccomp, s.SeccompFilters
	for _, m := range []struct {
		file string
		dst  *[]specs.LinuxIDMapping
	}{{"uid_map", &ps.UIDMap}, {"gid_map", &ps.GIDMap}} {
		raw, err := readBounded(r.path(pid, m.file))
		if err != nil {
			return ps, r.procErr(pid, m.file, err)
		}
		if *m.dst, err = parseIDMap(raw); err != nil {
			return ps, fmt.Errorf("process %d: %w", pid, err)
		}
	}
	for _, k := range nsKinds {
		if _, known := r.hostNS[k.oci]; !known {
			continue
		}
		ino, err := r.nsInode(pid, k.proc)
		if err != nil {
			return ps, r.procErr(pid, "ns/"+k.proc, err)
		}
		ps.Namespaces[k.oci] = ino
		if ino == r.hostNS[k.oci] {
			ps.HostNamespaces = append(ps.HostNamespaces, k.oci)
		}
	}
	mntNS := ps.Namespaces["mount"]
	root, cached := mnts[mntNS]
	if !cached || mntNS == 0 {
		raw, err := readBounded(r.path(pid, "mountinfo"))
		if err != nil {
			return ps, r.procErr(pid, "mountinfo", err)
		}
		ms, err := parseMountinfo(raw)
		if err != nil {
			return ps, fmt.Errorf("process %d: %w", pid, err)
		}
		var ok bool
		if root, ok = rootMount(ms); !ok {
			return ps, fmt.Errorf("process %d: mountinfo has no \"/\" mount", pid)
		}
		mnts[mntNS] = root
	}
	ps.RootReadOnly, ps.RootPropagation = root.ReadOnly(), root.Propagation()
	return ps, nil
}
