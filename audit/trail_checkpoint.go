package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Checkpoint is a signed statement that the trail held Count records ending
// in the record whose hash is Head. It is written into the trail as a
// "trail.checkpoint" record and, atomically replaced, into the sidecar file
// <trail>.checkpoint, which is what makes a truncated tail detectable.
type Checkpoint struct {
	Count     uint64 `json:"count"`
	Head      string `json:"head"`
	Time      string `json:"time"`
	Host      string `json:"host"`
	KeyID     string `json:"key_id"`
	PublicKey []byte `json:"public_key"`
	Signature []byte `json:"signature"`
}

// checkpointFileType tags the sidecar file so a stray JSON file is not
// mistaken for one.
const checkpointFileType = "secrun.audit.checkpoint/v1"

type checkpointFile struct {
	Type string `json:"type"`
	Checkpoint
}

// CheckpointPath is the sidecar file holding the latest signed checkpoint of
// the trail file at path.
func CheckpointPath(path string) string { return path + ".checkpoint" }

// KeyID names a public key in checkpoints: the first 16 hex digits of the
// SHA-256 of the raw key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// message is what gets signed: every field but the signature, one per line.
func (c *Checkpoint) message() []byte {
	var b bytes.Buffer
	b.WriteString("secrun audit checkpoint v1\n")
	b.WriteString("count " + strconv.FormatUint(c.Count, 10) + "\n")
	b.WriteString("head " + c.Head + "\n")
	b.WriteString("time " + c.Time + "\n")
	b.WriteString("host " + c.Host + "\n")
	b.WriteString("key " + c.KeyID + "\n")
	return b.Bytes()
}

func signCheckpoint(key ed25519.PrivateKey, count uint64, head string, now time.Time, host string) *Checkpoint {
	pub := key.Public().(ed25519.PublicKey)
	c := &Checkpoint{
		Count:     count,
		Head:      head,
		Time:      now.UTC().Format(time.RFC3339Nano),
		Host:      host,
		KeyID:     KeyID(pub),
		PublicKey: bytes.Clone(pub),
	}
	c.Signature = ed25519.Sign(key, c.message())
	return c
}

// verify checks the signature: against pub when given, else against the key
// the checkpoint names (which only proves it was not edited by accident).
func (c *Checkpoint) verify(pub ed25519.PublicKey) error {
	if c.Count == 0 || !isHashString(c.Head) {
		return errors.New("checkpoint count or head is malformed")
	}
	if _, err := time.Parse(time.RFC3339Nano, c.Time); err != nil {
		return fmt.Errorf("checkpoint time: %w", err)
	}
	if err := validText("checkpoint host", c.Host); err != nil {
		return err
	}
	if len(c.PublicKey) != ed25519.PublicKeySize || len(c.Signature) != ed25519.SignatureSize {
		return errors.New("checkpoint public key or signature has the wrong length")
	}
	if c.KeyID != KeyID(c.PublicKey) {
		return fmt.Errorf("checkpoint key id %q does not match its public key", c.KeyID)
	}
	if pub != nil && !pub.Equal(ed25519.PublicKey(c.PublicKey)) {
		return fmt.Errorf("checkpoint is signed by key %s, not by the trusted key %s", c.KeyID, KeyID(pub))
	}
	if !ed25519.Verify(c.PublicKey, c.message(), c.Signature) {
		return errors.New("checkpoint signature does not verify")
	}
	return nil
}

// writeCheckpointFile atomically replaces the sidecar at path; the caller
// holds the trail lock, so the temporary name cannot collide.
func writeCheckpointFile(path string, c *Checkpoint) error {
	data, err := json.Marshal(checkpointFile{Type: checkpointFileType, Checkpoint: *c})
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	data = append(data, '\n')
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|oNoFollow, 0o600)
	if err != nil {
		return fmt.Errorf("writing checkpoint %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("writing checkpoint %s: %w", tmp, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("syncing checkpoint %s: %w", tmp, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing checkpoint %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("installing checkpoint %s: %w", path, err)
	}
	return fsyncDir(filepath.Dir(path))
}

// ReadCheckpointFile reads and checks the shape of a sidecar checkpoint
// file; the signature is checked by Verify.
func ReadCheckpointFile(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint %s: %w", path, err)
	}
	var cf checkpointFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("checkpoint %s is not a secrun checkpoint: %w", path, err)
	}
	if cf.Type != checkpointFileType {
		return nil, fmt.Errorf("checkpoint %s has type %q, want %q", path, cf.Type, checkpointFileType)
	}
	return &cf.Checkpoint, nil
}

// LoadSigningKey reads an ed25519 private key in PKCS#8 PEM ("PRIVATE KEY",
// as written by GenerateKey or `openssl genpkey -algorithm ed25519`). The file
// must not be readable by group or others.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit signing key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("audit signing key %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit signing key %s is readable by others (mode %#o): chmod 600 it", path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit signing key %s: want a PEM \"PRIVATE KEY\" block (PKCS#8 ed25519)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit signing key %s is a %T, want ed25519", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads an ed25519 public key in PKIX PEM ("PUBLIC KEY").
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("audit public key %s: want a PEM \"PUBLIC KEY\" block", path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key %s is a %T, want ed25519", path, k)
	}
	return pub, nil
}

// GenerateKey writes a new ed25519 key pair into dir: audit-key.pem (0600,
// for --audit-key) and audit-key.pub (0644, for verification). It refuses to
// overwrite existing files.
func GenerateKey(dir string) (keyPath, pubPath string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generating audit key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("generating audit key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("encoding audit key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("encoding audit public key: %w", err)
	}
	keyPath = filepath.Join(dir, "audit-key.pem")
	pubPath = filepath.Join(dir, "audit-key.pub")
	if err := writeNewFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNewFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, nil
}

func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("writing %s: %w", path, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("syncing %s: %w", path, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	return nil
}
