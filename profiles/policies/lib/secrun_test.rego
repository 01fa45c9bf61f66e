package lib.secrun_test

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
