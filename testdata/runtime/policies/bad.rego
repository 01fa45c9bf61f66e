package secrun

default allow := false

allow if {
	input.request.privileged ==
}
