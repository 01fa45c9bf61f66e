//go:build !secrun_noengine

package main

// haveEngine: this is the full build (secrun-engine, or a plain go build).
const haveEngine = true
