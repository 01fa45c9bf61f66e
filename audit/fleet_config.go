package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// DiscoverConfig is the file form of extra discovery places (YAML or JSON),
// for hosts whose engines keep state somewhere else (a runc --root given to
// an orchestrator, a second containerd):
//
//	docker_socket: /run/user/1000/docker.sock
//	containerd_state: [/run/k3s/containerd]
//	runc_roots: [/run/my-orchestrator/runc]
//	crun_roots: []
//	podman: [{root: /srv/containers/storage, runroot: /run/containers/storage}]
//	secrun_roots: [/srv/secrun]
type DiscoverConfig struct {
	DockerSocket        *string         `json:"docker_socket,omitempty"`
	ContainerdStateDirs []string        `json:"containerd_state,omitempty"`
	RuncRoots           []string        `json:"runc_roots,omitempty"`
	CrunRoots           []string        `json:"crun_roots,omitempty"`
	Podman              []PodmanStorage `json:"podman,omitempty"`
	SecrunRoots         []string        `json:"secrun_roots,omitempty"`
}

// ParseDiscoverConfig reads a discovery config. Unknown keys and relative
// paths are errors: a misspelt key would silently audit less.
func ParseDiscoverConfig(b []byte) (DiscoverConfig, error) {
	var c DiscoverConfig
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return c, fmt.Errorf("discovery config: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return DiscoverConfig{}, fmt.Errorf("discovery config: %w", err)
	}
	paths := slices.Concat(c.ContainerdStateDirs, c.RuncRoots, c.CrunRoots, c.SecrunRoots)
	for _, p := range c.Podman {
		if p.Root == "" {
			return DiscoverConfig{}, fmt.Errorf("discovery config: podman entry without root")
		}
		paths = append(paths, p.Root)
		if p.RunRoot != "" {
			paths = append(paths, p.RunRoot)
		}
	}
	if c.DockerSocket != nil && *c.DockerSocket != "" {
		paths = append(paths, *c.DockerSocket)
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return DiscoverConfig{}, fmt.Errorf("discovery config: path %q is not absolute", p)
		}
	}
	return c, nil
}

// LoadDiscoverConfig reads a discovery config file.
func LoadDiscoverConfig(path string) (DiscoverConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return DiscoverConfig{}, fmt.Errorf("discovery config: %w", err)
	}
	c, err := ParseDiscoverConfig(b)
	if err != nil {
		return DiscoverConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Apply adds the config's places to o; docker_socket replaces o's socket
// ("" stops asking Docker).
func (c DiscoverConfig) Apply(o DiscoverOptions) DiscoverOptions {
	if c.DockerSocket != nil {
		o.DockerSocket = *c.DockerSocket
	}
	o.ContainerdStateDirs = appendNewPaths(o.ContainerdStateDirs, c.ContainerdStateDirs...)
	o.RuncRoots = appendNewPaths(o.RuncRoots, c.RuncRoots...)
	o.CrunRoots = appendNewPaths(o.CrunRoots, c.CrunRoots...)
	o.SecrunRoots = appendNewPaths(o.SecrunRoots, c.SecrunRoots...)
	for _, p := range c.Podman {
		if !slices.Contains(o.Podman, p) {
			o.Podman = append(slices.Clone(o.Podman), p)
		}
	}
	return o
}

func appendNewPaths(dst []string, xs ...string) []string {
	out := slices.Clone(dst)
	for _, x := range xs {
		x = filepath.Clean(x)
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
