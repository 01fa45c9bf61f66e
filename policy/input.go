// Package policy evaluates Rego policies with OPA over the secrun input document.
//
// The input document is the contract between the three doors into secrun:
// `secrun run` builds it from CLI flags, `secrun-runc` from a bundle handed over by
// an engine, and `secrun audit` from a running container. One policy gates
// admission and audits the fleet because all three build the same shape.
package policy

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Input is the document every policy sees as `input`.
type Input struct {
	Request   Request       `json:"request"`
	Spec      *specs.Spec   `json:"spec"`
	Image     ImageInfo     `json:"image"`
	Signature SignatureInfo `json:"signature"`
	Host      HostInfo      `json:"host"`
}

// Request is what the caller asked for, before secrun turned it into a spec.
// Fields mirror Docker's flags so policies can name them in messages.
type Request struct {
	// Source is which door the request came through: "run", "exec", "runtime"
	// (secrun-runc) or "audit".
	Source     string   `json:"source"`
	Name       string   `json:"name,omitempty"`
	Privileged bool     `json:"privileged"`
	CapAdd     []string `json:"cap_add"`
	CapDrop    []string `json:"cap_drop"`
	// Seccomp is "default", "unconfined" or the path of a custom profile.
	Seccomp         string   `json:"seccomp"`
	NoNewPrivileges bool     `json:"no_new_privileges"`
	AppArmor        string   `json:"apparmor,omitempty"`
	Label           []string `json:"label,omitempty"`
	// Landlock are the --security-opt landlock= rules as given.
	Landlock []string `json:"landlock,omitempty"`
	ReadOnly bool     `json:"read_only"`
	Network  string   `json:"network"`
	// Userns is "private" (the default: a mapped range) or "host".
	Userns  string   `json:"userns"`
	PID     string   `json:"pid,omitempty"`
	IPC     string   `json:"ipc,omitempty"`
	UTS     string   `json:"uts,omitempty"`
	User    string   `json:"user,omitempty"`
	Volumes []Volume `json:"volumes"`
	Memory  int64    `json:"memory,omitempty"`
	CPUs    float64  `json:"cpus,omitempty"`
	// PidsLimit is 0 when unset, -1 for unlimited.
	PidsLimit int64    `json:"pids_limit,omitempty"`
	Args      []string `json:"args,omitempty"`
	// Runtime is the OCI runtime that will run the container.
	Runtime string `json:"runtime,omitempty"`
}

// Volume is a host path made visible in the container. Source is the path as
// given; Resolved is the same path with every symlink followed, so a policy
// that forbids /var/run/docker.sock also catches a link to it.
type Volume struct {
	Source      string `json:"source"`
	Resolved    string `json:"resolved"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only"`
	Type        string `json:"type"` // "bind" or "tmpfs"
}

// ImageInfo identifies the image. Ref is what the user named; Digest is the
// manifest digest that was verified and unpacked. When a runtime caller hands
// over a bundle without an image identity, Ref and Digest are empty and
// Identity is false.
type ImageInfo struct {
	Ref      string         `json:"ref"`
	Digest   string         `json:"digest"`
	Identity bool           `json:"identity"`
	Config   map[string]any `json:"config,omitempty"`
}

// SignatureInfo is the signature verdict for Image.Digest.
type SignatureInfo struct {
	Verified bool     `json:"verified"`
	Signers  []string `json:"signers"`
	Digest   string   `json:"digest,omitempty"`
	// Index is the image index whose signature covers Digest, when the
	// signature is on the index (a multi-platform image) and not on Digest.
	Index string `json:"index,omitempty"`
	Error string `json:"error,omitempty"`
}

// HostInfo is what secrun found true of the host, not what was asked for.
type HostInfo struct {
	// LSM lists the active Linux security modules that can confine a
	// container, e.g. ["apparmor"] or ["selinux"]; empty when none is active.
	LSM    []string `json:"lsm"`
	Userns bool     `json:"userns"`
	// Cgroup is "v1", "v2" or "hybrid".
	Cgroup string `json:"cgroup"`
	// Rootless is true when secrun runs without root (a non-zero effective
	// uid): the container's user namespace maps the caller's own uid and its
	// /etc/subuid ranges, and nothing is mounted or chowned on the host.
	Rootless bool `json:"rootless"`
	// CgroupLimits is true when the container's cgroup limits (memory, CPU,
	// pids) can be applied: always as root; rootless only in a cgroup
	// delegated to the caller. When false, spec.linux.resources carries no
	// cgroup limits and the process count is bounded by RLIMIT_NPROC.
	CgroupLimits bool `json:"cgroup_limits"`
}

// NoImageIdentity is the signature error used when a bundle arrives without an
// image reference (plain runc callers, podman without annotations).
const NoImageIdentity = "no image identity"
