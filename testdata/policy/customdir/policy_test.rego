package secrun_test

import data.secrun

test_team_image_allowed if {
	secrun.allow with input as {"image": {"ref": "registry.team.example/app:1"}, "spec": {"process": {"user": {"uid": 1000}}}}
}

test_other_registry_denied if {
	not secrun.allow with input as {"image": {"ref": "docker.io/library/alpine"}, "spec": {"process": {"user": {"uid": 1000}}}}
}

test_root_exempted_for_tools if {
	secrun.allow with input as {"image": {"ref": "registry.team.example/tools/debug:1"}, "spec": {"process": {"user": {"uid": 0}}}}
}
