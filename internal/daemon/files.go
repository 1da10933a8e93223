package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/docker/go-units"
	"github.com/moby/sys/mountinfo"
)

type etcFiles struct{ hostname, hosts, resolv string }

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf in its directory; the spec bind-mounts them.
func (d *Daemon) writeEtcFiles(c *Container) (etcFiles, error) {
	if c.HostConfig.NetworkMode.IsContainer() {
		return d.joinedEtcFiles(c)
	}
	dir := d.containerDir(c.ID)
	f := etcFiles{filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")}
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
		if c.HostConfig.NetworkMode == "host" {
			hostname, _ = os.Hostname()
		}
	}
	if err := os.WriteFile(f.hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return f, err
	}
	var hosts bytes.Buffer
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, h := range c.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, ok = strings.Cut(h, "=")
		}
		if ok && ip == "host-gateway" {
			ip = d.hostGateway(c)
		}
		if ok {
			fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
		}
	}
	if c.HostConfig.NetworkMode == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Reset()
			hosts.Write(b)
		}
	}
	if err := os.WriteFile(f.hosts, hosts.Bytes(), 0o644); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.resolv, resolvConf(c), 0o644); err != nil {
		return f, err
	}
	return f, nil
}

// resolvConf derives the container's resolv.conf from the host's, dropping
// loopback resolvers a container can't reach, and applying --dns options.
func resolvConf(c *Container) []byte {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var servers, search, options []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if c.HostConfig.NetworkMode == "host" || !(strings.HasPrefix(fields[1], "127.") || fields[1] == "::1") {
				servers = append(servers, fields[1])
			}
		case "search":
			search = fields[1:]
		case "options":
			options = append(options, fields[1:]...)
		}
	}
	if len(c.HostConfig.DNS) > 0 {
		servers = servers[:0]
		for _, s := range c.HostConfig.DNS {
			servers = append(servers, s.String())
		}
	}
	if len(c.HostConfig.DNSSearch) > 0 {
		search = c.HostConfig.DNSSearch
	}
	if len(c.HostConfig.DNSOptions) > 0 {
		options = c.HostConfig.DNSOptions
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes()
}

// makeWorkdir creates the working directory inside the root (docker creates
// it, owned by the container's user when it is new).
func makeWorkdir(rootfs, cwd string, uid, gid uint32) error {
	if cwd == "" || cwd == "/" {
		return nil
	}
	p, err := securejoin.SecureJoin(rootfs, cwd)
	if err != nil {
		return err
	}
	if st, err := os.Stat(p); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("working directory %s is not a directory", cwd)
		}
		return nil
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("create working directory %s: %w", cwd, err)
	}
	return os.Chown(p, int(uid), int(gid))
}

func parseSize(s string) (int64, error) { return units.RAMInBytes(s) }

func isMounted(p string) bool {
	m, _ := mountinfo.Mounted(p)
	return m
}

var nameLeft = []string{"admiring", "adoring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave", "busy", "charming", "clever", "cool", "compassionate", "confident", "crazy", "dazzling", "determined", "eager", "ecstatic", "elegant", "epic", "festive", "focused", "friendly", "gallant", "gifted", "goofy", "happy", "hopeful", "jolly", "keen", "kind", "laughing", "loving", "lucid", "modest", "nice", "nifty", "peaceful", "pensive", "quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "trusting", "vibrant", "wizardly", "youthful", "zealous"}
var nameRight = []string{"albattani", "archimedes", "babbage", "bardeen", "bohr", "curie", "darwin", "dijkstra", "einstein", "euclid", "fermat", "feynman", "galileo", "gauss", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamport", "lovelace", "maxwell", "mccarthy", "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "torvalds", "turing", "wozniak", "wright"}

// generateName returns a docker-style random name not in use; d.mu held.
func (d *Daemon) generateName() string {
	for i := 0; ; i++ {
		n := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if i > 10 {
			n += fmt.Sprint(rand.IntN(100))
		}
		if _, used := d.names["/"+n]; !used {
			return n
		}
	}
}
