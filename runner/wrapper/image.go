package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/secrun/secrun/policy"
)

// ImageAnnotations are the bundle annotations that name the image a
// container was made from, in the order they are trusted. Engines differ:
//
//   - io.kubernetes.cri.image-name: containerd's CRI plugin (Kubernetes),
//     the image as the pod names it.
//   - io.kubernetes.cri-o.ImageName: CRI-O.
//   - run.secrun.image: secrun's own, for engines that let the operator set
//     annotations (podman --annotation, ctr run --annotation).
//
// Docker (20.10) and plain `ctr run` / podman set none: their bundles have
// no image identity. An annotation is a claim by whoever wrote the bundle;
// it is as trustworthy as the engine that writes it.
var ImageAnnotations = []string{
	"io.kubernetes.cri.image-name",
	"io.kubernetes.cri-o.ImageName",
	AnnotationImage,
}

// Annotations secrun-runc reads or writes.
const (
	// AnnotationImage names the image (with @sha256:... to make its
	// signature checkable) when the engine gives no identity of its own.
	AnnotationImage = "run.secrun.image"
	// AnnotationOriginal is added to a spec secrun-runc adjusted: the
	// sha256 of the config.json the engine wrote, kept beside it as
	// config.json.orig.
	AnnotationOriginal = "run.secrun.original-spec"
)

// VerifierName is the signature helper's program name.
const VerifierName = "secrun-runc-verify"

// ImageIdentity is the image a bundle says it was made from.
type ImageIdentity struct {
	// Ref is the reference as the engine gave it; "" when there is none.
	Ref string
	// Digest is the manifest digest from the reference (name@sha256:...),
	// "" when the reference has none.
	Digest string
	// Annotation is where Ref came from.
	Annotation string
}

var digestRE = regexp.MustCompile(`@(sha256:[0-9a-f]{64})$`)

// IdentityFromAnnotations finds the image identity in a spec's annotations.
func IdentityFromAnnotations(a map[string]string) ImageIdentity {
	for _, k := range ImageAnnotations {
		v := strings.TrimSpace(a[k])
		if v == "" {
			continue
		}
		id := ImageIdentity{Ref: v, Annotation: k}
		if m := digestRE.FindStringSubmatch(v); m != nil {
			id.Digest = m[1]
		}
		return id
	}
	return ImageIdentity{}
}

// ImageInfo is the identity as the policy input carries it.
func (id ImageIdentity) ImageInfo() policy.ImageInfo {
	return policy.ImageInfo{Ref: id.Ref, Digest: id.Digest, Identity: id.Ref != ""}
}

// signature returns the signature verdict for id. Without an identity, a
// digest or a trust config the verdict says so in Error; the policy
// decides what that means. An error means the check could not be made and
// the container must not start.
func (w *Wrapper) signature(ctx context.Context, id ImageIdentity) (policy.SignatureInfo, error) {
	unverified := func(why string) (policy.SignatureInfo, error) {
		return policy.SignatureInfo{Signers: []string{}, Digest: id.Digest, Error: why}, nil
	}
	switch {
	case id.Ref == "":
		return unverified(policy.NoImageIdentity)
	case w.Config.Trust == "":
		return unverified(fmt.Sprintf("no trust configuration: set trust: in %s to check signatures", w.Config.Source()))
	case id.Digest == "":
		return unverified(fmt.Sprintf("image %s is named without a digest (%s), so no signature can be tied to what runs", id.Ref, id.Annotation))
	}
	helper, err := w.Config.FindVerifier(w.Self)
	if err != nil {
		return policy.SignatureInfo{}, err
	}
	return RunVerifier(ctx, helper, w.Config.Trust, w.Config.StateDir, id.Ref, id.Digest)
}

// VerifyTimeout bounds one signature check (a registry round trip).
const VerifyTimeout = 60 * time.Second

// RunVerifier runs the signature helper, which links the sigstore code that
// secrun-runc itself leaves out to start fast:
//
//	secrun-runc-verify --trust FILE --state DIR REF DIGEST
//
// It prints the verdict as policy.SignatureInfo JSON and exits 0 when it
// reached a verdict (verified or not), non-zero when it could not check.
func RunVerifier(ctx context.Context, helper, trust, stateDir, ref, digest string) (policy.SignatureInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helper, "--trust", trust, "--state", stateDir, ref, digest)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return policy.SignatureInfo{}, fmt.Errorf("signature of %s could not be checked: %s: %w", ref, msg, err)
	}
	var info policy.SignatureInfo
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return policy.SignatureInfo{}, fmt.Errorf("signature helper %s: unreadable verdict: %w", helper, err)
	}
	if info.Signers == nil {
		info.Signers = []string{}
	}
	if info.Verified && info.Digest != digest {
		return policy.SignatureInfo{}, errors.New("signature helper " + helper + " verified " + info.Digest + ", not " + digest)
	}
	if !info.Verified && info.Error == "" {
		info.Error = "signature not verified"
	}
	return info, nil
}
