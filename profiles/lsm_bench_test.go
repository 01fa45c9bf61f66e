package profiles_test

import (
	"testing"

	"github.com/secrun/secrun/profiles"
)

func BenchmarkRenderAppArmor(b *testing.B) {
	s := aaBaseSpec(b)
	for b.Loop() {
		if _, err := profiles.RenderAppArmor("secrun-bench", s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckAppArmor is one apparmor_parser compile of a generated
// profile, the cost `secrun profile apparmor --check` or a load adds.
func BenchmarkCheckAppArmor(b *testing.B) {
	p, err := profiles.RenderAppArmor("secrun-bench", aaBaseSpec(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := profiles.CheckAppArmor(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMCSAllocateRelease allocates and releases with 1000 containers
// already holding pairs.
func BenchmarkMCSAllocateRelease(b *testing.B) {
	a := &profiles.MCSAllocator{}
	for range 1000 {
		if _, _, err := a.Allocate(nil); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		_, rel, err := a.Allocate(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := rel(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLandlock(b *testing.B) {
	opts := []string{"default", "ro=/usr:/etc:/opt/app", "rw=/data:/var/cache/app"}
	for b.Loop() {
		r, err := profiles.ParseLandlock(opts)
		if err != nil {
			b.Fatal(err)
		}
		_ = r.InitArgs()
	}
}
