# A policy that refuses OCI hooks: hooks run on the host, as root, outside
# every restriction of the container. secrun-runc puts the bundle's hooks in
# the input (input.spec.hooks); this shows a policy can decide on them. The
# built-in policies have a `hooks` control that admits Docker's
# libnetwork-setkey hook (data.allowed_hooks); this one refuses every hook,
# Docker's included.
package secrun

default allow := false

allow if count(deny) == 0

deny contains v if {
	some kind, hooks in input.spec.hooks
	some i, h in hooks
	v := {
		"id": "hooks",
		"msg": sprintf("OCI %s hook %s runs on the host as root", [kind, h.path]),
		"field": sprintf("spec.hooks.%s[%d].path=%s", [kind, i, h.path]),
		"fix": "remove the hook from the bundle",
		"severity": "critical",
	}
}
