package build

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// What the classic POST /build has no parameter for travels in request
// headers that berth build sets: the secrets of RUN --mount=type=secret
// and the --explain switch. Headers, not the context tar (a user's own
// files must never be taken for ours) and not the query (the API logs
// it): a secret is only ever written to a daemon-private file.
const (
	// SecretsHeader carries EncodeSecrets of the build's secrets.
	SecretsHeader = "X-Berth-Build-Secrets"
	// ExplainHeader set to "1" asks for --explain's cache-miss reasons.
	ExplainHeader = "X-Berth-Build-Explain"
	// LocateHeader set to "1" asks for a StepLocation aux message before
	// the error of a failed build (berth build shows the Dockerfile line).
	LocateHeader = "X-Berth-Build-Locate"
)

// EncodeSecrets packs secrets (id -> contents) into one header value.
func EncodeSecrets(secrets map[string][]byte) (string, error) {
	raw, err := json.Marshal(secrets)
	if err != nil {
		return "", fmt.Errorf("encode build secrets: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// DecodeSecrets unpacks a SecretsHeader value; ids are checked to be
// plain file names.
func DecodeSecrets(v string) (map[string][]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", SecretsHeader, err)
	}
	var m map[string][]byte
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", SecretsHeader, err)
	}
	for id := range m {
		if !validSecretID(id) {
			return nil, fmt.Errorf("decode %s: invalid secret id %q", SecretsHeader, id)
		}
	}
	return m, nil
}

func validSecretID(id string) bool {
	return id != "" && id != "." && id != ".." && filepath.Base(id) == id && !containsSlash(id)
}

func containsSlash(s string) bool {
	for _, r := range s {
		if r == '/' || r == '\\' {
			return true
		}
	}
	return false
}

// WriteSecrets writes secrets as read-only files in dir (created 0700,
// private to the daemon) and returns Options.Secrets for them.
func WriteSecrets(dir string, secrets map[string][]byte) (map[string]string, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("build secrets: %w", err)
	}
	out := map[string]string{}
	for id, data := range secrets {
		if !validSecretID(id) {
			return nil, fmt.Errorf("build secret: invalid id %q", id)
		}
		p := filepath.Join(dir, id)
		if err := os.WriteFile(p, data, 0o400); err != nil {
			return nil, fmt.Errorf("build secret %s: %w", id, err)
		}
		out[id] = p
	}
	return out, nil
}
