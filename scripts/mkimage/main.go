// Command mkimage writes a small busybox image for the demo and the README
// examples, without a registry or a Docker daemon: an OCI image layout
// (-format oci) or what `docker save` writes (-format docker-archive).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/secrun/secrun/image/imagetest"
)

func main() {
	format := flag.String("format", "oci", "oci or docker-archive")
	out := flag.String("o", "", "output: a layout directory (oci) or a tar file (docker-archive)")
	tag := flag.String("tag", "latest", "tag (oci) or reference (docker-archive)")
	user := flag.String("user", "", "USER to set in the image config")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "mkimage: -o is required")
		os.Exit(2)
	}
	if err := run(*format, *out, *tag, *user); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(format, out, tag, user string) error {
	img, err := imagetest.Busybox()
	if err != nil {
		return err
	}
	if user != "" {
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.Config.User = user
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
	}
	switch format {
	case "oci":
		p, err := layout.FromPath(out)
		if err != nil {
			if p, err = layout.Write(out, empty.Index); err != nil {
				return err
			}
		}
		return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	case "docker-archive":
		ref, err := name.ParseReference(tag)
		if err != nil {
			return err
		}
		return tarball.WriteToFile(out, ref, img)
	default:
		return fmt.Errorf("unknown -format %q: want oci or docker-archive", format)
	}
}
