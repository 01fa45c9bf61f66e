# METADATA
# title: secrun policy library
# description: |
#   Findings shared by the built-in policies. Each rule here yields findings
#   ({msg, field, fix}) about one aspect of the input; a policy decides which
#   findings become violations, under which control id and severity.
#
#   Checks are written to fail closed: a missing or malformed field counts as
#   the unsafe value ("not x == true", never "x == false"). Negation only
#   ever applies to a comparison or to a rule: "not f(input.a)" and
#   "not input.a in S" are false when input.a is undefined, which would
#   silently pass the check.
package lib.secrun

# ---------------------------------------------------------------------------
# Reviewed data. Every entry says why it is there.
# ---------------------------------------------------------------------------

# Host paths whose exposure gives a container control over, or secrets of, the
# host. A bind mount is sensitive when its source is one of these, contains
# one of these (mounting / or /var exposes everything below), or, when
# subtree is true, lies inside one (/etc/shadow, /proc/1/root).
sensitive_paths := [
	{"path": "/", "subtree": false, "why": "the host's root filesystem"},
	{"path": "/boot", "subtree": true, "why": "kernel images and boot loader"},
	{"path": "/dev", "subtree": true, "why": "host device nodes"},
	{"path": "/etc", "subtree": true, "why": "host configuration and credentials"},
	{"path": "/proc", "subtree": true, "why": "host processes; /proc/1/root is the host's root"},
	{"path": "/sys", "subtree": true, "why": "kernel tunables and device control"},
	{"path": "/root", "subtree": true, "why": "root's home: keys and credentials"},
	# The directories themselves (CIS 5.5): single files below them are bound
	# read-only by GPU and driver tooling.
	{"path": "/usr", "subtree": false, "why": "host binaries and libraries"},
	{"path": "/bin", "subtree": false, "why": "host binaries"},
	{"path": "/sbin", "subtree": false, "why": "host binaries"},
	{"path": "/lib", "subtree": false, "why": "host libraries and kernel modules"},
	{"path": "/lib64", "subtree": false, "why": "host libraries"},
	# Only the directories themselves: their other children are ordinary data,
	# and the sockets below them are checked by runtime_socket_mounts.
	{"path": "/var", "subtree": false, "why": "host state, including runtime sockets"},
	{"path": "/run", "subtree": false, "why": "host runtime state and sockets"},
	{"path": "/var/run", "subtree": false, "why": "host runtime state and sockets"},
	# Container engines' state: writing there rewrites other containers' images
	# and configuration. Only the directories themselves (and their
	# ancestors): engines bind their own per-container files from below them
	# (Docker's resolv.conf and hosts, kubelet's pod volumes).
	{"path": "/var/lib/docker", "subtree": false, "why": "Docker's images and container state"},
	{"path": "/var/lib/containerd", "subtree": false, "why": "containerd's images and container state"},
	{"path": "/var/lib/containers", "subtree": false, "why": "podman/CRI-O images and container state"},
	{"path": "/var/lib/kubelet", "subtree": false, "why": "kubelet state and pod secrets"},
]

# Sockets of container engines: whoever can talk to one can start a
# privileged container, so mounting one is root on the host. Patterns are
# matched one path segment at a time ("*" never crosses "/").
runtime_sockets := [
	"/var/run/docker.sock",
	"/run/docker.sock",
	"/run/user/*/docker.sock", # rootless Docker
	"/run/containerd/containerd.sock",
	"/var/run/containerd/containerd.sock",
	"/run/containerd/containerd.sock.ttrpc",
	"/run/docker/containerd/containerd.sock", # Docker's embedded containerd
	"/run/k3s/containerd/containerd.sock",
	"/run/crio/crio.sock",
	"/var/run/crio/crio.sock",
	"/run/podman/podman.sock",
	"/var/run/podman/podman.sock",
	"/run/user/*/podman/podman.sock", # rootless podman
	"/run/dockershim.sock",
	"/var/run/dockershim.sock",
	"/run/cri-dockerd.sock",
	"/var/run/cri-dockerd.sock",
	"/run/buildkit/buildkitd.sock",
]

# File names of the same sockets, caught wherever they live (a home
# directory, a symlink farm) as long as the name is kept.
runtime_socket_names := {
	"docker.sock",
	"containerd.sock",
	"containerd.sock.ttrpc",
	"crio.sock",
	"podman.sock",
	"dockershim.sock",
	"cri-dockerd.sock",
	"buildkitd.sock",
}

# Docker's default capability set (moby oci/caps/defaults.go). Each is
# granted to every Docker container; baseline accepts no more than this.
docker_default_caps := {
	"CAP_AUDIT_WRITE", # write the audit log: login programs
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_MKNOD", # device nodes are still gated by the device cgroup
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_RAW", # ping; loose, but Docker's default and baseline follows it
	"CAP_SETFCAP",
	"CAP_SETGID",
	"CAP_SETPCAP",
	"CAP_SETUID",
	"CAP_SYS_CHROOT",
}

# Sysctls Kubernetes considers safe (Pod Security baseline "Sysctls"): all are
# namespaced and cannot affect other containers or the host.
safe_sysctls := {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ping_group_range",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_syncookies",
}

# Kernel interfaces every engine (Docker, podman, containerd) masks or makes
# read-only; missing ones mean an unmasked /proc (Pod Security "/proc Mount
# Type"). The runner masks more; these are the ones every engine agrees on.
required_masked_paths := ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"]

required_readonly_paths := ["/proc/sys", "/proc/sysrq-trigger"]

