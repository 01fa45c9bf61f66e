package lib.secrun_test

import data.fixtures
import data.lib.secrun as lib

test_segments if {
	lib.segments("/") == []
	lib.segments("/var/run/") == ["var", "run"]
}

test_unclean if {
	lib.unclean("etc")
	lib.unclean("/srv/../etc")
	lib.unclean("/srv/./x")
	lib.unclean("/srv//x")
	lib.unclean("")
	not lib.unclean("/srv/x")
	not lib.unclean("/")
}

test_covers if {
	lib.covers("/", "/etc")
	lib.covers("/run", "/run/containerd/containerd.sock")
	lib.covers("/run/user/1000", "/run/user/*/docker.sock")
	lib.covers("/run/user/1000/docker.sock", "/run/user/*/docker.sock")
	not lib.covers("/run/user/1000/other.sock", "/run/user/*/docker.sock")
	not lib.covers("/etc/shadow", "/etc")
	not lib.covers("/srvx", "/srv")
}

test_inside if {
	lib.inside("/etc/shadow", "/etc")
	lib.inside("/etc", "/etc")
	not lib.inside("/etcetera", "/etc")
	not lib.inside("/", "/etc")
	lib.inside("/anything", "/")
}

test_basename if {
	lib.basename("/home/u/.docker/run/docker.sock") == "docker.sock"
	lib.basename("/") == ""
}

test_cap_name if {
	lib.cap_name("sys_admin") == "CAP_SYS_ADMIN"
	lib.cap_name("CAP_CHOWN") == "CAP_CHOWN"
	lib.cap_name("cap_chown") == "CAP_CHOWN"
}

test_root_user if {
	lib.root_user("root")
	lib.root_user("0:0")
	lib.root_user("root:wheel")
	not lib.root_user("1000")
	not lib.root_user("rootless")
}

test_docker_default_caps_never_include_sys_admin if {
	not "CAP_SYS_ADMIN" in lib.docker_default_caps
	not "CAP_SYS_PTRACE" in lib.docker_default_caps
	not "CAP_SYS_MODULE" in lib.docker_default_caps
	not "CAP_NET_ADMIN" in lib.docker_default_caps
}

test_default_allowed_host_paths_hold_nothing_sensitive if {
	every p in lib.default_allowed_host_paths {
		not lib.unclean(p)
		every e in lib.sensitive_paths {
			not lib.sensitive_hit(p, e)
		}
	}
}

test_exemption_matching if {
	e := {"control": "x", "images": ["registry.example/team/*"]}
	lib.exemption_matches_image(e) with input as {"image": {"ref": "registry.example/team/app:1"}}
	not lib.exemption_matches_image(e) with input as {"image": {"ref": "registry.example/team/sub/app:1"}}
	not lib.exemption_matches_image(e) with input as {"image": {"ref": ""}}
}

# The fast string forms agree with the segment-wise definitions.
test_sensitive_fast_form_agrees if {
	paths := [
		"/", "/etc", "/etc/shadow", "/etcetera", "/var", "/var/lib", "/var/lib/docker",
		"/var/lib/docker/containers/x/hosts", "/run", "/run/user/1000", "/srv", "/srv/data",
		"/proc/1/root", "/usr", "/usr/share/zoneinfo", "/home/alice", "/dev/kvm",
	]
	every p in paths {
		slow := count([e | some e in lib.sensitive_paths; lib.sensitive_hit(p, e)]) > 0
		fast := sensitive_bool(p)
		slow == fast
	}
}

test_socket_fast_form_agrees if {
	paths := [
		"/", "/run", "/var/run", "/run/containerd", "/run/containerd/containerd.sock",
		"/run/user", "/run/user/1000", "/run/user/1000/podman", "/run/user/1000/podman/podman.sock",
		"/run/user/1000/other", "/srv", "/run/docker.sock", "/run/dockerx",
	]
	every p in paths {
		slow := count([s | some s in lib.runtime_sockets; lib.covers(p, s)]) > 0
		fast := socket_bool(p)
		slow == fast
	}
}

sensitive_bool(p) := true if lib.sensitive(p) else := false

socket_bool(p) := true if lib.covers_a_socket(p) else := false

# The literal sets the fast forms use are exactly the reviewed lists.
test_literal_sets_match_lists if {
	lib.sensitive_path_set == {e.path | some e in lib.sensitive_paths}
	lib.sensitive_subtree_prefixes == {concat("", [e.path, "/"]) | some e in lib.sensitive_paths; e.subtree}
	lib.socket_literals == {s | some s in lib.runtime_sockets; not contains(s, "*")}
	lib.socket_patterns == {s | some s in lib.runtime_sockets; contains(s, "*")}
}

