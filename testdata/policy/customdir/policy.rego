# A site policy: only images from the team registry, never as root.
package secrun

default allow := false

allow if count(deny) == 0

controls := {
	"registry": {"severity": "high", "description": "Images come from the team registry."},
	"root": {"severity": "medium", "description": "The process does not run as uid 0."},
}

deny contains {
	"id": "registry",
	"msg": sprintf("image %s is not from %s", [input.image.ref, data.team.registry]),
	"field": sprintf("image.ref=%s", [input.image.ref]),
	"fix": sprintf("push the image to %s", [data.team.registry]),
	"severity": "high",
} if {
	not startswith(input.image.ref, data.team.registry)
	not exempt("registry")
}

deny contains {
	"id": "root",
	"msg": "the process runs as root",
	"field": "spec.process.user.uid=0",
	"fix": "run as a non-root user",
	"severity": "medium",
} if {
	input.spec.process.user.uid == 0
	not exempt("root")
}

exempt(id) if {
	some e in data.exemptions
	e.control == id
	some p in e.images
	glob.match(p, ["/"], input.image.ref)
}
