package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"
)

// Formatting follows the docker CLI: --format takes a Go template; a
// "table" prefix renders a header row and aligns columns with a tabwriter
// (min width 10, padding 3); "\t" and "\n" written literally in the format
// are turned into tab and newline; each row ends with a newline.

const tableFormatKey = "table"

// templateFuncs are docker's template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleCase,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, pre, post int) string { return strings.Repeat(" ", pre) + s + strings.Repeat(" ", post) },
	"truncate": truncateBytes,
}

// headerFuncs replace templateFuncs when rendering the header row, where
// every field is a column title: transformations leave it alone.
var headerFuncs = template.FuncMap{
	"json":     func(any) string { return "" },
	"split":    func(s string, _ string) string { return s },
	"join":     func(s string, _ string) string { return s },
	"title":    func(s string) string { return s },
	"lower":    func(s string) string { return s },
	"upper":    func(s string) string { return s },
	"pad":      func(s string, _, _ int) string { return s },
	"truncate": func(s string, _ int) string { return s },
}

func titleCase(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// parseTemplate parses a user format with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	tmpl, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, nil
}

// isTableFormat reports whether format asks for a table.
func isTableFormat(format string) bool { return strings.HasPrefix(format, tableFormatKey) }

// listFormat is the template of a list command: quietField alone with
// -q, table (docker's default columns) for "" or "table", every field
// for "json", else the user's format.
func listFormat(format string, quiet bool, quietField, table string) string {
	switch {
	case quiet:
		return quietField
	case format == "" || format == tableFormatKey:
		return table
	case format == "json":
		return "{{json .}}"
	}
	return format
}

// writeList renders rows with format. header maps field names to column
// titles for table formats.
func writeList[T any](out io.Writer, format string, header map[string]string, rows []T) error {
	table := isTableFormat(format)
	body := format
	if table {
		body = body[len(tableFormatKey):]
	}
	body = strings.Trim(body, " ")
	body = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(body)
	tmpl, err := parseTemplate(body)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, row := range rows {
		if err := tmpl.Execute(&buf, row); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		buf.WriteString("\n")
	}
	if !table {
		_, err := buf.WriteTo(out)
		return err
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	var hdr bytes.Buffer
	if htmpl, err := template.New("").Funcs(headerFuncs).Parse(body); err == nil {
		_ = htmpl.Execute(&hdr, header)
	}
	_, _ = hdr.WriteTo(tw)
	_, _ = tw.Write([]byte("\n"))
	_, _ = buf.WriteTo(tw)
	return tw.Flush()
}

// marshalContext turns a formatting context into JSON the way docker's
// {{json .}} does: every exported method without arguments is a key. It
// uses json.Marshal, which escapes <, > and & (docker's output does too).
func marshalContext(v any, skip ...string) ([]byte, error) {
	m := map[string]any{}
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := 0; i < rt.NumMethod(); i++ {
		meth := rt.Method(i)
		if meth.Type.NumIn() != 1 || meth.Type.NumOut() != 1 || meth.Name == "MarshalJSON" || contains(skip, meth.Name) {
			continue
		}
		m[meth.Name] = rv.Method(i).Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// Shared helpers with docker's output conventions.

// truncateID shortens an ID (with or without "sha256:") to 12 characters.
func truncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ellipsis shortens s to maxLen runes, ending in "…".
func ellipsis(s string, maxLen int) string {
	if utf8.RuneCountInString(s) <= maxLen {
		return s
	}
	r := []rune(s)
	if maxLen <= 1 {
		return string(r[:maxLen])
	}
	return string(r[:maxLen-1]) + "…"
}

// humanAgo renders a unix time as "5 seconds ago".
func humanAgo(unix int64) string {
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(unix, 0))) + " ago"
}

// humanSize renders bytes with three significant digits, e.g. "1.98MB".
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}
