package build

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// The engine runs containers of its own platform only: FROM --platform
// may name it (or $BUILDPLATFORM / $TARGETPLATFORM, which are it), and
// anything else is refused up front rather than failing at the first RUN.

// hostPlatform is the engine's platform as os/arch[/variant].
func hostPlatform() (os, arch, variant string) {
	arch = runtime.GOARCH
	if arch == "arm" {
		variant = "v7"
	}
	if arch == "arm64" {
		variant = "v8"
	}
	return "linux", arch, variant
}

// platformArgs are BuildKit's predefined platform ARGs, visible to FROM
// lines and to stages that declare them (ARG TARGETARCH).
func platformArgs() map[string]string {
	os, arch, variant := hostPlatform()
	p := os + "/" + arch
	if variant != "" && arch != "arm64" {
		p += "/" + variant
	}
	m := map[string]string{}
	for _, pre := range []string{"BUILD", "TARGET"} {
		m[pre+"PLATFORM"] = p
		m[pre+"OS"] = os
		m[pre+"ARCH"] = arch
		m[pre+"VARIANT"] = variant
	}
	return m
}

// checkPlatform expands a FROM --platform value and refuses platforms
// this engine cannot run.
func (b *builder) checkPlatform(raw string) error {
	if raw == "" {
		return nil
	}
	v, _, err := b.lex.ProcessWord(raw, shell.EnvsFromSlice(envList(b.meta)))
	if err != nil {
		return fmt.Errorf("FROM --platform=%s: %w", raw, err)
	}
	if err := CheckPlatform(v); err != nil {
		return fmt.Errorf("FROM --platform=%s: %w", raw, err)
	}
	return nil
}

// CheckPlatform refuses a platform (os/arch[/variant]) the engine cannot
// run: only its own is possible (also the API's build platform=).
func CheckPlatform(p string) error {
	hos, harch, hvariant := hostPlatform()
	parts := strings.Split(strings.ToLower(p), "/")
	ok := len(parts) >= 2 && len(parts) <= 3 && parts[0] == hos && normArch(parts[1]) == harch
	if ok && len(parts) == 3 && parts[2] != hvariant && !(harch == "amd64" && parts[2] == "v1") {
		ok = false
	}
	if !ok {
		return fmt.Errorf("this engine runs %s/%s containers only, not %s", hos, harch, p)
	}
	return nil
}

func normArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}
