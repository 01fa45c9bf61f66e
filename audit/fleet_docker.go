package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/secrun/secrun/policy"
)

// The Docker Engine API is plain HTTP over a unix socket; the audit asks it
// only for what the OCI bundle does not say: names, image references and
// published ports. It uses unversioned paths, which every daemon serves at
// its own default API version.

// maxDockerResponse bounds one API response.
const maxDockerResponse = 64 << 20

type dockerClient struct {
	hc      *http.Client
	timeout time.Duration
}

func newDockerClient(socket string, timeout time.Duration) *dockerClient {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &dockerClient{hc: &http.Client{Transport: tr}, timeout: timeout}
}

func (c *dockerClient) get(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerResponse+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(body) > maxDockerResponse {
		return fmt.Errorf("GET %s: response larger than %d bytes", path, maxDockerResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &m) != nil {
			m.Message = string(body)
		}
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, clip(m.Message, 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func (c *dockerClient) close() { c.hc.CloseIdleConnections() }

// dockerContainer is an entry of GET /containers/json.
type dockerContainer struct {
	ID      string   `json:"Id"`
	Names   []string `json:"Names"`
	Image   string   `json:"Image"`
	ImageID string   `json:"ImageID"`
	State   string   `json:"State"`
	Ports   []struct {
		PublicPort int    `json:"PublicPort"`
		Type       string `json:"Type"`
	} `json:"Ports"`
}

type dockerImage struct {
	ID          string   `json:"Id"`
	RepoDigests []string `json:"RepoDigests"`
}

type dockerInspect struct {
	State struct {
		Pid     int  `json:"Pid"`
		Running bool `json:"Running"`
	} `json:"State"`
}

func parseDockerContainers(b []byte) ([]dockerContainer, error) {
	var cs []dockerContainer
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// askDocker names the Docker containers found in containerd's state and
// adds the running ones whose bundle was not found there.
func (d *discoverer) askDocker(ctx context.Context, socket string) {
	if _, err := os.Stat(socket); err != nil {
		d.source("docker", socket, 0, err)
		return
	}
	c := newDockerClient(socket, d.opts.DockerTimeout)
	defer c.close()
	var cs []dockerContainer
	if err := c.get(ctx, "/containers/json", &cs); err != nil {
		d.source("docker", socket, 0, err)
		return
	}
	var imgs []dockerImage
	if err := c.get(ctx, "/images/json", &imgs); err != nil {
		d.source("docker", socket, 0, err)
		return
	}
	digests := map[string]string{}
	for _, im := range imgs {
		for _, rd := range im.RepoDigests {
			if _, dg, ok := strings.Cut(rd, "@"); ok {
				digests[im.ID] = dg
				break
			}
		}
	}
	byID := map[string]*FleetContainer{}
	d.mu.Lock()
	for _, fc := range d.byPid {
		byID[fc.ID] = fc
	}
	d.mu.Unlock()
	var found int
	var errs []error
	for _, dc := range cs {
		if dc.State != "" && dc.State != "running" && dc.State != "paused" {
			continue
		}
		name := ""
		if len(dc.Names) > 0 {
			name = strings.TrimPrefix(dc.Names[0], "/")
		}
		ref := dc.Image
		if strings.HasPrefix(ref, "sha256:") {
			ref = "" // an untagged image: Docker shows its id
		}
		digest := digests[dc.ImageID]
		if digest == "" {
			digest = dc.ImageID
		}
		var ports []int
		for _, p := range dc.Ports {
			if p.PublicPort > 0 && !slices.Contains(ports, p.PublicPort) {
				ports = append(ports, p.PublicPort)
			}
		}
		slices.Sort(ports)
		d.mu.Lock()
		fc, ok := byID[dc.ID]
		if ok {
			fc.Engine, fc.priority = EngineDocker, prioDocker
			fc.Name = name
			fc.Image.Ref, fc.Image.Digest = ref, digest
			fc.Ports = ports
			fc.Sources = append(fc.Sources, "docker:"+socket)
			found++
		}
		d.mu.Unlock()
		if ok {
			continue
		}
		var in dockerInspect
		if err := c.get(ctx, "/containers/"+dc.ID+"/json", &in); err != nil {
			if !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
			continue
		}
		if !in.State.Running || in.State.Pid <= 0 {
			continue
		}
		fc2 := FleetContainer{ID: dc.ID, Name: name, Pid: in.State.Pid, Engine: EngineDocker, priority: prioDocker, live: true,
			Namespace: "moby", Image: policy.ImageInfo{Ref: ref, Digest: digest}, Ports: ports, Sources: []string{"docker:" + socket},
			Problems: []string{"its bundle was not found under the containerd state directories; pass the daemon's containerd state directory (--containerd-state)"}}
		if d.add(fc2, "") {
			found++
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		errs = append(errs, ctx.Err())
	}
	d.source("docker", socket, found, errors.Join(errs...))
}
