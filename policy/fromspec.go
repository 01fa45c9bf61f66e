package policy

import (
	"fmt"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RequestFromSpec rebuilds the request a spec amounts to, for containers
// secrun did not plan itself: a bundle handed to secrun-runc by an engine, or
// a running container found by `secrun audit`. The policy then sees the same
// fields whichever door the container came through. source is "runtime" or
// "audit".
func RequestFromSpec(s *specs.Spec, source string) Request {
	r := Request{
		Source:  source,
		CapAdd:  []string{},
		CapDrop: []string{},
		Volumes: []Volume{},
		Seccomp: "spec",
		Network: "private",
		Userns:  "private",
	}
	if s == nil {
		return r
	}
	if p := s.Process; p != nil {
		r.Args = slices.Clone(p.Args)
		r.NoNewPrivileges = p.NoNewPrivileges
		r.AppArmor = p.ApparmorProfile
		if p.SelinuxLabel != "" {
			r.Label = []string{p.SelinuxLabel}
		}
		r.User = fmt.Sprintf("%d:%d", p.User.UID, p.User.GID)
		if p.Capabilities != nil {
			// secrun's baseline is no capability at all, so every capability
			// a spec grants counts as added.
			r.CapAdd = capUnion(p.Capabilities)
		}
	}
	if s.Root != nil {
		r.ReadOnly = s.Root.Readonly
	}
	if l := s.Linux; l != nil {
		if l.Seccomp == nil {
			r.Seccomp = "unconfined"
		}
		// A bundle's own network namespace may hold any interfaces the engine
		// gave it, so it is "private", not secrun's loopback-only "none".
		r.Network = nsMode(l.Namespaces, specs.NetworkNamespace, "private")
		r.Userns = nsMode(l.Namespaces, specs.UserNamespace, "private")
		r.PID = nsMode(l.Namespaces, specs.PIDNamespace, "private")
		r.IPC = nsMode(l.Namespaces, specs.IPCNamespace, "private")
		r.UTS = nsMode(l.Namespaces, specs.UTSNamespace, "private")
		if res := l.Resources; res != nil {
			if res.Memory != nil && res.Memory.Limit != nil && *res.Memory.Limit > 0 {
				r.Memory = *res.Memory.Limit
			}
			if res.Pids != nil && res.Pids.Limit != nil {
				r.PidsLimit = *res.Pids.Limit
			}
			if res.CPU != nil && res.CPU.Quota != nil && res.CPU.Period != nil && *res.CPU.Period > 0 && *res.CPU.Quota > 0 {
				r.CPUs = float64(*res.CPU.Quota) / float64(*res.CPU.Period)
			}
		}
		// Docker's --privileged: no seccomp, nothing masked, and the
		// capability that undoes every other restriction.
		r.Privileged = l.Seccomp == nil && len(l.MaskedPaths) == 0 && len(l.ReadonlyPaths) == 0 &&
			slices.Contains(r.CapAdd, "CAP_SYS_ADMIN")
	}
	for _, m := range s.Mounts {
		if !isBind(m) {
			continue
		}
		v := Volume{Source: m.Source, Resolved: m.Source, Destination: m.Destination, Type: "bind",
			ReadOnly: slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rro")}
		if res, err := filepath.EvalSymlinks(m.Source); err == nil {
			v.Resolved = res
		}
		r.Volumes = append(r.Volumes, v)
	}
	return r
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// nsMode is "host" when the namespace is not unshared, "path" when it joins
// an existing one (another container's or the host's by path), else private.
func nsMode(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType, private string) string {
	for _, n := range nss {
		if n.Type == t {
			if n.Path != "" {
				return "path:" + n.Path
			}
			return private
		}
	}
	return "host"
}

func capUnion(c *specs.LinuxCapabilities) []string {
	var all []string
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, x := range set {
			if !slices.Contains(all, x) {
				all = append(all, x)
			}
		}
	}
	slices.Sort(all)
	if all == nil {
		all = []string{}
	}
	return all
}
