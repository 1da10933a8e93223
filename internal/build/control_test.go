package build

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSecretsHeader round-trips secrets through the header encoding and
// refuses ids that could escape the secrets directory.
func TestSecretsHeader(t *testing.T) {
	in := map[string][]byte{"tok": []byte("s3cret\n"), "bin": {0, 1, 2, 255}}
	v, err := EncodeSecrets(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeSecrets(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || string(out["tok"]) != "s3cret\n" || string(out["bin"]) != string(in["bin"]) {
		t.Fatalf("round trip gave %q", out)
	}
	for _, bad := range []map[string][]byte{{"../x": nil}, {"a/b": nil}, {"..": nil}, {"": nil}} {
		v, _ := EncodeSecrets(bad)
		if _, err := DecodeSecrets(v); err == nil {
			t.Errorf("DecodeSecrets accepted ids %v", bad)
		}
	}
	if _, err := DecodeSecrets("!!not base64"); err == nil {
		t.Error("DecodeSecrets accepted a malformed value")
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	paths, err := WriteSecrets(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(paths["tok"])
	if err != nil || fi.Mode().Perm() != 0o400 || filepath.Dir(paths["tok"]) != dir {
		t.Fatalf("secret file %s: %v %v", paths["tok"], fi, err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("secrets dir: %v %v", di, err)
	}
}
