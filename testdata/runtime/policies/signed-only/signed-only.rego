# Admits exactly the images whose signature verified for the digest that
# runs; says why otherwise.
package secrun

default allow := false

allow if count(deny) == 0

deny contains v if {
	not input.signature.verified == true
	v := {
		"id": "signed-image",
		"msg": sprintf("the image signature is not verified: %s", [input.signature.error]),
		"field": "signature.verified=false",
		"fix": "sign the image and trust its key",
		"severity": "high",
	}
}

deny contains v if {
	input.signature.verified == true
	input.signature.digest != input.image.digest
	v := {"id": "signed-image", "msg": "the signature covers another digest", "field": "signature.digest", "fix": "", "severity": "high"}
}
