package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"berth/internal/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// ApplyChanges applies Dockerfile instructions, as `docker import -c` and
// `docker commit -c` pass them, to a container config: CMD, ENTRYPOINT,
// ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR, in JSON
// or shell form. It returns a new config; cfg is not changed.
func ApplyChanges(cfg dockerspec.DockerOCIImageConfig, changes []string) (dockerspec.DockerOCIImageConfig, error) {
	out := cloneConfig(cfg)
	for _, change := range changes {
		for _, line := range strings.Split(change, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := applyChange(&out, line); err != nil {
				return cfg, errdefs.InvalidParameter(err)
			}
		}
	}
	return out, nil
}

func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := c
	out.Env = append([]string(nil), c.Env...)
	out.Cmd = append([]string(nil), c.Cmd...)
	out.Entrypoint = append([]string(nil), c.Entrypoint...)
	out.OnBuild = append([]string(nil), c.OnBuild...)
	if c.Labels != nil {
		out.Labels = map[string]string{}
		for k, v := range c.Labels {
			out.Labels[k] = v
		}
	}
	if c.ExposedPorts != nil {
		out.ExposedPorts = map[string]struct{}{}
		for k := range c.ExposedPorts {
			out.ExposedPorts[k] = struct{}{}
		}
	}
	if c.Volumes != nil {
		out.Volumes = map[string]struct{}{}
		for k := range c.Volumes {
			out.Volumes[k] = struct{}{}
		}
	}
	if len(out.Cmd) == 0 {
		out.Cmd = nil
	}
	if len(out.Entrypoint) == 0 {
		out.Entrypoint = nil
	}
	if len(out.Env) == 0 {
		out.Env = nil
	}
	if len(out.OnBuild) == 0 {
		out.OnBuild = nil
	}
	return out
}

func applyChange(c *dockerspec.DockerOCIImageConfig, line string) error {
	instr, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		instr, rest = line[:i], line[i+1:]
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(rest)
	case "ENV":
		pairs, err := keyValues("ENV", rest, true)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues("LABEL", rest, false)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		words, err := shellWords(rest)
		if err != nil || len(words) == 0 {
			return fmt.Errorf("EXPOSE requires at least one argument")
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, w := range words {
			ports, err := parsePorts(w)
			if err != nil {
				return err
			}
			for _, p := range ports {
				c.ExposedPorts[p] = struct{}{}
			}
		}
	case "VOLUME":
		vols := jsonArray(rest)
		if vols == nil {
			var err error
			if vols, err = shellWords(rest); err != nil {
				return fmt.Errorf("VOLUME: %w", err)
			}
		}
		if len(vols) == 0 {
			return fmt.Errorf("VOLUME requires at least one argument")
		}
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		if rest == "" {
			return fmt.Errorf("USER requires exactly one argument")
		}
		c.User = rest
	case "WORKDIR":
		if rest == "" {
			return fmt.Errorf("WORKDIR requires exactly one argument")
		}
		if !path.IsAbs(rest) {
			base := c.WorkingDir
			if base == "" {
				base = "/"
			}
			rest = path.Join(base, rest)
		}
		c.WorkingDir = path.Clean(rest)
	case "STOPSIGNAL":
		if rest == "" {
			return fmt.Errorf("STOPSIGNAL requires exactly one argument")
		}
		c.StopSignal = rest
	case "ONBUILD":
		trigger, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(trigger) {
		case "":
			return fmt.Errorf("ONBUILD requires at least one argument")
		case "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(trigger))
		}
		c.OnBuild = append(c.OnBuild, rest)
	default:
		return fmt.Errorf("%s is not a valid change command", instr)
	}
	return nil
}

// commandForm reads CMD/ENTRYPOINT: a JSON array is the exec form,
// anything else runs through /bin/sh -c.
func commandForm(rest string) []string {
	if a := jsonArray(rest); a != nil {
		return a
	}
	if rest == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", rest}
}

func jsonArray(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil
	}
	if a == nil {
		a = []string{}
	}
	return a
}

// keyValues reads "k=v k2='v 2'" or, for ENV's legacy form, "k value".
func keyValues(instr, rest string, legacy bool) ([][2]string, error) {
	words, err := shellWords(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", instr, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		if !legacy || len(words) < 2 {
			return nil, fmt.Errorf("%s names can not be blank or lack a value: %q", instr, words[0])
		}
		k, v, _ := strings.Cut(rest, " ")
		vw, err := shellWords(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", instr, err)
		}
		return [][2]string{{k, strings.Join(vw, " ")}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s names can not be blank: %q", instr, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// shellWords splits s like a shell would, without expansions: quotes group,
// backslash escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parsePorts reads "80", "80/udp" or "8000-8002/tcp" into "80/tcp" keys.
func parsePorts(w string) ([]string, error) {
	spec, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", spec)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, fmt.Errorf("invalid range specified for port: %s", spec)
		}
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
