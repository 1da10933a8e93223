package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// ---- login / logout ----

type loginOptions struct {
	server, user, password string
	passwordStdin          bool
}

func newLoginCommand(c *Cli) *cobra.Command {
	var opts loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  requiresRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.server = args[0]
			}
			return runLogin(cmdContext(cmd), c, &opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVarP(&opts.user, "username", "u", "", "Username")
	flags.StringVarP(&opts.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	flags.BoolVar(&opts.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func runLogin(ctx context.Context, c *Cli, opts *loginOptions) error {
	if opts.password != "" {
		fmt.Fprintln(c.Err(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
		if opts.passwordStdin {
			return errors.New("--password and --password-stdin are mutually exclusive")
		}
	}
	if opts.passwordStdin {
		if opts.user == "" {
			return errors.New("Must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(c.In())
		if err != nil {
			return err
		}
		opts.password = strings.TrimRight(string(b), "\r\n")
	}
	key := serverKey(opts.server)
	cf, err := loadConfigFile()
	if err != nil {
		return err
	}
	ac := registry.AuthConfig{ServerAddress: key, Username: opts.user, Password: opts.password}
	if opts.user == "" && opts.password == "" {
		// Stored credentials first, as docker does, then a prompt.
		if stored, err := cf.get(key); err == nil && (stored.Username != "" || stored.IdentityToken != "") {
			ac = stored
		} else if err := promptCredentials(c, &ac); err != nil {
			return err
		}
	} else if ac.Password == "" {
		if err := promptCredentials(c, &ac); err != nil {
			return err
		}
	}
	apiClient, err := c.Client()
	if err != nil {
		return err
	}
	addr := opts.server
	if addr == "" {
		addr = key
	}
	res, err := apiClient.RegistryLogin(ctx, client.RegistryLoginOptions{Username: ac.Username, Password: ac.Password,
		ServerAddress: addr, IdentityToken: ac.IdentityToken})
	if err != nil {
		return err
	}
	if res.Auth.IdentityToken != "" {
		ac.Password, ac.IdentityToken = "", res.Auth.IdentityToken
	}
	plain, err := cf.store(ac)
	if err != nil {
		return err
	}
	if plain {
		fmt.Fprintf(c.Err(), "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
			"Configure a credential helper to remove this warning. See\n"+
			"https://docs.docker.com/go/credential-store/\n\n", cf.path)
	}
	fmt.Fprintln(c.Out(), "Login Succeeded")
	return nil
}

// promptCredentials asks for what is missing on the terminal.
func promptCredentials(c *Cli, ac *registry.AuthConfig) error {
	if !c.In().IsTerminal() {
		return errors.New("Error: Cannot perform an interactive login from a non TTY device")
	}
	r := bufio.NewReader(c.In())
	if ac.Username == "" {
		fmt.Fprint(c.Out(), "Username: ")
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return err
		}
		ac.Username = strings.TrimSpace(line)
		if ac.Username == "" {
			return errors.New("Error: Non-null Username Required")
		}
	}
	fmt.Fprint(c.Out(), "Password: ")
	pw, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(c.Out())
	if err != nil {
		return err
	}
	ac.Password = string(pw)
	if ac.Password == "" {
		return errors.New("Error: Password Required")
	}
	return nil
}

func newLogoutCommand(c *Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  requiresRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return runLogout(c, server)
		},
	}
}

// runLogout forgets the stored credentials; it makes no API call.
func runLogout(c *Cli, server string) error {
	key := serverKey(server)
	cf, err := loadConfigFile()
	if err != nil {
		return err
	}
	had, err := cf.erase(key)
	if err != nil {
		return err
	}
	if !had {
		fmt.Fprintf(c.Out(), "Not logged in to %s\n", key)
		return nil
	}
	fmt.Fprintf(c.Out(), "Removing login credentials for %s\n", key)
	return nil
}
