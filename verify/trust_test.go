package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/verify"
)

func TestLoadTrustFixtures(t *testing.T) {
	tr, err := verify.LoadTrust(fixture(t, "trust/team.yaml"))
	if err != nil {
		t.Fatalf("team.yaml: %v", err)
	}
	if len(tr.Warnings()) != 2 {
		t.Errorf("warnings %q, want one per rule ignoring the tlog", tr.Warnings())
	}
	bad := map[string]string{
		"bad-unknown-field.yaml": "insecureIgnoreTLog",
		"bad-missing-key.yaml":   "nobody.pub",
		"bad-not-a-key.yaml":     "not a PEM public key",
		"bad-syntax.yaml":        "malformed",
	}
	for file, want := range bad {
		t.Run(file, func(t *testing.T) {
			_, err := verify.LoadTrust(fixture(t, "trust/"+file))
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %q, want it to name %s and %q", err, file, want)
			}
		})
	}
}

func TestLoadTrustMissingFile(t *testing.T) {
	_, err := verify.LoadTrust(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error %v, want one naming the file", err)
	}
}

// TestParseTrust: every malformed or unusable config is refused with a clear
// error; secrun never runs on half a trust config.
func TestParseTrust(t *testing.T) {
	keys := filepath.Dir(fixture(t, "keys/alice.pub"))
	alicePEM, err := os.ReadFile(filepath.Join(keys, "alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	inline := strings.ReplaceAll(strings.TrimSpace(string(alicePEM)), "\n", "\n      ")
	tests := []struct {
		name    string
		yaml    string
		wantErr string // empty: must load
	}{
		{"minimal", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n", ""},
		{"json", `{"rules":[{"images":["**"],"keys":["alice.pub"],"insecureIgnoreTlog":true}]}`, ""},
		{"inline PEM", "rules:\n- images: [\"**\"]\n  keys:\n    - |\n      " + inline + "\n  insecureIgnoreTlog: true\n", ""},
		{"absolute path", "rules:\n- images: [\"**\"]\n  keys: [" + filepath.Join(keys, "bob.pub") + "]\n  insecureIgnoreTlog: true\n", ""},
		{"tlog with rekor keys", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  rekorKeys: [bob.pub]\n", ""},
		{"empty", "", "has no rules"},
		{"no rules", "rules: []\n", "has no rules"},
		{"not a mapping", "- a\n- b\n", "malformed"},
		{"unknown top-level field", "rule: []\n", "malformed"},
		{"duplicate field", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  keys: [bob.pub]\n  insecureIgnoreTlog: true\n", "malformed"},
		{"no images", "rules:\n- keys: [alice.pub]\n  insecureIgnoreTlog: true\n", "no images"},
		{"empty pattern", "rules:\n- images: [\"\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n", "empty image pattern"},
		{"pattern with space", "rules:\n- images: [\"a b\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: true\n", "space"},
		{"no signers", "rules:\n- images: [\"**\"]\n  insecureIgnoreTlog: true\n", "no keys and no identities"},
		{"missing key file", "rules:\n- images: [\"**\"]\n  keys: [carol.pub]\n  insecureIgnoreTlog: true\n", "carol.pub"},
		{"private key as public", "rules:\n- images: [\"**\"]\n  keys: [alice.key]\n  insecureIgnoreTlog: true\n", "not a PEM public key"},
		{"garbage inline PEM", "rules:\n- images: [\"**\"]\n  keys: [\"-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----\"]\n  insecureIgnoreTlog: true\n", "not a PEM public key"},
		{"tlog required without rekor keys", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n", "insecureIgnoreTlog"},
		{"identities without roots", "rules:\n- images: [\"**\"]\n  identities: [{issuer: https://i, subject: a@b}]\n  insecureIgnoreTlog: true\n  insecureIgnoreSCT: true\n", "identities need roots"},
		{"identity without subject", "rules:\n- images: [\"**\"]\n  identities: [{issuer: https://i}]\n  insecureIgnoreTlog: true\n", "subject"},
		{"identity with both issuers", "rules:\n- images: [\"**\"]\n  identities: [{issuer: https://i, issuerRegExp: x, subject: a}]\n  insecureIgnoreTlog: true\n", "exactly one of issuer"},
		{"bad regexp", "rules:\n- images: [\"**\"]\n  identities: [{issuer: https://i, subjectRegExp: \"(\"}]\n  insecureIgnoreTlog: true\n", "bad regular expression"},
		{"unanchored regexp", "rules:\n- images: [\"**\"]\n  identities: [{issuer: https://i, subjectRegExp: \"alice@example\\\\.com\"}]\n  roots: [alice.pub]\n  insecureIgnoreTlog: true\n", "must be anchored"},
		{"root that is not a certificate", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  roots: [alice.pub]\n  insecureIgnoreTlog: true\n", "not a PEM certificate"},
		{"string for bool", "rules:\n- images: [\"**\"]\n  keys: [alice.pub]\n  insecureIgnoreTlog: \"yes\"\n", "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := verify.ParseTrust([]byte(tc.yaml), keys, "trust.yaml")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tr.Source() != "trust.yaml" {
					t.Errorf("source %q", tr.Source())
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded, want an error mentioning %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "trust.yaml") {
				t.Fatalf("error %q, want it to name trust.yaml and mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestTrustForKey(t *testing.T) {
	tr, err := verify.TrustForKey(fixture(t, "keys/alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if w := tr.Warnings(); len(w) != 1 || !strings.Contains(w[0], "insecureIgnoreTlog") {
		t.Errorf("warnings %q, want the tlog escape hatch named", w)
	}
	_, err = verify.TrustForKey(filepath.Join(t.TempDir(), "missing.pub"))
	if err == nil || !strings.Contains(err.Error(), "missing.pub") {
		t.Fatalf("missing key: %v", err)
	}
	_, err = verify.TrustForKey(fixture(t, "keys/alice.key"))
	if err == nil || !strings.Contains(err.Error(), "not a PEM public key") {
		t.Fatalf("private key given as public: %v", err)
	}
}

// FuzzParseTrust: a trust file is operator input that may be mangled; the
// parser must never panic and must refuse or produce a usable Trust.
func FuzzParseTrust(f *testing.F) {
	dir := filepath.Join("..", "testdata", "verify", "trust")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"rules":[{"images":["**"],"keys":["../keys/alice.pub"],"insecureIgnoreTlog":true}]}`))
	f.Add([]byte("rules:\n- images: [\"*\"]\n  identities: [{issuer: a, subjectRegExp: \"a+\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := verify.ParseTrust(data, dir, "fuzz.yaml")
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		if tr == nil {
			t.Fatal("nil trust without error")
		}
		_ = tr.Warnings()
	})
}
