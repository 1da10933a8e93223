package cli

import "testing"

func TestListFormat(t *testing.T) {
	const table = "table {{.ID}}\t{{.Name}}"
	for _, tc := range []struct {
		format string
		quiet  bool
		want   string
	}{
		{"", false, table},
		{"table", false, table},
		{"json", false, "{{json .}}"},
		{"{{.Name}}", false, "{{.Name}}"},
		{"table {{.Name}}", false, "table {{.Name}}"},
		{"json", true, "{{.ID}}"}, // -q wins over --format, as in docker
	} {
		if got := listFormat(tc.format, tc.quiet, "{{.ID}}", table); got != tc.want {
			t.Errorf("listFormat(%q, quiet=%v) = %q, want %q", tc.format, tc.quiet, got, tc.want)
		}
	}
}
