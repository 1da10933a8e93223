package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/moby/moby/api/types/registry"
)

// hubServer is the key docker's config.json files Docker Hub's
// credentials under.
const hubServer = "https://index.docker.io/v1/"

// configFile is docker's ~/.docker/config.json: berth reads and writes the
// same file so that `docker login` and `berth login` share credentials.
// Fields berth does not know are kept as they are.
type configFile struct {
	path  string
	raw   map[string]json.RawMessage
	auths map[string]authEntry
	// credsStore names the default helper (docker-credential-<name>),
	// credHelpers a helper per registry host.
	credsStore  string
	credHelpers map[string]string
}

// authEntry is one "auths" entry: auth is base64("user:password").
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// configDir is $DOCKER_CONFIG, else ~/.docker.
func configDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker")
}

// loadConfigFile reads config.json; a missing file is an empty config.
func loadConfigFile() (*configFile, error) {
	cf := &configFile{path: filepath.Join(configDir(), "config.json"), raw: map[string]json.RawMessage{},
		auths: map[string]authEntry{}, credHelpers: map[string]string{}}
	b, err := os.ReadFile(cf.path)
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", cf.path, err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return cf, nil
	}
	if err := json.Unmarshal(b, &cf.raw); err != nil {
		return nil, fmt.Errorf("parse %s: %w", cf.path, err)
	}
	for key, dst := range map[string]any{"auths": &cf.auths, "credsStore": &cf.credsStore, "credHelpers": &cf.credHelpers} {
		if v, ok := cf.raw[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, fmt.Errorf("parse %s: %s: %w", cf.path, key, err)
			}
		}
	}
	return cf, nil
}

// save writes the file back atomically, with docker's tab indentation.
func (cf *configFile) save() error {
	a, err := json.Marshal(cf.auths)
	if err != nil {
		return err
	}
	cf.raw["auths"] = a
	b, err := json.MarshalIndent(cf.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cf.path), 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	tmp := cf.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return os.Rename(tmp, cf.path)
}

// helper returns the credential helper for server, or nil to use "auths".
func (cf *configFile) helper(server string) client.ProgramFunc {
	name := cf.credHelpers[server]
	if name == "" {
		name = cf.credsStore
	}
	if name == "" {
		return nil
	}
	return client.NewShellProgramFunc("docker-credential-" + name)
}

// get returns the stored credentials for server (empty when none).
func (cf *configFile) get(server string) (registry.AuthConfig, error) {
	ac := registry.AuthConfig{ServerAddress: server}
	if h := cf.helper(server); h != nil {
		c, err := client.Get(h, server)
		if err != nil {
			if credentials.IsErrCredentialsNotFound(err) {
				return ac, nil
			}
			return ac, fmt.Errorf("get credentials for %s: %w", server, err)
		}
		if c.Username == "<token>" {
			ac.IdentityToken = c.Secret
		} else {
			ac.Username, ac.Password = c.Username, c.Secret
		}
		return ac, nil
	}
	e, ok := cf.auths[server]
	if !ok {
		return ac, nil
	}
	ac.IdentityToken = e.IdentityToken
	if e.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return ac, fmt.Errorf("%s: invalid auth for %s: %w", cf.path, server, err)
		}
		ac.Username, ac.Password, _ = strings.Cut(string(b), ":")
	}
	return ac, nil
}

// store records credentials for server; it reports whether they went to
// the file in clear (docker then prints a warning).
func (cf *configFile) store(ac registry.AuthConfig) (plain bool, err error) {
	server := ac.ServerAddress
	if h := cf.helper(server); h != nil {
		c := &credentials.Credentials{ServerURL: server, Username: ac.Username, Secret: ac.Password}
		if ac.IdentityToken != "" {
			c.Username, c.Secret = "<token>", ac.IdentityToken
		}
		if err := client.Store(h, c); err != nil {
			return false, fmt.Errorf("store credentials for %s: %w", server, err)
		}
		// docker keeps an empty entry so that the registry is listed.
		cf.auths[server] = authEntry{}
		return false, cf.save()
	}
	cf.auths[server] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(ac.Username + ":" + ac.Password)),
		IdentityToken: ac.IdentityToken}
	return true, cf.save()
}

// erase forgets server's credentials; it reports whether there were any.
func (cf *configFile) erase(server string) (bool, error) {
	_, had := cf.auths[server]
	if h := cf.helper(server); h != nil {
		if err := client.Erase(h, server); err != nil && !credentials.IsErrCredentialsNotFound(err) {
			return had, fmt.Errorf("erase credentials for %s: %w", server, err)
		} else if err == nil {
			had = true
		}
	}
	if !had {
		return false, nil
	}
	delete(cf.auths, server)
	return true, cf.save()
}

// serverKey is the config.json key of a registry given as a login
// argument or a reference domain: Docker Hub's legacy URL, else the
// host[:port] without scheme or path.
func serverKey(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return hubServer
	}
	return s
}

// encodeAuth is the X-Registry-Auth value for ac: base64url JSON.
func encodeAuth(ac registry.AuthConfig) string {
	b, _ := json.Marshal(ac)
	return base64.URLEncoding.EncodeToString(b)
}

// registryAuthFor returns the X-Registry-Auth header for an image
// reference: the stored credentials of its registry, or "e30=" ({}).
func registryAuthFor(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "e30="
	}
	cf, err := loadConfigFile()
	if err != nil {
		return "e30="
	}
	ac, err := cf.get(serverKey(reference.Domain(named)))
	if err != nil || ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
		return "e30="
	}
	return encodeAuth(ac)
}
