package cli

import (
	"log/slog"
	"maps"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/moby/moby/api/types/registry"
)

// buildAuthConfigs is what docker's CLI sends as X-Registry-Config for a
// classic build: every credential config.json knows of, because the CLI
// cannot tell which registries the Dockerfile's FROM lines will need.
// Registries come from "auths", "credHelpers" and the default store's
// list; each is read through the same path as a pull's X-Registry-Auth.
// Failures leave a registry out (docker ignores them too): the build
// then pulls it anonymously and the registry's refusal is the error.
func buildAuthConfigs() map[string]registry.AuthConfig {
	cf, err := loadConfigFile()
	if err != nil {
		slog.Debug("build: no registry credentials sent", "err", err)
		return nil
	}
	servers := map[string]bool{}
	for s := range maps.Keys(cf.auths) {
		servers[s] = true
	}
	for s := range maps.Keys(cf.credHelpers) {
		servers[s] = true
	}
	if cf.credsStore != "" {
		list, err := client.List(client.NewShellProgramFunc("docker-credential-" + cf.credsStore))
		if err != nil {
			slog.Debug("build: listing the credential store failed", "store", cf.credsStore, "err", err)
		}
		for s := range list {
			servers[s] = true
		}
	}
	out := map[string]registry.AuthConfig{}
	for s := range servers {
		ac, err := cf.get(s)
		if err != nil {
			slog.Debug("build: credentials not sent", "registry", s, "err", err)
			continue
		}
		if ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" {
			continue
		}
		ac.ServerAddress = s
		out[s] = ac
	}
	return out
}
