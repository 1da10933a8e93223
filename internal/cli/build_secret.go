package cli

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/moby/moby/client"

	"berth/internal/build"
)

// parseSecret reads one --secret id=ID,src=FILE (also source=; type=file
// is the only type) and returns the id and the file's contents.
func parseSecret(s string) (string, []byte, error) {
	var id, src string
	for _, field := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "src", "source":
			src = v
		case "type":
			if v != "file" {
				return "", nil, fmt.Errorf("--secret %s: only type=file is supported", s)
			}
		default:
			return "", nil, fmt.Errorf("--secret %s: unknown field %q", s, k)
		}
	}
	if src == "" {
		return "", nil, fmt.Errorf("--secret %s: src=FILE is required", s)
	}
	if id == "" {
		id = path.Base(src)
	}
	if strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
		return "", nil, fmt.Errorf("--secret %s: invalid id %q", s, id)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", nil, fmt.Errorf("--secret %s: %w", s, err)
	}
	return id, data, nil
}

// maxSecretsHeader keeps the secrets header well inside net/http's
// default 1 MiB limit on a request's headers.
const maxSecretsHeader = 768 << 10

// controlHeaders are the request headers that carry --secret and
// --explain to the daemon (see build.SecretsHeader); nil when neither is
// used. The context tar stays exactly the user's files.
func controlHeaders(specs []string, explain bool) (map[string]string, error) {
	if len(specs) == 0 && !explain {
		return nil, nil
	}
	h := map[string]string{}
	if explain {
		h[build.ExplainHeader] = "1"
	}
	if len(specs) > 0 {
		secrets := map[string][]byte{}
		for _, s := range specs {
			id, data, err := parseSecret(s)
			if err != nil {
				return nil, err
			}
			secrets[id] = data
		}
		v, err := build.EncodeSecrets(secrets)
		if err != nil {
			return nil, err
		}
		// The daemon reads at most 1 MiB of headers per request.
		if len(v) > maxSecretsHeader {
			return nil, fmt.Errorf("--secret: the secrets take %d bytes encoded, more than the %d a build request carries", len(v), maxSecretsHeader)
		}
		h[build.SecretsHeader] = v
	}
	return h, nil
}

// buildClient is the API client for one build: the shared one, or one
// that adds the control headers to its requests.
func buildClient(c *Cli, headers map[string]string) (client.APIClient, error) {
	if len(headers) == 0 {
		return c.Client()
	}
	host := c.Host()
	cl, err := client.New(client.WithHost(host), client.WithUserAgent("Berth-Client/"+Version+" (linux)"),
		client.WithHTTPHeaders(headers))
	if err != nil {
		return nil, fmt.Errorf("invalid daemon address %q: %w", host, err)
	}
	return cl, nil
}
