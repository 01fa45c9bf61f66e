// Package verify owns image signature checks for secrun: the trust config
// (which public keys or keyless identities may sign which image patterns),
// cosign-compatible signing and key generation, and a verdict per manifest
// digest.
//
// Everything works offline. Signatures are stored the cosign way: a
// "sha256-<hex>.sig" image whose layers are simple-signing payloads carrying
// the signature in the dev.cosignproject.cosign/signature annotation, kept in
// a registry, in an OCI image layout, or in secrun's own store. Verification is
// always by manifest digest, so the digest that was verified is the digest
// that runs, and the payload's claimed digest must equal it (cosign's
// SimpleClaimVerifier is always on): a valid signature copied from another
// image is refused.
//
// The sigstore library sits behind a small seam (sigChecker in cosign.go), so
// moving from cosign v2 to v3, whose API is the same, touches one file.
package verify
