// Package seccomp owns secrun's model of seccomp profiles: Docker's JSON
// profile format (what `--security-opt seccomp=FILE` takes in Docker and
// podman) and the OCI runtime-spec seccomp section, their lossless JSON
// round trip, validation and compilation with libseccomp, and the
// user-notification recorder that derives a minimal profile from a real run.
//
// A Profile is data; ToOCI turns it into the runtime-spec form for one
// container, taking the granted capability set as an explicit argument
// instead of relying on the order in which spec options were applied.
package seccomp
