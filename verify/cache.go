package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// maxMemoryVerdicts bounds the in-memory cache; past it the map starts over
// (the disk copy still answers).
const maxMemoryVerdicts = 4096

// verdictCache keeps positive verdicts only: a "not signed" verdict is never
// cached, so signing an image later takes effect at once. The key covers the
// digest, the trusted key fingerprints and the rule hash, so changing the
// trust config invalidates every verdict made under the old one.
//
// The disk copy lives under ROOT/verdicts, which is as trusted as the image
// store beside it: whoever can write there can also replace image blobs.
type verdictCache struct {
	dir string // "" keeps verdicts in memory only

	mu  sync.RWMutex
	mem map[string]Verdict
}

type cacheEntry struct {
	Version int     `json:"version"`
	Key     string  `json:"key"`
	Verdict Verdict `json:"verdict"`
}

const cacheVersion = 1

func newVerdictCache(dir string) *verdictCache {
	return &verdictCache{dir: dir, mem: make(map[string]Verdict)}
}

// cacheKey is sha256(digest + sorted fingerprints + rule hash), hex.
func cacheKey(digest string, r *rule) string {
	fps := slices.Clone(r.fingerprints)
	slices.Sort(fps)
	h := sha256.New()
	h.Write([]byte(digest))
	h.Write([]byte{'\n'})
	h.Write([]byte(strings.Join(fps, ",")))
	h.Write([]byte{'\n'})
	h.Write([]byte(r.hash))
	return hex.EncodeToString(h.Sum(nil))
}

// get returns the cached verdict for key, checking that a disk entry really
// is the verdict for digest. A corrupt or mismatched disk entry is a miss
// (it is overwritten after the next verification); an unreadable cache
// directory is an error.
func (c *verdictCache) get(key, digest string) (Verdict, bool, error) {
	c.mu.RLock()
	v, ok := c.mem[key]
	c.mu.RUnlock()
	if ok {
		return v, true, nil
	}
	if c.dir == "" {
		return Verdict{}, false, nil
	}
	data, err := os.ReadFile(filepath.Join(c.dir, key+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Verdict{}, false, nil
	}
	if err != nil {
		return Verdict{}, false, fmt.Errorf("read verdict cache: %w", err)
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Version != cacheVersion || e.Key != key ||
		!e.Verdict.Verified || e.Verdict.Digest != digest || e.Verdict.Error != "" {
		return Verdict{}, false, nil
	}
	e.Verdict.Cached = false
	c.remember(key, e.Verdict)
	return e.Verdict, true, nil
}

// put records a positive verdict in memory and, durably, on disk.
func (c *verdictCache) put(key string, v Verdict) error {
	if !v.Verified {
		return nil
	}
	v.Cached = false
	if c.dir != "" {
		if err := c.write(key, v); err != nil {
			return err
		}
	}
	c.remember(key, v)
	return nil
}

func (c *verdictCache) remember(key string, v Verdict) {
	c.mu.Lock()
	if len(c.mem) >= maxMemoryVerdicts {
		clear(c.mem)
	}
	c.mem[key] = v
	c.mu.Unlock()
}

func (c *verdictCache) write(key string, v Verdict) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create verdict cache %s: %w", c.dir, err)
	}
	data, err := json.Marshal(cacheEntry{Version: cacheVersion, Key: key, Verdict: v})
	if err != nil {
		return fmt.Errorf("encode verdict: %w", err)
	}
	f, err := os.CreateTemp(c.dir, ".verdict-*")
	if err != nil {
		return fmt.Errorf("write verdict cache %s: %w", c.dir, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.dir, key+".json"))
	}
	if err != nil {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("write verdict cache %s: %w", c.dir, err)
	}
	return nil
}
