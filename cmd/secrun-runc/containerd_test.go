package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/verify"
)

// TestContainerd runs a private containerd (its own config, root, state and
// socket) whose runc shim executes secrun-runc: `ctr run --runc-binary`
// sets the io.containerd.runc.v2 option BinaryName, as a CRI runtime's
// options BinaryName does. ctr gives no seccomp profile, so the config's
// hardening adds the default one. Then, with a trust config and a policy
// that requires signatures, an image named by the CRI annotation runs only
// when its signature verifies.
func TestContainerd(t *testing.T) {
	testenv.RequireRoot(t)
	containerd := requireTool(t, "containerd")
	ctrBin := requireTool(t, "ctr")
	bin, helper := binaries(t)
	dir := shortTempDir(t, "srcd-")
	s := newSite(t, dir, "policy: baseline\nhardening:\n  seccomp: default\n")
	sock := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "config.toml")
	writeText(t, cfg, fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "debug.sock"), filepath.Join(dir, "opt")))
	d := startDaemon(t, filepath.Join(dir, "containerd.log"), []string{"SECRUN_RUNTIME_CONFIG=" + s.config}, containerd, "--config", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ctr := func(args ...string) (string, error) {
		return command(ctx, nil, ctrBin, append([]string{"--address", sock, "--namespace", "secrun"}, args...)...)
	}
	d.waitFor(t, 60*time.Second, func() error { _, err := ctr("version"); return err })
	t.Cleanup(func() {
		out, err := ctr("task", "ls", "-q")
		if err == nil {
			for _, id := range strings.Fields(out) {
				if out, err := ctr("task", "kill", "-s", "KILL", id); err != nil {
					t.Logf("ctr task kill %s: %v\n%s", id, err, out)
				}
			}
		}
		time.Sleep(time.Second)
		if out, err := ctr("container", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				ctr("task", "rm", "-f", id)
				if out, err := ctr("container", "rm", id); err != nil {
					t.Logf("ctr container rm %s: %v\n%s", id, err, out)
				}
			}
		}
	})

	archive := filepath.Join(dir, "busybox.tar")
	imagetest.WriteDockerArchive(t, archive, imagetest.BusyboxImage(t), testImage)
	if out, err := ctr("images", "import", archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	run := func(args ...string) (string, error) {
		return ctr(append([]string{"run", "--runc-binary", bin}, args...)...)
	}

	t.Run("hardened by the config: the default seccomp profile is added", func(t *testing.T) {
		out, err := run("--rm", testImage, "hard", "sh", "-c", "echo hardened-ok; grep -E '^Seccomp:' /proc/self/status")
		if err != nil || !strings.Contains(out, "hardened-ok") || !strings.Contains(out, "Seccomp:\t2") {
			t.Fatalf("ctr run: %v\n%s", err, out)
		}
		inv := find(s.records(t), audit.KindRuntimeInvoked, audit.OutcomeSuccess, "linux.seccomp=default")
		if len(inv) != 1 || inv[0].Container.ID != "hard" {
			t.Fatalf("runtime.invoked records with the hardening: %+v", inv)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--privileged is refused", []string{"--privileged"}, "privileged: privileged containers are not allowed"},
		{"the Docker socket is refused", []string{"--mount", "type=bind,src=" + fakeSocket(t, dir) + ",dst=/var/run/docker.sock,options=rbind:rw"}, "is a container runtime socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"--rm"}, tc.args...), testImage, "denied", "true")
			out, err := run(args...)
			if err == nil {
				t.Fatalf("ctr run %s succeeded:\n%s", strings.Join(tc.args, " "), out)
			}
			for _, w := range []string{"OCI runtime create failed", "secrun: denied by policy baseline", tc.want} {
				if !strings.Contains(out, w) {
					t.Errorf("ctr's output lacks %q:\n%s", w, out)
				}
			}
			ctr("container", "rm", "denied")
		})
	}

	t.Run("exec is decided and audited, kill and delete work", func(t *testing.T) {
		if out, err := run("-d", testImage, "web", "sleep", "300"); err != nil {
			t.Fatalf("ctr run -d: %v\n%s", err, out)
		}
		out, err := ctr("task", "exec", "--exec-id", "e1", "web", "sh", "-c", "echo exec-ok")
		if err != nil || !strings.Contains(out, "exec-ok") {
			t.Fatalf("ctr task exec: %v\n%s", err, out)
		}
		if out, err := ctr("task", "kill", "-s", "KILL", "web"); err != nil {
			t.Fatalf("ctr task kill: %v\n%s", err, out)
		}
		waitGone(t, ctr, "web")
		if out, err := ctr("container", "rm", "web"); err != nil {
			t.Fatalf("ctr container rm: %v\n%s", err, out)
		}
		if len(find(s.records(t), audit.KindContainerExec, audit.OutcomeSuccess, "exec-ok")) != 1 {
			t.Error("no container.exec record for the exec")
		}
	})

	t.Run("signatures: an image named by the CRI annotation runs only if signed", func(t *testing.T) {
		host := imagetest.Registry(t)
		signed := imagetest.BusyboxImage(t)
		unsigned, err := mutate.Config(signed, v1.Config{Env: []string{"UNSIGNED=1"}})
		if err != nil {
			t.Fatal(err)
		}
		keys := t.TempDir()
		noPassword := func(bool) ([]byte, error) { return []byte{}, nil }
		if err := verify.GenerateKeyPair(keys, noPassword); err != nil {
			t.Fatal(err)
		}
		ref := func(img v1.Image, tag string) (string, string) {
			imagetest.Push(t, host+"/secrun/busybox:"+tag, img)
			h, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			return host + "/secrun/busybox:" + tag, host + "/secrun/busybox@" + h.String()
		}
		signedTag, signedRef := ref(signed, "signed")
		unsignedTag, unsignedRef := ref(unsigned, "unsigned")
		h, err := signed.Digest()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := verify.Sign(ctx, filepath.Join(keys, verify.PrivateKeyFile), noPassword, h, signedRef)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.PushSignature(ctx, signedRef, h, sig); err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{signedTag, unsignedTag} {
			if out, err := ctr("images", "pull", "--plain-http", tag); err != nil {
				t.Fatalf("ctr images pull %s: %v\n%s", tag, err, out)
			}
		}
		trust := filepath.Join(dir, "trust.yaml")
		writeText(t, trust, fmt.Sprintf("rules:\n- images: [%q]\n  keys: [%q]\n  insecureIgnoreTlog: true\n", host+"/**", filepath.Join(keys, verify.PublicKeyFile)))
		// The config is read on every call: switch it to the signatures-only
		// policy with the trust file.
		newSite(t, dir, fmt.Sprintf("policy: %s\ntrust: %s\nverifier: %s\nhardening:\n  seccomp: default\n",
			filepath.Join(testenv.ModuleRoot(t), "testdata", "runtime", "policies", "signed-only"), trust, helper))

		out, err := run("--rm", "--annotation", "io.kubernetes.cri.image-name="+signedRef, signedTag, "signed", "echo", "signed-ok")
		if err != nil || !strings.Contains(out, "signed-ok") {
			t.Fatalf("signed image: %v\n%s", err, out)
		}
		for _, tc := range []struct{ name, ann, tag, want string }{
			{"unsigned", "io.kubernetes.cri.image-name=" + unsignedRef, unsignedTag, "is not signed"},
			{"noident", "", signedTag, "no image identity"},
			{"tagonly", "io.kubernetes.cri.image-name=" + signedTag, signedTag, "named without a digest"},
		} {
			args := []string{"--rm"}
			if tc.ann != "" {
				args = append(args, "--annotation", tc.ann)
			}
			out, err := run(append(args, tc.tag, tc.name, "true")...)
			if err == nil || !strings.Contains(out, "signed-image: the image signature is not verified") || !strings.Contains(out, tc.want) {
				t.Errorf("%s: %v\n%s", tc.name, err, out)
			}
			ctr("container", "rm", tc.name)
		}
		dec := find(s.records(t), audit.KindPolicyDecision, audit.OutcomeAllowed, "")
		last := dec[len(dec)-1]
		if last.Container.ID != "signed" || last.Image.Name != signedRef || last.Image.Digest != h.String() || last.Fields["signature.verified"] != true {
			t.Errorf("the signed start's decision names %+v / %+v / %v", last.Container, last.Image, last.Fields)
		}
	})

	recs := s.records(t)
	if n := len(find(recs, audit.KindContainerDenied, audit.OutcomeDenied, "")); n < 5 {
		t.Errorf("want at least 5 refusals recorded, got %d", n)
	}
}

func writeText(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitGone waits until the task of id has stopped.
func waitGone(t *testing.T, ctr func(...string) (string, error), id string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out, err := ctr("task", "ls")
		if err != nil {
			t.Fatal(err)
		}
		running := false
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
				running = true
			}
		}
		if !running {
			if out, err := ctr("task", "rm", id); err != nil && !strings.Contains(out, "not found") {
				t.Fatalf("ctr task rm: %v\n%s", err, out)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("task %s still running", id)
}
