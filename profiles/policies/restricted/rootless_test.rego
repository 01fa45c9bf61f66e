package secrun_test

import data.fixtures
import data.secrun

# ---------------------------------------------------------------------------
# Rootless runs (host.rootless). What `secrun run` hands the policy as an
# unprivileged user: container root mapped to the caller's uid 1000 and ids
# 1..65535 to its /etc/subuid range, the default user 65534, and, without a
# delegated cgroup, no cgroup limits but RLIMIT_NPROC.
# ---------------------------------------------------------------------------

rootless_maps := [
	{"op": "replace", "path": "/spec/linux/uidMappings", "value": [
		{"containerID": 0, "hostID": 1000, "size": 1},
		{"containerID": 1, "hostID": 100000, "size": 65535},
	]},
	{"op": "replace", "path": "/spec/linux/gidMappings", "value": [
		{"containerID": 0, "hostID": 1000, "size": 1},
		{"containerID": 1, "hostID": 100000, "size": 65535},
	]},
	{"op": "replace", "path": "/spec/process/user", "value": {"uid": 65534, "gid": 65534}},
]

# No subordinate ids: one id, the caller's, as container root.
single_id := [
	{"op": "replace", "path": "/spec/linux/uidMappings", "value": [{"containerID": 0, "hostID": 1000, "size": 1}]},
	{"op": "replace", "path": "/spec/linux/gidMappings", "value": [{"containerID": 0, "hostID": 1000, "size": 1}]},
	{"op": "replace", "path": "/spec/process/user", "value": {"uid": 0, "gid": 0}},
]

host(rootless, limits) := [
	{"op": "add", "path": "/host/rootless", "value": rootless},
	{"op": "add", "path": "/host/cgroup_limits", "value": limits},
]

without_cgroup := [
	{"op": "remove", "path": "/spec/linux/resources/memory"},
	{"op": "remove", "path": "/spec/linux/resources/pids"},
	{"op": "remove", "path": "/spec/linux/resources/cpu"},
	{"op": "add", "path": "/spec/process/rlimits/-", "value": {"type": "RLIMIT_NPROC", "hard": 256, "soft": 256}},
]

rootless_ops := array.concat(array.concat(rootless_maps, host(true, false)), without_cgroup)

test_rootless_hardened_allowed if {
	secrun.allow with input as fixtures.patched(rootless_ops)
}

test_rootless_with_delegated_cgroup_allowed if {
	secrun.allow with input as fixtures.patched(array.concat(rootless_maps, host(true, true)))
}

# The relaxations hold only where nothing can enforce the limit.
test_memory_unlimited_with_delegated_cgroup_denied if denies(
	array.concat(array.concat(rootless_maps, host(true, true)), without_cgroup),
	"memory-limit", "spec.linux.resources.memory.limit=unset",
)

test_pids_unlimited_with_delegated_cgroup_denied if denies(
	array.concat(array.concat(rootless_maps, host(true, true)), without_cgroup),
	"pids-limit", "spec.linux.resources.pids.limit=unset",
)

test_no_cgroup_as_root_denied if {
	ids := ids_for(array.concat(host(false, true), without_cgroup))
	"memory-limit" in ids
	"pids-limit" in ids
}

test_no_cgroup_host_fields_absent_denied if {
	ids := ids_for(without_cgroup)
	"memory-limit" in ids
	"pids-limit" in ids
}

test_rootless_no_nproc_denied if denies(
	array.concat(array.concat(rootless_maps, host(true, false)), [
		{"op": "remove", "path": "/spec/linux/resources/pids"},
	]),
	"pids-limit", "spec.linux.resources.pids.limit=unset",
)

test_rootless_nproc_without_userns_denied if denies(
	array.concat(rootless_ops, [fixtures.drop_ns("user")]),
	"pids-limit", "spec.linux.resources.pids.limit=unset",
)

test_rootless_no_memory_request_denied if denies(
	array.concat(rootless_ops, [{"op": "remove", "path": "/request/memory"}]),
	"memory-limit", "spec.linux.resources.memory.limit=unset",
)

# Without subordinate ids container root is the caller: admitted, but only
# in exactly that shape.
test_rootless_single_id_allowed if {
	secrun.allow with input as fixtures.patched(array.concat(array.concat(single_id, host(true, false)), without_cgroup))
}

test_single_id_as_root_denied if denies(
	array.concat(single_id, host(false, true)),
	"run-as-non-root", "spec.process.user.uid=0",
)

test_single_id_with_capability_denied if denies(
	array.concat(array.concat(single_id, host(true, false)), [fixtures.all_caps("CAP_NET_BIND_SERVICE")]),
	"run-as-non-root", "spec.process.user.uid=0",
)

test_single_id_without_nnp_denied if denies(
	array.concat(array.concat(single_id, host(true, false)), [{"op": "replace", "path": "/spec/process/noNewPrivileges", "value": false}]),
	"run-as-non-root", "spec.process.user.uid=0",
)

test_rootless_root_with_subordinate_ids_denied if denies(
	array.concat(array.concat(rootless_maps, host(true, false)), [{"op": "replace", "path": "/spec/process/user", "value": {"uid": 0, "gid": 0}}]),
	"run-as-non-root", "spec.process.user.uid=0",
)

test_single_id_wider_map_denied if denies(
	array.concat(array.concat(single_id, host(true, false)), [
		{"op": "replace", "path": "/spec/linux/uidMappings", "value": [{"containerID": 0, "hostID": 1000, "size": 2}]},
	]),
	"run-as-non-root", "spec.process.user.uid=0",
)

test_single_id_host_root_denied if {
	ids := ids_for(array.concat(array.concat(single_id, host(true, false)), [
		{"op": "replace", "path": "/spec/linux/uidMappings", "value": [{"containerID": 0, "hostID": 0, "size": 1}]},
	]))
	"run-as-non-root" in ids
	"host-userns" in ids
}
