package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/secrun/secrun/internal/limitio"
)

// The decision cache remembers allow decisions so that a warm `secrun run`
// does not compile the policy at all. It is sound only because a decision
// is a pure function of the policy (modules and data, which Hash covers) and
// of the input:
//
//   - A policy that calls a non-deterministic builtin (rand, uuid, the
//     clock) is never cached, except the clock in secrun's built-in
//     policies, which compare it only against exemption expiry dates: an
//     entry then expires at the next such date.
//   - An entry's key is the policy hash, the OPA version and the whole
//     input, except the fields secrun makes unique per container (the
//     hostname and the cgroup path) that the policy provably never reads:
//     no reference into input can reach them, even with variables as
//     wildcards. A policy that reads input whole, passes input.spec to a
//     function, or indexes it with a variable keeps those fields in the key,
//     and then simply never hits.
//   - Only allow decisions are cached; a denial is always evaluated, so
//     its messages are the policy's own, fresh.
//
// Anything unexpected (an unreadable, malformed or foreign entry) is a miss,
// and the policy is evaluated: the cache can make secrun faster, never more
// permissive than the policy.

// WithDecisionCache keeps allow decisions in dir (created 0700). Callers
// that evaluate the same request repeatedly, as `secrun run` does, skip the
// policy's compilation when the decision is cached.
func WithDecisionCache(dir string) Option {
	return func(o *options) { o.cacheDir = dir }
}

const (
	cacheVersion        = 1
	defaultCacheEntries = 512
	// cacheTTL bounds how long an entry is trusted even when nothing it
	// depends on changed.
	cacheTTL = 24 * time.Hour
	// maxCacheFile bounds what a cache read may allocate.
	maxCacheFile = 1 << 20
)

// volatile is an input field secrun sets differently for every container.
type volatile struct {
	path  []string
	clear func(*Input)
}

var volatileFields = []volatile{
	{path: []string{"spec", "hostname"}, clear: func(in *Input) { in.Spec.Hostname = "" }},
	{path: []string{"spec", "linux", "cgroupsPath"}, clear: func(in *Input) {
		if in.Spec.Linux != nil {
			in.Spec.Linux.CgroupsPath = ""
		}
	}},
}

// cacheProfile is what the cache needs to know about a compiled policy.
type cacheProfile struct {
	Version    int    `json:"version"`
	PolicyHash string `json:"policy_hash"`
	OPA        string `json:"opa"`
	Cacheable  bool   `json:"cacheable"`
	// Reason says why a policy is not cacheable.
	Reason string `json:"reason,omitempty"`
	// Clock is set when the policy reads the clock (built-in policies:
	// exemption expiry).
	Clock bool `json:"clock,omitempty"`
	// Ignored are the volatile fields (dotted) the policy never reads.
	Ignored []string `json:"ignored,omitempty"`
}

// key is the cache key of an input under this profile.
func (p *cacheProfile) key(policyHash string, in *Input) (string, error) {
	norm := *in
	if in.Spec != nil && len(p.Ignored) > 0 {
		spec := *in.Spec
		if spec.Linux != nil {
			linux := *spec.Linux
			spec.Linux = &linux
		}
		norm.Spec = &spec
		for _, v := range volatileFields {
			if slices.Contains(p.Ignored, strings.Join(v.path, ".")) {
				v.clear(&norm)
			}
		}
	}
	b, err := json.Marshal(&norm)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "secrun decision v%d\nopa %s\nengine %s\npolicy %s\n", cacheVersion, OPAVersion, hashBytes([]byte(engineRegoText)), policyHash)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// validUntil is when a decision made now stops being trusted: the TTL, or
// the next exemption expiry for a policy that reads the clock.
func (e *Engine) validUntil(now time.Time) time.Time {
	until := now.Add(cacheTTL)
	if e.profile == nil || !e.profile.Clock {
		return until
	}
	ex, _ := e.data["exemptions"].([]any)
	for _, x := range ex {
		m, _ := x.(map[string]any)
		s, _ := m["expires"].(string)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			// An expiry the cache cannot read: trust nothing.
			return now
		}
		if t.After(now) && t.Before(until) {
			until = t
		}
	}
	return until
}

type decisionCache struct {
	dir string
	max int
}

type cacheEntry struct {
	Version    int         `json:"version"`
	Key        string      `json:"key"`
	PolicyHash string      `json:"policy_hash"`
	Allowed    bool        `json:"allowed"`
	Exempted   []Violation `json:"exempted,omitempty"`
	Until      time.Time   `json:"until"`
}

func (c *decisionCache) profilePath(policyHash string) string {
	return filepath.Join(c.dir, "policy-"+strings.TrimPrefix(policyHash, "sha256:")+".json")
}

// profile returns the stored profile of a policy that compiled before,
// under this OPA version.
func (c *decisionCache) profile(policyHash string) (*cacheProfile, bool) {
	b, err := limitio.ReadFile(c.profilePath(policyHash), maxCacheFile)
	if err != nil {
		return nil, false
	}
	var p cacheProfile
	if json.Unmarshal(b, &p) != nil || p.Version != cacheVersion || p.PolicyHash != policyHash || p.OPA != OPAVersion {
		return nil, false
	}
	return &p, true
}

// storeProfile records the profile of a policy that compiled; failing to
// record it only costs speed.
func (c *decisionCache) storeProfile(policyHash string, p cacheProfile) *cacheProfile {
	p.PolicyHash = policyHash
	if b, err := json.Marshal(p); err == nil {
		_ = c.write(c.profilePath(policyHash), b)
	}
	return &p
}

func (c *decisionCache) entryPath(key string) string {
	return filepath.Join(c.dir, key[:2], key)
}

func (c *decisionCache) lookup(key, policyHash string, now time.Time) (cacheEntry, bool) {
	b, err := limitio.ReadFile(c.entryPath(key), maxCacheFile)
	if err != nil {
		return cacheEntry{}, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Version != cacheVersion || e.Key != key || e.PolicyHash != policyHash ||
		!e.Allowed || !now.Before(e.Until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *decisionCache) store(key, policyHash string, d Decision, until time.Time) {
	b, err := json.Marshal(cacheEntry{Version: cacheVersion, Key: key, PolicyHash: policyHash, Allowed: d.Allowed, Exempted: d.Exempted, Until: until.UTC()})
	if err != nil {
		return
	}
	if c.write(c.entryPath(key), b) == nil {
		c.evict(filepath.Dir(c.entryPath(key)))
	}
}

// write replaces path atomically. Cache files are not synced: a file lost
// or torn by a crash fails validation and is a miss.
func (c *decisionCache) write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil && cerr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		if werr == nil {
			werr = cerr
		}
	}
	return werr
}

// evict keeps a shard (one of 256 by the key's first byte) under its share
// of the cache's size, dropping the oldest entries.
func (c *decisionCache) evict(shard string) {
	ents, err := os.ReadDir(shard)
	limit := max(c.max/256, 4)
	if err != nil || len(ents) <= limit {
		return
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var files []aged
	for _, e := range ents {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			files = append(files, aged{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b aged) int { return a.mod.Compare(b.mod) })
	for _, f := range files[:max(len(files)-limit, 0)] {
		os.Remove(filepath.Join(shard, f.name))
	}
}
