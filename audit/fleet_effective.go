package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// EffectiveState is what the kernel enforces on a running container's
// processes, read from /proc and the cgroup filesystem without entering the
// container: the declared config says what was asked for, this says what
// holds.
type EffectiveState struct {
	// InitPid is the container's init process as the host sees it.
	InitPid int `json:"init_pid"`
	// Cgroup is the init process's cgroup path (the unified hierarchy's
	// when there is one, else the first v1 hierarchy's).
	Cgroup string `json:"cgroup"`
	// ProcessSource says how the processes were found: "cgroup" (every
	// process of the container's cgroup subtree) or "descendants" (the init
	// process and its descendants, when the container has no cgroup of its
	// own to list).
	ProcessSource string         `json:"process_source"`
	Processes     []ProcessState `json:"processes"`
	// MemoryLimit and PidsLimit are the tightest limits on the container's
	// cgroup and its ancestors: bytes, or pids; Unlimited (-1) when none is
	// set; nil when the controller is not mounted or not readable.
	MemoryLimit *int64 `json:"memory_limit,omitempty"`
	PidsLimit   *int64 `json:"pids_limit,omitempty"`
}

// ProcessState is one process of a container.
type ProcessState struct {
	Pid  int    `json:"pid"`
	Name string `json:"name"`
	// UID is the effective uid as the host sees it.
	UID    int  `json:"uid"`
	CapEff Caps `json:"cap_eff"`
	CapPrm Caps `json:"cap_prm"`
	CapBnd Caps `json:"cap_bnd"`
	CapAmb Caps `json:"cap_amb"`
	// NoNewPrivs is the process's no_new_privs bit.
	NoNewPrivs bool `json:"no_new_privs"`
	// Seccomp is the mode: 0 disabled, 1 strict, 2 filter.
	Seccomp        int                    `json:"seccomp"`
	SeccompFilters int                    `json:"seccomp_filters"`
	UIDMap         []specs.LinuxIDMapping `json:"uid_map"`
	GIDMap         []specs.LinuxIDMapping `json:"gid_map"`
	// Namespaces maps OCI namespace types (pid, network, mount, ipc, uts,
	// user, cgroup, time) to the namespace's inode.
	Namespaces map[string]uint64 `json:"namespaces"`
	// HostNamespaces are the OCI types whose namespace is the host's (the
	// same inode as /proc/1/ns), sorted.
	HostNamespaces []string `json:"host_namespaces"`
	// RootReadOnly is true when the process's "/" mount refuses writes.
	RootReadOnly bool `json:"root_read_only"`
	// RootPropagation is the "/" mount's propagation: shared, slave,
	// private or unbindable.
	RootPropagation string `json:"root_propagation"`
}

// ErrProcessGone is returned when a container's init process exited while
// it was being read: the container is no longer running.
var ErrProcessGone = errors.New("process exited")

// Caps is a capability set as the kernel shows it (a bit mask); it is
// written as a sorted list of names.
type Caps uint64

// Names lists the capabilities in the set ("CAP_SYS_ADMIN"), lowest bit
// first. A bit the library does not know is named "CAP_<bit>".
func (c Caps) Names() []string {
	out := []string{}
	for v := uint64(c); v != 0; v &= v - 1 {
		out = append(out, capName(bits.TrailingZeros64(v)))
	}
	return out
}

// MarshalJSON writes the names.
func (c Caps) MarshalJSON() ([]byte, error) { return json.Marshal(c.Names()) }

// UnmarshalJSON reads a list of names.
func (c *Caps) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	*c = 0
	for _, n := range names {
		bit, ok := capBit(n)
		if !ok {
			return fmt.Errorf("unknown capability %q", n)
		}
		*c |= 1 << bit
	}
	return nil
}

func capName(bit int) string {
	for _, c := range capability.ListKnown() {
		if int(c) == bit {
			return "CAP_" + strings.ToUpper(c.String())
		}
	}
	return "CAP_" + strconv.Itoa(bit)
}

var capBits = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for _, c := range capability.ListKnown() {
		m[strings.ToUpper(c.String())] = int(c)
	}
	return m
})

// capBit maps a name with or without CAP_, any case, to its bit; "CAP_41"
// names a bit the library does not know.
func capBit(name string) (int, bool) {
	n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
	if b, ok := capBits()[n]; ok {
		return b, true
	}
	if b, err := strconv.Atoi(n); err == nil && b >= 0 && b < 64 && strconv.Itoa(b) == n {
		return b, true
	}
	return 0, false
}

// capsOf turns capability names into a mask; names the library does not
// know cannot be granted by a runtime, so they add nothing.
func capsOf(names ...[]string) Caps {
	var c Caps
	for _, set := range names {
		for _, n := range set {
			if b, ok := capBit(n); ok {
				c |= 1 << b
			}
		}
	}
	return c
}

// nsKinds maps OCI namespace types to their /proc/PID/ns names.
var nsKinds = []struct{ oci, proc string }{
	{"cgroup", "cgroup"},
	{"ipc", "ipc"},
	{"mount", "mnt"},
	{"network", "net"},
	{"pid", "pid"},
	{"time", "time"},
	{"user", "user"},
	{"uts", "uts"},
}

// parseNSLink reads the inode of a /proc/PID/ns link: "net:[4026531840]".
func parseNSLink(kind, link string) (uint64, error) {
	rest, ok := strings.CutPrefix(link, kind+":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, fmt.Errorf("namespace link %q: want %s:[inode]", clip(link, 60), kind)
	}
	ino, err := strconv.ParseUint(rest[:len(rest)-1], 10, 64)
	if err != nil || ino == 0 {
		return 0, fmt.Errorf("namespace link %q: bad inode", clip(link, 60))
	}
	return ino, nil
}
