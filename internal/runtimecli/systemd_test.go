package runtimecli

import "testing"

func TestSystemdCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "system.slice:docker:abc", want: "/system.slice/docker-abc.scope"},
		{in: "machine.slice:libpod:abc", want: "/machine.slice/libpod-abc.scope"},
		{in: ":crio:abc", want: "/system.slice/crio-abc.scope"},
		{in: "a-b-c.slice:p:x", want: "/a.slice/a-b.slice/a-b-c.slice/p-x.scope"},
		{in: "-.slice::x", want: "/x.scope"},
		{in: "user.slice:p:sub.slice", want: "/user.slice/sub.slice"},
		{in: "/plain/cgroupfs/path", want: "/plain/cgroupfs/path"},
		{in: "", want: ""},
		{in: "notaslice:p:x", bad: true},
		{in: "system.slice:p:", bad: true},
		{in: "system.slice:p:a/b", bad: true},
	} {
		got, err := systemdCgroupPath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: got %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
