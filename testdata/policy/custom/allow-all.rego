package secrun

allow := true