test_path_within if {
	lib.path_within("/srv", "/srv")
	lib.path_within("/srv/a", "/srv")
	not lib.path_within("/srvx", "/srv")
}

# ---------------------------------------------------------------------------
# OCI hooks against the default allowlist.
# ---------------------------------------------------------------------------

hook_findings(hooks) := fs if {
	fs := lib.disallowed_hooks with input as {"spec": {"hooks": hooks}}
}

hook_fields(hooks) := {f.field | some f in hook_findings(hooks)}

test_hooks_none_allowed if {
	count(hook_findings({})) == 0
	count(lib.disallowed_hooks) == 0 with input as {"spec": {}}
	count(lib.disallowed_hooks) == 0 with input as {}
}

test_hooks_docker_setkey_allowed if {
	count(hook_findings({"prestart": [fixtures.docker_setkey_hook]})) == 0
	# Other pids, exec roots and ids of the same shape.
	count(hook_findings({"prestart": [{"path": "/proc/1/exe", "args": [
		"libnetwork-setkey", "-exec-root=/run/user/1000/docker",
		"0000000000000000000000000000000000000000000000000000000000000000", "abcdef012345",
	]}]})) == 0
	# Newer dockerd adds the W3C trace context.
	count(hook_findings({"prestart": [fixtures.setkey_with("env", ["TRACEPARENT=00-5ebf70084575ef7986a74f21e4a018db-df514d71c49d34e1-01"])]})) == 0
	count(hook_findings({"prestart": [fixtures.setkey_with("env", [])]})) == 0
}

test_hooks_finding_names_kind_index_and_path if {
	fs := hook_findings({"prestart": [fixtures.docker_setkey_hook, {"path": "/usr/bin/evil", "args": ["evil", "-x"]}]})
	count(fs) == 1
	some f in fs
	f.field == "spec.hooks.prestart[1].path=/usr/bin/evil"
	f.msg == "OCI prestart hook 1 runs /usr/bin/evil evil -x on the host as the runtime's user (root), outside every restriction of the container; it matches no allowed_hooks entry"
	f.fix != ""
}

test_hooks_every_kind_denied if {
	every kind in ["createRuntime", "createContainer", "startContainer", "poststart", "poststop", "prestop"] {
		hook_fields({kind: [fixtures.docker_setkey_hook]}) == {sprintf("spec.hooks.%s[0].path=/proc/26856/exe", [kind])}
	}
}

test_hooks_other_shapes_denied if {
	cases := [
		# Another command of the same binary, or dockerd by its file name.
		{"path": "/proc/1/exe", "args": ["something-else"]},
		{"path": "/proc/1/exe", "args": ["something-else", "-exec-root=/var/run/docker", "beac18336857e6c78b3c3530248f09a18634201e1911b2ba0b1475995945ee69", "68c4717f6d82"]},
		fixtures.setkey_with("path", "/usr/bin/dockerd"),
		fixtures.setkey_with("path", "/usr/sbin/dockerd"),
		fixtures.setkey_with("path", "/usr/bin/evil"),
		fixtures.setkey_with("path", "/proc/self/exe"),
		fixtures.setkey_with("path", "/proc/thread-self/exe"),
		fixtures.setkey_with("path", "/proc/0/exe"),
		fixtures.setkey_with("path", "/proc/1/root/usr/bin/evil"),
		fixtures.setkey_with("path", "/proc/1/exe/../../../tmp/evil"),
		fixtures.setkey_with("path", "/tmp/proc/1/exe"),
		fixtures.setkey_with("path", "/proc/1/cwd/exe"),
		fixtures.setkey_with("path", 1),
		{"args": fixtures.docker_setkey_hook.args},
		# Arguments: each checked, whole, in place; no more, no fewer.
		fixtures.setkey_args_with(0, "libnetwork-setkeyx"),
		fixtures.setkey_args_with(0, "xlibnetwork-setkey"),
		fixtures.setkey_args_with(1, "-exec-root=relative/dir"),
		fixtures.setkey_args_with(1, "-exec-root=/var/run/../../tmp"),
		fixtures.setkey_args_with(1, "-exec-root=/var/run/docker -evil"),
		fixtures.setkey_args_with(1, "-exec-root=/"),
		fixtures.setkey_args_with(2, "beac1833685"),
		fixtures.setkey_args_with(2, "BEAC18336857E6C78B3C3530248F09A18634201E1911B2BA0B1475995945EE69"),
		fixtures.setkey_args_with(3, "68c4717f6d82\n"),
		fixtures.setkey_args_with(3, 68),
		fixtures.setkey_with("args", array.concat(fixtures.docker_setkey_hook.args, ["extra"])),
		fixtures.setkey_with("args", array.slice(fixtures.docker_setkey_hook.args, 0, 3)),
		fixtures.setkey_with("args", []),
		fixtures.setkey_with("args", "libnetwork-setkey"),
		object.remove(fixtures.docker_setkey_hook, ["args"]),
		# Environment: only the trace context.
		fixtures.setkey_with("env", ["LD_PRELOAD=/tmp/evil.so"]),
		fixtures.setkey_with("env", ["TRACEPARENT=00-5ebf70084575ef7986a74f21e4a018db-df514d71c49d34e1-01", "LD_PRELOAD=/tmp/evil.so"]),
		fixtures.setkey_with("env", ["TRACEPARENT=00-5ebf70084575ef7986a74f21e4a018db-df514d71c49d34e1-01 LD_PRELOAD=/x"]),
		fixtures.setkey_with("env", "LD_PRELOAD=/tmp/evil.so"),
		"/usr/bin/evil",
	]
	every h in cases {
		count(hook_findings({"prestart": [h]})) == 1
	}
}

