//go:build !secrun_noengine

package verify

// This file is the seam to the sigstore library: the only one in package
// verify that builds cosign.CheckOpts or calls cosign's verification. cosign
// v3 keeps the same API under a new import path.

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/tuf"
)

// haveCosign: this build checks signatures (engine_noengine.go: it does not).
const haveCosign = true

// Annotation keys of a cosign signature layer.
const (
	annSignature   = static.SignatureAnnotationKey
	annCertificate = static.CertificateAnnotationKey
	annChain       = static.ChainAnnotationKey
	annBundle      = static.BundleAnnotationKey
	annTimestamp   = static.RFC3161TimestampAnnotationKey
)

type cosignChecker struct {
	opts    *cosign.CheckOpts
	keyName string // "" for keyless
	signer  string // fixed signer for keys
}

// newCheckers builds one checker per trusted key and one for the rule's
// identities.
func newCheckers(r *rule) ([]sigChecker, error) {
	rekor, err := tlogKeys(r.rekorKeys)
	if err != nil {
		return nil, fmt.Errorf("rekor keys: %w", err)
	}
	ctlog, err := tlogKeys(r.ctlogKeys)
	if err != nil {
		return nil, fmt.Errorf("ctlog keys: %w", err)
	}
	base := func() *cosign.CheckOpts {
		return &cosign.CheckOpts{
			// The claim check binds a signature to the digest it names: without it
			// a valid signature copied from another image would be accepted.
			ClaimVerifier: cosign.SimpleClaimVerifier,
			IgnoreTlog:    r.ignoreTlog,
			RekorPubKeys:  rekor,
			IgnoreSCT:     r.ignoreSCT,
			CTLogPubKeys:  ctlog,
			// Never reach for Rekor: a missing bundle fails instead.
			Offline:    true,
			MaxWorkers: 1,
		}
	}
	var out []sigChecker
	for _, k := range r.keys {
		v, err := signature.LoadVerifier(k.pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("key %s: unsupported public key: %w", k.name, err)
		}
		co := base()
		co.SigVerifier = v
		out = append(out, &cosignChecker{opts: co, keyName: k.name, signer: "key:" + k.fingerprint})
	}
	if len(r.identities) > 0 {
		co := base()
		co.RootCerts = x509.NewCertPool()
		for _, c := range r.roots {
			co.RootCerts.AddCert(c)
		}
		if len(r.intermediates) > 0 {
			co.IntermediateCerts = x509.NewCertPool()
			for _, c := range r.intermediates {
				co.IntermediateCerts.AddCert(c)
			}
		}
		for _, id := range r.identities {
			co.Identities = append(co.Identities, cosign.Identity{
				Issuer:        id.Issuer,
				IssuerRegExp:  id.IssuerRegExp,
				Subject:       id.Subject,
				SubjectRegExp: id.SubjectRegExp,
			})
		}
		out = append(out, &cosignChecker{opts: co})
	}
	return out, nil
}

func tlogKeys(pems [][]byte) (*cosign.TrustedTransparencyLogPubKeys, error) {
	if len(pems) == 0 {
		return nil, nil
	}
	keys := cosign.NewTrustedTransparencyLogPubKeys()
	for _, p := range pems {
		if err := keys.AddTransparencyLogPubKey(p, tuf.Active); err != nil {
			return nil, err
		}
	}
	return &keys, nil
}

func (c *cosignChecker) check(ctx context.Context, raw rawSignature, digest v1.Hash) (string, error) {
	sig, err := ociSignature(raw)
	if err != nil {
		return "", err
	}
	if c.keyName == "" {
		cert, err := sig.Cert()
		if err != nil {
			return "", fmt.Errorf("certificate annotation: %w", err)
		}
		if cert == nil {
			return "", errors.New("no certificate on a keyless check (signed with a key no rule trusts?)")
		}
	}
	if !c.opts.IgnoreTlog && raw.annotations[annBundle] == "" {
		return "", errors.New("no transparency-log bundle, and the trust rule requires one")
	}
	if _, err := cosign.VerifyImageSignature(ctx, sig, digest, c.opts); err != nil {
		if c.keyName != "" {
			if strings.Contains(err.Error(), "invalid signature") {
				return "", fmt.Errorf("key %s: not signed by this key, or the payload was altered: %w", c.keyName, err)
			}
			return "", fmt.Errorf("key %s: %w", c.keyName, err)
		}
		return "", fmt.Errorf("keyless: %w", err)
	}
	if c.keyName != "" {
		return c.signer, nil
	}
	cert, err := sig.Cert()
	if err != nil || cert == nil {
		return "", fmt.Errorf("certificate vanished after verification: %w", err)
	}
	ce := cosign.CertExtensions{Cert: cert}
	subject := ""
	if sans := cryptoutils.GetSubjectAlternateNames(cert); len(sans) > 0 {
		subject = sans[0]
	}
	return "identity:issuer=" + ce.GetIssuer() + ",subject=" + subject, nil
}

// ociSignature turns a raw layer into cosign's oci.Signature.
func ociSignature(raw rawSignature) (oci.Signature, error) {
	b64 := raw.annotations[annSignature]
	if b64 == "" {
		return nil, fmt.Errorf("layer has no %s annotation", annSignature)
	}
	ann := make(map[string]string, len(raw.annotations))
	for k, v := range raw.annotations {
		ann[k] = v
	}
	// static.NewSignature writes into the map it is given.
	opts := []static.Option{static.WithAnnotations(ann)}
	if raw.mediaType != "" {
		opts = append(opts, static.WithLayerMediaType(raw.mediaType))
	}
	if cert := raw.annotations[annCertificate]; cert != "" {
		opts = append(opts, static.WithCertChain([]byte(cert), []byte(raw.annotations[annChain])))
	}
	if b := raw.annotations[annBundle]; b != "" {
		var rb bundle.RekorBundle
		if err := json.Unmarshal([]byte(b), &rb); err != nil {
			return nil, fmt.Errorf("malformed %s annotation: %w", annBundle, err)
		}
		opts = append(opts, static.WithBundle(&rb))
	}
	if ts := raw.annotations[annTimestamp]; ts != "" {
		var rt bundle.RFC3161Timestamp
		if err := json.Unmarshal([]byte(ts), &rt); err != nil {
			return nil, fmt.Errorf("malformed %s annotation: %w", annTimestamp, err)
		}
		opts = append(opts, static.WithRFC3161Timestamp(&rt))
	}
	return static.NewSignature(raw.payload, b64, opts...)
}
