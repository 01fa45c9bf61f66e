package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Parsers for what the kernel and the runtimes write about a running
// container: /proc/PID/status, uid_map, mountinfo, cgroup files, and the
// runtimes' state files. They see text that a container can influence (its
// process names, its mount points), so each one bounds what it reads and
// fails on anything it does not recognise instead of guessing.

// maxProcFile bounds one /proc or state file read; mountinfo of a host with
// many mounts is the largest and stays far below this.
const maxProcFile = 4 << 20

// procStatus is the part of /proc/PID/status the audit compares.
type procStatus struct {
	Name           string
	PPid           int
	UID            [4]int // real, effective, saved, filesystem
	CapInh         uint64
	CapPrm         uint64
	CapEff         uint64
	CapBnd         uint64
	CapAmb         uint64
	NoNewPrivs     bool
	Seccomp        int
	SeccompFilters int
	hasNNP         bool
	hasSeccomp     bool
}

// parseProcStatus reads /proc/PID/status. The capability lines and Seccomp
// are required: without them nothing about the process can be compared, and
// a guessed zero would read as "no capabilities".
func parseProcStatus(b []byte) (procStatus, error) {
	var s procStatus
	seen := map[string]bool{}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		key := string(k)
		val := strings.TrimSpace(string(v))
		var err error
		switch key {
		case "Name":
			s.Name = val
		case "PPid":
			s.PPid, err = strconv.Atoi(val)
		case "Uid":
			f := strings.Fields(val)
			if len(f) != 4 {
				err = errors.New("want 4 ids")
				break
			}
			for i := range f {
				if s.UID[i], err = strconv.Atoi(f[i]); err != nil {
					break
				}
			}
		case "CapInh":
			s.CapInh, err = strconv.ParseUint(val, 16, 64)
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(val, 16, 64)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(val, 16, 64)
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(val, 16, 64)
		case "NoNewPrivs":
			var n int
			n, err = strconv.Atoi(val)
			s.NoNewPrivs, s.hasNNP = n != 0, true
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(val)
			s.hasSeccomp = true
		case "Seccomp_filters":
			s.SeccompFilters, err = strconv.Atoi(val)
		default:
			continue
		}
		if err != nil {
			return procStatus{}, fmt.Errorf("status line %q: %w", key, err)
		}
		seen[key] = true
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "Seccomp", "NoNewPrivs"} {
		if !seen[k] {
			return procStatus{}, fmt.Errorf("status has no %s line", k)
		}
	}
	return s, nil
}

// parseIDMap reads /proc/PID/uid_map or gid_map: lines of
// "container-id host-id size".
func parseIDMap(b []byte) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("id map line %q: want 3 fields", line)
		}
		var n [3]uint32
		for i := range f {
			v, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("id map line %q: %w", line, err)
			}
			n[i] = uint32(v)
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: n[0], HostID: n[1], Size: n[2]})
	}
	if len(out) > 340 {
		return nil, fmt.Errorf("id map has %d lines; the kernel allows 340", len(out))
	}
	return out, nil
}

// identityMap reports whether a map is the initial user namespace's: every
// id maps to itself.
func identityMap(m []specs.LinuxIDMapping) bool {
	return len(m) == 1 && m[0].ContainerID == 0 && m[0].HostID == 0 && m[0].Size == math.MaxUint32
}

// mountEntry is one line of /proc/PID/mountinfo.
type mountEntry struct {
	Root        string
	MountPoint  string
	Options     []string // per-mount options
	Optional    []string // shared:N, master:N, propagate_from:N, unbindable
	FSType      string
	Source      string
	SuperOption []string
}

// ReadOnly reports whether writes through this mount fail: the mount or
// its superblock is read-only.
func (m mountEntry) ReadOnly() bool {
	return hasMountOpt(m.Options, "ro") || hasMountOpt(m.SuperOption, "ro")
}

// Propagation is "shared", "slave" (a receiver only), "unbindable" or
// "private".
func (m mountEntry) Propagation() string {
	shared, slave := false, false
	for _, o := range m.Optional {
		switch {
		case strings.HasPrefix(o, "shared:"):
			shared = true
		case strings.HasPrefix(o, "master:"):
			slave = true
		case o == "unbindable":
			return "unbindable"
		}
	}
	switch {
	case shared:
		return "shared"
	case slave:
		return "slave"
	}
	return "private"
}

func hasMountOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// parseMountinfo reads /proc/PID/mountinfo.
func parseMountinfo(b []byte) ([]mountEntry, error) {
	var out []mountEntry
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := strings.Fields(string(line))
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 10 || sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %q: malformed", clip(string(line), 120))
		}
		out = append(out, mountEntry{
			Root:        unescapeMount(f[3]),
			MountPoint:  unescapeMount(f[4]),
			Options:     strings.Split(f[5], ","),
			Optional:    f[6:sep],
			FSType:      f[sep+1],
			Source:      unescapeMount(f[sep+2]),
			SuperOption: strings.Split(strings.Join(f[sep+3:], " "), ","),
		})
	}
	return out, nil
}

// rootMount is the mount a process sees at "/": the last one listed there,
// since later mounts stack on earlier ones.
func rootMount(ms []mountEntry) (mountEntry, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].MountPoint == "/" {
			return ms[i], true
		}
	}
	return mountEntry{}, false
}

// unescapeMount undoes the kernel's octal escapes of space, tab, newline
// and backslash in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupLine is one line of /proc/PID/cgroup: "hierarchy:controllers:path".
// Hierarchy 0 with no controllers is the unified (v2) hierarchy.
type cgroupLine struct {
	Hierarchy   int
	Controllers []string
	Path        string
}

func parseProcCgroup(b []byte) ([]cgroupLine, error) {
	var out []cgroupLine
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		parts := strings.SplitN(string(line), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup line %q: want hierarchy:controllers:path", clip(string(line), 120))
		}
		h, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("cgroup line %q: %w", clip(string(line), 120), err)
		}
		if !strings.HasPrefix(parts[2], "/") {
			return nil, fmt.Errorf("cgroup line %q: path is not absolute", clip(string(line), 120))
		}
		var ctl []string
		if parts[1] != "" {
			ctl = strings.Split(parts[1], ",")
		}
		out = append(out, cgroupLine{Hierarchy: h, Controllers: ctl, Path: parts[2]})
	}
	return out, nil
}

// Unlimited is the value of a cgroup limit that is not set ("max").
const Unlimited int64 = -1

// v1Unlimited: cgroup v1 reports an unset memory limit as the largest page
// multiple below 2^63; anything this large limits nothing.
const v1Unlimited = int64(1) << 62

// parseLimit reads a cgroup limit file: "max", or a number of bytes/pids.
func parseLimit(b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return Unlimited, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: %w", clip(s, 40), err)
	}
	if n >= uint64(v1Unlimited) {
		return Unlimited, nil
	}
	return int64(n), nil
}

// parseStatStart returns the start time (field 22, clock ticks since boot)
// of /proc/PID/stat. The command name in field 2 may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// parseStatPPid returns field 4 of /proc/PID/stat.
func parseStatPPid(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.Atoi(f[1])
}

// runcState is what the audit needs from runc's state.json (libcontainer's
// State): the init process and its start time (so a reused pid is not
// mistaken for the container), the bundle, and the cgroup paths.
type runcState struct {
	ID          string            `json:"id"`
	InitPid     int               `json:"init_process_pid"`
	InitStart   uint64            `json:"init_process_start"`
	CgroupPaths map[string]string `json:"cgroup_paths"`
	Config      runcStateConfig   `json:"config"`
	bundleLabel string
}

type runcStateConfig struct {
	Labels []string `json:"labels"`
}

func parseRuncState(b []byte) (runcState, error) {
	var s runcState
	if err := json.Unmarshal(b, &s); err != nil {
		return runcState{}, fmt.Errorf("runc state: %w", err)
	}
	if s.ID == "" || s.InitPid <= 0 {
		return runcState{}, errors.New("runc state: no id or init pid")
	}
	for _, l := range s.Config.Labels {
		if v, ok := strings.CutPrefix(l, "bundle="); ok {
			s.bundleLabel = v
		}
	}
	return s, nil
}

// crunStatus is crun's per-container status file.
type crunStatus struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"process-start-time"`
	Bundle    string `json:"bundle"`
	Cgroup    string `json:"cgroup-path"`
}

func parseCrunStatus(b []byte) (crunStatus, error) {
	var s crunStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return crunStatus{}, fmt.Errorf("crun status: %w", err)
	}
	if s.Pid <= 0 {
		return crunStatus{}, errors.New("crun status: no pid")
	}
	return s, nil
}

// parsePidFile reads a pid file: one decimal number, optionally followed by
// a newline.
func parsePidFile(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("pid file %q: not a pid", clip(s, 20))
	}
	return n, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// readBounded reads a whole file of at most maxProcFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProcFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxProcFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxProcFile)
	}
	return b, nil
}
