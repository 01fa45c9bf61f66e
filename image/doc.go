// Package image owns everything secrun knows about container images: image
// references and their transports (docker-archive:, oci:, oci-archive: and
// registries), the content-addressed local store under the secrun root, and
// the hardened unpacking of layers into a root filesystem.
//
// The store is an OCI image layout (root/images) whose every blob read is
// checked against its digest; unpacked root filesystems are cached per
// manifest digest in root/rootfs. Layers are untrusted input: Unpack confines
// every write to the destination directory, enforces size and entry limits,
// drops device nodes, strips setuid/setgid bits and file capabilities unless
// asked to keep them, and rejects names, links and whiteouts that try to
// reach outside the image, with an error naming the offending entry.
package image