# SELinux types Pod Security baseline allows for a container process.
allowed_selinux_types := {"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

# Directories restricted accepts bind mounts from when the policy data does
# not set allowed_host_paths. None contains host configuration or runtime
# state; sensitive paths and sockets are refused inside them anyway.
default_allowed_host_paths := [
	"/srv",
	"/mnt",
	"/media",
	"/opt",
	"/tmp",
	"/var/tmp",
	"/var/lib/secrun/volumes",
]

allowed_host_paths := data.allowed_host_paths if {
	is_array(data.allowed_host_paths)
} else := default_allowed_host_paths

# OCI hooks the built-in policies accept when the policy data does not set
# allowed_hooks; every other hook is denied (see "OCI hooks" below). An entry
# allows a hook when the hook's kind is one of `kinds`, its path matches
# `path`, it has exactly one argument per pattern in `args` and each matches
# its own, and each of its env entries matches one of `env` (no `env`: the
# hook must have none). Patterns are RE2 and match the whole string.
#
# The one default entry is the hook dockerd (20.10, Debian 12's docker.io)
# adds to every container it gives a network namespace of its own
# (--network none, bridge, user networks; not host or container:...):
#
#   "prestart": [{"path": "/proc/26856/exe", "args": ["libnetwork-setkey",
#     "-exec-root=/var/run/docker", "<64-hex container id>", "<12-hex controller id>"]}]
#
# runc runs dockerd's own binary, which tells dockerd the container's network
# namespace. Denying it would refuse every networked Docker container.
#
# Why /proc/N/exe can be allowed, and how far: /proc/N/exe is whatever binary
# process N runs when runc starts the hook, and nothing in the input says
# that N is dockerd. The entry is exactly as safe as whoever writes
# config.json:
# - Docker: dockerd builds the spec and hands it to containerd, which writes
#   it into a root-owned bundle directory; the Docker API has no field for
#   hooks. A hook of this shape in a Docker bundle came from dockerd, with N
#   its own pid. Allowing it gives the API caller nothing. (Docker releases
#   with CDI support also copy hooks from CDI specs for --device
#   vendor/class=name: those are other shapes, and denied.)
# - podman and CRI-O add every hook found in the OCI hooks directories
#   (/usr/share/containers/oci/hooks.d, /etc/containers/oci/hooks.d, or
#   --hooks-dir), containerd's CRI those of CDI specs and NRI plugins, and a
#   plain runc caller writes config.json itself. Whoever can write there can
#   write a hook of this shape naming the pid of a process running a binary
#   of their choice, and this entry admits it. The other built-in checks
#   still hold, but the hook runs as the runtime's user. On a host without
#   Docker, set `allowed_hooks: []` in the policy data.
# The patterns are as narrow as Docker's own values allow, so that the entry
# cannot carry anything else: kind prestart only, a numeric pid (not self or
# thread-self), argv[0] libnetwork-setkey, an absolute exec root without "."
# or ".." segments, hex ids of Docker's lengths, and no environment except
# the W3C trace context newer dockerd releases, with OpenTelemetry tracing,
# add as TRACEPARENT (seen in published config.json files; 20.10 sets none);
# LD_PRELOAD or any other variable would run other code inside dockerd's
# binary.
default_allowed_hooks := [{
	"name": "docker-libnetwork-setkey",
	"kinds": ["prestart"],
	"path": `/proc/[1-9][0-9]*/exe`,
	"args": [
		`libnetwork-setkey`,
		`-exec-root=(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+`,
		`[0-9a-f]{64}`,
		`[0-9a-f]{12}`,
	],
	"env": [`TRACEPARENT=00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}`],
	"reason": "dockerd's libnetwork-setkey hook: joins a networked Docker container to its network sandbox",
}]

allowed_hooks := data.allowed_hooks if {
	is_array(data.allowed_hooks)
} else := default_allowed_hooks

# ---------------------------------------------------------------------------
# Exemptions: data, not code. data.exemptions is a list of
# {control, images, reason?, expires?}; a violation of `control` is exempt
# when the image reference matches one of `images` (globs, "*" stays inside
# one path segment) or equals the digest, and the exemption has not expired.
# ---------------------------------------------------------------------------

exempt(v) if {
	some e in data.exemptions
	e.control == v.id
	exemption_matches_image(e)
	not exemption_expired(e)
}

exemption_matches_image(e) if {
	ref := input.image.ref
	is_string(ref)
	ref != ""
	some pattern in e.images
	glob.match(pattern, ["/"], ref)
}

exemption_matches_image(e) if {
	digest := input.image.digest
	is_string(digest)
	digest != ""
	some pattern in e.images
	pattern == digest
}

exemption_expired(e) if {
	is_string(e.expires)
	e.expires != ""
	time.now_ns() >= time.parse_rfc3339_ns(e.expires)
}

# ---------------------------------------------------------------------------
# Path helpers.
# ---------------------------------------------------------------------------

# segments("/a/b") == ["a", "b"]; segments("/") == [].
segments(p) := [] if {
	trim(p, "/") == ""
} else := split(trim(p, "/"), "/")

# A host path that cannot be compared textually: relative, or with ".", ".."
# or empty segments. The runner hands over resolved paths; anything else is
# refused rather than guessed at.
unclean(p) if not startswith(p, "/")

unclean(p) if contains(trim_right(p, "/"), "//")

unclean(p) if {
	some s in segments(p)
	s in {".", ".."}
}

seg_match(pattern, s) if pattern == s

seg_match(pattern, s) if {
	contains(pattern, "*")
	glob.match(pattern, ["/"], s)
}

# p is pattern, or an ancestor of it.
covers(p, pattern) if {
	ps := segments(p)
	qs := segments(pattern)
	count(ps) <= count(qs)
	every i, s in ps {
		seg_match(qs[i], s)
	}
}

# p is pattern or lies inside it.
inside(p, pattern) if {
	ps := segments(p)
	qs := segments(pattern)
	count(qs) <= count(ps)
	every i, q in qs {
		seg_match(q, ps[i])
	}
}

# The fast forms used on every evaluation: plain string prefixes, one builtin
# call per set. dir_prefix("/a") == "/a/"; dir_prefix("/") == "/".
dir_prefix(p) := "/" if p == "/" else := concat("", [p, "/"])

# "/etc/" is "/etc"; "/" stays "/".
clean_path(p) := "/" if trim_right(p, "/") == "" else := trim_right(p, "/")

# checkable(p) is true for a clean absolute path, computed once per mount.
checkable(p) := false if unclean(p) else := true

basename(p) := b if {
	parts := split(trim_right(p, "/"), "/")
	b := parts[count(parts) - 1]
}

# ---------------------------------------------------------------------------
# Host paths a container gets: request volumes (checked on the resolved path,
# so a symlink to a socket is still a socket) and bind mounts in the spec
# that no request volume explains (bundles from other engines).
# ---------------------------------------------------------------------------

volume_path(v) := v.resolved if {
	is_string(v.resolved)
	v.resolved != ""
} else := object.get(v, "source", "")

volume_key(v) := "resolved" if {
	is_string(v.resolved)
	v.resolved != ""
} else := "source"

is_bind_volume(v) if not v.type == "tmpfs"

is_bind_mount(m) if m.type == "bind"

is_bind_mount(m) if "rbind" in m.options

is_bind_mount(m) if "bind" in m.options

from_volume(m) if {
	some v in input.request.volumes
	is_bind_volume(v)
	v.destination == m.destination
	m.source in {v.source, v.resolved}
}

host_paths contains hp if {
	some i, v in input.request.volumes
	is_bind_volume(v)
	p := volume_path(v)
	hp := {
		"path": p,
		"clean": clean_path(p),
		"checkable": checkable(p),
		"field": sprintf("request.volumes[%d].%s=%s", [i, volume_key(v), p]),
		"fix": sprintf("remove -v %s:%s", [object.get(v, "source", ""), object.get(v, "destination", "")]),
	}
}

host_paths contains hp if {
	some i, m in input.spec.mounts
	is_bind_mount(m)
	not from_volume(m)
	src := object.get(m, "source", "")
	hp := {
		"path": src,
		"clean": clean_path(src),
		"checkable": checkable(src),
		"field": sprintf("spec.mounts[%d].source=%s", [i, src]),
		"fix": sprintf("remove the bind mount of %s at %s", [src, object.get(m, "destination", "")]),
	}
}

unclean_mounts contains f if {
	some hp in host_paths
	hp.checkable == false
	f := {
		"msg": sprintf("host path %q is not a clean absolute path, so it cannot be checked", [hp.path]),
		"field": hp.field,
		"fix": "mount a clean absolute path with every symlink resolved",
	}
}

sensitive_mounts contains f if {
	some hp in host_paths
	hp.checkable
	sensitive(hp.clean)
	f := {
		"msg": sprintf("host path %s exposes %s", [hp.path, sensitive_reason(hp.clean)]),
		"field": hp.field,
		"fix": hp.fix,
	}
}

# sensitive_paths as literal sets: a comprehension would be rebuilt on every
# evaluation. secrun_test.rego pins them to the list above.
sensitive_path_set := {
	"/", "/boot", "/dev", "/etc", "/proc", "/sys", "/root", "/usr", "/bin", "/sbin", "/lib",
	"/lib64", "/var", "/run", "/var/run", "/var/lib/docker", "/var/lib/containerd",
	"/var/lib/containers", "/var/lib/kubelet",
}

sensitive_subtree_prefixes := {"/boot/", "/dev/", "/etc/", "/proc/", "/sys/", "/root/"}

# p is a sensitive path, lies inside a sensitive subtree, or contains a
# sensitive path. Same answer as sensitive_hit over every entry, in three
# builtin calls.
sensitive(p) if p in sensitive_path_set

sensitive(p) if strings.any_prefix_match(p, sensitive_subtree_prefixes)

sensitive(p) if strings.any_prefix_match(sensitive_path_set, dir_prefix(p))

sensitive_hit(p, e) if covers(p, e.path)

sensitive_hit(p, e) if encloses(e, p)

encloses(e, p) if segments(p) == segments(e.path)

encloses(e, p) if {
	e.subtree
	inside(p, e.path)
}

# The most specific entry p is or lies inside, else the first entry p
# contains: one finding per mount however many entries it touches.
sensitive_reason(p) := r if {
	enclosing := sort([[count(segments(e.path)), e.path, e.why] | some e in sensitive_paths; encloses(e, p)])
	count(enclosing) > 0
	best := enclosing[count(enclosing) - 1]
	r := reason_text(p, best[1], best[2])
} else := r if {
	contained := sort([[e.path, e.why] | some e in sensitive_paths; covers(p, e.path)])
	r := sprintf("%s (contains %s)", [contained[0][1], contained[0][0]])
}

reason_text(p, path, why) := why if segments(p) == segments(path)

reason_text(p, path, why) := sprintf("%s (inside %s)", [why, path]) if segments(p) != segments(path)

sensitive_mounts contains f if some f in unclean_mounts

runtime_socket_mounts contains f if {
	some hp in host_paths
	hp.checkable
	covers_a_socket(hp.clean)
	hits := sort([s | some s in runtime_sockets; covers(hp.clean, s)])
	f := {
		"msg": sprintf("host path %s exposes the container runtime socket %s: whoever reaches it is root on the host", [hp.path, hits[0]]),
		"field": hp.field,
		"fix": hp.fix,
	}
}

runtime_socket_mounts contains f if {
	some hp in host_paths
	hp.checkable
	not covers_a_socket(hp.clean)
	basename(hp.clean) in runtime_socket_names
	f := {
		"msg": sprintf("host path %s is a container runtime socket: whoever reaches it is root on the host", [hp.path]),
		"field": hp.field,
		"fix": hp.fix,
	}
}

# runtime_sockets split into literal paths and patterns, as literals for
# the same reason (pinned by secrun_test.rego).
socket_literals := {
	"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
	"/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock.ttrpc",
	"/run/docker/containerd/containerd.sock", "/run/k3s/containerd/containerd.sock",
	"/run/crio/crio.sock", "/var/run/crio/crio.sock", "/run/podman/podman.sock",
	"/var/run/podman/podman.sock", "/run/dockershim.sock", "/var/run/dockershim.sock",
	"/run/cri-dockerd.sock", "/var/run/cri-dockerd.sock", "/run/buildkit/buildkitd.sock",
}

socket_patterns := {"/run/user/*/docker.sock", "/run/user/*/podman/podman.sock"}

covers_a_socket(p) if p in socket_literals

covers_a_socket(p) if strings.any_prefix_match(socket_literals, dir_prefix(p))

# Both patterns live under /run/user: a path elsewhere covers one only if it
# is an ancestor of /run/user, and those (/, /run) already cover literals.
covers_a_socket(p) if {
	user_runtime_dir(p)
	some s in socket_patterns
	covers(p, s)
}

user_runtime_dir(p) if p == "/run/user"

user_runtime_dir(p) if startswith(p, "/run/user/")

# Bind mounts from outside the allowlist (restricted only).
disallowed_host_paths contains f if {
	some hp in host_paths
	hp.checkable
	not host_path_allowed(hp.clean)
	f := {
		"msg": sprintf("host path %s is outside the allowed host paths (%s)", [hp.path, concat(", ", allowed_host_paths)]),
		"field": hp.field,
		"fix": sprintf("%s, use a tmpfs, or mount from an allowed directory", [hp.fix]),
	}
}

# allowed_host_paths entries are clean (the loader refuses others). The
# prefix match without the "/" boundary is one builtin call that rejects most
# paths; the loop confirms the boundary (/srv must not allow /srvx).
host_path_allowed(p) if {
	strings.any_prefix_match(p, allowed_host_paths)
	some a in allowed_host_paths
	path_within(p, a)
}

path_within(p, dir) if p == dir

path_within(p, dir) if startswith(p, dir_prefix(dir))

# ---------------------------------------------------------------------------
# Privileged mode.
# ---------------------------------------------------------------------------

privileged contains f if {
	input.request.privileged == true
	f := {
		"msg": "privileged containers are not allowed",
		"field": "request.privileged=true",
		"fix": "drop --privileged",
	}
}

# What a privileged bundle from another engine looks like in the spec: the
# device cgroup allows every device.
privileged contains f if {
	not input.request.privileged == true
	some i, d in input.spec.linux.resources.devices
	d.allow == true
	object.get(d, "type", "a") in {"a", ""}
	object.get(d, "major", null) in {null, -1}
	object.get(d, "minor", null) in {null, -1}
	f := {
		"msg": "the device cgroup allows every host device, as a privileged container does",
		"field": sprintf("spec.linux.resources.devices[%d]=allow all", [i]),
		"fix": "run without --privileged; grant single devices with --device",
	}
}

# ---------------------------------------------------------------------------
# OCI hooks. runc runs a hook on the host, as the runtime's user (root for
# Docker, containerd and rootful podman), in the runtime's namespaces:
# outside the container's namespaces, capabilities, seccomp filter, LSM
# profile and cgroup. `secrun run` never adds one (runner.WithoutHooks);
# engines do (see default_allowed_hooks). Every hook of every kind is a
# finding unless an allowed_hooks entry matches it.
# ---------------------------------------------------------------------------

disallowed_hooks contains f if {
	some kind, hooks in input.spec.hooks
	is_array(hooks)
	some i, h in hooks
	not hook_allowed(kind, h)
	path := hook_path(h)
	f := {
		"msg": sprintf("OCI %s hook %d runs %s on the host as the runtime's user (root), outside every restriction of the container; it matches no allowed_hooks entry", [kind, i, hook_command(h)]),
		"field": sprintf("spec.hooks.%s[%d].path=%s", [kind, i, path]),
		"fix": "remove the hook from the bundle (the engine's hooks directories, CDI or NRI configuration), or allow its exact shape in the policy data's allowed_hooks",
	}
}

# Anything but a list where hooks belong is refused rather than skipped.
disallowed_hooks contains f if {
	some kind, hooks in input.spec.hooks
	not is_array(hooks)
	hooks != null
	f := {
		"msg": sprintf("spec.hooks.%s is not a list of hooks, so it cannot be checked", [kind]),
		"field": sprintf("spec.hooks.%s", [kind]),
		"fix": "give hooks as a list of {path, args, env} objects, or none",
	}
}

hook_path(h) := h.path if is_string(h.path) else := "(no path)"

# The hook's command line as runc runs it: path, then argv (argv[0] first).
hook_command(h) := concat(" ", array.concat([hook_path(h)], [a | some a in hook_args(h); is_string(a)]))

hook_args(h) := h.args if is_array(h.args) else := []

hook_allowed(kind, h) if {
	some rule in allowed_hooks
	hook_matches(rule, kind, h)
}

# Entries are checked when the data loads (policy/data.go); the type checks
# here keep a malformed entry from matching anything.
hook_matches(rule, kind, h) if {
	is_object(h)
	is_array(rule.kinds)
	kind in rule.kinds
	is_string(rule.path)
	is_string(h.path)
	whole_match(rule.path, h.path)
	is_array(rule.args)
	hook_args_match(rule, h)
	hook_env_allowed(rule, h)
}

# Missing args is no args; args that are not a list match nothing.
hook_args_match(rule, h) if {
	object.get(h, "args", null) == null
	count(rule.args) == 0
}

hook_args_match(rule, h) if {
	is_array(h.args)
	count(h.args) == count(rule.args)
	every j, pattern in rule.args {
		is_string(pattern)
		is_string(h.args[j])
		whole_match(pattern, h.args[j])
	}
}

hook_env_allowed(_, h) if object.get(h, "env", null) == null

hook_env_allowed(_, h) if h.env == []

hook_env_allowed(rule, h) if {
	is_array(h.env)
	count(h.env) > 0
	every e in h.env {
		is_string(e)
		some pattern in object.get(rule, "env", [])
		is_string(pattern)
		whole_match(pattern, e)
	}
}

# A pattern matches the whole string, never a part of it.
whole_match(pattern, s) if regex.match(concat("", ["^(?:", pattern, ")$"]), s)

# ---------------------------------------------------------------------------
# Namespaces. kind is the OCI namespace type.
# ---------------------------------------------------------------------------

ns_request_field := {"network": "network", "pid": "pid", "ipc": "ipc", "uts": "uts", "user": "userns"}

ns_flag := {
	"network": "--network host (use --network none)",
	"pid": "--pid host",
	"ipc": "--ipc host",
	"uts": "--uts host",
	"user": "--userns host",
}

spec_ns_types contains ns.type if some ns in input.spec.linux.namespaces

host_proc_ns(p) if regex.match(`^/proc/(1|self|thread-self)/ns/`, p)

# Findings about shared namespaces, each tagged with its namespace type. One
# set evaluated once; the per-type rules below filter it.
host_ns contains {"kind": kind, "f": f} if {
	some kind, rf in ns_request_field
	input.request[rf] == "host"
	f := {
		"msg": sprintf("the host's %s namespace is shared", [kind]),
		"field": sprintf("request.%s=host", [rf]),
		"fix": sprintf("drop %s", [ns_flag[kind]]),
	}
}

host_ns contains {"kind": kind, "f": f} if {
	some kind, rf in ns_request_field
	not kind in spec_ns_types
	not input.request[rf] == "host"
	f := {
		"msg": sprintf("the spec has no %s namespace, so the host's is shared", [kind]),
		"field": sprintf("spec.linux.namespaces (no %s)", [kind]),
		"fix": sprintf("give the container its own %s namespace", [kind]),
	}
}

host_ns contains {"kind": ns.type, "f": f} if {
	some i, ns in input.spec.linux.namespaces
	is_string(ns.path)
	host_proc_ns(ns.path)
	ns_request_field[ns.type]
	f := {
		"msg": sprintf("the %s namespace is joined from %s, which is the host's", [ns.type, ns.path]),
		"field": sprintf("spec.linux.namespaces[%d].path=%s", [i, ns.path]),
		"fix": sprintf("give the container its own %s namespace", [ns.type]),
	}
}

# A user namespace that maps a container id to host uid/gid 0 gives the
# container the host's root.
host_ns contains {"kind": "user", "f": f} if {
	some key, mappings in id_mappings
	some i, m in mappings
	m.hostID == 0
	f := {
		"msg": sprintf("the user namespace maps container id %d to host id 0 (host root)", [m.containerID]),
		"field": sprintf("spec.linux.%s[%d].hostID=0", [key, i]),
		"fix": "map the container to an unprivileged host id range (--userns)",
	}
}

# The id mappings by field name. Each is named rather than indexed with a
# variable (input.spec.linux[key]), so the policy provably reads no other
# field of spec.linux: the decision cache relies on that (policy/cache.go).
id_mappings["uidMappings"] := input.spec.linux.uidMappings

id_mappings["gidMappings"] := input.spec.linux.gidMappings

host_network contains x.f if {
	some x in host_ns
	x.kind == "network"
}

host_pid contains x.f if {
	some x in host_ns
	x.kind == "pid"
}

host_ipc contains x.f if {
	some x in host_ns
	x.kind == "ipc"
}

host_uts contains x.f if {
	some x in host_ns
	x.kind == "uts"
}

host_userns contains x.f if {
	some x in host_ns
	x.kind == "user"
}

# Joining any other existing namespace: it may belong to the host or to
# another container, and the policy cannot tell which (restricted refuses).
joined_namespaces contains f if {
	some i, ns in input.spec.linux.namespaces
	is_string(ns.path)
	ns.path != ""
	not host_proc_ns(ns.path)
	ns_request_field[ns.type]
	f := {
		"msg": sprintf("the %s namespace is joined from %s, which may be shared with the host or another container", [ns.type, ns.path]),
		"field": sprintf("spec.linux.namespaces[%d].path=%s", [i, ns.path]),
		"fix": sprintf("give the container its own %s namespace", [ns.type]),
	}
}

# ---------------------------------------------------------------------------
# Capabilities. Checked in the spec, every set: the bounding set limits what
# exec of a file-capability binary can gain, so it counts as much as effective.
# ---------------------------------------------------------------------------

cap_sets := ["bounding", "effective", "permitted", "inheritable", "ambient"]

cap_name(c) := n if {
	u := upper(c)
	startswith(u, "CAP_")
	n := u
} else := concat("", ["CAP_", upper(c)])

spec_caps contains c if {
	some s in cap_sets
	some c in input.spec.process.capabilities[s]
}

requested_caps contains cap_name(c) if {
	some c in input.request.cap_add
	upper(c) != "ALL"
}

requested_all_caps if {
	some c in input.request.cap_add
	upper(c) == "ALL"
}

cap_fix(c) := sprintf("drop --cap-add %s", [trim_prefix(c, "CAP_")]) if {
	c in requested_caps
} else := "drop --cap-add ALL" if {
	requested_all_caps
} else := "drop --privileged" if {
	input.request.privileged == true
} else := sprintf("remove %s from every capability set", [c])

# Findings for capabilities outside allowed (a set of CAP_ names): one per
# capability when there are a few, so each names its fix; one for all of them
# when there are many (--privileged, --cap-add ALL), so that a refusal stays
# readable.
caps_outside(allowed) := {f |
	count(caps_not_allowed(allowed)) <= 3
	some raw in spec_caps
	c := cap_name(raw)
	not c in allowed
	sets := [s | some s in cap_sets; raw in input.spec.process.capabilities[s]]
	f := {
		"msg": sprintf("capability %s is not allowed (in %s)", [c, concat(", ", sets)]),
		"field": sprintf("spec.process.capabilities.%s=%s", [sets[0], raw]),
		"fix": cap_fix(c),
	}
} | {f |
	bad := caps_not_allowed(allowed)
	count(bad) > 3
	names := sort([c | some c in bad])
	f := {
		"msg": sprintf("%d capabilities are not allowed: %s", [count(bad), concat(", ", names)]),
		"field": sprintf("spec.process.capabilities.bounding=%s,...", [names[0]]),
		"fix": cap_fix(names[0]),
	}
}

caps_not_allowed(allowed) := {c |
	some raw in spec_caps
	c := cap_name(raw)
	not c in allowed
}

# ---------------------------------------------------------------------------
# Seccomp, no_new_privs, LSMs.
# ---------------------------------------------------------------------------

seccomp_unconfined contains f if {
	input.request.seccomp == "unconfined"
	f := {
		"msg": "seccomp is disabled",
		"field": "request.seccomp=unconfined",
		"fix": "drop --security-opt seccomp=unconfined",
	}
}

seccomp_unconfined contains f if {
	not input.request.seccomp == "unconfined"
	not has_seccomp_filter
	f := {
		"msg": "the spec has no seccomp filter, so every syscall is allowed",
		"field": "spec.linux.seccomp=null",
		"fix": "run with the default seccomp profile or --security-opt seccomp=FILE",
	}
}

has_seccomp_filter if is_object(input.spec.linux.seccomp)

allowing_actions := {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}

# A filter that allows by default and never refuses anything is unconfined
# in all but name.
seccomp_unconfined contains f if {
	not input.request.seccomp == "unconfined"
	sc := input.spec.linux.seccomp
	is_object(sc)
	sc.defaultAction in allowing_actions
	not seccomp_refuses_something(sc)
	f := {
		"msg": sprintf("the seccomp filter allows every syscall (defaultAction %s, no refusing rule)", [sc.defaultAction]),
		"field": sprintf("spec.linux.seccomp.defaultAction=%s", [sc.defaultAction]),
		"fix": "use a seccomp profile whose default action refuses (SCMP_ACT_ERRNO)",
	}
}

seccomp_refuses_something(sc) if {
	some rule in sc.syscalls
	not rule.action in allowing_actions
}

no_new_privileges contains f if {
	not input.spec.process.noNewPrivileges == true
	f := {
		"msg": "no_new_privs is not set, so setuid binaries and file capabilities can raise privileges",
		"field": "spec.process.noNewPrivileges=false",
		"fix": nnp_fix,
	}
}

nnp_fix := "drop --security-opt no-new-privileges=false" if {
	input.request.no_new_privileges == false
	input.request.source in {"run", "exec"}
} else := "set process.noNewPrivileges to true (--security-opt no-new-privileges)"

apparmor_unconfined contains f if {
	input.request.apparmor == "unconfined"
	f := {
		"msg": "AppArmor confinement is disabled",
		"field": "request.apparmor=unconfined",
		"fix": "drop --security-opt apparmor=unconfined",
	}
}

apparmor_unconfined contains f if {
	not input.request.apparmor == "unconfined"
	input.spec.process.apparmorProfile == "unconfined"
	f := {
		"msg": "AppArmor confinement is disabled",
		"field": "spec.process.apparmorProfile=unconfined",
		"fix": "use the runtime's default AppArmor profile",
	}
}

host_has_lsm(name) if name in input.host.lsm

# CIS 5.1: on an AppArmor host every container has a profile.
apparmor_missing contains f if {
	host_has_lsm("apparmor")
	profile := process_string("apparmorProfile")
	profile in {"", "unconfined"}
	f := {
		"msg": "the host runs AppArmor but the container has no AppArmor profile",
		"field": sprintf("spec.process.apparmorProfile=%s", [profile_text(profile)]),
		"fix": "run with --security-opt apparmor=PROFILE (secrun profile apparmor)",
	}
}

profile_text(p) := "unset" if p == "" else := p

# A string field of spec.process, "" when missing (so checks fail closed).
process_string(key) := input.spec.process[key] if {
	is_string(input.spec.process[key])
} else := ""

selinux_disabled contains f if {
	some l in input.request.label
	l == "disable"
	f := {
		"msg": "SELinux labelling is disabled",
		"field": "request.label=disable",
		"fix": "drop --security-opt label=disable",
	}
}

selinux_type(label) := parts[2] if {
	parts := split(label, ":")
	count(parts) >= 3
}

container_selinux_type(label) if selinux_type(label) in allowed_selinux_types

# Pod Security baseline: only the container types.
selinux_bad_type contains f if {
	label := input.spec.process.selinuxLabel
	is_string(label)
	label != ""
	not container_selinux_type(label)
	f := {
		"msg": sprintf("SELinux label %s does not use a container type (%s)", [label, concat(", ", sort(allowed_selinux_types))]),
		"field": sprintf("spec.process.selinuxLabel=%s", [label]),
		"fix": "drop --security-opt label=type:... and use the runtime's default label",
	}
}

# CIS 5.2: on an SELinux host every container has a label.
selinux_missing contains f if {
	host_has_lsm("selinux")
	not selinux_labelled
	f := {
		"msg": "the host runs SELinux but the container has no SELinux label",
		"field": "spec.process.selinuxLabel=unset",
		"fix": "run without --security-opt label=disable so the runtime assigns a container label",
	}
}

selinux_labelled if {
	label := input.spec.process.selinuxLabel
	is_string(label)
	label != ""
}

# ---------------------------------------------------------------------------
# /proc masking and sysctls.
# ---------------------------------------------------------------------------

proc_unmasked contains f if {
	masked := {p | some p in input.spec.linux.maskedPaths}
	missing := [p | some p in required_masked_paths; not p in masked]
	count(missing) > 0
	f := {
		"msg": sprintf("kernel interfaces are not masked: %s", [concat(", ", missing)]),
		"field": "spec.linux.maskedPaths",
		"fix": "keep the runtime's default masked paths (do not use --privileged or an unmasked /proc)",
	}
}

proc_unmasked contains f if {
	ro := {p | some p in input.spec.linux.readonlyPaths}
	missing := [p | some p in required_readonly_paths; not p in ro]
	count(missing) > 0
	f := {
		"msg": sprintf("kernel interfaces are writable: %s", [concat(", ", missing)]),
		"field": "spec.linux.readonlyPaths",
		"fix": "keep the runtime's default read-only paths (do not use --privileged or an unmasked /proc)",
	}
}

unsafe_sysctls contains f if {
	some name, value in input.spec.linux.sysctl
	not name in safe_sysctls
	f := {
		"msg": sprintf("sysctl %s is not in the safe set", [name]),
		"field": sprintf("spec.linux.sysctl.%s=%v", [name, value]),
		"fix": sprintf("drop --sysctl %s", [name]),
	}
}

# ---------------------------------------------------------------------------
# Root filesystem, user, resources.
# ---------------------------------------------------------------------------

rootfs_writable contains f if {
	not input.spec.root.readonly == true
	f := {
		"msg": "the root filesystem is writable",
		"field": "spec.root.readonly=false",
		"fix": "run with --read-only (the default) and use --tmpfs for scratch space",
	}
}

runs_as_root contains f if {
	not non_root_uid
	f := {
		"msg": "the process runs as uid 0 in the container",
		"field": "spec.process.user.uid=0",
		"fix": "run as a non-root user: -u 1000:1000, or a USER in the image",
	}
}

non_root_uid if {
	uid := input.spec.process.user.uid
	is_number(uid)
	uid != 0
}

# Rootless without subordinate ids (/etc/subuid), the user namespace maps one
# uid and one gid: container 0 to the caller's own, non-zero host id. runc
# requires container uid 0 to be mapped, so that one identity is container
# root, and it is the unprivileged caller on the host. With no capability in
# the bounding set (none to regain on exec) and no_new_privs, it holds no
# privilege beyond the caller's: it counts as non-root.
non_root_uid if {
	input.host.rootless == true
	input.spec.process.user.uid == 0
	single_id_map(input.spec.linux.uidMappings)
	single_id_map(input.spec.linux.gidMappings)
	no_bounding_caps
	input.spec.process.noNewPrivileges == true
}

# Named fields, not input.spec.linux[key]: the decision cache must be able to
# see that no rule reads the per-container cgroupsPath.
single_id_map(maps) if {
	is_array(maps)
	count(maps) == 1
	maps[0].containerID == 0
	maps[0].size == 1
	maps[0].hostID > 0
}

no_bounding_caps if {
	b := object.get(input.spec.process, ["capabilities", "bounding"], [])
	is_array(b)
	count(b) == 0
}

memory_unlimited contains f if {
	not memory_limited
	f := {
		"msg": "no memory limit is set",
		"field": sprintf("spec.linux.resources.memory.limit=%s", [memory_limit_text]),
		"fix": "set --memory (e.g. --memory 512m)",
	}
}

pids_unlimited contains f if {
	not pids_limited
	f := {
		"msg": "no pids limit is set, so a fork bomb can exhaust the host",
		"field": sprintf("spec.linux.resources.pids.limit=%s", [pids_limit_text]),
		"fix": "set --pids-limit (e.g. --pids-limit 256)",
	}
}

# CIS 5.11: a CPU quota, or shares other than the default weight.
cpu_unlimited contains f if {
	not cpu_quota_set
	not custom_cpu_shares
	f := {
		"msg": "no CPU limit is set",
		"field": "spec.linux.resources.cpu=unset",
		"fix": "set --cpus (e.g. --cpus 1)",
	}
}

# Never "not positive(input...)": a call over an undefined ref is undefined,
# so its negation would fail open. Negate rules instead.
memory_limited if positive(input.spec.linux.resources.memory.limit)

# Rootless without a delegated cgroup (host.cgroup_limits false) nothing on
# the host can enforce a memory limit, runc would fail on one, and secrun
# says so on stderr: the limit the request asked for is the most there is.
memory_limited if {
	rootless_without_cgroup
	positive(input.request.memory)
}

pids_limited if positive(input.spec.linux.resources.pids.limit)

# Rootless without a delegated cgroup, RLIMIT_NPROC bounds the processes in
# place of a pids cgroup: since Linux 5.14 it counts a uid's processes in
# its own user namespace, so with a user namespace of its own it is the
# container's bound.
pids_limited if {
	rootless_without_cgroup
	"user" in spec_ns_types
	some r in input.spec.process.rlimits
	r.type == "RLIMIT_NPROC"
	positive(r.hard)
}

rootless_without_cgroup if {
	input.host.rootless == true
	input.host.cgroup_limits == false
}

cpu_quota_set if positive(input.spec.linux.resources.cpu.quota)

custom_cpu_shares if {
	s := input.spec.linux.resources.cpu.shares
	positive(s)
	s != 1024
}

positive(x) if {
	is_number(x)
	x > 0
}

memory_limit_text := sprintf("%v", [input.spec.linux.resources.memory.limit]) if {
	is_number(input.spec.linux.resources.memory.limit)
} else := "unset"

pids_limit_text := sprintf("%v", [input.spec.linux.resources.pids.limit]) if {
	is_number(input.spec.linux.resources.pids.limit)
} else := "unset"

# ---------------------------------------------------------------------------
# Image signature.
# ---------------------------------------------------------------------------

unsigned contains f if {
	not input.signature.verified == true
	f := {
		"msg": unsigned_msg,
		"field": "signature.verified=false",
		"fix": "sign the image (secrun sign --key FILE IMAGE) and trust its key (--trust FILE)",
	}
}

unsigned_msg := sprintf("the image signature is not verified: %s", [input.signature.error]) if {
	is_string(input.signature.error)
	input.signature.error != ""
} else := "the image signature is not verified"

image_digest := input.image.digest if is_string(input.image.digest) else := ""

# A verdict about another digest does not cover this image.
unsigned contains f if {
	input.signature.verified == true
	sd := input.signature.digest
	is_string(sd)
	sd != ""
	sd != image_digest
	f := {
		"msg": sprintf("the signature covers %s, not the image's digest %s", [sd, image_digest]),
		"field": sprintf("signature.digest=%s", [sd]),
		"fix": "verify the image by the digest that is run",
	}
}

# ---------------------------------------------------------------------------
# CIS-only checks.
# ---------------------------------------------------------------------------

process_args := input.spec.process.args if is_array(input.spec.process.args) else := []

sshd_running contains f if {
	some i, a in process_args
	basename(a) == "sshd"
	f := {
		"msg": "the container runs sshd",
		"field": sprintf("spec.process.args[%d]=%s", [i, a]),
		"fix": "do not run sshd in containers; use secrun exec",
	}
}

# Published host ports below 1024. The OCI spec has no port field; engines
# that record publications in annotations (nerdctl) are checked, others are
# not visible to the policy.
privileged_ports contains f if {
	raw := input.spec.annotations["nerdctl/ports"]
	json.is_valid(raw)
	ports := json.unmarshal(raw)
	is_array(ports)
	some p in ports
	is_number(p.HostPort)
	p.HostPort > 0
	p.HostPort < 1024
	f := {
		"msg": sprintf("host port %d is a privileged port", [p.HostPort]),
		"field": sprintf("spec.annotations.nerdctl/ports=%d:%v", [p.HostPort, object.get(p, "ContainerPort", "?")]),
		"fix": "publish on a host port of 1024 or above",
	}
}

shared_propagation contains f if {
	some i, m in input.spec.mounts
	some o in m.options
	o in {"shared", "rshared"}
	f := {
		"msg": sprintf("mount %s uses %s propagation, so mounts made in the container reach the host", [object.get(m, "destination", "?"), o]),
		"field": sprintf("spec.mounts[%d].options=%s", [i, o]),
		"fix": "use private or slave propagation (drop :shared/:rshared from the volume)",
	}
}

shared_propagation contains f if {
	p := input.spec.linux.rootfsPropagation
	p in {"shared", "rshared"}
	f := {
		"msg": sprintf("the root filesystem uses %s propagation", [p]),
		"field": sprintf("spec.linux.rootfsPropagation=%s", [p]),
		"fix": "use private or slave root propagation",
	}
}

host_devices contains f if {
	some i, d in input.spec.linux.devices
	f := {
		"msg": sprintf("host device %s is exposed", [object.get(d, "path", "?")]),
		"field": sprintf("spec.linux.devices[%d].path=%s", [i, object.get(d, "path", "?")]),
		"fix": sprintf("drop --device %s", [object.get(d, "path", "?")]),
	}
}

exec_as_root contains f if {
	input.request.source == "exec"
	root_user(input.request.user)
	f := {
		"msg": "exec runs as root",
		"field": sprintf("request.user=%s", [input.request.user]),
		"fix": "exec as the container's user: drop -u root",
	}
}

root_user(u) if u in {"root", "0"}

root_user(u) if {
	some prefix in ["root:", "0:"]
	startswith(u, prefix)
}