test_hooks_not_a_list_denied if {
	hook_fields({"prestart": "/usr/bin/evil"}) == {"spec.hooks.prestart"}
	hook_fields({"poststop": {"path": "/usr/bin/evil"}}) == {"spec.hooks.poststop"}
	count(hook_findings({"prestart": null})) == 0
}

test_allowed_hooks_from_data if {
	nvidia := {"path": "/usr/bin/nvidia-container-runtime-hook", "args": ["nvidia-container-runtime-hook", "prestart"]}
	rule := {
		"name": "nvidia", "kinds": ["prestart"], "path": "/usr/bin/nvidia-container-runtime-hook",
		"args": ["nvidia-container-runtime-hook", "prestart"], "reason": "GPU containers",
	}
	hooks := {"prestart": [nvidia, fixtures.docker_setkey_hook]}
	# The data replaces the default list: Docker's hook is no longer allowed.
	hook_fields(hooks) == {"spec.hooks.prestart[0].path=/usr/bin/nvidia-container-runtime-hook"}
	hook_fields(hooks) == {"spec.hooks.prestart[1].path=/proc/26856/exe"} with data.allowed_hooks as [rule]
	count(hook_findings(hooks)) == 0 with data.allowed_hooks as [rule, lib.default_allowed_hooks[0]]
	# An empty list allows no hook at all.
	hook_fields({"prestart": [fixtures.docker_setkey_hook]}) == {"spec.hooks.prestart[0].path=/proc/26856/exe"} with data.allowed_hooks as []
}

test_whole_match_is_anchored if {
	lib.whole_match(`[0-9a-f]{12}`, "68c4717f6d82")
	not lib.whole_match(`[0-9a-f]{12}`, "68c4717f6d82a")
	not lib.whole_match(`a|b`, "ab")
	not lib.whole_match(`/proc/[1-9][0-9]*/exe`, "/proc/1/exe\n")
}

# Standing promise: the default allowlist is Docker's setkey hook and
# nothing broader: one entry, prestart only, a /proc/N/exe path, four
# arguments the first of which is libnetwork-setkey.
test_default_allowed_hooks_are_docker_setkey_only if {
	count(lib.default_allowed_hooks) == 1
	rule := lib.default_allowed_hooks[0]
	rule.kinds == ["prestart"]
	count(rule.args) == 4
	rule.reason != ""
	every p in ["/usr/bin/dockerd", "/bin/sh", "/proc/self/exe", "/proc/1/root/bin/sh", "/proc/1/exe/x"] {
		not lib.whole_match(rule.path, p)
	}
	lib.whole_match(rule.args[0], "libnetwork-setkey")
	every a in ["sh", "-c", "libnetwork-setkey ", ""] {
		not lib.whole_match(rule.args[0], a)
	}
	every e in ["LD_PRELOAD=/tmp/x.so", "PATH=/tmp", "TRACEPARENT=x"] {
		some pattern in rule.env
		not lib.whole_match(pattern, e)
	}
}
